/* fifo.h -- ledd's side of the FIFO protocol (docs/protocol.md): the runtime
 * directory, the pid lock, the command FIFO, and the clients' reply FIFOs in
 * reply/, which also carry the watchers' events.
 *
 * Four files implement it, one concern each:
 *   fifo_layout.c  the runtime directory's names, owners and modes; self-repair
 *   fifo_read.c    the command FIFO's read loop (bytes -> framing.c -> lines)
 *   fifo.c         replies and watchers
 *   fifo_sweep.c   leftovers in reply/ (crashed clients, members' junk)
 */
#ifndef LEDD_FIFO_H
#define LEDD_FIFO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "defaults.h"
#include "framing.h"
#include "protocol.h"

struct watcher {
	int fd;
	dev_t dev;                      /* its FIFO: one WATCH per FIFO */
	ino_t ino;
	char name[LEDD_MAX_ID + 1];
};

struct fifo_server {
	char dir[CONFIG_PATH_MAX];
	int dir_fd, reply_dir_fd;       /* every name is opened relative to these */
	int cmd_fd, pid_fd, inotify_fd;
	dev_t dir_dev, reply_dir_dev, cmd_dev, pid_dev;
	ino_t dir_ino, reply_dir_ino, cmd_ino, pid_ino;
	struct framer framer;
	unsigned int requests;          /* since the last look at reply/'s size */
	size_t sweep_left;              /* entries the last sweep could not remove */
	struct watcher *watchers;
	size_t nwatchers, max_watchers;
};

typedef framer_line_fn fifo_line_fn;

/* fifo_layout.c ---------------------------------------------------------- */

/* Check (or create) the runtime directory and take the pid lock. Fails with a
 * message naming the other daemon's pid when another ledd holds it, and on a
 * runtime directory that is a symlink or belongs to another user. */
int fifo_lock(struct fifo_server *s, const char *dir, char *err, size_t errlen);

/* Create (or re-make) ledd.cmd and reply/ with their owner and modes, drain
 * stale requests, sweep reply/, and watch the directory (inotify). */
int fifo_open(struct fifo_server *s, size_t max_watchers, char *err, size_t errlen);

/* Make sure ledd.cmd and reply/ are what ledd made (type, owner, mode,
 * inode) and re-make the layout if not: two fstatat()s when all is well.
 * Called before requests are read; inotify covers the rest. */
void fifo_check(struct fifo_server *s);

/* Called when the inotify fd is readable: fifo_check() after a change. */
void fifo_handle_inotify(struct fifo_server *s);

/* fifo_read.c ------------------------------------------------------------ */

/* Read what is pending on the command FIFO and call fn once per line (see
 * framing.h). */
void fifo_read_commands(struct fifo_server *s, fifo_line_fn fn, void *ctx);

/* fifo.c ----------------------------------------------------------------- */

/* Write one reply line to reply/<name>: opened O_WRONLY|O_NONBLOCK|O_NOFOLLOW
 * relative to reply/, checked to be a FIFO that is neither ledd.cmd nor a
 * watcher's, one write, closed. A client that has gone (ENOENT, ENXIO) is
 * dropped silently. Never blocks. */
void fifo_reply(struct fifo_server *s, const char *name, const char *line, size_t len);

/* Make reply/<name> a watcher: write the reply line and the first event
 * (the current state) and keep the FIFO open for later events. Returns
 * PROTO_OK, or an error code with a message; *gone is set when the client
 * has already left (nothing to answer). A FIFO watches once. */
enum proto_code fifo_watch_add(struct fifo_server *s, const char *name, const char *reply,
			       size_t reply_len, const char *first, size_t len, bool *gone,
			       char *err, size_t errlen);

/* Write an event line to every watcher; drop those that are gone or full.
 * Returns the number dropped. */
size_t fifo_broadcast(struct fifo_server *s, const char *line, size_t len);

/* Drop the watcher using fd (its reader went away). */
void fifo_watch_drop_fd(struct fifo_server *s, int fd);

void fifo_close(struct fifo_server *s);

/* fifo_sweep.c ----------------------------------------------------------- */

/* Remove from reply/ what nobody uses: FIFOs without a reader (crashed
 * clients), and anything that is not a FIFO (directories with their
 * contents, as far as ledd may). */
void fifo_sweep(struct fifo_server *s);

/* Count a request; every LEDD_REPLY_CHECK_EVERY, sweep if reply/ has grown
 * LEDD_REPLY_SWEEP_AT entries past what the last sweep left. */
void fifo_sweep_maybe(struct fifo_server *s);

/* Remove `name` in dirfd, and what it holds if it is a directory (down to
 * LEDD_SWEEP_MAX_DEPTH levels). 0 when it is gone, -1 with errno. */
int fifo_remove_tree(int dirfd, const char *name, int depth);

#endif

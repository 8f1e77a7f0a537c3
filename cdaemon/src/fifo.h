/* fifo.h -- ledd's side of the FIFO protocol (docs/protocol.md): the runtime
 * directory, the pid lock, the command FIFO, and the clients' reply FIFOs in
 * reply/, which also carry the watchers' events. */
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
	char name[LEDD_MAX_ID + 1];
};

struct fifo_server {
	char dir[CONFIG_PATH_MAX];
	int dir_fd, reply_dir_fd;       /* every name is opened relative to these */
	int cmd_fd, pid_fd, inotify_fd;
	ino_t dir_ino, reply_dir_ino, cmd_ino, pid_ino;
	struct framer framer;
	unsigned int requests;          /* since the last look at reply/'s size */
	struct watcher *watchers;
	size_t nwatchers, max_watchers;
};

typedef framer_line_fn fifo_line_fn;

/* Check (or create) the runtime directory and take the pid lock. Fails with a
 * message naming the other daemon's pid when another ledd holds it, and on a
 * runtime directory that is a symlink or belongs to another user. */
int fifo_lock(struct fifo_server *s, const char *dir, char *err, size_t errlen);

/* Create (if missing) and open the command FIFO and reply/, drain stale
 * requests, sweep leftover reply FIFOs, and watch the directory (inotify). */
int fifo_open(struct fifo_server *s, size_t max_watchers, char *err, size_t errlen);

/* Read what is pending on the command FIFO and call fn once per line (see
 * framing.h). */
void fifo_read_commands(struct fifo_server *s, fifo_line_fn fn, void *ctx);

/* Write one reply line to reply/<name>: opened O_WRONLY|O_NONBLOCK|O_NOFOLLOW
 * relative to reply/, checked to be a FIFO, one write, closed. A client that
 * has gone (ENOENT, ENXIO) is dropped silently. Never blocks. */
void fifo_reply(struct fifo_server *s, const char *name, const char *line, size_t len);

/* Called when the inotify fd is readable: recreate whatever was deleted. */
void fifo_handle_inotify(struct fifo_server *s);

/* Make reply/<name> a watcher: write the reply line and the first event
 * (the current state) and keep the FIFO open for later events. Returns
 * PROTO_OK, or an error code with a message; *gone is set when the client
 * has already left (nothing to answer). */
enum proto_code fifo_watch_add(struct fifo_server *s, const char *name, const char *reply,
			       size_t reply_len, const char *first, size_t len, bool *gone,
			       char *err, size_t errlen);

/* Write an event line to every watcher; drop those that are gone or full.
 * Returns the number dropped. */
size_t fifo_broadcast(struct fifo_server *s, const char *line, size_t len);

/* Drop the watcher using fd (its reader went away). */
void fifo_watch_drop_fd(struct fifo_server *s, int fd);

/* Unlink the reply FIFOs nobody reads (crashed clients' leftovers). */
void fifo_sweep(struct fifo_server *s);

void fifo_close(struct fifo_server *s);

#endif

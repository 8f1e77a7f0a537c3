/* fifo.h -- ledd's side of the FIFO protocol: the runtime directory, the
 * command and reply FIFOs, the pid lock, and the watchers' event FIFOs. */
#ifndef LEDD_FIFO_H
#define LEDD_FIFO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "defaults.h"
#include "protocol.h"

struct watcher {
	int fd;
	char name[LEDD_MAX_WATCH_NAME + 1];
};

struct fifo_server {
	char dir[CONFIG_PATH_MAX];
	int cmd_fd, reply_fd, pid_fd, inotify_fd;
	ino_t cmd_ino, reply_ino, pid_ino;
	char inbuf[LEDD_MAX_REQUEST];
	size_t inlen;
	bool discarding;                /* inside an overlong line: skip to LF */
	struct watcher *watchers;
	size_t nwatchers, max_watchers;
};

/* `complete` is false for a line that ended without LF: the writer sent a
 * fragment (see fifo_read_commands). */
typedef void (*fifo_line_fn)(void *ctx, const char *line, size_t len, bool complete);

/* Create the runtime directory if needed and take the pid lock. Fails (with a
 * message naming the other daemon's pid) when another ledd holds it. */
int fifo_lock(struct fifo_server *s, const char *dir, char *err, size_t errlen);

/* Create (if missing) and open the FIFOs and watch/, drain stale bytes, and
 * start watching the directory with inotify. */
int fifo_open(struct fifo_server *s, size_t max_watchers, char *err, size_t errlen);

/* Read what is pending on the command FIFO and call fn once per line (LF
 * stripped). An overlong line is passed as its first LEDD_MAX_REQUEST bytes.
 * A fragment left when the pipe is empty is passed with complete = false. */
void fifo_read_commands(struct fifo_server *s, fifo_line_fn fn, void *ctx);

/* Write one reply line without ever blocking (drains stale replies if the
 * pipe is full). */
int fifo_reply(struct fifo_server *s, const char *line, size_t len);

/* Called when the inotify fd is readable: recreate whatever was deleted. */
void fifo_handle_inotify(struct fifo_server *s);

/* Subscribe watch/<name>; `first` (the current state event) is written at
 * once. Returns PROTO_OK or an error code with a message. */
enum proto_code fifo_watch_add(struct fifo_server *s, const char *name, const char *first,
			       size_t len, char *err, size_t errlen);

/* Write an event line to every watcher; drop those that are gone or full.
 * Returns the number dropped. */
size_t fifo_broadcast(struct fifo_server *s, const char *line, size_t len);

/* Drop the watcher using fd (its reader went away). */
void fifo_watch_drop_fd(struct fifo_server *s, int fd);

void fifo_close(struct fifo_server *s);

#endif

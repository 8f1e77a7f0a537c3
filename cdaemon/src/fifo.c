/* fifo.c -- the FIFO server of ledd (docs/protocol.md).
 *
 * ledd opens ledd.cmd O_RDWR, so it is always a writer of its own command
 * FIFO and never sees EOF when clients come and go, and ledd.reply
 * O_RDWR|O_NONBLOCK, so replies never block and never fail for want of a
 * reader; holding a read end also lets ledd drain a reply pipe that nobody
 * empties. Clients find their reply by the locking rule and request ids.
 *
 * The directory is watched with inotify (IN_DELETE/IN_MOVED_FROM only, so
 * clients' traffic causes no wake-ups): a FIFO or the pid file deleted under
 * a running ledd is recreated and reopened.
 *
 * Watchers are FIFOs created by clients in watch/. They are opened
 * O_WRONLY|O_NONBLOCK|O_NOFOLLOW and must be FIFOs; every event is one
 * non-blocking write under PIPE_BUF, and a watcher whose pipe is full or whose
 * reader is gone is dropped at once: a slow watcher never slows ledd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fifo.h"
#include "log.h"

#define READS_PER_WAKEUP 16     /* then back to poll, so signals and edges get a turn */

static int path_in(const struct fifo_server *s, const char *name, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", s->dir, name);

	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

static int mkdir_mode(const char *path, mode_t mode)
{
	if (mkdir(path, mode) == 0)
		return chmod(path, mode);   /* mkdir's mode is cut by the umask */
	return errno == EEXIST ? 0 : -1;
}

/* mkdir -p for the runtime directory itself (its parents get 0755). */
static int make_runtime_dir(const char *dir)
{
	char tmp[CONFIG_PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir_mode(tmp, LEDD_RUNTIME_DIR_MODE);
}

static void drain(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0 || errno == EINTR)
		;
}

/* Open the pid file, lock it and write our pid into it. */
static int open_pid_file(struct fifo_server *s, char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX + 16], pidbuf[32];
	struct stat st;
	int fd;

	if (path_in(s, LEDD_PID_FILE, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "%s: path too long", s->dir);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			ssize_t n = pread(fd, pidbuf, sizeof(pidbuf) - 1, 0);
			pidbuf[n > 0 ? n : 0] = '\0';
			pidbuf[strcspn(pidbuf, "\n")] = '\0';
			snprintf(err, errlen, "another ledd (pid %s) is already running on %s",
				 pidbuf[0] ? pidbuf : "?", s->dir);
		} else {
			snprintf(err, errlen, "%s: flock: %s", path, strerror(e));
		}
		close(fd);
		return -1;
	}
	int len = snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pidbuf, (size_t)len, 0) != len || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (s->pid_fd >= 0)
		close(s->pid_fd);
	s->pid_fd = fd;
	s->pid_ino = st.st_ino;
	return 0;
}

int fifo_lock(struct fifo_server *s, const char *dir, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->cmd_fd = s->reply_fd = s->pid_fd = s->inotify_fd = -1;
	if (snprintf(s->dir, sizeof(s->dir), "%s", dir) >= (int)sizeof(s->dir)) {
		snprintf(err, errlen, "runtime directory path too long");
		return -1;
	}
	if (make_runtime_dir(dir) < 0) {
		snprintf(err, errlen, "cannot create runtime directory %s: %s", dir, strerror(errno));
		return -1;
	}
	return open_pid_file(s, err, errlen);
}

/* Make sure `name` is a FIFO we have open: create it if missing, reopen it if
 * the path now names another inode than the one we hold. */
static int ensure_fifo(struct fifo_server *s, const char *name, int flags, int *fd, ino_t *ino,
		       char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX + 16];
	struct stat st;

	if (path_in(s, name, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "%s: path too long", s->dir);
		return -1;
	}
	if (lstat(path, &st) == 0 && *fd >= 0 && st.st_ino == *ino)
		return 0;
	if (mkfifo(path, LEDD_FIFO_MODE) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	int nfd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (nfd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(nfd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a FIFO", path);
		close(nfd);
		return -1;
	}
	if (fchmod(nfd, LEDD_FIFO_MODE) < 0 && errno != EPERM)
		log_warn("%s: chmod: %s", path, strerror(errno));
	drain(nfd);    /* stale bytes from clients of an earlier ledd */
	if (*fd >= 0)
		close(*fd);
	*fd = nfd;
	*ino = st.st_ino;
	return 0;
}

static int ensure_all(struct fifo_server *s, char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX + 16];
	struct stat st;

	if (make_runtime_dir(s->dir) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", s->dir, strerror(errno));
		return -1;
	}
	if (ensure_fifo(s, LEDD_CMD_FIFO, O_RDWR, &s->cmd_fd, &s->cmd_ino, err, errlen) < 0 ||
	    ensure_fifo(s, LEDD_REPLY_FIFO, O_RDWR, &s->reply_fd, &s->reply_ino, err, errlen) < 0)
		return -1;
	if (path_in(s, LEDD_PID_FILE, path, sizeof(path)) == 0 &&
	    (lstat(path, &st) < 0 || st.st_ino != s->pid_ino) &&
	    open_pid_file(s, err, errlen) < 0)
		return -1;
	if (path_in(s, LEDD_WATCH_DIR, path, sizeof(path)) < 0 ||
	    mkdir_mode(path, LEDD_WATCH_DIR_MODE) < 0) {
		snprintf(err, errlen, "cannot create %s/%s: %s", s->dir, LEDD_WATCH_DIR, strerror(errno));
		return -1;
	}
	return 0;
}

static int watch_dir(struct fifo_server *s, char *err, size_t errlen)
{
	if (inotify_add_watch(s->inotify_fd, s->dir,
			      IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF |
			      IN_ONLYDIR) < 0) {
		snprintf(err, errlen, "inotify on %s: %s", s->dir, strerror(errno));
		return -1;
	}
	return 0;
}

int fifo_open(struct fifo_server *s, size_t max_watchers, char *err, size_t errlen)
{
	s->max_watchers = max_watchers;
	s->watchers = calloc(LEDD_MAX_WATCHERS_LIMIT, sizeof(*s->watchers));
	if (!s->watchers) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (ensure_all(s, err, errlen) < 0)
		return -1;
	s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->inotify_fd < 0) {
		snprintf(err, errlen, "inotify_init1: %s", strerror(errno));
		return -1;
	}
	return watch_dir(s, err, errlen);
}

void fifo_handle_inotify(struct fifo_server *s)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	char err[256];
	bool rewatch = false, relevant = false;
	ssize_t n;

	while ((n = read(s->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
				rewatch = true;
			relevant = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (!relevant)
		return;
	if (ensure_all(s, err, sizeof(err)) < 0) {
		log_err("cannot restore the runtime directory: %s", err);
		return;
	}
	if (rewatch) {
		/* The directory itself went away: watch the new one. */
		if (watch_dir(s, err, sizeof(err)) < 0)
			log_err("%s", err);
	}
	log_debug("runtime directory checked after a deletion");
}

void fifo_read_commands(struct fifo_server *s, fifo_line_fn fn, void *ctx)
{
	char buf[4096];

	for (int round = 0; round < READS_PER_WAKEUP; round++) {
		ssize_t n = read(s->cmd_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;   /* EAGAIN: nothing more; 0 cannot happen (we hold a writer) */
		for (ssize_t i = 0; i < n; i++) {
			char c = buf[i];
			if (c == '\n') {
				if (!s->discarding)
					fn(ctx, s->inbuf, s->inlen, true);
				s->discarding = false;
				s->inlen = 0;
				continue;
			}
			if (s->discarding)
				continue;
			s->inbuf[s->inlen++] = c;
			if (s->inlen == sizeof(s->inbuf)) {
				/* Too long: answer now (with the id if readable),
				 * then skip the rest of the line. */
				fn(ctx, s->inbuf, s->inlen, true);
				s->discarding = true;
				s->inlen = 0;
			}
		}
		/* Requests are single writes shorter than PIPE_BUF, so they are
		 * never split; a read shorter than the buffer emptied the pipe.
		 * A fragment left now was written without its LF: answer it as
		 * an error instead of gluing it to the next client's request. */
		if ((size_t)n < sizeof(buf)) {
			if (s->inlen && !s->discarding)
				fn(ctx, s->inbuf, s->inlen, false);
			s->inlen = 0;
			s->discarding = false;
			return;
		}
	}
}

int fifo_reply(struct fifo_server *s, const char *line, size_t len)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		ssize_t n = write(s->reply_fd, line, len);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR) {
			attempt--;
			continue;
		}
		if (n < 0 && errno != EAGAIN)
			break;
		/* Full of stale replies nobody read: throw them away. */
		log_warn("reply FIFO full of unread replies: draining it");
		drain(s->reply_fd);
	}
	log_err("cannot write a reply: %s", strerror(errno));
	return -1;
}

static void drop(struct fifo_server *s, size_t i, int prio, const char *why)
{
	log_msg(prio, "watcher %s dropped: %s", s->watchers[i].name, why);
	close(s->watchers[i].fd);
	s->watchers[i] = s->watchers[--s->nwatchers];
}

enum proto_code fifo_watch_add(struct fifo_server *s, const char *name, const char *first,
			       size_t len, char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX + 96];
	struct stat st;
	int fd;

	if (s->nwatchers >= s->max_watchers) {
		snprintf(err, errlen, "too many watchers (%zu)", s->max_watchers);
		return PROTO_BUSY;
	}
	snprintf(path, sizeof(path), "%s/%s/%s", s->dir, LEDD_WATCH_DIR, name);
	fd = open(path, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			snprintf(err, errlen, "no FIFO %s/%s", LEDD_WATCH_DIR, name);
		else if (e == ENXIO)
			snprintf(err, errlen, "nobody reads %s/%s", LEDD_WATCH_DIR, name);
		else if (e == ELOOP)
			snprintf(err, errlen, "%s/%s is a symlink", LEDD_WATCH_DIR, name);
		else
			snprintf(err, errlen, "cannot open %s/%s: %s", LEDD_WATCH_DIR, name, strerror(e));
		if (e == EMFILE || e == ENFILE)
			return PROTO_BUSY;      /* out of descriptors: like too many watchers */
		return (e == ENOENT || e == ENXIO) ? PROTO_NOTFOUND : PROTO_BADARG;
	}
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		snprintf(err, errlen, "%s/%s is not a FIFO", LEDD_WATCH_DIR, name);
		close(fd);
		return PROTO_BADARG;
	}
	if (write(fd, first, len) != (ssize_t)len) {
		snprintf(err, errlen, "cannot write to %s/%s: %s", LEDD_WATCH_DIR, name, strerror(errno));
		close(fd);
		return PROTO_NOTFOUND;
	}
	s->watchers[s->nwatchers].fd = fd;
	snprintf(s->watchers[s->nwatchers].name, sizeof(s->watchers[0].name), "%s", name);
	s->nwatchers++;
	log_debug("watcher %s added (%zu now)", name, s->nwatchers);
	return PROTO_OK;
}

size_t fifo_broadcast(struct fifo_server *s, const char *line, size_t len)
{
	size_t dropped = 0;

	for (size_t i = 0; i < s->nwatchers;) {
		ssize_t n;
		do {
			n = write(s->watchers[i].fd, line, len);
		} while (n < 0 && errno == EINTR);
		if (n == (ssize_t)len) {
			i++;
			continue;
		}
		/* EAGAIN: it stopped reading; EPIPE: it is gone. Either way: drop
		 * (a watcher reconnects by watching again and gets the full state). */
		if (n < 0 && errno == EAGAIN)
			drop(s, i, LOG_WARNING, "its pipe is full (not reading)");
		else
			drop(s, i, LOG_INFO, n < 0 ? strerror(errno) : "short write");
		dropped++;
	}
	return dropped;
}

void fifo_watch_drop_fd(struct fifo_server *s, int fd)
{
	for (size_t i = 0; i < s->nwatchers; i++)
		if (s->watchers[i].fd == fd) {
			drop(s, i, LOG_DEBUG, "reader closed");   /* the normal way out */
			return;
		}
}

void fifo_close(struct fifo_server *s)
{
	while (s->nwatchers)
		drop(s, s->nwatchers - 1, LOG_DEBUG, "ledd stopping");
	free(s->watchers);
	s->watchers = NULL;
	if (s->inotify_fd >= 0)
		close(s->inotify_fd);
	if (s->cmd_fd >= 0)
		close(s->cmd_fd);
	if (s->reply_fd >= 0)
		close(s->reply_fd);
	if (s->pid_fd >= 0)
		close(s->pid_fd);   /* releases the lock */
	s->inotify_fd = s->cmd_fd = s->reply_fd = s->pid_fd = -1;
}

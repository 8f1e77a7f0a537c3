/* fifo.c -- replies and watchers: how ledd writes to its clients
 * (docs/protocol.md, protocol 2).
 *
 * Requests arrive on one command FIFO, ledd.cmd (fifo_read.c). Replies go to
 * a FIFO of the client's own, reply/<id>, named by the request's id: ledd
 * opens it O_WRONLY|O_NONBLOCK|O_NOFOLLOW through openat() on its descriptor
 * of reply/ (so no symlink anywhere in the path is followed) -- unless it is
 * not a FIFO, or is ledd.cmd or a watcher's FIFO (same st_dev/st_ino: a hard
 * link to ledd.cmd would make ledd answer itself for ever) -- writes the
 * reply in one write and closes it. Every reply thus reaches the one client
 * that asked; there is no shared reply pipe, no lock, and nothing stale to
 * drain. A client that has gone (ENXIO: no reader; ENOENT) is dropped
 * silently, and ledd never blocks on one. The reply names are secrets of
 * their clients (128 random bits, in a directory members cannot list), so no
 * member can find another's FIFO to read or forge.
 *
 * A watcher is a client whose WATCH reply FIFO ledd keeps open: events go to
 * it as single non-blocking writes under PIPE_BUF, and a watcher whose pipe
 * is full or whose reader is gone is dropped at once. A FIFO watches once.
 *
 * Clients' mistakes are logged through log_limited(): a flood of them costs
 * a few lines and a count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "fifo.h"
#include "log.h"

/* One write of a whole line, EINTR retried. 0, or -1 with errno (EAGAIN for
 * a short write: the pipe had no room for all of it). */
static int write_line(int fd, const char *line, size_t len)
{
	ssize_t n;

	do {
		n = write(fd, line, len);
	} while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EAGAIN;
	return -1;
}

static int watcher_of(const struct fifo_server *s, const struct stat *st)
{
	for (size_t i = 0; i < s->nwatchers; i++)
		if (s->watchers[i].dev == st->st_dev && s->watchers[i].ino == st->st_ino)
			return (int)i;
	return -1;
}

/* Why a reply target is refused (an errno), or 0: a name that is not a
 * FIFO (EINVAL), ledd.cmd under another name (EDEADLK: ledd would answer
 * itself), a watcher's FIFO (EBUSY). */
static int refusal(const struct fifo_server *s, const struct stat *st)
{
	if (!S_ISFIFO(st->st_mode))
		return EINVAL;
	if (st->st_dev == s->cmd_dev && st->st_ino == s->cmd_ino)
		return EDEADLK;
	if (watcher_of(s, st) >= 0)
		return EBUSY;
	return 0;
}

/* Open reply/<name> for writing, or -1 with errno. A refused target is
 * never opened (looked at first with fstatat) nor written to (looked at
 * again on the descriptor, in case the name changed in between). */
static int open_reply_fifo(struct fifo_server *s, const char *name, struct stat *st)
{
	int fd, e;

	if (s->reply_dir_fd < 0) {
		errno = ENOENT;
		return -1;
	}
	if (fstatat(s->reply_dir_fd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (S_ISLNK(st->st_mode)) {
		errno = ELOOP;
		return -1;
	}
	if ((e = refusal(s, st))) {
		errno = e;
		return -1;
	}
	fd = openat(s->reply_dir_fd, name, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	e = fstat(fd, st) < 0 ? errno : refusal(s, st);
	if (!e)
		return fd;
	close(fd);
	errno = e;
	return -1;
}

static bool client_gone(int e)
{
	return e == ENOENT || e == ENXIO || e == EPIPE;
}

static void log_reply_failure(const char *name, int e)
{
	if (client_gone(e))
		log_debug("reply to %s dropped: the client has gone (%s)", name, strerror(e));
	else if (e == EINVAL || e == ELOOP)     /* ELOOP: O_NOFOLLOW met a symlink */
		log_limited(LOG_WARNING, "reply to %s dropped: %s/%s is not a FIFO", name, LEDD_REPLY_DIR, name);
	else if (e == EDEADLK)
		log_limited(LOG_WARNING, "reply to %s dropped: %s/%s is ledd's own %s", name,
			    LEDD_REPLY_DIR, name, LEDD_CMD_FIFO);
	else if (e == EBUSY)
		log_limited(LOG_WARNING, "reply to %s dropped: that FIFO is a watcher's", name);
	else if (e == EAGAIN)
		log_limited(LOG_WARNING, "reply to %s dropped: its FIFO is full (the client does not read)",
			    name);
	else
		log_limited(LOG_WARNING, "reply to %s dropped: %s", name, strerror(e));
}

void fifo_reply(struct fifo_server *s, const char *name, const char *line, size_t len)
{
	struct stat st;
	int fd = open_reply_fifo(s, name, &st);

	fifo_sweep_maybe(s);
	if (fd < 0) {
		log_reply_failure(name, errno);
		return;
	}
	if (write_line(fd, line, len) < 0)
		log_reply_failure(name, errno);
	close(fd);
}

static void drop(struct fifo_server *s, size_t i, int prio, const char *why)
{
	if (prio == LOG_WARNING)
		log_limited(prio, "watcher %s dropped: %s", s->watchers[i].name, why);
	else
		log_msg(prio, "watcher %s dropped: %s", s->watchers[i].name, why);
	close(s->watchers[i].fd);
	s->watchers[i] = s->watchers[--s->nwatchers];
}

enum proto_code fifo_watch_add(struct fifo_server *s, const char *name, const char *reply,
			       size_t reply_len, const char *first, size_t len, bool *gone,
			       char *err, size_t errlen)
{
	struct stat st;
	int fd;

	*gone = false;
	if (s->nwatchers >= s->max_watchers) {
		set_err(err, errlen, "too many watchers (%zu)", s->max_watchers);
		return PROTO_BUSY;
	}
	fd = open_reply_fifo(s, name, &st);
	if (fd < 0) {
		int e = errno;
		if (client_gone(e)) {
			*gone = true;
			set_err(err, errlen, "the client has gone");
			return PROTO_NOTFOUND;
		}
		if (e == EBUSY) {
			/* Its events go on; a second registration would double them
			 * and let one FIFO take every slot. Nothing is written. */
			*gone = true;
			log_limited(LOG_WARNING, "WATCH from %s refused: that FIFO is watching already", name);
			set_err(err, errlen, "this FIFO is watching already");
			return PROTO_BUSY;
		}
		set_err(err, errlen, "cannot open %s/%s: %s", LEDD_REPLY_DIR, name, strerror(e));
		if (e == EMFILE || e == ENFILE)
			return PROTO_BUSY;      /* out of descriptors: like too many watchers */
		return PROTO_BADARG;
	}
	if (write_line(fd, reply, reply_len) < 0 || write_line(fd, first, len) < 0) {
		log_reply_failure(name, errno);
		close(fd);
		*gone = true;
		set_err(err, errlen, "the client has gone");
		return PROTO_NOTFOUND;
	}
	s->watchers[s->nwatchers] = (struct watcher){ .fd = fd, .dev = st.st_dev, .ino = st.st_ino };
	snprintf(s->watchers[s->nwatchers].name, sizeof(s->watchers[0].name), "%s", name);
	s->nwatchers++;
	log_debug("watcher %s added (%zu now)", name, s->nwatchers);
	return PROTO_OK;
}

size_t fifo_broadcast(struct fifo_server *s, const char *line, size_t len)
{
	size_t dropped = 0;

	for (size_t i = 0; i < s->nwatchers;) {
		if (write_line(s->watchers[i].fd, line, len) == 0) {
			i++;
			continue;
		}
		/* EAGAIN: it stopped reading; EPIPE: it is gone. Either way: drop
		 * (a watcher reconnects by watching again and gets the full state). */
		if (errno == EAGAIN)
			drop(s, i, LOG_WARNING, "its pipe is full (not reading)");
		else
			drop(s, i, LOG_INFO, strerror(errno));
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

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void fifo_close(struct fifo_server *s)
{
	while (s->nwatchers)
		drop(s, s->nwatchers - 1, LOG_DEBUG, "ledd stopping");
	free(s->watchers);
	s->watchers = NULL;
	close_fd(&s->inotify_fd);
	close_fd(&s->cmd_fd);
	close_fd(&s->reply_dir_fd);
	close_fd(&s->dir_fd);
	close_fd(&s->pid_fd);   /* releases the lock */
}

/* fifo.c -- the FIFO server of ledd (docs/protocol.md, protocol 2).
 *
 * Requests arrive on one command FIFO, ledd.cmd, which ledd opens O_RDWR: it
 * is always a writer of its own FIFO, so it never sees EOF when clients come
 * and go. Replies go to a FIFO of the client's own, reply/<id>, named by the
 * request's id: ledd opens it O_WRONLY|O_NONBLOCK|O_NOFOLLOW through openat()
 * on its descriptor of reply/ (so no symlink anywhere in the path is
 * followed), checks that it is a FIFO, writes the reply in one write and
 * closes it. Every reply thus reaches the one client that asked; there is no
 * shared reply pipe, no lock, and nothing stale to drain. A client that has
 * gone (ENXIO: no reader; ENOENT) is dropped silently, and ledd never blocks
 * on one.
 *
 * A watcher is a client whose WATCH reply FIFO ledd keeps open: events go to
 * it as single non-blocking writes under PIPE_BUF, and a watcher whose pipe
 * is full or whose reader is gone is dropped at once.
 *
 * Crashed clients leave their reply FIFOs behind. ledd sweeps those nobody
 * reads at start, and when reply/ has grown past LEDD_REPLY_SWEEP_AT entries
 * (looked at every LEDD_REPLY_CHECK_EVERY requests): traffic drives it, never
 * a timer.
 *
 * The runtime directory is watched with inotify (deletions and renames only,
 * so clients' traffic in reply/ causes no wake-ups): the command FIFO, the
 * pid file or reply/ deleted or replaced under a running ledd is recreated.
 */
#define _GNU_SOURCE
#include <dirent.h>
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

#include "errmsg.h"
#include "fifo.h"
#include "log.h"

#define READS_PER_WAKEUP 16     /* then back to poll, so signals and edges get a turn */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Read and discard whatever is pending on a non-blocking fd. */
static void drain(int fd)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		return;   /* 0: no writer; -1 EAGAIN: empty; other errors: nothing to drain */
	}
}

/* mkdir -p for the runtime directory's parents (0755); the directory itself
 * gets LEDD_RUNTIME_DIR_MODE. 1 if it was created, 0 if it existed, -1. */
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
	if (mkdir(tmp, LEDD_RUNTIME_DIR_MODE) == 0)
		return 1;
	return errno == EEXIST ? 0 : -1;
}

/* A directory ledd works in must be a real directory (no symlink), owned by
 * ledd's user; its mode is set to `mode` (whatever it was). */
static int check_dir(int fd, const char *what, mode_t mode, bool created, ino_t *ino, char *err,
		     size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		set_err(err, errlen, "%s: %s", what, strerror(errno));
		return -1;
	}
	if (st.st_uid != geteuid()) {
		set_err(err, errlen, "%s belongs to uid %u, not to ledd's user (uid %u): refusing it",
			 what, (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if ((st.st_mode & 07777) != mode) {
		if (fchmod(fd, mode) < 0) {
			set_err(err, errlen, "%s has mode %04o and chmod %04o fails: %s", what,
				 (unsigned)(st.st_mode & 07777), (unsigned)mode, strerror(errno));
			return -1;
		}
		if (!created)   /* mkdir's mode was cut by the umask: nothing to tell */
			log_notice("%s had mode %04o: set to %04o", what, (unsigned)(st.st_mode & 07777),
			   (unsigned)mode);
	}
	*ino = st.st_ino;
	return 0;
}

/* Open the runtime directory (refusing a symlink or another user's) and keep
 * its descriptor; everything else is opened relative to it. */
static int open_runtime_dir(struct fifo_server *s, char *err, size_t errlen)
{
	int created = make_runtime_dir(s->dir), fd;
	ino_t ino;

	if (created < 0) {
		set_err(err, errlen, "cannot create runtime directory %s: %s", s->dir, strerror(errno));
		return -1;
	}
	fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP || e == ENOTDIR)
			set_err(err, errlen, "runtime directory %s is a symlink or not a directory: "
				 "refusing it", s->dir);
		else
			set_err(err, errlen, "runtime directory %s: %s", s->dir, strerror(e));
		return -1;
	}
	if (check_dir(fd, s->dir, LEDD_RUNTIME_DIR_MODE, created, &ino, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	if (s->dir_fd >= 0 && ino == s->dir_ino) {
		close(fd);
		return 0;
	}
	/* New (or replaced) directory: everything in it must be made again. */
	close_fd(&s->dir_fd);
	s->dir_fd = fd;
	s->dir_ino = ino;
	s->cmd_ino = s->pid_ino = s->reply_dir_ino = 0;
	return 0;
}

/* Open the pid file, lock it and write our pid into it. */
static int open_pid_file(struct fifo_server *s, char *err, size_t errlen)
{
	char pidbuf[32];
	struct stat st;
	int fd = openat(s->dir_fd, LEDD_PID_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0) {
		set_err(err, errlen, "%s/%s: %s", s->dir, LEDD_PID_FILE, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			ssize_t n = pread(fd, pidbuf, sizeof(pidbuf) - 1, 0);
			pidbuf[n > 0 ? n : 0] = '\0';
			pidbuf[strcspn(pidbuf, "\n")] = '\0';
			set_err(err, errlen, "another ledd (pid %s) is already running on %s",
				 pidbuf[0] ? pidbuf : "?", s->dir);
		} else {
			set_err(err, errlen, "%s/%s: flock: %s", s->dir, LEDD_PID_FILE, strerror(e));
		}
		close(fd);
		return -1;
	}
	int len = snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pidbuf, (size_t)len, 0) != len || fstat(fd, &st) < 0) {
		set_err(err, errlen, "%s/%s: %s", s->dir, LEDD_PID_FILE, strerror(errno));
		close(fd);
		return -1;
	}
	close_fd(&s->pid_fd);
	s->pid_fd = fd;
	s->pid_ino = st.st_ino;
	return 0;
}

int fifo_lock(struct fifo_server *s, const char *dir, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->dir_fd = s->reply_dir_fd = s->cmd_fd = s->pid_fd = s->inotify_fd = -1;
	framer_init(&s->framer);
	if (snprintf(s->dir, sizeof(s->dir), "%s", dir) >= (int)sizeof(s->dir)) {
		set_err(err, errlen, "runtime directory path too long");
		return -1;
	}
	if (open_runtime_dir(s, err, errlen) < 0)
		return -1;
	return open_pid_file(s, err, errlen);
}

/* Remove whatever is at `name` if it is not of the wanted type (S_IFIFO or
 * S_IFDIR): a regular file or a symlink put in place of a FIFO is replaced,
 * not merely complained about. */
static int clear_wrong_type(struct fifo_server *s, const char *name, mode_t type, char *err,
			    size_t errlen)
{
	struct stat st;

	if (fstatat(s->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || (st.st_mode & S_IFMT) == type)
		return 0;
	log_warn("%s/%s is not a %s: replacing it", s->dir, name,
		 type == S_IFIFO ? "FIFO" : "directory");
	if (unlinkat(s->dir_fd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0) {
		set_err(err, errlen, "%s/%s is not a %s and cannot be removed: %s", s->dir, name,
			 type == S_IFIFO ? "FIFO" : "directory", strerror(errno));
		return -1;
	}
	return 0;
}

/* Make sure ledd.cmd is a FIFO we have open: create it if missing, replace
 * what is not a FIFO, reopen it if the name now points to another inode. */
static int ensure_cmd_fifo(struct fifo_server *s, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (fstatat(s->dir_fd, LEDD_CMD_FIFO, &st, AT_SYMLINK_NOFOLLOW) == 0 && s->cmd_fd >= 0 &&
	    st.st_ino == s->cmd_ino)
		return 0;
	if (clear_wrong_type(s, LEDD_CMD_FIFO, S_IFIFO, err, errlen) < 0)
		return -1;
	if (mkfifoat(s->dir_fd, LEDD_CMD_FIFO, LEDD_CMD_FIFO_MODE) < 0 && errno != EEXIST) {
		set_err(err, errlen, "cannot create %s/%s: %s", s->dir, LEDD_CMD_FIFO, strerror(errno));
		return -1;
	}
	fd = openat(s->dir_fd, LEDD_CMD_FIFO, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		set_err(err, errlen, "cannot open %s/%s: %s", s->dir, LEDD_CMD_FIFO, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		set_err(err, errlen, "%s/%s is not a FIFO", s->dir, LEDD_CMD_FIFO);
		close(fd);
		return -1;
	}
	if ((st.st_mode & 07777) != LEDD_CMD_FIFO_MODE && fchmod(fd, LEDD_CMD_FIFO_MODE) < 0)
		log_warn("%s/%s: chmod: %s", s->dir, LEDD_CMD_FIFO, strerror(errno));
	/* Requests written to an earlier ledd that never read them: their
	 * clients were told it stopped (POLLERR), so they must not run now. */
	drain(fd);
	close_fd(&s->cmd_fd);
	s->cmd_fd = fd;
	s->cmd_ino = st.st_ino;
	framer_init(&s->framer);
	return 0;
}

/* Make sure reply/ exists, is ledd's, has its mode, and is open. */
static int ensure_reply_dir(struct fifo_server *s, char *err, size_t errlen)
{
	char what[CONFIG_PATH_MAX + 16];
	struct stat st;
	bool created;
	ino_t ino;
	int fd;

	if (fstatat(s->dir_fd, LEDD_REPLY_DIR, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    s->reply_dir_fd >= 0 && st.st_ino == s->reply_dir_ino)
		return 0;
	snprintf(what, sizeof(what), "%s/%s", s->dir, LEDD_REPLY_DIR);
	/* Retried: something may take the name between our mkdir and open. */
	for (int attempt = 0;; attempt++) {
		if (clear_wrong_type(s, LEDD_REPLY_DIR, S_IFDIR, err, errlen) < 0)
			return -1;
		created = mkdirat(s->dir_fd, LEDD_REPLY_DIR, 0700) == 0;
		if (!created && errno != EEXIST) {
			set_err(err, errlen, "cannot create %s: %s", what, strerror(errno));
			return -1;
		}
		fd = openat(s->dir_fd, LEDD_REPLY_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			break;
		if ((errno != ENOTDIR && errno != ELOOP) || attempt == 2) {
			set_err(err, errlen, "cannot open %s: %s", what, strerror(errno));
			return -1;
		}
	}
	if (check_dir(fd, what, LEDD_REPLY_DIR_MODE, created, &ino, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	close_fd(&s->reply_dir_fd);
	s->reply_dir_fd = fd;
	s->reply_dir_ino = ino;
	return 0;
}

static int ensure_all(struct fifo_server *s, char *err, size_t errlen)
{
	struct stat st;

	if (open_runtime_dir(s, err, errlen) < 0 || ensure_cmd_fifo(s, err, errlen) < 0 ||
	    ensure_reply_dir(s, err, errlen) < 0)
		return -1;
	if ((fstatat(s->dir_fd, LEDD_PID_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_ino != s->pid_ino) &&
	    open_pid_file(s, err, errlen) < 0)
		return -1;
	return 0;
}

static int watch_dir(struct fifo_server *s, char *err, size_t errlen)
{
	if (inotify_add_watch(s->inotify_fd, s->dir,
			      IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
			      IN_ONLYDIR | IN_DONT_FOLLOW) < 0) {
		set_err(err, errlen, "inotify on %s: %s", s->dir, strerror(errno));
		return -1;
	}
	return 0;
}

int fifo_open(struct fifo_server *s, size_t max_watchers, char *err, size_t errlen)
{
	s->max_watchers = max_watchers;
	s->watchers = calloc(LEDD_MAX_WATCHERS_LIMIT, sizeof(*s->watchers));
	if (!s->watchers) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	if (ensure_all(s, err, errlen) < 0)
		return -1;
	fifo_sweep(s);
	s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->inotify_fd < 0) {
		set_err(err, errlen, "inotify_init1: %s", strerror(errno));
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
		if (n < 0 && errno == EAGAIN) {
			framer_idle(&s->framer, fn, ctx);   /* the pipe is empty */
			return;
		}
		if (n <= 0) {
			/* 0 cannot happen (we hold a writer); an error is logged once per wake-up. */
			if (n < 0)
				log_err("reading %s: %s", LEDD_CMD_FIFO, strerror(errno));
			return;
		}
		framer_feed(&s->framer, buf, (size_t)n, fn, ctx);
		/* A read shorter than asked for emptied the pipe. */
		if ((size_t)n < sizeof(buf)) {
			framer_idle(&s->framer, fn, ctx);
			return;
		}
	}
}

/* Open reply/<name> for one write. -1 with errno when it cannot be used;
 * a name that is not a FIFO is refused (EINVAL) without writing to it. */
static int open_reply_fifo(struct fifo_server *s, const char *name)
{
	struct stat st;
	int fd;

	if (s->reply_dir_fd < 0) {
		errno = ENOENT;
		return -1;
	}
	fd = openat(s->reply_dir_fd, name, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

static bool client_gone(int e)
{
	return e == ENOENT || e == ENXIO || e == EPIPE;
}

static void log_reply_failure(const char *name, int e)
{
	if (client_gone(e))
		log_debug("reply to %s dropped: the client has gone (%s)", name, strerror(e));
	else if (e == EINVAL || e == ELOOP)
		log_warn("reply to %s dropped: %s/%s is not a FIFO", name, LEDD_REPLY_DIR, name);
	else if (e == EAGAIN)
		log_warn("reply to %s dropped: its FIFO is full (the client does not read)", name);
	else
		log_warn("reply to %s dropped: %s", name, strerror(e));
}

static void check_reply_dir_size(struct fifo_server *s)
{
	size_t entries = 0;
	DIR *d;
	int fd;

	if (++s->requests < LEDD_REPLY_CHECK_EVERY)
		return;
	s->requests = 0;
	fd = s->reply_dir_fd >= 0 ? openat(s->reply_dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while (readdir(d))
		entries++;
	closedir(d);
	if (entries > LEDD_REPLY_SWEEP_AT + 2)     /* "." and ".." */
		fifo_sweep(s);
}

void fifo_reply(struct fifo_server *s, const char *name, const char *line, size_t len)
{
	int fd = open_reply_fifo(s, name);
	ssize_t n;

	check_reply_dir_size(s);
	if (fd < 0) {
		log_reply_failure(name, errno);
		return;
	}
	do {
		n = write(fd, line, len);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len)
		log_reply_failure(name, n < 0 ? errno : EAGAIN);
	close(fd);
}

void fifo_sweep(struct fifo_server *s)
{
	size_t swept = 0, kept = 0;
	struct dirent *e;
	DIR *d;
	int fd = s->reply_dir_fd >= 0 ? openat(s->reply_dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		struct stat st;
		int probe;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(s->reply_dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISFIFO(st.st_mode)) {
			/* A FIFO with a reader belongs to a live client: keep it. */
			probe = openat(s->reply_dir_fd, e->d_name,
				       O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
			if (probe >= 0) {
				close(probe);
				kept++;
				continue;
			}
			if (errno != ENXIO)
				continue;
		}
		if (unlinkat(s->reply_dir_fd, e->d_name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) == 0)
			swept++;
	}
	closedir(d);
	if (swept)
		log_info("swept %zu leftover reply FIFO%s from %s/%s (%zu in use)", swept,
			 swept == 1 ? "" : "s", s->dir, LEDD_REPLY_DIR, kept);
}

static void drop(struct fifo_server *s, size_t i, int prio, const char *why)
{
	log_msg(prio, "watcher %s dropped: %s", s->watchers[i].name, why);
	close(s->watchers[i].fd);
	s->watchers[i] = s->watchers[--s->nwatchers];
}

enum proto_code fifo_watch_add(struct fifo_server *s, const char *name, const char *reply,
			       size_t reply_len, const char *first, size_t len, bool *gone,
			       char *err, size_t errlen)
{
	int fd;

	*gone = false;
	if (s->nwatchers >= s->max_watchers) {
		set_err(err, errlen, "too many watchers (%zu)", s->max_watchers);
		return PROTO_BUSY;
	}
	fd = open_reply_fifo(s, name);
	if (fd < 0) {
		int e = errno;
		if (client_gone(e)) {
			*gone = true;
			set_err(err, errlen, "the client has gone");
			return PROTO_NOTFOUND;
		}
		set_err(err, errlen, "cannot open %s/%s: %s", LEDD_REPLY_DIR, name, strerror(e));
		if (e == EMFILE || e == ENFILE)
			return PROTO_BUSY;      /* out of descriptors: like too many watchers */
		return PROTO_BADARG;
	}
	if (write(fd, reply, reply_len) != (ssize_t)reply_len || write(fd, first, len) != (ssize_t)len) {
		log_reply_failure(name, errno);
		close(fd);
		*gone = true;
		set_err(err, errlen, "the client has gone");
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
	close_fd(&s->inotify_fd);
	close_fd(&s->cmd_fd);
	close_fd(&s->reply_dir_fd);
	close_fd(&s->dir_fd);
	close_fd(&s->pid_fd);   /* releases the lock */
}

/* fifo_layout.c -- the runtime directory: its names, their owners and modes,
 * and its self-repair (docs/protocol.md, "Trust").
 *
 * ledd's user owns everything here: the directory (0750: the group enters it
 * but can create, rename or remove nothing in it), ledd.cmd (0620: only ledd
 * reads a request), ledd.pid (the lock), and reply/ (03730: a drop box the
 * group may enter and create in but not list). Clients write only in reply/.
 *
 * Each name is checked -- type, owner, mode, and that it is still the inode
 * ledd has open -- at start, whenever inotify reports a change in the
 * directory, and before every batch of requests is read (fifo_check: the
 * two names a request uses, ledd.cmd and reply/, two fstatat()s when all is
 * well; inotify covers the directory itself and the pid file). Whatever stands at a name and is not exactly what ledd
 * made is moved aside and made again, never chmod-ed back: a descriptor
 * someone opened while a wrong mode let them (a reader of ledd.cmd, a lister
 * of reply/) would keep that access. A directory in the way is renamed aside
 * first (ledd owns the parent, so that always works) and then removed as far
 * as ledd may: a member's own 0700 directory inside it may stay, under a
 * LEDD_ASIDE_PREFIX name nobody uses. So ledd always starts and always gets
 * back a working layout, whatever was done to the directory while it was
 * group-writable (an older ledd's 0770) or by its own user.
 *
 * Everything is opened relative to descriptors of the directory and of
 * reply/ (openat, O_NOFOLLOW), so no symlink is ever followed. inotify
 * watches the directory itself, not reply/, so clients' traffic costs no
 * wake-up.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "fifo.h"
#include "log.h"

#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
		    IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Read and discard whatever is pending on a non-blocking fd. */
static void drain(int fd)
{
	char buf[LEDD_READ_CHUNK];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		return;   /* 0: no writer; -1 EAGAIN: empty; other errors: nothing to drain */
	}
}

/* ledd's user, looked up once: the check before every read must stay cheap. */
static uid_t ledd_uid;

/* Exactly what ledd makes: this type, ledd's user, this mode. */
static bool is_ours(const struct stat *st, mode_t type, mode_t mode)
{
	return (st->st_mode & S_IFMT) == type && st->st_uid == ledd_uid &&
	       (st->st_mode & 07777) == mode;
}

/* ... and the very inode ledd holds. */
static bool is_held(const struct stat *st, mode_t type, mode_t mode, int fd, dev_t dev, ino_t ino)
{
	return fd >= 0 && st->st_dev == dev && st->st_ino == ino && is_ours(st, type, mode);
}

static const char *kind(mode_t m)
{
	return S_ISFIFO(m) ? "FIFO" : S_ISDIR(m) ? "directory" : S_ISREG(m) ? "file" :
	       S_ISLNK(m) ? "symlink" : "special file";
}

/* Free `name` for ledd to make again: unlink a non-directory; rename a
 * directory aside, then remove it as far as ledd may. */
static int move_aside(struct fifo_server *s, const char *name, const struct stat *st, char *err,
		      size_t errlen)
{
	char aside[sizeof(LEDD_ASIDE_PREFIX) + 16];
	unsigned char rnd[8];

	log_warn("%s/%s: a %s of uid %u, mode %04o, is not what ledd made: replacing it", s->dir,
		 name, kind(st->st_mode), (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777));
	if (!S_ISDIR(st->st_mode)) {
		if (unlinkat(s->dir_fd, name, 0) == 0 || errno == ENOENT)
			return 0;
		set_err(err, errlen, "%s/%s cannot be removed: %s", s->dir, name, strerror(errno));
		return -1;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		set_err(err, errlen, "getrandom: %s", strerror(errno));
		return -1;
	}
	snprintf(aside, sizeof(aside), "%s%02x%02x%02x%02x%02x%02x%02x%02x", LEDD_ASIDE_PREFIX,
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if (renameat(s->dir_fd, name, s->dir_fd, aside) < 0) {
		set_err(err, errlen, "%s/%s cannot be moved aside: %s", s->dir, name, strerror(errno));
		return -1;
	}
	if (fifo_remove_tree(s->dir_fd, aside, LEDD_SWEEP_MAX_DEPTH) < 0)
		log_warn("%s/%s: what was at %s cannot be removed entirely (%s); it is unused", s->dir,
			 aside, name, strerror(errno));
	return 0;
}

/* Retry the removal of what earlier runs moved aside (at start). */
static void remove_asides(struct fifo_server *s)
{
	static const char prefix[] = LEDD_ASIDE_PREFIX;
	int fd = openat(s->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)))
		if (strncmp(e->d_name, prefix, sizeof(prefix) - 1) == 0)
			fifo_remove_tree(s->dir_fd, e->d_name, LEDD_SWEEP_MAX_DEPTH);
	closedir(d);
}

/* mkdir -p for the runtime directory's parents (0755); the directory itself
 * starts 0700 and gets its mode once ledd has checked it. */
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
	return mkdir(tmp, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* Open the runtime directory (refusing a symlink or another user's: ledd
 * cannot fix that one, and whoever owns it controls everything in it), set
 * its mode, and keep its descriptor; everything else is opened relative to it. */
static int open_runtime_dir(struct fifo_server *s, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (s->dir_fd >= 0 && fstatat(AT_FDCWD, s->dir, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    is_held(&st, S_IFDIR, LEDD_RUNTIME_DIR_MODE, s->dir_fd, s->dir_dev, s->dir_ino))
		return 0;
	if (make_runtime_dir(s->dir) < 0) {
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
	if (fstat(fd, &st) < 0 || st.st_uid != ledd_uid) {
		set_err(err, errlen, "runtime directory %s belongs to uid %u, not to ledd's user "
			 "(uid %u): refusing it", s->dir, (unsigned)st.st_uid, (unsigned)ledd_uid);
		close(fd);
		return -1;
	}
	if ((st.st_mode & 07777) != LEDD_RUNTIME_DIR_MODE) {
		/* The group must not create or rename anything here (an older ledd
		 * made it 0770). An open descriptor of a directory only lists it, and
		 * its names are no secret: a chmod is enough here. */
		if (fchmod(fd, LEDD_RUNTIME_DIR_MODE) < 0) {
			set_err(err, errlen, "runtime directory %s: chmod %04o: %s", s->dir,
				 LEDD_RUNTIME_DIR_MODE, strerror(errno));
			close(fd);
			return -1;
		}
		if ((st.st_mode & 07777) != 0700)    /* 0700: we just made it */
			log_notice("runtime directory %s had mode %04o: set to %04o", s->dir,
				   (unsigned)(st.st_mode & 07777), LEDD_RUNTIME_DIR_MODE);
	}
	if (s->dir_fd >= 0 && st.st_dev == s->dir_dev && st.st_ino == s->dir_ino) {
		close(fd);
		return 0;
	}
	/* New (or replaced) directory: everything in it must be made again. */
	close_fd(&s->dir_fd);
	s->dir_fd = fd;
	s->dir_dev = st.st_dev;
	s->dir_ino = st.st_ino;
	s->cmd_ino = s->pid_ino = s->reply_dir_ino = 0;
	return 0;
}

/* Open the pid file, lock it and write our pid into it. Another user's file
 * (or anything but a regular file) is replaced: a member must not be able to
 * hold a lock that keeps ledd from starting. */
static int open_pid_file(struct fifo_server *s, char *err, size_t errlen)
{
	char pidbuf[32];
	struct stat st;
	int fd;

	if (fstatat(s->dir_fd, LEDD_PID_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (!S_ISREG(st.st_mode) || st.st_uid != ledd_uid) &&
	    move_aside(s, LEDD_PID_FILE, &st, err, errlen) < 0)
		return -1;
	fd = openat(s->dir_fd, LEDD_PID_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
		    LEDD_PID_FILE_MODE);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != ledd_uid) {
		set_err(err, errlen, "%s/%s: %s", s->dir, LEDD_PID_FILE,
			 fd < 0 ? strerror(errno) : "not ledd's own file");
		if (fd >= 0)
			close(fd);
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
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pidbuf, (size_t)len, 0) != len ||
	    ((st.st_mode & 07777) != LEDD_PID_FILE_MODE && fchmod(fd, LEDD_PID_FILE_MODE) < 0)) {
		set_err(err, errlen, "%s/%s: %s", s->dir, LEDD_PID_FILE, strerror(errno));
		close(fd);
		return -1;
	}
	close_fd(&s->pid_fd);
	s->pid_fd = fd;
	s->pid_dev = st.st_dev;
	s->pid_ino = st.st_ino;
	return 0;
}

int fifo_lock(struct fifo_server *s, const char *dir, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	ledd_uid = geteuid();
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

/* ledd.cmd: ledd's own FIFO, 0620. One that ledd's user left (a previous
 * run) is kept, so clients holding it open keep working across a restart;
 * anything else is replaced. */
static int ensure_cmd_fifo(struct fifo_server *s, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (fstatat(s->dir_fd, LEDD_CMD_FIFO, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (is_held(&st, S_IFIFO, LEDD_CMD_FIFO_MODE, s->cmd_fd, s->cmd_dev, s->cmd_ino))
			return 0;
		if (!is_ours(&st, S_IFIFO, LEDD_CMD_FIFO_MODE) &&
		    move_aside(s, LEDD_CMD_FIFO, &st, err, errlen) < 0)
			return -1;
	}
	/* 0600 first: the group never gets more than its write bit. */
	if (mkfifoat(s->dir_fd, LEDD_CMD_FIFO, 0600) < 0 && errno != EEXIST) {
		set_err(err, errlen, "cannot create %s/%s: %s", s->dir, LEDD_CMD_FIFO, strerror(errno));
		return -1;
	}
	fd = openat(s->dir_fd, LEDD_CMD_FIFO, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		set_err(err, errlen, "cannot open %s/%s: %s", s->dir, LEDD_CMD_FIFO, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) || st.st_uid != ledd_uid ||
	    ((st.st_mode & 07777) != LEDD_CMD_FIFO_MODE && fchmod(fd, LEDD_CMD_FIFO_MODE) < 0)) {
		set_err(err, errlen, "%s/%s is not ledd's FIFO", s->dir, LEDD_CMD_FIFO);
		close(fd);
		return -1;
	}
	/* Requests written to an earlier ledd that never read them: their
	 * clients were told it stopped (POLLERR), so they must not run now. */
	drain(fd);
	close_fd(&s->cmd_fd);
	s->cmd_fd = fd;
	s->cmd_dev = st.st_dev;
	s->cmd_ino = st.st_ino;
	framer_init(&s->framer);
	return 0;
}

/* reply/: ledd's own directory, 03730, made afresh unless it is exactly that. */
static int ensure_reply_dir(struct fifo_server *s, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (fstatat(s->dir_fd, LEDD_REPLY_DIR, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (is_held(&st, S_IFDIR, LEDD_REPLY_DIR_MODE, s->reply_dir_fd, s->reply_dir_dev,
			    s->reply_dir_ino))
			return 0;
		if (!is_ours(&st, S_IFDIR, LEDD_REPLY_DIR_MODE) &&
		    move_aside(s, LEDD_REPLY_DIR, &st, err, errlen) < 0)
			return -1;
	}
	/* 0700 first: nobody gets in before the mode is right. */
	if (mkdirat(s->dir_fd, LEDD_REPLY_DIR, 0700) < 0 && errno != EEXIST) {
		set_err(err, errlen, "cannot create %s/%s: %s", s->dir, LEDD_REPLY_DIR, strerror(errno));
		return -1;
	}
	fd = openat(s->dir_fd, LEDD_REPLY_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		set_err(err, errlen, "cannot open %s/%s: %s", s->dir, LEDD_REPLY_DIR, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* A fchmod refused by a seccomp filter that forbids setgid (systemd's
	 * RestrictSUIDSGID=) fails here: the unit must not set it. */
	if (st.st_uid != ledd_uid ||
	    ((st.st_mode & 07777) != LEDD_REPLY_DIR_MODE && fchmod(fd, LEDD_REPLY_DIR_MODE) < 0)) {
		set_err(err, errlen, "cannot make %s/%s ledd's drop box: %s", s->dir, LEDD_REPLY_DIR,
			 st.st_uid != ledd_uid ? "it is not ledd's" : strerror(errno));
		close(fd);
		return -1;
	}
	close_fd(&s->reply_dir_fd);
	s->reply_dir_fd = fd;
	s->reply_dir_dev = st.st_dev;
	s->reply_dir_ino = st.st_ino;
	return 0;
}

static int ensure_all(struct fifo_server *s, char *err, size_t errlen)
{
	struct stat st;

	if (open_runtime_dir(s, err, errlen) < 0 || ensure_cmd_fifo(s, err, errlen) < 0 ||
	    ensure_reply_dir(s, err, errlen) < 0)
		return -1;
	if (fstatat(s->dir_fd, LEDD_PID_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_dev == s->pid_dev && st.st_ino == s->pid_ino && is_ours(&st, S_IFREG, LEDD_PID_FILE_MODE))
		return 0;
	return open_pid_file(s, err, errlen);
}

static int watch_dir(struct fifo_server *s, char *err, size_t errlen)
{
	if (inotify_add_watch(s->inotify_fd, s->dir, WATCH_MASK) < 0) {
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
	remove_asides(s);
	fifo_sweep(s);
	s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->inotify_fd < 0) {
		set_err(err, errlen, "inotify_init1: %s", strerror(errno));
		return -1;
	}
	return watch_dir(s, err, errlen);
}

/* Is `name` the inode ledd holds, with ledd's owner and mode? */
static bool intact(int dirfd, const char *name, mode_t type, mode_t mode, int fd, dev_t dev,
		   ino_t ino)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && is_held(&st, type, mode, fd, dev, ino);
}

static void repair(struct fifo_server *s)
{
	char err[LEDD_ERR_MAX];

	if (ensure_all(s, err, sizeof(err)) < 0)
		log_limited(LOG_ERR, "cannot restore the runtime directory: %s", err);
	else
		log_notice("runtime directory %s restored", s->dir);
}

/* Everything: on inotify. */
static void check_all(struct fifo_server *s)
{
	if (!intact(AT_FDCWD, s->dir, S_IFDIR, LEDD_RUNTIME_DIR_MODE, s->dir_fd, s->dir_dev, s->dir_ino) ||
	    !intact(s->dir_fd, LEDD_PID_FILE, S_IFREG, LEDD_PID_FILE_MODE, s->pid_fd, s->pid_dev, s->pid_ino))
		repair(s);
	else
		fifo_check(s);
}

/* What a request uses, before it is read: ledd.cmd and reply/ (two fstatat()s). */
void fifo_check(struct fifo_server *s)
{
	if (!intact(s->dir_fd, LEDD_CMD_FIFO, S_IFIFO, LEDD_CMD_FIFO_MODE, s->cmd_fd, s->cmd_dev, s->cmd_ino) ||
	    !intact(s->dir_fd, LEDD_REPLY_DIR, S_IFDIR, LEDD_REPLY_DIR_MODE, s->reply_dir_fd,
		    s->reply_dir_dev, s->reply_dir_ino))
		repair(s);
}

void fifo_handle_inotify(struct fifo_server *s)
{
	char buf[LEDD_READ_CHUNK] __attribute__((aligned(__alignof__(struct inotify_event))));
	char err[LEDD_ERR_MAX];
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
	check_all(s);
	if (rewatch && watch_dir(s, err, sizeof(err)) < 0)   /* the directory itself was replaced */
		log_limited(LOG_ERR, "%s", err);
}

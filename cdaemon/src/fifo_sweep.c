/* fifo_sweep.c -- what is left in reply/ and nobody uses.
 *
 * A crashed client leaves its reply FIFO; a member may drop anything in the
 * drop box (files, symlinks, directories full of files). ledd removes every
 * entry of reply/ that is not a FIFO with a reader: at start, and when reply/
 * has grown LEDD_REPLY_SWEEP_AT entries past what the last sweep had to
 * leave (counted every LEDD_REPLY_CHECK_EVERY requests). Client traffic
 * drives it, never a timer. A directory is emptied down to
 * LEDD_SWEEP_MAX_DEPTH levels; what ledd may not remove (a member's 0500
 * directory holding files) stays, and is remembered, so the next sweep waits
 * for new entries instead of running on every check.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fifo.h"
#include "log.h"

int fifo_remove_tree(int dirfd, const char *name, int depth)
{
	struct dirent *e;
	DIR *d;
	int fd;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR)
		return -1;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
		return 0;
	if ((errno != ENOTEMPTY && errno != EEXIST) || depth <= 0)
		return -1;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			fifo_remove_tree(fd, e->d_name, depth - 1);
	closedir(d);
	return unlinkat(dirfd, name, AT_REMOVEDIR);
}

static DIR *open_reply_listing(struct fifo_server *s)
{
	int fd = s->reply_dir_fd >= 0 ? openat(s->reply_dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	DIR *d;

	if (fd < 0)
		return NULL;
	if (!(d = fdopendir(fd)))
		close(fd);
	return d;
}

void fifo_sweep_maybe(struct fifo_server *s)
{
	size_t entries = 0;
	DIR *d;

	if (++s->requests < LEDD_REPLY_CHECK_EVERY)
		return;
	s->requests = 0;
	if (!(d = open_reply_listing(s)))
		return;
	while (readdir(d))
		entries++;
	closedir(d);
	if (entries > s->sweep_left + LEDD_REPLY_SWEEP_AT + 2)     /* "." and ".." */
		fifo_sweep(s);
}

void fifo_sweep(struct fifo_server *s)
{
	size_t swept = 0, kept = 0, stuck = 0;
	struct dirent *e;
	DIR *d = open_reply_listing(s);

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;
		int probe;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(s->reply_dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISFIFO(st.st_mode) && !(st.st_dev == s->cmd_dev && st.st_ino == s->cmd_ino)) {
			/* A FIFO with a reader belongs to a live client: keep it (not
			 * ledd.cmd linked here: ledd reads that one, and it is junk). */
			probe = openat(s->reply_dir_fd, e->d_name,
				       O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
			if (probe >= 0) {
				close(probe);
				kept++;
				continue;
			}
			if (errno != ENXIO) {
				stuck++;
				continue;
			}
		}
		if (fifo_remove_tree(s->reply_dir_fd, e->d_name, LEDD_SWEEP_MAX_DEPTH) == 0)
			swept++;
		else
			stuck++;
	}
	closedir(d);
	s->sweep_left = kept + stuck;
	if (swept)
		log_info("swept %zu leftover%s from %s/%s (%zu in use)", swept, swept == 1 ? "" : "s",
			 s->dir, LEDD_REPLY_DIR, kept);
	if (stuck)
		log_limited(LOG_WARNING, "%s/%s: %zu entr%s that ledd may not remove (left alone)", s->dir,
			    LEDD_REPLY_DIR, stuck, stuck == 1 ? "y" : "ies");
}

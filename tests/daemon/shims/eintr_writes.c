/* eintr_writes.c -- LD_PRELOAD shim for test_watchers.py: the first attempt
 * of every write() to a FIFO fails with EINTR, as a signal arriving at that
 * moment can make it. Every write must be retried, not taken for a client
 * that has gone. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t count)
{
	static ssize_t (*real_write)(int, const void *, size_t);
	static __thread int interrupted = -1;
	struct stat st;

	if (!real_write)
		real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (interrupted != fd && fd > 2 && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
		interrupted = fd;
		errno = EINTR;
		return -1;
	}
	interrupted = -1;
	return real_write(fd, buf, count);
}

/* eof_after_eintr.c -- LD_PRELOAD shim for test_faults.py: the first read of a
 * FIFO fails with EINTR, then reads of that descriptor return EOF (0) for
 * EOF_AFTER_EINTR_MS milliseconds, the order a signal and a vanished writer
 * can produce. A loop that tests errno after read() returned 0 sees the stale
 * EINTR and spins for that whole time; a correct one stops at the first 0. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ssize_t read(int fd, void *buf, size_t count)
{
	static ssize_t (*real_read)(int, void *, size_t);
	static int victim = -1;
	static long long until;
	struct stat st;

	if (!real_read)
		real_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	if (victim == -1 && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
		const char *ms = getenv("EOF_AFTER_EINTR_MS");
		victim = fd;
		until = now_ms() + (ms ? atoll(ms) : 0);
		errno = EINTR;
		return -1;
	}
	if (fd == victim && now_ms() < until)
		return 0;   /* errno stays EINTR */
	return real_read(fd, buf, count);
}

/* save_order.c -- LD_PRELOAD shim for test_state.py: logs, in order, each
 * rename() onto $SAVE_ORDER_STATE (the state file saved) and each write()
 * of an event line (watchers told) into $SAVE_ORDER_LOG, one word a line:
 * "saved" or "told". An edge must be saved before it is told. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t (*real_write)(int, const void *, size_t);

static void note(const char *word)
{
	const char *path = getenv("SAVE_ORDER_LOG");
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;

	if (fd < 0)
		return;
	real_write(fd, word, strlen(word));
	close(fd);
}

ssize_t write(int fd, const void *buf, size_t count)
{
	if (!real_write)
		real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (count > 12 && memcmp(buf, "event state ", 12) == 0)
		note("told\n");
	return real_write(fd, buf, count);
}

int rename(const char *from, const char *to)
{
	static int (*real_rename)(const char *, const char *);
	const char *state = getenv("SAVE_ORDER_STATE");
	int rc;

	if (!real_rename)
		real_rename = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
	if (!real_write)
		real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	rc = real_rename(from, to);
	if (rc == 0 && state && strcmp(to, state) == 0)
		note("saved\n");
	return rc;
}

/* notify.c -- sd_notify(3) by hand: one datagram to the AF_UNIX socket named
 * by $NOTIFY_SOCKET. A leading '@' means the Linux abstract namespace (sun_path
 * starts with NUL). The address length is offsetof(sun_path) + the name's
 * length: with sizeof(struct sockaddr_un) an abstract name would carry
 * trailing NULs and name a different socket. The send never blocks: a
 * notify socket that is not read (a test harness, a hung manager) must not
 * stall the daemon; a lost STATUS= is harmless. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

int notify_send(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char msg[512];
	size_t plen;
	socklen_t alen;
	va_list ap;
	int fd, rc;

	if (!path || !*path)
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen > sizeof(addr.sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(addr.sun_path, path, plen);
	if (path[0] == '@')
		addr.sun_path[0] = '\0';
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	do {
		rc = (int)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&addr, alen);
	} while (rc < 0 && errno == EINTR);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc < 0 ? -1 : 0;
}

uint64_t notify_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	char *end;
	uint64_t v;

	if (!usec || !*usec)
		return 0;
	if (pid && *pid) {
		unsigned long long p = strtoull(pid, &end, 10);
		if (*end || p != (unsigned long long)getpid())
			return 0;
	}
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno || *end || v == 0)
		return 0;
	return v;
}

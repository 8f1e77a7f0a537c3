/* log.c -- one line per message on stderr, "<N>" syslog level first.
 * Debug lines only with -v. Each line is one write() so lines from a
 * dying process never interleave half-way. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int verbose;

void log_set_verbose(int v)
{
	verbose = v;
}

static void vlog(int prio, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	if (prio >= LOG_DEBUG && !verbose)
		return;
	n = snprintf(line, sizeof(line), "<%d>", prio);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	while (write(STDERR_FILENO, line, (size_t)n) < 0 && errno == EINTR)
		;
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(prio, fmt, ap);
	va_end(ap);
	errno = saved;
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

void die_perror(const char *what)
{
	die("%s: %s", what, strerror(errno));
}

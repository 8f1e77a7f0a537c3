/* log.c -- one line per message on stderr, "<N>" syslog level first.
 * Debug lines only with -v. Each line is one write() so lines from a
 * dying process never interleave half-way.
 *
 * Clients' mistakes go through log_limited(): any group member can make them
 * as fast as it can write, and the journal must not pay for that. The first
 * LEDD_LOG_CLIENT_BURST of a period are logged, the rest only counted; when
 * the period ends (main.c's poll timeout includes log_limited_due(), so an
 * idle ledd still never wakes up) one line tells how many were left out. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "defaults.h"
#include "log.h"

static int verbose;

static struct {
	uint64_t period_end_ns;
	unsigned int logged;            /* in this period */
	unsigned long left_out;
} limit;

void log_set_verbose(int v)
{
	verbose = v;
}

static void vlog(int prio, const char *fmt, va_list ap)
{
	char line[LEDD_LOG_LINE_MAX];
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

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void log_limited_flush(void)
{
	if (limit.left_out && now_ns() >= limit.period_end_ns) {
		log_msg(LOG_NOTICE, "%lu more client error%s in the last %d s, not logged", limit.left_out,
			limit.left_out == 1 ? "" : "s", LEDD_LOG_CLIENT_PERIOD_MS / 1000);
		limit.left_out = 0;
	}
}

uint64_t log_limited_due(void)
{
	return limit.left_out ? limit.period_end_ns : 0;
}

void log_limited(int prio, const char *fmt, ...)
{
	uint64_t now = now_ns();
	va_list ap;
	int saved = errno;

	if (now >= limit.period_end_ns) {
		log_limited_flush();
		limit.period_end_ns = now + (uint64_t)LEDD_LOG_CLIENT_PERIOD_MS * 1000000u;
		limit.logged = 0;
	}
	if (limit.logged < LEDD_LOG_CLIENT_BURST) {
		limit.logged++;
		va_start(ap, fmt);
		vlog(prio, fmt, ap);
		va_end(ap);
	} else {
		limit.left_out++;
	}
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

/* fifo_echo.c -- the yardstick for ledd's FIFO round trip (bench/daemon.py).
 *
 *   fifo_echo serve DIR PAYLOAD_BYTES   a bare echo server on DIR/ledd.cmd and
 *                                       DIR/ledd.reply: answers each request line
 *                                       "<id> ..." with "<id> OK <payload>\n"
 *   fifo_echo client DIR N LINE...      a persistent client: opens both FIFOs
 *                                       once, takes the reply lock once, then does
 *                                       N exchanges of "<id> LINE" and prints
 *                                       "rtt_ns p50 p90 p99 mean"
 *
 * The client follows docs/protocol.md's locking rule exactly as a real client
 * does (flock on the reply FIFO, one write per request, skip lines with other
 * ids), so pointing it at ledd or at `fifo_echo serve` measures the same
 * exchange; the difference is what ledd spends on a request. The server does
 * what ledd's loop does at the minimum: poll, read, split lines, one write per
 * reply. No error recovery: a benchmark helper stops at the first failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static _Noreturn void die(const char *what)
{
	perror(what);
	exit(1);
}

static int open_in(const char *dir, const char *name, int flags)
{
	char path[1024];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		die(path);
	return fd;
}

static _Noreturn void serve(const char *dir, size_t payload_len)
{
	char path[1024], buf[65536], out[LINE_MAX_BYTES + 64], payload[LINE_MAX_BYTES];
	size_t have = 0;
	int cmd, reply;

	if (payload_len >= sizeof(payload) - 64)
		payload_len = sizeof(payload) - 64;
	memset(payload, 'x', payload_len);
	payload[payload_len] = '\0';
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, i ? "ledd.reply" : "ledd.cmd");
		if (mkfifo(path, 0660) < 0 && errno != EEXIST)
			die(path);
	}
	cmd = open_in(dir, "ledd.cmd", O_RDWR);
	reply = open_in(dir, "ledd.reply", O_RDWR | O_NONBLOCK);
	for (;;) {
		struct pollfd p = { .fd = cmd, .events = POLLIN };
		ssize_t n;
		char *start, *nl;

		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		n = read(cmd, buf + have, sizeof(buf) - have);
		if (n <= 0)
			die("read");
		have += (size_t)n;
		start = buf;
		while ((nl = memchr(start, '\n', have - (size_t)(start - buf)))) {
			char *space = memchr(start, ' ', (size_t)(nl - start));
			int idlen = (int)((space ? space : nl) - start);
			int len = snprintf(out, sizeof(out), "%.*s OK %s\n", idlen, start, payload);

			if (write(reply, out, (size_t)len) != len)
				die("write");
			start = nl + 1;
		}
		have -= (size_t)(start - buf);
		memmove(buf, start, have);
	}
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* One exchange: write the request, read lines until ours. */
static void exchange(int cmd, int reply, const char *line, unsigned long seq)
{
	static char buf[65536];
	static size_t have;
	char req[512], want[64];
	int len = snprintf(req, sizeof(req), "b%lu %s\n", seq, line);
	int wantlen = snprintf(want, sizeof(want), "b%lu ", seq);

	if (write(cmd, req, (size_t)len) != len)
		die("write request");
	for (;;) {
		char *nl;

		while ((nl = memchr(buf, '\n', have))) {
			size_t linelen = (size_t)(nl - buf) + 1;
			int mine = linelen > (size_t)wantlen && memcmp(buf, want, (size_t)wantlen) == 0;

			if (mine && memcmp(buf + wantlen, "OK ", 3) != 0) {
				fprintf(stderr, "error reply: %.*s", (int)linelen, buf);
				exit(1);
			}
			have -= linelen;
			memmove(buf, buf + linelen, have);
			if (mine)
				return;
		}
		struct pollfd p = { .fd = reply, .events = POLLIN };
		if (poll(&p, 1, 5000) <= 0) {
			fprintf(stderr, "no reply within 5 s\n");
			exit(1);
		}
		ssize_t n = read(reply, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			die("read reply");
		have += (size_t)n;
	}
}

static int client(const char *dir, unsigned long count, const char *line)
{
	long long *rtt = calloc(count, sizeof(*rtt)), total = 0;
	int reply = open_in(dir, "ledd.reply", O_RDONLY | O_NONBLOCK);
	int cmd;

	if (!rtt)
		die("calloc");
	if (flock(reply, LOCK_EX) < 0)
		die("flock");
	cmd = open_in(dir, "ledd.cmd", O_WRONLY | O_NONBLOCK);
	for (unsigned long i = 0; i < count / 10 + 1; i++)     /* warm up */
		exchange(cmd, reply, line, 1000000000UL + i);
	for (unsigned long i = 0; i < count; i++) {
		long long t0 = now_ns();
		exchange(cmd, reply, line, i);
		rtt[i] = now_ns() - t0;
		total += rtt[i];
	}
	qsort(rtt, count, sizeof(*rtt), cmp_ll);
	printf("rtt_ns %lld %lld %lld %lld\n", rtt[count / 2], rtt[count * 9 / 10], rtt[count * 99 / 100],
	       total / (long long)count);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "serve") == 0)
		serve(argv[2], strtoul(argv[3], NULL, 10));
	if (argc >= 5 && strcmp(argv[1], "client") == 0) {
		char line[256] = "";
		unsigned long count = strtoul(argv[3], NULL, 10);

		for (int i = 4; i < argc; i++) {
			strncat(line, argv[i], sizeof(line) - strlen(line) - 2);
			if (i + 1 < argc)
				strcat(line, " ");
		}
		if (count == 0)
			count = 1;
		return client(argv[2], count, line);
	}
	fprintf(stderr, "usage: fifo_echo serve DIR PAYLOAD_BYTES | fifo_echo client DIR N LINE...\n");
	return 2;
}

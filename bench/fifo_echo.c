/* fifo_echo.c -- the yardstick for ledd's FIFO round trip (bench/daemon.py).
 *
 *   fifo_echo serve DIR PAYLOAD_BYTES   a bare echo server on DIR/ledd.cmd: answers
 *                                       each request line "<id> ..." with
 *                                       "<id> OK <payload>\n" into DIR/reply/<id>
 *   fifo_echo client DIR N LINE...      a persistent client: makes its reply FIFO
 *                                       and opens ledd.cmd once, then does N
 *                                       exchanges of "<id> LINE" and prints
 *                                       "rtt_ns p50 p90 p99 mean"
 *
 * Both follow docs/protocol.md (version 2) exactly as real peers do: the
 * client writes "\n<id> LINE\n" in one write and waits on its own FIFO (and
 * for POLLERR on ledd.cmd); the server opens reply/<id> with openat() on its
 * descriptor of reply/ (O_WRONLY|O_NONBLOCK|O_NOFOLLOW), checks it is a FIFO,
 * writes once and closes, which is the least any protocol 2 server does per
 * reply. So pointing the client at ledd or at `fifo_echo serve` measures the
 * same exchange; the difference is what ledd spends on a request. No error
 * recovery: a benchmark helper stops at the first failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	int cmd, replies;

	if (payload_len >= sizeof(payload) - 64)
		payload_len = sizeof(payload) - 64;
	memset(payload, 'x', payload_len);
	payload[payload_len] = '\0';
	snprintf(path, sizeof(path), "%s/ledd.cmd", dir);
	if (mkfifo(path, 0620) < 0 && errno != EEXIST)
		die(path);
	cmd = open_in(dir, "ledd.cmd", O_RDWR);
	snprintf(path, sizeof(path), "%s/reply", dir);
	if (mkdir(path, 0770) < 0 && errno != EEXIST)
		die(path);
	replies = open_in(dir, "reply", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
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
			char id[128];
			struct stat st;
			int fd, len;

			if (idlen == 0 || idlen >= (int)sizeof(id)) {  /* the separator LF */
				start = nl + 1;
				continue;
			}
			memcpy(id, start, (size_t)idlen);
			id[idlen] = '\0';
			len = snprintf(out, sizeof(out), "%s OK %s\n", id, payload);
			fd = openat(replies, id, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0 || fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) ||
			    write(fd, out, (size_t)len) != len)
				die("reply");
			close(fd);
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

/* One exchange: write the request, read the one line that answers it. */
static void exchange(int cmd, int reply, const char *id, const char *line)
{
	static char buf[65536];
	size_t have = 0;
	char req[512];
	int len = snprintf(req, sizeof(req), "\n%s %s\n", id, line);
	size_t idlen = strlen(id);

	if (write(cmd, req, (size_t)len) != len)
		die("write request");
	for (;;) {
		struct pollfd p[2] = { { .fd = reply, .events = POLLIN }, { .fd = cmd, .events = 0 } };
		char *nl;

		if (poll(p, 2, 5000) <= 0) {
			fprintf(stderr, "no reply within 5 s\n");
			exit(1);
		}
		if (!(p[0].revents & POLLIN) && (p[1].revents & POLLERR)) {
			fprintf(stderr, "the server has gone\n");
			exit(1);
		}
		ssize_t n = read(reply, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			die("read reply");
		have += (size_t)n;
		if ((nl = memchr(buf, '\n', have))) {
			if (memcmp(buf, id, idlen) != 0 || memcmp(buf + idlen, " OK ", 4) != 0) {
				fprintf(stderr, "unexpected reply: %.*s\n", (int)(nl - buf), buf);
				exit(1);
			}
			return;
		}
	}
}

static int client(const char *dir, unsigned long count, const char *line)
{
	long long *rtt = calloc(count, sizeof(*rtt)), total = 0;
	char id[64], path[1024];
	int reply, cmd;

	if (!rtt)
		die("calloc");
	snprintf(id, sizeof(id), "bench-%ld", (long)getpid());
	snprintf(path, sizeof(path), "%s/reply/%s", dir, id);
	if (mkfifo(path, 0600) < 0 || chmod(path, 0620) < 0)
		die(path);
	reply = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (reply < 0)
		die(path);
	cmd = open_in(dir, "ledd.cmd", O_WRONLY | O_NONBLOCK);
	for (unsigned long i = 0; i < count / 10 + 1; i++)     /* warm up */
		exchange(cmd, reply, id, line);
	for (unsigned long i = 0; i < count; i++) {
		long long t0 = now_ns();
		exchange(cmd, reply, id, line);
		rtt[i] = now_ns() - t0;
		total += rtt[i];
	}
	unlink(path);
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

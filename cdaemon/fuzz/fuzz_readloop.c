/* fuzz_readloop.c -- libFuzzer harness for fifo_read_commands()
 * (cdaemon/src/fifo_read.c): ledd's real read loop, over a real pipe, with
 * framing.c under it.
 *
 * fuzz_framing.c feeds framing.c reads of sizes it picks, and tells it when
 * the pipe is empty. Here the read loop does both itself, as in ledd: it
 * reads 4,096 bytes at a time and decides from short reads and EAGAIN when
 * the pipe ran empty. The input is a list of writes:
 *
 *   [flags] [length: 2 bytes, up to 8,191] [bytes...]  ...
 *
 * flags bit 0: the pipe runs empty after this write (the loop is called then,
 * as poll() would wake ledd); bit 1: pad the write in front with LFs so that
 * everything pending at the next empty moment fills whole 4,096-byte reads --
 * the case where only EAGAIN tells the loop the pipe is empty (defect 1 of
 * issue 9: a fragment at the end of such a read was kept and glued to the
 * next request). The last write always ends with the pipe empty.
 *
 * Checks, on every input: each line the loop hands on passes the collector's
 * checks (framing_model.h), and the lines are exactly those of the
 * byte-at-a-time model of docs/protocol.md's framing rules with the pipe
 * empty at the same moments.
 *
 * Build: make -C cdaemon/fuzz (clang -fsanitize=fuzzer,address,undefined).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fifo.h"
#include "framing_model.h"

#define MAX_WRITES 64

static char stream[MAX_STREAM];
static bool idle_after[MAX_STREAM + 1];
static size_t slen;

static void put(const void *p, size_t n)
{
	if (slen + n > MAX_STREAM)
		n = MAX_STREAM - slen;
	memcpy(stream + slen, p, n);
	slen += n;
}

/* Everything written since the last empty moment: what the loop will read. */
static size_t pending_since_idle(void)
{
	size_t i = slen;

	while (i > 0 && !idle_after[i])
		i--;
	return slen - i;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		CHECK(k > 0);   /* the stream (<= MAX_STREAM) always fits in the pipe */
		p += k;
		n -= (size_t)k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lines got, want;
	static struct fifo_server s;
	int p[2];
	size_t pos = 0, written = 0;

	memset(idle_after, 0, sizeof(idle_after));
	slen = 0;
	for (int w = 0; w < MAX_WRITES && pos + 3 <= size; w++) {
		uint8_t flags = data[pos];
		size_t len = data[pos + 1] | ((size_t)(data[pos + 2] & 0x1f) << 8);
		pos += 3;
		if (len > size - pos)
			len = size - pos;
		if (flags & 2) {
			size_t fill = (LEDD_READ_CHUNK - (pending_since_idle() + len) % LEDD_READ_CHUNK) %
				      LEDD_READ_CHUNK;
			for (size_t i = 0; i < fill; i++)
				put("\n", 1);
		}
		put(data + pos, len);
		pos += len;
		idle_after[slen] = flags & 1;
	}
	idle_after[slen] = true;   /* in the end the pipe is empty */

	CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
	CHECK(fcntl(p[0], F_SETPIPE_SZ, MAX_STREAM * 2) >= MAX_STREAM);
	memset(&s, 0, sizeof(s));
	s.cmd_fd = p[0];
	framer_init(&s.framer);
	got.n = 0;
	/* Write up to each empty moment, then let the loop read, as ledd would on
	 * a POLLIN; it must leave the pipe empty. */
	for (size_t i = 1; i <= slen; i++) {
		if (!idle_after[i])
			continue;
		write_all(p[1], stream + written, i - written);
		written = i;
		fifo_read_commands(&s, collect, &got);
		int left = -1;
		CHECK(ioctl(p[0], FIONREAD, &left) == 0 && left == 0);
	}
	close(p[0]);
	close(p[1]);

	want.n = 0;
	model(stream, slen, idle_after, &want);
	if (getenv("FRAMING_DEBUG"))
		for (size_t i = 0; i < got.n; i++)
			fprintf(stderr, "line %zu (%zu, %d): %.*s\n", i, got.l[i].len, got.l[i].complete,
				(int)got.l[i].len, got.l[i].text);
	check_same(&got, &want);
	return 0;
}

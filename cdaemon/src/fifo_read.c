/* fifo_read.c -- the command FIFO's read loop: bytes out of ledd.cmd, lines
 * out of framing.c.
 *
 * ledd holds ledd.cmd O_RDWR|O_NONBLOCK, so a read never sees EOF and never
 * blocks. Reads of LEDD_READ_CHUNK bytes go on until the pipe is empty, at
 * most LEDD_READS_PER_WAKEUP of them (then back to poll, so signals and
 * button edges get a turn). The
 * moment the pipe is empty matters to the framing (framing.h): every write so
 * far is whole then, so a fragment left over was a write without its LF. Two
 * things say "empty": a read shorter than asked for, and EAGAIN -- which is
 * what follows a read that took exactly the buffer's size. Both call
 * framer_idle(). cdaemon/fuzz/fuzz_readloop.c drives this very function over
 * a real pipe.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fifo.h"
#include "log.h"

void fifo_read_commands(struct fifo_server *s, fifo_line_fn fn, void *ctx)
{
	char buf[LEDD_READ_CHUNK];

	for (int round = 0; round < LEDD_READS_PER_WAKEUP; round++) {
		ssize_t n = read(s->cmd_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			framer_idle(&s->framer, fn, ctx);   /* the pipe is empty */
			return;
		}
		if (n <= 0) {
			/* 0 cannot happen (we hold a writer); an error is logged once per wake-up. */
			if (n < 0)
				log_limited(LOG_ERR, "reading %s: %s", LEDD_CMD_FIFO, strerror(errno));
			return;
		}
		framer_feed(&s->framer, buf, (size_t)n, fn, ctx);
		/* A read shorter than asked for emptied the pipe. */
		if ((size_t)n < sizeof(buf)) {
			framer_idle(&s->framer, fn, ctx);
			return;
		}
	}
}

/* framing.c -- request lines out of the command FIFO's byte stream (see framing.h).
 *
 * Why the leading LF and the idle rule together: a pipe carries bytes, not
 * writes, so the only boundaries ledd can see are LFs and the moments the
 * pipe is empty (then every write so far is whole, since requests are single
 * writes under PIPE_BUF). A fragment at such a moment is a write that forgot
 * its LF, or the first piece of a line a broken client writes in several
 * writes: it is answered at once, and the rest of its line is skipped up to
 * its LF, however many writes that takes, so no tail ever runs as a command.
 * An overlong line is treated the same way. An honest client's leading LF is
 * what ends a skip, so garbage before it can neither glue onto nor swallow
 * its request.
 */
#include <string.h>

#include "framing.h"

void framer_init(struct framer *f)
{
	f->len = 0;
	f->skipping = false;
}

void framer_feed(struct framer *f, const char *data, size_t n, framer_line_fn fn, void *ctx)
{
	while (n) {
		const char *lf = memchr(data, '\n', n);
		size_t chunk = lf ? (size_t)(lf - data) : n;

		if (!f->skipping) {
			size_t room = sizeof(f->buf) - f->len;
			size_t take = chunk < room ? chunk : room;
			memcpy(f->buf + f->len, data, take);
			f->len += take;
			if (f->len == sizeof(f->buf)) {
				/* Overlong: answer it now, skip the rest up to its LF. */
				fn(ctx, f->buf, f->len, true);
				f->len = 0;
				f->skipping = true;
			}
		}
		if (!lf)
			return;
		if (!f->skipping && f->len)
			fn(ctx, f->buf, f->len, true);
		f->len = 0;
		f->skipping = false;
		data += chunk + 1;
		n -= chunk + 1;
	}
}

void framer_idle(struct framer *f, framer_line_fn fn, void *ctx)
{
	if (f->len && !f->skipping) {
		/* A write without its LF: answer it, and skip whatever else its
		 * writer sends up to an LF (the rest of a line cut into writes). */
		fn(ctx, f->buf, f->len, false);
		f->skipping = true;
	}
	f->len = 0;
}

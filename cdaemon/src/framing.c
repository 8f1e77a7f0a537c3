/* framing.c -- request lines out of the command FIFO's byte stream (see framing.h).
 *
 * Why the leading LF and the idle rule together: a pipe carries bytes, not
 * writes, so the only boundaries ledd can see are LFs and the moments the
 * pipe is empty (then every write so far is whole, since requests are single
 * writes under PIPE_BUF). A short fragment at such a moment is a write that
 * forgot its LF: answering it then keeps it from being glued to the next
 * client's line. An overlong line, though, may be a broken client writing
 * one line in several writes; its tail must never run as a command, so it is
 * skipped up to its LF even across empty-pipe moments. An honest client's
 * leading LF is what ends that skip, so garbage before it can neither glue
 * onto nor swallow its request.
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
	if (f->len && !f->skipping)
		fn(ctx, f->buf, f->len, false);
	f->len = 0;
}

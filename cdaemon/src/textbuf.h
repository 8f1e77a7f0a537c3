/* textbuf.h -- build text in a fixed buffer with printf-style appends.
 *
 * The JSON and text that ledd writes (state JSON, state file, HELLO's verb
 * table) are built piece by piece into a caller's buffer; an append that
 * does not fit marks the buffer overflowed and every later append is a
 * no-op, so the caller checks once at the end. Header-only, like errmsg.h,
 * so that the pure modules still link alone into the fuzzers.
 */
#ifndef LEDD_TEXTBUF_H
#define LEDD_TEXTBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct textbuf {
	char *p;
	size_t len, cap;
	bool overflow;
};

static inline void put(struct textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void put(struct textbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len)
		b->overflow = true;
	else
		b->len += (size_t)n;
}

/* The length built, or -1 if something did not fit. */
static inline int textbuf_result(const struct textbuf *b)
{
	return b->overflow ? -1 : (int)b->len;
}

#endif

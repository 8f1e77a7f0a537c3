/* errmsg.h -- set_err(): how every module hands a human message back to its
 * caller ("char *err, size_t errlen" parameters), in one place.
 *
 * Header-only so that the pure modules (protocol.c, config.c, state.c) still
 * link alone into the fuzzers.
 */
#ifndef LEDD_ERRMSG_H
#define LEDD_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

#endif

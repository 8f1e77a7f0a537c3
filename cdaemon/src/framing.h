/* framing.h -- cut the command FIFO's byte stream into request lines.
 *
 * Pure (no I/O, no globals) so that cdaemon/fuzz/fuzz_framing.c can feed it
 * a byte stream cut into reads of any size. The rules (docs/protocol.md,
 * "Framing"):
 *
 *   - a line ends at LF; empty lines are separators and are ignored (every
 *     client starts its write with an LF, which ends whatever a broken writer
 *     left unterminated before it);
 *   - a line of LEDD_MAX_REQUEST bytes or more is overlong: its first
 *     LEDD_MAX_REQUEST bytes are passed on once (so it is answered with its
 *     id), and the rest is skipped up to its LF, however many writes and
 *     reads it takes;
 *   - when the pipe runs empty (framer_idle), a pending short fragment was a
 *     write without its LF: it is passed on as incomplete, and the rest of
 *     its line is skipped up to its LF, like an overlong line's.
 */
#ifndef LEDD_FRAMING_H
#define LEDD_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

#include "defaults.h"

struct framer {
	char buf[LEDD_MAX_REQUEST];
	size_t len;
	bool skipping;          /* inside an overlong line: drop bytes up to its LF */
};

/* One line, LF stripped. complete is false for a fragment left when the pipe
 * ran empty; an overlong line comes as its first LEDD_MAX_REQUEST bytes. */
typedef void (*framer_line_fn)(void *ctx, const char *line, size_t len, bool complete);

void framer_init(struct framer *f);

/* Feed n bytes read from the pipe; fn is called once per line found. */
void framer_feed(struct framer *f, const char *data, size_t n, framer_line_fn fn, void *ctx);

/* The pipe is empty now: every write so far is complete. */
void framer_idle(struct framer *f, framer_line_fn fn, void *ctx);

#endif

/* framing_model.h -- what the framing harnesses share: the line collector
 * with its per-line checks, and docs/protocol.md's framing rules as a
 * byte-at-a-time model to compare the real code with.
 *
 * Included by fuzz_framing.c (framing.c alone) and fuzz_readloop.c
 * (fifo_read.c's read loop over a real pipe, with framing.c under it).
 */
#ifndef LEDD_FUZZ_FRAMING_MODEL_H
#define LEDD_FUZZ_FRAMING_MODEL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"

#define CHECK(cond) do { if (!(cond)) fail_check(#cond, __FILE__, __LINE__); } while (0)
#define MAX_STREAM 32768
#define MAX_LINES 4096

static void fail_check(const char *what, const char *file, int line)
{
	fprintf(stderr, "%s:%d: property violated: %s\n", file, line, what);
	abort();
}

struct line {
	size_t len;
	bool complete;
	char text[LEDD_MAX_REQUEST];
};

struct lines {
	size_t n;
	struct line l[MAX_LINES];
};

static void collect(void *ctx, const char *text, size_t len, bool complete)
{
	struct lines *out = ctx;

	CHECK(len >= 1 && len <= LEDD_MAX_REQUEST);
	CHECK(memchr(text, '\n', len) == NULL);
	CHECK(len < LEDD_MAX_REQUEST || complete);
	if (out->n == MAX_LINES)
		return;
	out->l[out->n].len = len;
	out->l[out->n].complete = complete;
	memcpy(out->l[out->n].text, text, len);
	out->n++;
}

/* The rules, one byte at a time: idle_after[i] says the pipe ran empty
 * after byte i-1 (every write before it is whole). */
static void model(const char *stream, size_t slen, const bool *idle_after, struct lines *out)
{
	char cur[LEDD_MAX_REQUEST];
	size_t len = 0;
	bool skipping = false;

	for (size_t i = 0; i <= slen; i++) {
		if (i > 0 && idle_after[i]) {
			if (len && !skipping) {
				collect(out, cur, len, false);
				skipping = true;
			}
			len = 0;
		}
		if (i == slen)
			break;
		if (stream[i] == '\n') {
			if (len && !skipping)
				collect(out, cur, len, true);
			len = 0;
			skipping = false;
		} else if (!skipping) {
			cur[len++] = stream[i];
			if (len == LEDD_MAX_REQUEST) {
				collect(out, cur, len, true);
				len = 0;
				skipping = true;
			}
		}
	}
}

/* The lines must be the model's, one for one. */
static void check_same(const struct lines *got, const struct lines *want)
{
	CHECK(got->n == want->n);
	for (size_t i = 0; i < got->n; i++) {
		CHECK(got->l[i].len == want->l[i].len && got->l[i].complete == want->l[i].complete);
		CHECK(memcmp(got->l[i].text, want->l[i].text, got->l[i].len) == 0);
	}
}

#endif

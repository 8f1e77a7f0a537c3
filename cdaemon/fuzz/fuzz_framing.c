/* fuzz_framing.c -- libFuzzer harness for framer_feed()/framer_idle()
 * (cdaemon/src/framing.c): the code that cuts ledd.cmd's bytes into lines.
 *
 * The input decides a stream of writes and how the pipe hands it out:
 *
 *   [garbage A] ["\nh#1 STATE\n"] [line B, no LF, >= LEDD_MAX_REQUEST bytes
 *   in pieces of any size] ["!evil ALL ON\n"] ["\nh#2 HELLO\n"]
 *
 * A and B's bytes come from the input; the stream is then fed in reads of
 * sizes taken from the input, and at write boundaries the pipe may run empty
 * (framer_idle), never inside an honest write (it is under PIPE_BUF, so
 * atomic). Checks, on every input:
 *
 *   - a well-formed request after any garbage is answered as itself: "h#1
 *     STATE" and "h#2 HELLO" each come out exactly once, complete;
 *   - nothing of an overlong line's LF-less tail ever runs: no line with
 *     "!evil" (or any piece of it) comes out (it ends B, written as its own write, whether B's
 *     pieces were read together or the pipe ran empty between them);
 *   - every line is 1..LEDD_MAX_REQUEST bytes without LF; a line of
 *     LEDD_MAX_REQUEST bytes is an overlong head, passed as complete;
 *   - the lines equal those of a byte-at-a-time model of docs/protocol.md's
 *     framing rules, whatever the read sizes.
 *
 * Build: make -C cdaemon/fuzz (clang -fsanitize=fuzzer,address,undefined).
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"
#include "framing_model.h"

/* The stream, with the positions where the pipe may run empty. */
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

/* How many complete lines are exactly `text` (or, with anywhere, contain it). */
static size_t count(const struct lines *got, const char *text, bool anywhere)
{
	size_t n = 0, tl = strlen(text);

	for (size_t i = 0; i < got->n; i++) {
		const struct line *l = &got->l[i];
		if (anywhere ? memmem(l->text, l->len, text, tl) != NULL
			     : (l->complete && l->len == tl && memcmp(l->text, text, tl) == 0))
			n++;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lines got, want;
	static struct framer f;
		/* '!' occurs only in the tail, so any line with one ran a piece of it;
	 * '#' only in the honest requests, so garbage cannot pass for them. */
	static const char h1[] = "\nh#1 STATE\n", evil[] = "!evil ALL ON\n", h2[] = "\nh#2 HELLO\n";
	size_t pos = 0, alen, blen, pieces;

	if (size < 4)
		return 0;
	/* Header: lengths of A and B, how many writes B comes in. */
	alen = data[0] * 16u + (data[1] & 15u);
	blen = LEDD_MAX_REQUEST + data[2] * 8u;
	pieces = 1 + (data[3] & 7u);
	pos = 4;
	memset(idle_after, 0, sizeof(idle_after));
	slen = 0;

	/* Garbage A: input bytes as they are (LFs, NULs, anything). */
	for (size_t i = 0; i < alen; i++)
		put(strchr("!#", data[(pos + i) % size]) ? "?" : (const char *)&data[(pos + i) % size], 1);
	pos += alen;
	idle_after[slen] = size > 4 && (data[4] & 1);
	put(h1, sizeof(h1) - 1);
	idle_after[slen] = size > 5 && (data[5] & 1);
	/* B: an overlong line without LF, written in `pieces` writes. */
	for (size_t i = 0; i < blen; i++) {
		char c = (char)data[(pos + i) % size];
		put(c == '\n' ? "b" : (c && strchr("!#", c)) ? "?" : &c, 1);
		if ((i + 1) % (blen / pieces + 1) == 0)
			idle_after[slen] = (data[(pos + i) % size] & 1) != 0;
	}
	pos += blen;
	idle_after[slen] = size > 6 && (data[6] & 1);
	put(evil, sizeof(evil) - 1);
	idle_after[slen] = size > 7 && (data[7] & 1);
	put(h2, sizeof(h2) - 1);
	idle_after[slen] = true;   /* in the end the pipe is empty */

	/* Feed it in reads of arbitrary sizes, never across an idle moment. */
	got.n = 0;
	framer_init(&f);
	for (size_t at = 0, k = 0; at < slen; k++) {
		size_t want_n = 1 + data[k % size] * (1 + (data[(k + 1) % size] & 15u));
		size_t n = 0;
		while (n < want_n && at + n < slen) {
			n++;
			if (idle_after[at + n])
				break;
		}
		char *chunk = malloc(n);        /* exact size: overreads are caught */
		memcpy(chunk, stream + at, n);
		framer_feed(&f, chunk, n, collect, &got);
		free(chunk);
		at += n;
		if (idle_after[at])
			framer_idle(&f, collect, &got);
	}

	want.n = 0;
	model(stream, slen, idle_after, &want);
	if (getenv("FRAMING_DEBUG"))
		for (size_t i = 0; i < got.n; i++)
			fprintf(stderr, "line %zu (%zu, %d): %.*s\n", i, got.l[i].len, got.l[i].complete, (int)got.l[i].len, got.l[i].text);
	CHECK(count(&got, "h#1 STATE", false) == 1);
	CHECK(count(&got, "h#2 HELLO", false) == 1);
	CHECK(count(&got, "!", true) == 0);
	check_same(&got, &want);
	return 0;
}

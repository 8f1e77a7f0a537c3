/* fuzz_state.c -- libFuzzer harness for state_parse() (cdaemon/src/state.c).
 *
 * The state file (/var/lib/ledd/state) is read back at every start, after
 * crashes and power cuts: it may be truncated or garbage. The input is the
 * file's text over a board with the most LEDs and buttons the limits allow,
 * with the longest names (plus the default red/green/button). Checks:
 *
 *   - failure is all or nothing: the state is byte for byte unchanged, and
 *     the error message is non-empty;
 *   - after a successful parse, every LED is off, on, or blinking with both
 *     periods in the protocol's range, and its level agrees;
 *   - the state JSON of the result still fits one reply line under PIPE_BUF
 *     (the protocol's promise, with the largest counters a file can claim);
 *   - state_format() then state_parse() gives the same state back.
 *
 * Build: make -C cdaemon/fuzz (clang -fsanitize=fuzzer,address,undefined).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "state.h"

#define CHECK(cond) do { if (!(cond)) fail_check(#cond, __LINE__); } while (0)

static void fail_check(const char *what, int line)
{
	fprintf(stderr, "fuzz_state.c:%d: property violated: %s\n", line, what);
	abort();
}

/* The largest board: 16 LEDs, 8 buttons, names of the maximal length. */
static const struct ledd_config *board(void)
{
	static struct ledd_config cfg;
	static int ready;
	char text[8192], err[256];
	size_t n = 0;

	if (ready)
		return &cfg;
	n += (size_t)snprintf(text + n, sizeof(text) - n, "[ledd]\nbackend = sim\n");
	for (int i = 0; i < LEDD_MAX_LEDS; i++) {
		if (i < 2)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "[led %s]\ngpio = %d\n",
					      i ? "green" : "red", i ? 27 : 17);
		else
			n += (size_t)snprintf(text + n, sizeof(text) - n, "[led L%02d%.21s]\ngpio = %d\n", i,
					      "xxxxxxxxxxxxxxxxxxxxxxxx", i);
	}
	for (int i = 0; i < LEDD_MAX_BUTTONS; i++) {
		if (i == 0)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "[button button]\ngpio = 22\n");
		else
			n += (size_t)snprintf(text + n, sizeof(text) - n, "[button B%02d%.21s]\ngpio = %d\n", i,
					      "yyyyyyyyyyyyyyyyyyyyyyyy", 30 + i);
	}
	if (config_parse(text, n, "board", &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_state.c: the test board does not parse: %s\n", err);
		abort();
	}
	ready = 1;
	return &cfg;
}

static void check_state(const struct ledd_state *st)
{
	static char json[LEDD_LINE_MAX];
	int n;

	for (size_t i = 0; i < st->nleds; i++) {
		const struct led_state *l = &st->leds[i];

		if (l->on_ms || l->off_ms) {
			CHECK(l->on);
			CHECK(l->on_ms >= LEDD_BLINK_MIN_MS && l->on_ms <= LEDD_BLINK_MAX_MS);
			CHECK(l->off_ms >= LEDD_BLINK_MIN_MS && l->off_ms <= LEDD_BLINK_MAX_MS);
		}
		CHECK(l->level == (l->on ? 1 : 0));
	}
	for (size_t i = 0; i < st->nbuttons; i++)
		CHECK(st->buttons[i].last_press_ms >= -1);
	/* A reply is "<id> OK <json>\n" and an event "event state <json>\n". */
	n = state_json(st, "chardev", json, sizeof(json) - (LEDD_MAX_ID + 5));
	CHECK(n > 0);
	for (int i = 0; i < n; i++)
		CHECK((unsigned char)json[i] >= 0x20 && json[i] != 0x7f);
}

static void check_round_trip(const struct ledd_state *st)
{
	static struct ledd_state again;
	static char text[LEDD_STATE_MAX_BYTES];
	char err[256];
	int n = state_format(st, text, sizeof(text));

	CHECK(n > 0);
	state_init(&again, board());
	CHECK(state_parse(&again, text, (size_t)n, err, sizeof(err)) == 0);
	CHECK(again.seq == st->seq);
	for (size_t i = 0; i < st->nleds; i++) {
		CHECK(again.leds[i].on == st->leds[i].on);
		CHECK(again.leds[i].on_ms == st->leds[i].on_ms && again.leds[i].off_ms == st->leds[i].off_ms);
	}
	for (size_t i = 0; i < st->nbuttons; i++) {
		CHECK(again.buttons[i].presses == st->buttons[i].presses);
		CHECK(again.buttons[i].last_press_ms == st->buttons[i].last_press_ms);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ledd_state st, before;
	char err[256];
	char *buf;
	int rc;

	if (size > LEDD_STATE_MAX_BYTES)        /* state_load() refuses these */
		return 0;
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	state_init(&st, board());
	before = st;
	err[0] = '\0';
	rc = state_parse(&st, buf, size, err, sizeof(err));
	if (rc < 0) {
		CHECK(rc == -1);
		CHECK(err[0] != '\0');
		CHECK(memcmp(&st, &before, sizeof(st)) == 0);
	} else {
		check_state(&st);
		check_round_trip(&st);
	}
	free(buf);
	return 0;
}

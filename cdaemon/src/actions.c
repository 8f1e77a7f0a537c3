/* actions.c -- button actions (see actions.h): parse, check, describe, run.
 *
 * Parsing is split in two because a [button] section may name an LED whose
 * [led] section comes later in the file: action_parse() checks the syntax
 * on the line, actions_check() resolves the names once the file is read and
 * reports the action's own line. Running reuses state.c's LED operations,
 * so an action changes exactly what the matching client command would.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "actions.h"
#include "config.h"
#include "protocol.h"
#include "state.h"

static const char *const kind_names[] = {
	[ACTION_NONE] = "", [ACTION_ON] = "on", [ACTION_OFF] = "off", [ACTION_TOGGLE] = "toggle",
	[ACTION_BLINK] = "blink", [ACTION_ALL_ON] = "all on", [ACTION_ALL_OFF] = "all off",
};

#define SYNTAX "expected on|off|toggle LED, blink LED ON_MS OFF_MS, all on or all off"

/* Split text at single blanks into at most max words (in place, in buf). */
static int split(char *buf, char **w, int max)
{
	int n = 0;
	char *p = buf;

	while (*p) {
		if (n == max)
			return -1;
		w[n++] = p;
		p += strcspn(p, " \t");
		if (*p) {
			*p++ = '\0';
			if (*p == ' ' || *p == '\t' || *p == '\0')
				return -1;      /* two blanks, or a trailing one */
		}
	}
	return n;
}

static int parse_period(const char *s, unsigned int *out, char *err, size_t errlen)
{
	unsigned long v;

	if (!protocol_parse_uint(s, &v) || v < LEDD_BLINK_MIN_MS || v > LEDD_BLINK_MAX_MS) {
		snprintf(err, errlen, "blink period '%.20s' is not %d-%d ms", s, LEDD_BLINK_MIN_MS,
			 LEDD_BLINK_MAX_MS);
		return -1;
	}
	*out = (unsigned int)v;
	return 0;
}

int action_parse(const char *text, struct action *out, char *err, size_t errlen)
{
	char buf[ACTION_TEXT_MAX + 1];
	char *w[5];
	int n;

	memset(out, 0, sizeof(*out));
	out->led = -1;
	if (strlen(text) >= sizeof(buf) || (n = split(strcpy(buf, text), w, 4)) < 2) {
		snprintf(err, errlen, "'%.60s': " SYNTAX, text);
		return -1;
	}
	if (strcasecmp(w[0], "all") == 0) {
		if (n == 2 && strcasecmp(w[1], "on") == 0)
			out->kind = ACTION_ALL_ON;
		else if (n == 2 && strcasecmp(w[1], "off") == 0)
			out->kind = ACTION_ALL_OFF;
		else {
			snprintf(err, errlen, "'%.60s': all takes on or off", text);
			return -1;
		}
		return 0;
	}
	if (strcasecmp(w[0], "on") == 0 && n == 2)
		out->kind = ACTION_ON;
	else if (strcasecmp(w[0], "off") == 0 && n == 2)
		out->kind = ACTION_OFF;
	else if (strcasecmp(w[0], "toggle") == 0 && n == 2)
		out->kind = ACTION_TOGGLE;
	else if (strcasecmp(w[0], "blink") == 0 && n == 4) {
		if (parse_period(w[2], &out->on_ms, err, errlen) < 0 ||
		    parse_period(w[3], &out->off_ms, err, errlen) < 0)
			return -1;
		out->kind = ACTION_BLINK;
	} else {
		snprintf(err, errlen, "'%.60s': " SYNTAX, text);
		return -1;
	}
	if (strlen(w[1]) > LEDD_MAX_NAME) {
		snprintf(err, errlen, "LED name '%.30s...' is longer than %d characters", w[1], LEDD_MAX_NAME);
		return -1;
	}
	strcpy(out->led_name, w[1]);
	return 0;
}

static int check_one(struct ledd_config *cfg, struct action *a, const char *key,
		     const char *button, const char *filename, char *err, size_t errlen)
{
	if (a->kind == ACTION_NONE || a->kind == ACTION_ALL_ON || a->kind == ACTION_ALL_OFF)
		return 0;
	for (size_t i = 0; i < cfg->nleds; i++) {
		if (strcmp(cfg->leds[i].name, a->led_name) == 0) {
			a->led = (int)i;
			return 0;
		}
	}
	snprintf(err, errlen, "%s:%u: %s: [button %s] names no [led %s] of this file", filename,
		 a->line, key, button, a->led_name);
	return -1;
}

int actions_check(struct ledd_config *cfg, const char *filename, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->nbuttons; i++) {
		struct button_config *b = &cfg->buttons[i];

		if (check_one(cfg, &b->on_press, "on_press", b->name, filename, err, errlen) < 0 ||
		    check_one(cfg, &b->on_release, "on_release", b->name, filename, err, errlen) < 0)
			return -1;
	}
	return 0;
}

bool action_equal(const struct action *a, const struct action *b)
{
	return a->kind == b->kind && strcmp(a->led_name, b->led_name) == 0 &&
	       a->on_ms == b->on_ms && a->off_ms == b->off_ms;
}

int action_format(const struct action *a, char *out, size_t outlen)
{
	switch (a->kind) {
	case ACTION_NONE:
		return snprintf(out, outlen, "%s", "");
	case ACTION_ALL_ON:
	case ACTION_ALL_OFF:
		return snprintf(out, outlen, "%s", kind_names[a->kind]);
	case ACTION_BLINK:
		return snprintf(out, outlen, "blink %s %u %u", a->led_name, a->on_ms, a->off_ms);
	default:
		return snprintf(out, outlen, "%s %s", kind_names[a->kind], a->led_name);
	}
}

/* "text" or null; the text never needs escaping (names are [A-Za-z0-9_-]). */
static void json_action(const struct action *a, char *out, size_t outlen)
{
	char text[ACTION_TEXT_MAX + 1];

	if (a->kind == ACTION_NONE) {
		snprintf(out, outlen, "null");
		return;
	}
	action_format(a, text, sizeof(text));
	snprintf(out, outlen, "\"%s\"", text);
}

void action_button_json(const struct button_config *b, char *out, size_t outlen)
{
	char press[ACTION_TEXT_MAX + 3], release[ACTION_TEXT_MAX + 3];

	json_action(&b->on_press, press, sizeof(press));
	json_action(&b->on_release, release, sizeof(release));
	snprintf(out, outlen, "\"on_press\":%s,\"on_release\":%s", press, release);
}

int actions_hello_buttons(const struct ledd_config *cfg, char *out, size_t outlen)
{
	size_t len = 0;

	for (size_t i = 0; i <= cfg->nbuttons; i++) {
		const struct button_config *b = &cfg->buttons[i];
		int n = i == cfg->nbuttons
			? snprintf(out + len, outlen - len, "%s]", i ? "" : "[")
			: snprintf(out + len, outlen - len,
				   "%c{\"name\":\"%s\",\"gpio\":%u,\"pull\":\"%s\",\"active_low\":%s,"
				   "\"debounce_ms\":%u}",
				   i ? ',' : '[', b->name, b->gpio,
				   b->bias == GPIO_BIAS_PULL_UP     ? "up"
				   : b->bias == GPIO_BIAS_PULL_DOWN ? "down"
								    : "none",
				   b->active_low ? "true" : "false", b->debounce_ms);
		if (n < 0 || (size_t)n >= outlen - len) {
			snprintf(out, outlen, "[]");
			return -1;
		}
		len += (size_t)n;
	}
	return (int)len;
}

/* Drive LED i; on refusal put the model back. */
static bool apply_led(struct ledd_state *st, size_t i, const struct led_state *before, bool did,
		      int (*drive)(void *, size_t), void *ctx)
{
	if (drive(ctx, i) < 0) {
		st->leds[i] = *before;
		return false;
	}
	return did;
}

bool action_run(const struct action *a, struct ledd_state *st, uint64_t now_ns,
		int (*drive)(void *ctx, size_t led), void *ctx)
{
	bool did = false;

	if (a->kind == ACTION_ALL_ON || a->kind == ACTION_ALL_OFF) {
		for (size_t i = 0; i < st->nleds; i++) {
			struct led_state before = st->leds[i];
			bool changed = state_led_set(st, i, a->kind == ACTION_ALL_ON);
			did |= apply_led(st, i, &before, changed, drive, ctx);
		}
		return did;
	}
	if (a->kind == ACTION_NONE || a->led < 0 || (size_t)a->led >= st->nleds)
		return false;
	size_t i = (size_t)a->led;
	struct led_state before = st->leds[i];

	if (a->kind == ACTION_ON || a->kind == ACTION_OFF)
		did = state_led_set(st, i, a->kind == ACTION_ON);
	else if (a->kind == ACTION_TOGGLE)
		did = state_led_toggle(st, i);
	else
		did = state_led_blink(st, i, a->on_ms, a->off_ms, now_ns);
	return apply_led(st, i, &before, did, drive, ctx);
}

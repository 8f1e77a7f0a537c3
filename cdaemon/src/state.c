/* state.c -- LEDs and buttons as the protocol sees them: the model, the
 * LED verbs' changes, blink scheduling and the state JSON (the state file is
 * state_file.c).
 *
 * Blinking is a deadline per LED (CLOCK_MONOTONIC ns), never a sleep: the main
 * loop polls with the earliest deadline as timeout and calls
 * state_blink_advance(). Phases are computed from the previous deadline, not
 * from "now", so they do not drift with wake-up latency.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "protocol.h"
#include "state.h"
#include "textbuf.h"

#define NS_PER_MS 1000000ull

/* "on_press":"toggle red","on_release":null: a button's actions, which the
 * state JSON carries (they change only with a reload). */
static void button_actions_json(const struct button_config *b, char *out, size_t outlen)
{
	char press[ACTION_TEXT_MAX + 3], release[ACTION_TEXT_MAX + 3];

	action_json(&b->on_press, press, sizeof(press));
	action_json(&b->on_release, release, sizeof(release));
	snprintf(out, outlen, "\"on_press\":%s,\"on_release\":%s", press, release);
}

void state_init(struct ledd_state *st, const struct ledd_config *cfg)
{
	memset(st, 0, sizeof(*st));
	st->nleds = cfg->nleds;
	st->nbuttons = cfg->nbuttons;
	for (size_t i = 0; i < cfg->nleds; i++) {
		snprintf(st->leds[i].name, sizeof(st->leds[i].name), "%s", cfg->leds[i].name);
		st->leds[i].gpio = cfg->leds[i].gpio;
		st->leds[i].brightness = LEDD_BRIGHTNESS_DEFAULT;
		st->leds[i].pwm_hz = cfg->pwm_hz;
	}
	for (size_t i = 0; i < cfg->nbuttons; i++) {
		snprintf(st->buttons[i].name, sizeof(st->buttons[i].name), "%s", cfg->buttons[i].name);
		st->buttons[i].gpio = cfg->buttons[i].gpio;
		st->buttons[i].last_press_ms = -1;
		button_actions_json(&cfg->buttons[i], st->buttons[i].config_json,
				    sizeof(st->buttons[i].config_json));
	}
}

static int find(const char *arg, size_t count, const char *(*name_of)(const void *, size_t),
		const void *base)
{
	unsigned long idx;

	if (protocol_parse_uint(arg, &idx))
		return idx < count ? (int)idx : -1;
	for (size_t i = 0; i < count; i++)
		if (strcmp(name_of(base, i), arg) == 0)
			return (int)i;
	return -1;
}

static const char *led_name(const void *base, size_t i)
{
	return ((const struct led_state *)base)[i].name;
}

static const char *button_name(const void *base, size_t i)
{
	return ((const struct button_state *)base)[i].name;
}

int state_find_led(const struct ledd_state *st, const char *arg)
{
	return find(arg, st->nleds, led_name, st->leds);
}

int state_find_button(const struct ledd_state *st, const char *arg)
{
	return find(arg, st->nbuttons, button_name, st->buttons);
}

bool state_led_set(struct ledd_state *st, size_t i, bool on)
{
	struct led_state *led = &st->leds[i];
	bool changed = led->on != on || led->on_ms != 0;

	led->on = on;
	led->on_ms = led->off_ms = 0;
	led->next_ns = 0;
	led->lit = on;
	led->level = on;
	return changed;
}

/* The LED verbs' changes (verbs[] names them; protocol.h declares them). */

bool state_led_on(struct ledd_state *st, size_t i, const struct request *req, uint64_t now_ns)
{
	(void)req, (void)now_ns;
	return state_led_set(st, i, true);
}

bool state_led_off(struct ledd_state *st, size_t i, const struct request *req, uint64_t now_ns)
{
	(void)req, (void)now_ns;
	return state_led_set(st, i, false);
}

bool state_led_toggle(struct ledd_state *st, size_t i, const struct request *req, uint64_t now_ns)
{
	(void)req, (void)now_ns;
	state_led_set(st, i, !st->leds[i].on);
	return true;
}

/* BLINK <led> <on_ms> <off_ms>. A new blink starts in its "on" phase. */
bool state_led_blink(struct ledd_state *st, size_t i, const struct request *req, uint64_t now_ns)
{
	struct led_state *led = &st->leds[i];
	unsigned int on_ms = (unsigned int)req->num[1], off_ms = (unsigned int)req->num[2];
	bool changed = !led->on || led->on_ms != on_ms || led->off_ms != off_ms;

	if (!changed)   /* same blink again: keep the phase, no glitch */
		return false;
	led->on = true;
	led->on_ms = on_ms;
	led->off_ms = off_ms;
	led->lit = true;
	led->level = 1;
	led->next_ns = now_ns + on_ms * NS_PER_MS;
	return true;
}

/* ALL ON|OFF: ON or OFF of each LED. */
bool state_all_onoff(struct ledd_state *st, size_t i, const struct request *req, uint64_t now_ns)
{
	(void)now_ns;
	return state_led_set(st, i, req->on);
}

/* BRIGHTNESS and ALL_BRIGHTNESS: 0 is OFF (the brightness is kept for the
 * next ON); 1-100 lights an LED that is off (steady) and sets how bright it
 * is lit. A blinking LED keeps blinking, in phase: only its lit phase gets
 * the new brightness. */
static bool set_brightness(struct ledd_state *st, size_t i, unsigned int percent)
{
	struct led_state *led = &st->leds[i];
	bool changed = !led->on || led->brightness != percent;

	if (percent == 0)
		return state_led_set(st, i, false);
	led->brightness = percent;
	if (!led->on)
		state_led_set(st, i, true);
	return changed;
}

bool state_led_brightness(struct ledd_state *st, size_t i, const struct request *req,
			  uint64_t now_ns)
{
	(void)now_ns;
	return set_brightness(st, i, (unsigned int)req->num[1]);
}

bool state_all_brightness(struct ledd_state *st, size_t i, const struct request *req,
			  uint64_t now_ns)
{
	(void)now_ns;
	return set_brightness(st, i, (unsigned int)req->num[0]);
}

/* FREQUENCY <led> <hz>: from now on the LED keeps its own frequency, whatever
 * the config's pwm_hz becomes. */
bool state_led_frequency(struct ledd_state *st, size_t i, const struct request *req,
			 uint64_t now_ns)
{
	struct led_state *led = &st->leds[i];
	unsigned int hz = (unsigned int)req->num[1];

	(void)now_ns;
	if (led->pwm_hz == hz)
		return false;
	led->pwm_hz = hz;
	led->pwm_hz_set = true;
	return true;
}

bool state_pwm_default(struct ledd_state *st, unsigned int hz)
{
	bool changed = false;

	for (size_t i = 0; i < st->nleds; i++) {
		if (st->leds[i].pwm_hz_set || st->leds[i].pwm_hz == hz)
			continue;
		st->leds[i].pwm_hz = hz;
		changed = true;
	}
	return changed;
}

void state_blink_restart(struct ledd_state *st, uint64_t now_ns)
{
	for (size_t i = 0; i < st->nleds; i++) {
		struct led_state *led = &st->leds[i];
		led->lit = led->on;
		led->level = led->on;
		if (led->on_ms)
			led->next_ns = now_ns + led->on_ms * NS_PER_MS;
	}
}

uint32_t state_blink_advance(struct ledd_state *st, uint64_t now_ns)
{
	uint32_t changed = 0;

	for (size_t i = 0; i < st->nleds; i++) {
		struct led_state *led = &st->leds[i];
		bool before = led->lit;

		if (!led->on_ms)
			continue;
		/* Far behind (suspend, debugger): resynchronise instead of
		 * replaying every missed phase. */
		if (now_ns > led->next_ns + 2 * (led->on_ms + led->off_ms) * NS_PER_MS)
			led->next_ns = now_ns;
		while (led->next_ns <= now_ns) {
			led->lit = !led->lit;
			led->next_ns += (led->lit ? led->on_ms : led->off_ms) * NS_PER_MS;
		}
		if (led->lit != before) {
			led->level = led->lit;  /* until the line is driven (pwm.c) */
			changed |= 1u << i;
		}
	}
	return changed;
}

uint64_t state_next_deadline(const struct ledd_state *st)
{
	uint64_t next = 0;

	for (size_t i = 0; i < st->nleds; i++)
		if (st->leds[i].on_ms && (next == 0 || st->leds[i].next_ns < next))
			next = st->leds[i].next_ns;
	return next;
}

/* --- JSON --------------------------------------------------------------- */

int state_json(const struct ledd_state *st, const char *backend, char *out, size_t outlen)
{
	struct textbuf b = { .p = out, .cap = outlen };

	put(&b, "{\"leds\":[");
	for (size_t i = 0; i < st->nleds; i++) {
		const struct led_state *l = &st->leds[i];
		put(&b, "%s{\"id\":%zu,\"name\":\"%s\",\"gpio\":%u,\"on\":%s,", i ? "," : "", i,
		    l->name, l->gpio, l->on ? "true" : "false");
		if (l->on_ms)
			put(&b, "\"blink\":{\"on_ms\":%u,\"off_ms\":%u},", l->on_ms, l->off_ms);
		else
			put(&b, "\"blink\":null,");
		put(&b, "\"level\":%d,\"brightness\":%u,\"pwm_hz\":%u}", l->level ? 1 : 0,
		    l->brightness, l->pwm_hz);
	}
	put(&b, "],\"buttons\":[");
	for (size_t i = 0; i < st->nbuttons; i++) {
		const struct button_state *bt = &st->buttons[i];
		put(&b, "%s{\"id\":%zu,\"name\":\"%s\",\"gpio\":%u,\"pressed\":%s,\"presses\":%" PRIu64
		    ",\"last_press_ms\":", i ? "," : "", i, bt->name, bt->gpio,
		    bt->pressed ? "true" : "false", bt->presses);
		if (bt->last_press_ms < 0)
			put(&b, "null,%s}", bt->config_json);
		else
			put(&b, "%" PRId64 ",%s}", bt->last_press_ms, bt->config_json);
	}
	put(&b, "],\"seq\":%" PRIu64 ",\"backend\":\"%s\",\"protocol\":%d}", st->seq, backend,
	    LEDD_PROTOCOL);
	return textbuf_result(&b);
}

int state_json_max(const struct ledd_config *cfg)
{
	struct ledd_state st;
	char out[4 * LEDD_LINE_MAX];

	state_init(&st, cfg);
	st.seq = UINT64_MAX;
	for (size_t i = 0; i < st.nleds; i++) {
		struct led_state *l = &st.leds[i];
		l->on = true;
		l->on_ms = l->off_ms = LEDD_BLINK_MAX_MS;
		l->brightness = LEDD_BRIGHTNESS_MAX;
		l->pwm_hz = LEDD_PWM_HZ_MAX;
	}
	for (size_t i = 0; i < st.nbuttons; i++) {
		st.buttons[i].presses = UINT64_MAX;
		st.buttons[i].last_press_ms = INT64_MAX;
	}
	return state_json(&st, config_backend_name(GPIO_BACKEND_CHARDEV), out, sizeof(out));
}

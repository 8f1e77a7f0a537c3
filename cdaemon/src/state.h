/* state.h -- the LED/button model, the LED verbs' changes, blink scheduling,
 * the state JSON of the protocol and the state file that carries it across
 * restarts. No GPIO and no FIFO here: changes.c applies levels to the
 * backend and sends the JSON. */
#ifndef LEDD_STATE_H
#define LEDD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "defaults.h"

struct led_state {
	char name[LEDD_MAX_NAME + 1];
	unsigned int gpio;
	bool on;                        /* on or blinking */
	unsigned int on_ms, off_ms;     /* blinking when on_ms != 0 */
	bool lit;                       /* steady on, or in a blink's on phase */
	int level;                      /* the line's logical output now (pwm.c keeps it) */
	uint64_t next_ns;               /* blinking: CLOCK_MONOTONIC of the next phase change */
	unsigned int brightness;        /* 1-100 %: how bright when lit (kept while off) */
	unsigned int pwm_hz;            /* PWM frequency while dimmed (lit at 1-99 %) */
	bool pwm_hz_set;                /* by FREQUENCY; else it follows the config's pwm_hz */
};

struct button_state {
	char name[LEDD_MAX_NAME + 1];
	unsigned int gpio;
	bool pressed;
	uint64_t presses;
	int64_t last_press_ms;          /* wall clock, ms since the epoch; -1 = never */
	char config_json[ACTION_BUTTON_JSON_MAX]; /* "on_press":...,"on_release":... */
};

struct ledd_state {
	size_t nleds, nbuttons;
	struct led_state leds[LEDD_MAX_LEDS];
	struct button_state buttons[LEDD_MAX_BUTTONS];
	uint64_t seq;
};

/* All LEDs off at full brightness and the config's pwm_hz, counters zero,
 * names and GPIOs from the config. */
void state_init(struct ledd_state *st, const struct ledd_config *cfg);

/* Index of an LED/button given as a decimal id or a name, or -1. */
int state_find_led(const struct ledd_state *st, const char *arg);
int state_find_button(const struct ledd_state *st, const char *arg);

/* LED i steady on or off; true if its state (on/blink) changed. Here and in
 * every change, `level` is set as if the line were steady; driving the line
 * (pwm.c) makes it the output of a dimmed LED. The LED
 * verbs' changes (state_led_on, _off, _toggle, _blink: led_change_fn, run by
 * commands.c for the verbs[] entries that name them) are declared with the
 * table in protocol.h. */
bool state_led_set(struct ledd_state *st, size_t i, bool on);

/* The config's pwm_hz changed (reload) to hz: every LED whose frequency no
 * FREQUENCY set follows it. true if any LED's pwm_hz changed. */
bool state_pwm_default(struct ledd_state *st, unsigned int hz);

/* Advance blink phases due at now_ns. Returns a bitmask of LEDs whose lit
 * phase changed (the caller drives those lines). */
uint32_t state_blink_advance(struct ledd_state *st, uint64_t now_ns);

/* CLOCK_MONOTONIC ns of the next blink phase change, or 0 if nothing blinks. */
uint64_t state_next_deadline(const struct ledd_state *st);

/* Restart the phase of every blinking LED at now_ns (after a restore). */
void state_blink_restart(struct ledd_state *st, uint64_t now_ns);

/* The protocol's state JSON (docs/protocol.md). Returns the length or -1. */
int state_json(const struct ledd_state *st, const char *backend, char *out, size_t outlen);

/* The length of the longest state JSON cfg's LEDs and buttons can give:
 * every counter, period, brightness and frequency at its widest. */
int state_json_max(const struct ledd_config *cfg);

/* State file text: "ledd-state 1", then "seq N", "led NAME on 0|1 blink ON OFF
 * brightness B pwm_hz HZ|-" (pwm_hz "-": the config's) and "button NAME
 * presses N last_press_ms N|-" lines. Keyed by name, so a renamed or removed
 * LED simply gets defaults; an LED line without brightness and pwm_hz (an
 * older ledd's) gets theirs. */
int state_format(const struct ledd_state *st, char *out, size_t outlen);

/* Apply a state file text to st (already state_init'ed). All or nothing: on a
 * malformed text st is unchanged and -1 is returned with the line and problem
 * in err. Otherwise returns the number of entries whose name is not in st. */
int state_parse(struct ledd_state *st, const char *buf, size_t len, char *err, size_t errlen);

/* Load path into st: 0 loaded, 1 missing, -1 unreadable or corrupt (st keeps
 * its defaults; err says why). */
int state_load(struct ledd_state *st, const char *path, char *err, size_t errlen);

/* Write st atomically: temp file, rename. With `durable`, the temp file is
 * fsync'ed before the rename and the directory after it (power-cut safe);
 * without, the new file is in the page cache only (safe against any crash of
 * ledd, kill -9 included, but not against a power cut). */
int state_save(const struct ledd_state *st, const char *path, bool durable, char *err,
	       size_t errlen);

#endif

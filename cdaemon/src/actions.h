/* actions.h -- button actions: what ledd itself does on a button's edge.
 *
 * A [button NAME] section may carry `on_press = toggle red` and
 * `on_release = off green`. The action runs inside ledd on the debounced
 * edge, so it works with no client at all (web server down, no script), and
 * it is an ordinary state change: seq, events, state file.
 *
 * Syntax (verbs case-insensitive, one blank between fields):
 *   on LED | off LED | toggle LED | blink LED ON_MS OFF_MS | all on | all off
 * LED is a configured LED's name (ids would change with the file's order).
 */
#ifndef LEDD_ACTIONS_H
#define LEDD_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "defaults.h"

enum action_kind { ACTION_NONE, ACTION_ON, ACTION_OFF, ACTION_TOGGLE, ACTION_BLINK, ACTION_ALL_ON,
		   ACTION_ALL_OFF };

struct action {
	enum action_kind kind;
	char led_name[LEDD_MAX_NAME + 1];
	int led;                        /* index, set by actions_check(); -1 before */
	unsigned int on_ms, off_ms;     /* ACTION_BLINK */
	unsigned int line;              /* config line, for errors found at the end */
};

/* Longest action text ("blink NAME 60000 60000") and a button's extra state JSON. */
#define ACTION_TEXT_MAX         (LEDD_MAX_NAME + 24)
#define ACTION_BUTTON_JSON_MAX  (2 * ACTION_TEXT_MAX + 32)

struct ledd_config;
struct button_config;
struct ledd_state;

/* Parse an action's text (the value of on_press/on_release). 0, or -1 with
 * the problem (no file:line: the config parser adds it) in err. */
int action_parse(const char *text, struct action *out, char *err, size_t errlen);

/* After the whole file is read: resolve every action's LED name. 0, or -1
 * with "<filename>:<line>: on_press: no [led NAME] ..." in err. */
int actions_check(struct ledd_config *cfg, const char *filename, char *err, size_t errlen);

/* Do two actions do the same thing (where in the file they were written aside)? */
bool action_equal(const struct action *a, const struct action *b);

/* The canonical text of an action ("toggle red"); "" for none. */
int action_format(const struct action *a, char *out, size_t outlen);

/* The button's action fields for the state JSON, without braces:
 * "on_press":"toggle red","on_release":null */
void action_button_json(const struct button_config *b, char *out, size_t outlen);

/* The button settings clients cannot see in the state (it has no room for
 * them under PIPE_BUF), for HELLO: [{"name":"button","gpio":22,"pull":"up",
 * "active_low":true,"debounce_ms":30}]. Length, or -1 if it does not fit. */
int actions_hello_buttons(const struct ledd_config *cfg, char *out, size_t outlen);

/* Run an action on the model and drive the LEDs it touched through drive()
 * (an LED whose line refuses is put back as it was). Returns true if the
 * state changed (the caller counts it: seq, state file, events). */
bool action_run(const struct action *a, struct ledd_state *st, uint64_t now_ns,
		int (*drive)(void *ctx, size_t led), void *ctx);

#endif

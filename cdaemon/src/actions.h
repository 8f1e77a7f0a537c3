/* actions.h -- button actions: requests that ledd runs itself on a button's edge.
 *
 * A [button NAME] section may carry `on_press = toggle red` and
 * `on_release = off green`. An action is a request without its id, in the
 * protocol's own grammar: any verb that verbs[] (protocol.c) marks `action`,
 * parsed by protocol_parse_command(), verbs in any case. It runs inside ledd
 * on the debounced edge through the same handler as a client's request
 * (commands_run_action, commands.c), so it works with no client at all and
 * changes exactly what that request would: seq, events, state file.
 *
 * An LED argument must be a configured LED's name (ids would change with the
 * file's order). config.c checks the names once the whole file is read,
 * since an [led] section may come after the button that names it.
 */
#ifndef LEDD_ACTIONS_H
#define LEDD_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "defaults.h"

/* Longest canonical action: a verb of up to 15 letters and LEDD_MAX_ARGS
 * arguments (names of LEDD_MAX_NAME, or numbers of fewer digits). */
#define ACTION_TEXT_MAX         (16 + LEDD_MAX_ARGS * (1 + LEDD_MAX_NAME))
/* A button's action fields in the state JSON: "on_press":"...","on_release":"..." */
#define ACTION_BUTTON_JSON_MAX  (2 * ACTION_TEXT_MAX + 32)

struct action {
	char text[ACTION_TEXT_MAX + 1]; /* canonical ("blink red 100 250"); "" = none */
	unsigned int line;              /* config line, for errors found at the end */
};

/* Parse an action's text (the value of on_press/on_release) into its
 * canonical form. 0, or -1 with the problem (no file:line: the config parser
 * adds it) in err. */
int action_parse(const char *text, struct action *out, char *err, size_t errlen);

/* The LED names the action's arguments give, into names; their count. */
size_t action_led_names(const struct action *a, char names[][LEDD_MAX_NAME + 1], size_t max);

/* Do two actions do the same thing (where in the file they were written aside)? */
bool action_equal(const struct action *a, const struct action *b);

/* The action as a JSON value: "toggle red", or null for none. The text never
 * needs escaping (names are [A-Za-z0-9_-]). */
void action_json(const struct action *a, char *out, size_t outlen);

#endif

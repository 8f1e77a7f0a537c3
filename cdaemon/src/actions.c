/* actions.c -- button actions (see actions.h): parse, name their LEDs, describe.
 *
 * There is no action grammar here: the text goes through the protocol's own
 * parser, and only the verbs verbs[] marks `action` are accepted. What this
 * file adds is the config file's wording: a misshapen action is answered
 * with the list of action forms (built from verbs[]), a bad value with the
 * parser's own message ("blink period '10' is not 20-60000 ms"), and the
 * action is kept in canonical form (verb in lower case, numbers plain), which
 * is what the state JSON shows and what a reload compares.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "actions.h"
#include "errmsg.h"
#include "protocol.h"

/* "on|off|toggle LED, blink LED ON_MS OFF_MS, all on|off": every action verb
 * in its action form, verbs with the same arguments joined by '|'. */
static void action_forms(char *out, size_t outlen)
{
	char prev_args[LEDD_MAX_REQUEST] = "", usage[LEDD_MAX_REQUEST];
	size_t len = 0;
	bool first = true;

	out[0] = '\0';
	for (size_t v = 0; v < nverbs; v++) {
		if (!verbs[v].action || protocol_usage(&verbs[v], true, usage, sizeof(usage)) < 0)
			continue;
		char *args = usage + strcspn(usage, " ");
		int n;

		if (!first && strcmp(args, prev_args) == 0) {
			/* Same arguments as the previous verb: "on|off" + " LED". */
			len -= strlen(prev_args);
			n = snprintf(out + len, outlen - len, "|%.*s%s", (int)(args - usage), usage,
				     args);
		} else {
			n = snprintf(out + len, outlen - len, "%s%s", first ? "" : ", ", usage);
		}
		if (n < 0 || (size_t)n >= outlen - len)
			return;
		len += (size_t)n;
		snprintf(prev_args, sizeof(prev_args), "%s", args);
		first = false;
	}
}

static int syntax_error(const char *text, char *err, size_t errlen)
{
	char forms[512];

	action_forms(forms, sizeof(forms));
	set_err(err, errlen, "'%.*s': expected %s", protocol_cut(text, 60), text, forms);
	return -1;
}

int action_parse(const char *text, struct action *out, char *err, size_t errlen)
{
	struct request req;             /* under 1 KiB */
	char msg[256];
	size_t len = 0;
	int n;

	memset(out, 0, sizeof(*out));
	if (protocol_parse_command(text, strlen(text), &req, msg, sizeof(msg)) != PROTO_OK) {
		if (req.bad_arg < 0)
			return syntax_error(text, err, errlen);
		set_err(err, errlen, "%s", msg);        /* a value, quoted in msg */
		return -1;
	}
	if (!req.verb->action)
		return syntax_error(text, err, errlen);
	/* Canonical form: lower-case verb, arguments as the parser read them. */
	for (const char *c = req.verb->name; *c; c++)
		out->text[len++] = (char)tolower((unsigned char)*c);
	for (size_t a = 0; a < req.nargs; a++) {
		switch (req.verb->args[a].kind) {
		case ARG_UINT:
			n = snprintf(out->text + len, sizeof(out->text) - len, " %lu", req.num[a]);
			break;
		case ARG_ONOFF:
			n = snprintf(out->text + len, sizeof(out->text) - len, " %s", req.on ? "on" : "off");
			break;
		default:
			n = snprintf(out->text + len, sizeof(out->text) - len, " %s", req.args[a]);
			break;
		}
		if (n < 0 || (size_t)n >= sizeof(out->text) - len) {
			set_err(err, errlen, "'%.*s': longer than %d characters", protocol_cut(text, 60),
				text, ACTION_TEXT_MAX);
			memset(out, 0, sizeof(*out));
			return -1;
		}
		len += (size_t)n;
	}
	return 0;
}

size_t action_led_names(const struct action *a, char names[][LEDD_MAX_NAME + 1], size_t max)
{
	struct request req;
	char msg[256];
	size_t n = 0;

	if (!a->text[0] || protocol_parse_command(a->text, strlen(a->text), &req, msg, sizeof(msg)))
		return 0;
	for (size_t i = 0; i < req.nargs && n < max; i++)
		if (req.verb->args[i].kind == ARG_LED)
			snprintf(names[n++], LEDD_MAX_NAME + 1, "%s", req.args[i]);
	return n;
}

bool action_equal(const struct action *a, const struct action *b)
{
	return strcmp(a->text, b->text) == 0;
}

void action_json(const struct action *a, char *out, size_t outlen)
{
	if (a->text[0])
		snprintf(out, outlen, "\"%s\"", a->text);
	else
		snprintf(out, outlen, "null");
}

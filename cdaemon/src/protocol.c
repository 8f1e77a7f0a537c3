/* protocol.c -- ledd's verbs[] table, the request parser, reply formatting.
 *
 * A request is "<id> SP <VERB> [SP <arg>]*" (the LF already stripped). The
 * line is checked as a whole first (length, UTF-8, control bytes), but the
 * id is read before that, so even a rejected line is answered with its own
 * id whenever the id itself is readable (the id names the client's reply
 * FIFO, reply/<id>, so it is the only way back). The rest, "<VERB> [<arg>]*",
 * is what a button action says too (protocol_parse_command): one grammar.
 *
 * Arguments are checked against their spec in verbs[] (kind and range), so
 * a handler only resolves names. The same table gives usage lines, the
 * action syntax in config errors, and HELLO's "verbs" report. Everything
 * here is pure: no I/O, no mutable globals, so cdaemon/fuzz/ can link this
 * file alone (with -DPROTOCOL_PARSER_ONLY, which drops the handlers).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "errmsg.h"
#include "protocol.h"
#include "textbuf.h"

static const char *const code_names[] = {
	[PROTO_OK] = "ok",
	[PROTO_BADREQUEST] = "badrequest",
	[PROTO_BADVERB] = "badverb",
	[PROTO_BADARG] = "badarg",
	[PROTO_NOTFOUND] = "notfound",
	[PROTO_NOTSUPPORTED] = "notsupported",
	[PROTO_GPIO] = "gpio",
	[PROTO_BUSY] = "busy",
	[PROTO_INTERNAL] = "internal",
};

/* The handlers, left out when the parser is built alone (the fuzzers). */
#ifdef PROTOCOL_PARSER_ONLY
#define H(fn) NULL
#else
#define H(fn) fn
#endif

#define NONE            { ARG_END, NULL, NULL, 0, 0, NULL }
#define LED             { ARG_LED, "led", NULL, 0, 0, NULL }
#define BUTTON          { ARG_BUTTON, "button", NULL, 0, 0, NULL }
#define ONOFF           { ARG_ONOFF, "state", NULL, 0, 0, NULL }
#define PERIOD(name)    { ARG_UINT, name, "blink period", LEDD_BLINK_MIN_MS, LEDD_BLINK_MAX_MS, "ms" }
#define PERCENT         { ARG_UINT, "percent", "brightness", 0, LEDD_BRIGHTNESS_MAX, "%" }
#define HZ              { ARG_UINT, "hz", "PWM frequency", LEDD_PWM_HZ_MIN, LEDD_PWM_HZ_MAX, "Hz" }
#define ACTION          true

/* The one table of ledd's verbs (docs/protocol.md): name, arguments (the
 * count is exact), whether a button action may run it, handler, and for LED
 * verbs (cmd_led: one LED; cmd_all: every LED, all or nothing) the change to
 * an LED. */
const struct verb verbs[] = {
	{ "HELLO",   { NONE },                            !ACTION, H(cmd_hello), NULL },
	{ "STATE",   { NONE },                            !ACTION, H(cmd_state), NULL },
	{ "ON",      { LED },                             ACTION,  H(cmd_led), H(state_led_on) },
	{ "OFF",     { LED },                             ACTION,  H(cmd_led), H(state_led_off) },
	{ "TOGGLE",  { LED },                             ACTION,  H(cmd_led), H(state_led_toggle) },
	{ "BLINK",   { LED, PERIOD("on_ms"), PERIOD("off_ms") }, ACTION, H(cmd_led), H(state_led_blink) },
	{ "ALL",     { ONOFF },                           ACTION,  H(cmd_all), H(state_all_onoff) },
	{ "BRIGHTNESS", { LED, PERCENT },                 ACTION,  H(cmd_led), H(state_led_brightness) },
	{ "ALL_BRIGHTNESS", { PERCENT },                  ACTION,  H(cmd_all), H(state_all_brightness) },
	{ "FREQUENCY", { LED, HZ },                       !ACTION, H(cmd_led), H(state_led_frequency) },
	{ "PRESS",   { BUTTON },                          !ACTION, H(cmd_press), NULL },
	{ "RELEASE", { BUTTON },                          !ACTION, H(cmd_release), NULL },
	{ "WATCH",   { NONE },                            !ACTION, H(cmd_watch), NULL },
};
const size_t nverbs = sizeof(verbs) / sizeof(verbs[0]);

static const char *const kind_names[] = {
	[ARG_END] = "end", [ARG_LED] = "led", [ARG_BUTTON] = "button", [ARG_UINT] = "uint",
	[ARG_ONOFF] = "onoff",
};

const char *protocol_code_name(enum proto_code code)
{
	if ((size_t)code >= sizeof(code_names) / sizeof(code_names[0]))
		return "internal";
	return code_names[code];
}

static int is_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int protocol_valid_name(const char *name, size_t maxlen)
{
	size_t n = strlen(name);

	if (n == 0 || n > maxlen)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char((unsigned char)name[i]))
			return 0;
	return 1;
}

int protocol_parse_uint(const char *s, unsigned long *value)
{
	size_t n = strlen(s);
	unsigned long v = 0;

	if (n == 0 || n > LEDD_MAX_DIGITS)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	*value = v;
	return 1;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid.
 * Rejects overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n;
	unsigned int cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int protocol_cut(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	/* Back up over continuation bytes (10xxxxxx) to the start of the
	 * character that crosses the cut, unless it ends exactly there. */
	if (n == max && s[n] != '\0') {
		size_t start = n;
		while (start > 0 && ((unsigned char)s[start] & 0xc0) == 0x80)
			start--;
		n = start;
	}
	return (int)n;
}

/* Copy the id (the bytes before the first space) if it is well formed. */
static void read_id(const char *line, size_t len, struct request *req)
{
	size_t n = 0;

	while (n < len && line[n] != ' ')
		n++;
	strcpy(req->id, "-");
	if (n == 0 || n > LEDD_MAX_ID)
		return;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char((unsigned char)line[i]))
			return;
	memcpy(req->id, line, n);
	req->id[n] = '\0';
}

/* Whole-line checks: UTF-8, no control bytes. */
static enum proto_code check_bytes(const char *line, size_t len, char *err, size_t errlen)
{
	const unsigned char *s = (const unsigned char *)line;

	for (size_t i = 0; i < len;) {
		if (s[i] == '\0') {
			set_err(err, errlen, "NUL byte at offset %zu", i);
			return PROTO_BADREQUEST;
		}
		if (s[i] == '\r') {
			set_err(err, errlen, "carriage return at offset %zu (lines end with LF only)", i);
			return PROTO_BADREQUEST;
		}
		if (s[i] < 0x20 || s[i] == 0x7f) {
			set_err(err, errlen, "control byte 0x%02x at offset %zu", s[i], i);
			return PROTO_BADREQUEST;
		}
		size_t n = utf8_seq(s + i, len - i);
		if (n == 0) {
			set_err(err, errlen, "invalid UTF-8 at offset %zu", i);
			return PROTO_BADREQUEST;
		}
		i += n;
	}
	return PROTO_OK;
}

static size_t count_args(const struct verb *v)
{
	size_t n = 0;

	while (n < LEDD_MAX_ARGS && v->args[n].kind != ARG_END)
		n++;
	return n;
}

static enum proto_code check_name_arg(const char *arg, const char *kind, char *err, size_t errlen)
{
	if (strlen(arg) > LEDD_MAX_NAME) {
		set_err(err, errlen, "%s name '%.*s...' is longer than %d characters", kind,
			protocol_cut(arg, 30), arg, LEDD_MAX_NAME);
		return PROTO_BADARG;
	}
	if (protocol_valid_name(arg, LEDD_MAX_NAME))
		return PROTO_OK;
	set_err(err, errlen, "'%.*s' is neither an index nor a name", protocol_cut(arg, 40), arg);
	return PROTO_BADARG;
}

/* Check argument a against its spec; fill req->num / req->on. verb is the
 * verb as the client wrote it, for messages. */
static enum proto_code check_arg(struct request *req, size_t a, const char *verb, char *err,
				 size_t errlen)
{
	const struct arg_spec *spec = &req->verb->args[a];
	const char *arg = req->args[a];
	unsigned long v;

	switch (spec->kind) {
	case ARG_LED:
		return check_name_arg(arg, "LED", err, errlen);
	case ARG_BUTTON:
		return check_name_arg(arg, "button", err, errlen);
	case ARG_UINT:
		if (protocol_parse_uint(arg, &v) && v >= spec->min && v <= spec->max) {
			req->num[a] = v;
			return PROTO_OK;
		}
		set_err(err, errlen, "%s '%.*s' is not %lu-%lu%s%s", spec->what, protocol_cut(arg, 20),
			arg, spec->min, spec->max, spec->unit ? " " : "", spec->unit ? spec->unit : "");
		return PROTO_BADARG;
	case ARG_ONOFF:
		if (strcasecmp(arg, "ON") == 0 || strcasecmp(arg, "OFF") == 0) {
			req->on = strcasecmp(arg, "ON") == 0;
			return PROTO_OK;
		}
		set_err(err, errlen, "'%s %.*s': %s takes on or off", verb, protocol_cut(arg, 20), arg,
			verb);
		return PROTO_BADARG;
	case ARG_END:
		break;
	}
	set_err(err, errlen, "unhandled argument kind");
	return PROTO_INTERNAL;
}

/* "<VERB> [<arg>]*", already checked byte by byte: split on single spaces,
 * find the verb in verbs[], check its arguments. */
static enum proto_code parse_words(const char *text, size_t len, struct request *req, char *err,
				   size_t errlen)
{
	char words[1 + LEDD_MAX_ARGS][LEDD_MAX_REQUEST];
	size_t nwords = 0, start = 0;
	enum proto_code rc;

	/* An empty field (two spaces, leading or trailing space) is a syntax
	 * error, not something to guess around. */
	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] != ' ')
			continue;
		if (i == start) {
			set_err(err, errlen, "fields are separated by exactly one space");
			return PROTO_BADREQUEST;
		}
		if (nwords == 1 + LEDD_MAX_ARGS) {
			set_err(err, errlen, "too many arguments");
			return PROTO_BADARG;
		}
		memcpy(words[nwords], text + start, i - start);
		words[nwords][i - start] = '\0';
		nwords++;
		start = i + 1;
	}
	for (size_t v = 0; v < nverbs; v++) {
		char usage[LEDD_MAX_REQUEST];

		if (strcasecmp(words[0], verbs[v].name) != 0)
			continue;
		req->verb = &verbs[v];
		req->nargs = nwords - 1;
		if (req->nargs != count_args(req->verb)) {
			protocol_usage(req->verb, false, usage, sizeof(usage));
			set_err(err, errlen, "usage: %s", usage);
			return PROTO_BADARG;
		}
		for (size_t a = 0; a < req->nargs; a++) {
			memcpy(req->args[a], words[1 + a], sizeof(req->args[a]));
			rc = check_arg(req, a, words[0], err, errlen);
			if (rc != PROTO_OK) {
				req->bad_arg = (int)a;
				return rc;
			}
		}
		return PROTO_OK;
	}
	set_err(err, errlen, "unknown verb '%.*s'", protocol_cut(words[0], 32), words[0]);
	return PROTO_BADVERB;
}

static void clear(struct request *req)
{
	memset(req, 0, sizeof(*req));
	strcpy(req->id, "-");
	req->bad_arg = -1;
}

enum proto_code protocol_parse_command(const char *text, size_t len, struct request *req,
				       char *err, size_t errlen)
{
	enum proto_code rc;

	clear(req);
	if (len >= LEDD_MAX_REQUEST) {
		set_err(err, errlen, "request longer than %d bytes", LEDD_MAX_REQUEST);
		return PROTO_BADREQUEST;
	}
	rc = check_bytes(text, len, err, errlen);
	if (rc != PROTO_OK)
		return rc;
	return parse_words(text, len, req, err, errlen);
}

enum proto_code protocol_parse(const char *line, size_t len, struct request *req,
			       char *err, size_t errlen)
{
	enum proto_code rc;
	size_t idlen;

	clear(req);
	read_id(line, len < LEDD_MAX_REQUEST ? len : LEDD_MAX_REQUEST, req);
	if (len >= LEDD_MAX_REQUEST) {
		set_err(err, errlen, "request longer than %d bytes", LEDD_MAX_REQUEST);
		return PROTO_BADREQUEST;
	}
	rc = check_bytes(line, len, err, errlen);
	if (rc != PROTO_OK)
		return rc;
	if (len == 0) {
		set_err(err, errlen, "empty request");
		return PROTO_BADREQUEST;
	}
	if (strcmp(req->id, "-") == 0) {
		set_err(err, errlen, "request id must be 1-%d of [A-Za-z0-9_-]", LEDD_MAX_ID);
		return PROTO_BADREQUEST;
	}
	idlen = strlen(req->id);
	if (idlen == len) {
		set_err(err, errlen, "missing verb");
		return PROTO_BADREQUEST;
	}
	return parse_words(line + idlen + 1, len - idlen - 1, req, err, errlen);
}

/* --- describing the table ---------------------------------------------- */

/* Upper or lower case copy of s into b. */
static void put_case(struct textbuf *b, const char *s, bool upper)
{
	for (; *s; s++)
		put(b, "%c", upper ? toupper((unsigned char)*s) : tolower((unsigned char)*s));
}

int protocol_usage(const struct verb *v, bool action_form, char *out, size_t outlen)
{
	struct textbuf b = { .p = out, .cap = outlen };

	put_case(&b, v->name, !action_form);
	for (size_t a = 0; a < count_args(v); a++) {
		const struct arg_spec *spec = &v->args[a];

		put(&b, " ");
		if (spec->kind == ARG_ONOFF)
			put(&b, "%s", action_form ? "on|off" : "ON|OFF");
		else if (action_form)
			put_case(&b, spec->name, true);
		else
			put(&b, "<%s>", spec->name);
	}
	return textbuf_result(&b);
}

int protocol_verbs_json(char *out, size_t outlen)
{
	struct textbuf b = { .p = out, .cap = outlen };

	put(&b, "[");
	for (size_t v = 0; v < nverbs; v++) {
		put(&b, "%s{\"name\":\"%s\",\"args\":[", v ? "," : "", verbs[v].name);
		for (size_t a = 0; a < count_args(&verbs[v]); a++) {
			const struct arg_spec *spec = &verbs[v].args[a];

			put(&b, "%s{\"name\":\"%s\",\"kind\":\"%s\"", a ? "," : "", spec->name,
			    kind_names[spec->kind]);
			if (spec->kind == ARG_UINT)
				put(&b, ",\"min\":%lu,\"max\":%lu,\"unit\":\"%s\"", spec->min, spec->max,
				    spec->unit ? spec->unit : "");
			if (spec->kind == ARG_ONOFF)
				put(&b, ",\"values\":[\"ON\",\"OFF\"]");
			put(&b, "}");
		}
		put(&b, "],\"action\":%s}", verbs[v].action ? "true" : "false");
	}
	put(&b, "]");
	return textbuf_result(&b);
}

int protocol_format_ok(char *out, size_t outlen, const char *id, const char *payload)
{
	int n = snprintf(out, outlen, "%s OK %s\n", id, payload);

	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return n;
}

int protocol_format_err(char *out, size_t outlen, const char *id, enum proto_code code,
			const char *message)
{
	int n = snprintf(out, outlen, "%s ERR %s %s\n", id, protocol_code_name(code), message);

	if (n < 0 || (size_t)n >= outlen)
		return -1;
	/* The message may quote client bytes: never let them break the line. */
	for (int i = 0; i < n - 1; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = '?';
	return n;
}

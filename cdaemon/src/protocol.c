/* protocol.c -- parse request lines and format replies (docs/protocol.md).
 *
 * A request is "<id> SP <VERB> [SP <arg>]*" (the LF already stripped). The
 * line is checked as a whole first (length, UTF-8, control bytes), but the
 * id is read before that, so even a rejected line is answered with its own
 * id whenever the id itself is readable (the id names the client's reply
 * FIFO, reply/<id>, so it is the only way back). Everything here is pure: no I/O,
 * no globals, so cdaemon/fuzz/ can link this file alone.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "errmsg.h"
#include "protocol.h"

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

/* What each argument of a verb must look like (check_args reads this). */
enum arg_kind {
	ARG_END,        /* no more arguments */
	ARG_TARGET,     /* an LED or button: an index or a configured name (resolved later) */
	ARG_PERIOD,     /* a blink period in ms, LEDD_BLINK_MIN_MS..LEDD_BLINK_MAX_MS */
	ARG_ONOFF,      /* ON or OFF, any case */
};

/* Each verb with the kinds of its arguments: the count is exact. */
static const struct {
	const char *name;
	enum verb verb;
	enum arg_kind args[LEDD_MAX_ARGS + 1];
	const char *usage;
} verbs[] = {
	{ "HELLO", VERB_HELLO, { ARG_END }, "HELLO" },
	{ "STATE", VERB_STATE, { ARG_END }, "STATE" },
	{ "ON", VERB_ON, { ARG_TARGET }, "ON <led>" },
	{ "OFF", VERB_OFF, { ARG_TARGET }, "OFF <led>" },
	{ "TOGGLE", VERB_TOGGLE, { ARG_TARGET }, "TOGGLE <led>" },
	{ "BLINK", VERB_BLINK, { ARG_TARGET, ARG_PERIOD, ARG_PERIOD }, "BLINK <led> <on_ms> <off_ms>" },
	{ "ALL", VERB_ALL, { ARG_ONOFF }, "ALL ON|OFF" },
	{ "PRESS", VERB_PRESS, { ARG_TARGET }, "PRESS <button>" },
	{ "RELEASE", VERB_RELEASE, { ARG_TARGET }, "RELEASE <button>" },
	{ "WATCH", VERB_WATCH, { ARG_END }, "WATCH" },
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

static size_t count_args(const enum arg_kind *kinds)
{
	size_t n = 0;

	while (n < LEDD_MAX_ARGS && kinds[n] != ARG_END)
		n++;
	return n;
}

/* Check argument a against its kind; fill req->num / req->on. */
static enum proto_code check_arg(struct request *req, size_t a, enum arg_kind kind,
				 const char *usage, char *err, size_t errlen)
{
	const char *arg = req->args[a];

	switch (kind) {
	case ARG_TARGET:
		if (protocol_valid_name(arg, LEDD_MAX_NAME))
			return PROTO_OK;
		set_err(err, errlen, "'%.*s' is neither an index nor a name", protocol_cut(arg, 40), arg);
		return PROTO_BADARG;
	case ARG_PERIOD: {
		unsigned long v;
		if (!protocol_parse_uint(arg, &v)) {
			set_err(err, errlen, "usage: %s (periods are plain decimal ms)", usage);
			return PROTO_BADARG;
		}
		if (v < LEDD_BLINK_MIN_MS || v > LEDD_BLINK_MAX_MS) {
			set_err(err, errlen, "blink periods must be %d-%d ms",
				 LEDD_BLINK_MIN_MS, LEDD_BLINK_MAX_MS);
			return PROTO_BADARG;
		}
		req->num[a] = v;
		return PROTO_OK;
	}
	case ARG_ONOFF:
		if (strcasecmp(arg, "ON") == 0 || strcasecmp(arg, "OFF") == 0) {
			req->on = strcasecmp(arg, "ON") == 0;
			return PROTO_OK;
		}
		set_err(err, errlen, "usage: %s", usage);
		return PROTO_BADARG;
	case ARG_END:
		break;
	}
	set_err(err, errlen, "unhandled argument kind");
	return PROTO_INTERNAL;
}

enum proto_code protocol_parse(const char *line, size_t len, struct request *req,
			       char *err, size_t errlen)
{
	char fields[2 + LEDD_MAX_ARGS][LEDD_MAX_REQUEST];
	size_t nfields = 0, start = 0;
	enum proto_code rc;

	memset(req, 0, sizeof(*req));
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
	/* Split on single spaces: an empty field (two spaces, leading or
	 * trailing space) is a syntax error, not something to guess around. */
	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (i == start) {
			set_err(err, errlen, "fields are separated by exactly one space");
			return PROTO_BADREQUEST;
		}
		if (nfields == 2 + LEDD_MAX_ARGS) {
			set_err(err, errlen, "too many arguments");
			return PROTO_BADARG;
		}
		memcpy(fields[nfields], line + start, i - start);
		fields[nfields][i - start] = '\0';
		nfields++;
		start = i + 1;
	}
	if (nfields < 2) {
		set_err(err, errlen, "missing verb");
		return PROTO_BADREQUEST;
	}
	for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
		if (strcasecmp(fields[1], verbs[v].name) != 0)
			continue;
		req->verb = verbs[v].verb;
		req->nargs = nfields - 2;
		if (req->nargs != count_args(verbs[v].args)) {
			set_err(err, errlen, "usage: %s", verbs[v].usage);
			return PROTO_BADARG;
		}
		for (size_t a = 0; a < req->nargs; a++) {
			memcpy(req->args[a], fields[2 + a], sizeof(req->args[a]));
			rc = check_arg(req, a, verbs[v].args[a], verbs[v].usage, err, errlen);
			if (rc != PROTO_OK)
				return rc;
		}
		return PROTO_OK;
	}
	set_err(err, errlen, "unknown verb '%.*s'", protocol_cut(fields[1], 32), fields[1]);
	return PROTO_BADVERB;
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

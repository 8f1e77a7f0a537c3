/* protocol.h -- ledd's FIFO protocol (docs/protocol.md): the table of verbs,
 * the request line parser and reply formatting.
 *
 * verbs[] (protocol.c) is the one grammar of ledd: each verb with the kinds
 * and ranges of its arguments, whether a button may run it as an action, and
 * the handler that answers it. The daemon dispatches through the table,
 * button actions (actions.c) are parsed by the same parser, and HELLO reports
 * the table to clients (protocol_verbs_json). A new verb is a table entry,
 * its handler and its state, nothing else.
 *
 * The parser is pure (no I/O, no globals), so cdaemon/fuzz/ links protocol.c
 * alone, built with -DPROTOCOL_PARSER_ONLY: the table then names no handler.
 * Names of LEDs and buttons are not resolved here: the parser only checks the
 * shape of each argument.
 */
#ifndef LEDD_PROTOCOL_H
#define LEDD_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "defaults.h"

/* Reply error codes; PROTO_OK (0) is success. */
enum proto_code {
	PROTO_OK, PROTO_BADREQUEST, PROTO_BADVERB, PROTO_BADARG, PROTO_NOTFOUND,
	PROTO_NOTSUPPORTED, PROTO_GPIO, PROTO_BUSY, PROTO_INTERNAL,
};

/* What an argument must look like. */
enum arg_kind {
	ARG_END,        /* no more arguments */
	ARG_LED,        /* an LED: an index or a configured name (the handler resolves it) */
	ARG_BUTTON,     /* a button: the same */
	ARG_UINT,       /* plain decimal, min..max */
	ARG_ONOFF,      /* ON or OFF, any case */
};

struct arg_spec {
	enum arg_kind kind;
	const char *name;               /* "on_ms": usage lines and HELLO */
	const char *what;               /* ARG_UINT: "blink period", for error messages */
	unsigned long min, max;         /* ARG_UINT */
	const char *unit;               /* ARG_UINT: "ms" */
};

struct ledd;            /* ledd.h */
struct reply;           /* commands.c */
struct ledd_state;      /* state.h */
struct request;

/* A verb's handler: answer the request (reply payload or error in r). */
typedef void verb_run_fn(struct ledd *d, const struct request *req, struct reply *r);
/* The change an LED verb makes to one LED of the model; true if its state
 * changed. cmd_led runs it on the request's LED, cmd_all on every LED (all
 * or nothing): they resolve the LED, drive the line, undo the change if the
 * kernel refuses it, count it. */
typedef bool led_change_fn(struct ledd_state *st, size_t led, const struct request *req,
			   uint64_t now_ns);

struct verb {
	const char *name;                       /* upper case; matched in any case */
	struct arg_spec args[LEDD_MAX_ARGS + 1]; /* up to ARG_END: the count is exact */
	bool action;                            /* a button's on_press/on_release may run it */
	verb_run_fn *run;
	led_change_fn *change;                  /* LED verbs only (run = cmd_led or cmd_all) */
};

extern const struct verb verbs[];
extern const size_t nverbs;

struct request {
	char id[LEDD_MAX_ID + 1];       /* "-" when the id could not be read */
	const struct verb *verb;        /* its verbs[] entry */
	size_t nargs;
	char args[LEDD_MAX_ARGS][LEDD_MAX_REQUEST];
	unsigned long num[LEDD_MAX_ARGS]; /* ARG_UINT arguments by position */
	int on;                         /* an ARG_ONOFF argument: 1 = ON, 0 = OFF */
	int bad_arg;                    /* the argument whose value was refused, or -1 */
};

/* Parse one request line of `len` bytes, without its LF. A line of
 * LEDD_MAX_REQUEST bytes or more is "too long" (the caller passes the first
 * LEDD_MAX_REQUEST bytes of an overlong line). Always fills req->id (the
 * request's id, or "-"). Returns PROTO_OK or an error code with a human
 * message in err. */
enum proto_code protocol_parse(const char *line, size_t len, struct request *req,
			       char *err, size_t errlen);

/* Parse "<VERB> [<arg>]*" (a request without its id: what a button action
 * says). Same checks and messages as protocol_parse; req->id is "-". */
enum proto_code protocol_parse_command(const char *text, size_t len, struct request *req,
				       char *err, size_t errlen);

/* The verb's usage: "BLINK <led> <on_ms> <off_ms>", or in the lower-case
 * form of a config file's action, "blink LED ON_MS OFF_MS". */
int protocol_usage(const struct verb *v, bool action_form, char *out, size_t outlen);

/* HELLO's report of verbs[]: [{"name":"BLINK","args":[{"name":"led","kind":"led"},
 * {"name":"on_ms","kind":"uint","min":20,"max":60000,"unit":"ms"},...],"action":true},...].
 * Its length, or -1 if it does not fit. */
int protocol_verbs_json(char *out, size_t outlen);

/* "badrequest", "badverb", ... */
const char *protocol_code_name(enum proto_code code);

/* Format "<id> OK <payload>\n" / "<id> ERR <code> <message>\n" into out.
 * Control characters in the message become '?'. Return the length, or -1 if
 * out (at most LEDD_LINE_MAX is ever needed) is too small. */
int protocol_format_ok(char *out, size_t outlen, const char *id, const char *payload);
int protocol_format_err(char *out, size_t outlen, const char *id, enum proto_code code,
			const char *message);

/* The length of s cut to at most max bytes without splitting a UTF-8
 * character, for quoting client bytes in messages: "%.*s", protocol_cut(s, 40), s. */
int protocol_cut(const char *s, size_t max);

/* 1 if name is 1..maxlen characters of [A-Za-z0-9_-]. */
int protocol_valid_name(const char *name, size_t maxlen);

/* 1 if s is 1..LEDD_MAX_DIGITS plain decimal digits; *value gets the number. */
int protocol_parse_uint(const char *s, unsigned long *value);

/* The handlers verbs[] names. commands.c: */
verb_run_fn cmd_hello, cmd_state, cmd_led, cmd_all, cmd_press, cmd_release, cmd_watch;
/* state.c: the LED verbs' changes. */
led_change_fn state_led_on, state_led_off, state_led_toggle, state_led_blink, state_all_onoff,
	state_led_brightness, state_all_brightness, state_led_frequency;

#endif

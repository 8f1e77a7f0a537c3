/* protocol.h -- the request line parser and reply formatting of ledd's FIFO
 * protocol (docs/protocol.md).
 *
 * Pure functions over buffers, no I/O and no global state, so they can be
 * compiled alone into a fuzzer (cdaemon/fuzz/). Names of LEDs and buttons are
 * not resolved here: the parser only checks the shape of each argument.
 */
#ifndef LEDD_PROTOCOL_H
#define LEDD_PROTOCOL_H

#include <stddef.h>

#include "defaults.h"

enum verb {
	VERB_HELLO, VERB_STATE, VERB_ON, VERB_OFF, VERB_TOGGLE, VERB_BLINK,
	VERB_ALL, VERB_PRESS, VERB_RELEASE, VERB_WATCH,
};

/* Reply error codes; PROTO_OK (0) is success. */
enum proto_code {
	PROTO_OK, PROTO_BADREQUEST, PROTO_BADVERB, PROTO_BADARG, PROTO_NOTFOUND,
	PROTO_NOTSUPPORTED, PROTO_GPIO, PROTO_BUSY, PROTO_INTERNAL,
};

struct request {
	char id[LEDD_MAX_ID + 1];       /* "-" when the id could not be read */
	enum verb verb;
	size_t nargs;
	char args[LEDD_MAX_ARGS][LEDD_MAX_REQUEST];
	unsigned long num[LEDD_MAX_ARGS]; /* numeric arguments by position (BLINK: 1, 2) */
	int on;                         /* an ON|OFF argument: 1 = ON, 0 = OFF */
};

/* Parse one request line of `len` bytes, without its LF. A line of
 * LEDD_MAX_REQUEST bytes or more is "too long" (the caller passes the first
 * LEDD_MAX_REQUEST bytes of an overlong line). Always fills req->id (the
 * request's id, or "-"). Returns PROTO_OK or an error code with a human
 * message in err. */
enum proto_code protocol_parse(const char *line, size_t len, struct request *req,
			       char *err, size_t errlen);

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

#endif

/* fuzz_request.c -- libFuzzer harness for protocol_parse() (cdaemon/src/protocol.c).
 *
 * Every input is one request line without its LF, copied into a buffer of
 * exactly its size so ASan catches a read one byte past the end (the daemon
 * hands the parser lines that are not NUL-terminated). Beyond "no crash, no
 * UB", it checks the parser's promises, cheaply, on every input:
 *
 *   - the id is always "-" or 1..LEDD_MAX_ID of [A-Za-z0-9_-] (it names the
 *     reply FIFO), NUL-terminated;
 *   - an error always has a code other than PROTO_INTERNAL and a non-empty
 *     message, and the ERR reply built from it is one line of printable bytes;
 *   - a parsed request has a known verb with its exact argument count, names
 *     and numbers within the protocol's limits, and parsing is deterministic;
 *   - a parsed request, written back out canonically, parses to the same thing.
 *
 * Build: make -C cdaemon/fuzz (clang -fsanitize=fuzzer,address,undefined).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

#define CHECK(cond) do { if (!(cond)) fail_check(#cond, __LINE__); } while (0)

static void fail_check(const char *what, int line)
{
	fprintf(stderr, "fuzz_request.c:%d: property violated: %s\n", line, what);
	abort();
}

/* An id is a reply FIFO's name: never "." or "..", never a '/'. */
static int is_id_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static void check_id(const struct request *req)
{
	size_t n = strnlen(req->id, sizeof(req->id));

	CHECK(n < sizeof(req->id));
	CHECK(n >= 1 && n <= LEDD_MAX_ID);
	if (strcmp(req->id, "-") != 0)
		for (size_t i = 0; i < n; i++)
			CHECK(is_id_char((unsigned char)req->id[i]));
}

/* An ERR reply must stay one line whatever the message quotes. */
static void check_err_reply(const struct request *req, enum proto_code rc, const char *err)
{
	char out[LEDD_LINE_MAX];
	int n = protocol_format_err(out, sizeof(out), req->id, rc, err);

	CHECK(n > 0 && (size_t)n < sizeof(out));
	CHECK(out[n - 1] == '\n');
	for (int i = 0; i < n - 1; i++)
		CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
	CHECK(strcmp(protocol_code_name(rc), "internal") != 0);
}

static size_t expected_nargs(enum verb verb)
{
	switch (verb) {
	case VERB_HELLO: case VERB_STATE: case VERB_WATCH:
		return 0;
	case VERB_BLINK:
		return 3;
	default:
		return 1;
	}
}

static void check_request(const uint8_t *data, size_t size, const struct request *req)
{
	CHECK(size < LEDD_MAX_REQUEST);
	CHECK(strcmp(req->id, "-") != 0);
	CHECK(req->verb >= VERB_HELLO && req->verb <= VERB_WATCH);
	CHECK(req->nargs == expected_nargs(req->verb));
	for (size_t a = 0; a < req->nargs; a++)
		CHECK(strnlen(req->args[a], LEDD_MAX_REQUEST) < LEDD_MAX_REQUEST);
	switch (req->verb) {
	case VERB_ON: case VERB_OFF: case VERB_TOGGLE: case VERB_PRESS: case VERB_RELEASE:
		CHECK(protocol_valid_name(req->args[0], LEDD_MAX_NAME));
		break;
	case VERB_BLINK:
		CHECK(protocol_valid_name(req->args[0], LEDD_MAX_NAME));
		CHECK(req->num[1] >= LEDD_BLINK_MIN_MS && req->num[1] <= LEDD_BLINK_MAX_MS);
		CHECK(req->num[2] >= LEDD_BLINK_MIN_MS && req->num[2] <= LEDD_BLINK_MAX_MS);
		break;
	case VERB_ALL:
		CHECK(req->on == 0 || req->on == 1);
		break;
	default:
		break;
	}
	/* Everything accepted is printable ASCII or UTF-8, no control bytes. */
	for (size_t i = 0; i < size; i++)
		CHECK(data[i] >= 0x20 && data[i] != 0x7f);
}

/* Write the request back out ("id VERB args") and parse that: same result. */
static void check_round_trip(const struct request *req)
{
	static const char *const names[] = {
		"HELLO", "STATE", "ON", "OFF", "TOGGLE", "BLINK", "ALL", "PRESS", "RELEASE", "WATCH",
	};
	char line[3 * LEDD_MAX_REQUEST], err[256];
	struct request again;
	int n = snprintf(line, sizeof(line), "%s %s", req->id, names[req->verb]);

	for (size_t a = 0; a < req->nargs; a++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %s", req->args[a]);
	CHECK(n > 0 && (size_t)n < LEDD_MAX_REQUEST);
	CHECK(protocol_parse(line, (size_t)n, &again, err, sizeof(err)) == PROTO_OK);
	CHECK(strcmp(again.id, req->id) == 0 && again.verb == req->verb && again.nargs == req->nargs);
	for (size_t a = 0; a < req->nargs; a++)
		CHECK(strcmp(again.args[a], req->args[a]) == 0);
	CHECK(memcmp(again.num, req->num, sizeof(req->num)) == 0 && again.on == req->on);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct request req, again;      /* big: keep them off the stack */
	char err[256], err2[256];
	char *line = malloc(size ? size : 1);   /* exact size: overreads are caught */
	enum proto_code rc, rc2;

	if (!line)
		return 0;
	if (size)
		memcpy(line, data, size);
	memset(err, 'X', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	err[0] = '\0';
	rc = protocol_parse(line, size, &req, err, sizeof(err));
	check_id(&req);
	if (rc != PROTO_OK) {
		CHECK(rc > PROTO_OK && rc < PROTO_INTERNAL);
		CHECK(err[0] != '\0' && strnlen(err, sizeof(err)) < sizeof(err));
		check_err_reply(&req, rc, err);
	} else {
		check_request(data, size, &req);
		check_round_trip(&req);
	}
	/* Deterministic: no hidden state. */
	err2[0] = '\0';
	rc2 = protocol_parse(line, size, &again, err2, sizeof(err2));
	CHECK(rc2 == rc && strcmp(again.id, req.id) == 0);
	if (rc != PROTO_OK)
		CHECK(strcmp(err, err2) == 0);
	free(line);
	return 0;
}

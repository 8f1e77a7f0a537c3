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
 *   - a parsed request has a verbs[] entry with its exact argument count,
 *     names and numbers within the limits that entry gives, and parsing is
 *     deterministic;
 *   - a parsed request, written back out canonically, parses to the same thing,
 *     and so does its id-less form (what a button action says).
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

static size_t expected_nargs(const struct verb *verb)
{
	size_t n = 0;

	while (n < LEDD_MAX_ARGS && verb->args[n].kind != ARG_END)
		n++;
	return n;
}

static void check_request(const uint8_t *data, size_t size, const struct request *req)
{
	CHECK(size < LEDD_MAX_REQUEST);
	CHECK(strcmp(req->id, "-") != 0);
	CHECK(req->verb >= verbs && req->verb < verbs + nverbs);
	CHECK(req->nargs == expected_nargs(req->verb));
	CHECK(req->bad_arg == -1);
	for (size_t a = 0; a < req->nargs; a++) {
		const struct arg_spec *spec = &req->verb->args[a];

		CHECK(strnlen(req->args[a], LEDD_MAX_REQUEST) < LEDD_MAX_REQUEST);
		switch (spec->kind) {
		case ARG_LED: case ARG_BUTTON:
			CHECK(protocol_valid_name(req->args[a], LEDD_MAX_NAME));
			break;
		case ARG_UINT:
			CHECK(req->num[a] >= spec->min && req->num[a] <= spec->max);
			break;
		case ARG_ONOFF:
			CHECK(req->on == 0 || req->on == 1);
			break;
		case ARG_END:
			CHECK(!"an argument past ARG_END");
		}
	}
	/* The documented limits, independent of verbs[]: a wrong table entry
	 * (a 19 ms blink period) must be caught too. */
	if (strcmp(req->verb->name, "BLINK") == 0) {
		CHECK(req->num[1] >= LEDD_BLINK_MIN_MS && req->num[1] <= LEDD_BLINK_MAX_MS);
		CHECK(req->num[2] >= LEDD_BLINK_MIN_MS && req->num[2] <= LEDD_BLINK_MAX_MS);
	}
	/* Everything accepted is printable ASCII or UTF-8, no control bytes. */
	for (size_t i = 0; i < size; i++)
		CHECK(data[i] >= 0x20 && data[i] != 0x7f);
}

/* Write the request back out ("id VERB args") and parse that: same result. */
static void check_round_trip(const struct request *req)
{
	char line[3 * LEDD_MAX_REQUEST], err[256];
	struct request again;
	int n = snprintf(line, sizeof(line), "%s %s", req->id, req->verb->name);

	for (size_t a = 0; a < req->nargs; a++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %s", req->args[a]);
	CHECK(n > 0 && (size_t)n < LEDD_MAX_REQUEST);
	CHECK(protocol_parse(line, (size_t)n, &again, err, sizeof(err)) == PROTO_OK);
	CHECK(strcmp(again.id, req->id) == 0 && again.verb == req->verb && again.nargs == req->nargs);
	for (size_t a = 0; a < req->nargs; a++)
		CHECK(strcmp(again.args[a], req->args[a]) == 0);
	CHECK(memcmp(again.num, req->num, sizeof(req->num)) == 0 && again.on == req->on);
}

/* A button action is a request without its id: the part after the id
 * parses to the same verb and arguments through protocol_parse_command(). */
static void check_command_form(const char *line, size_t size, const struct request *req)
{
	static struct request cmd;
	char err[256];
	size_t idlen = strlen(req->id);

	CHECK(idlen < size && line[idlen] == ' ');
	CHECK(protocol_parse_command(line + idlen + 1, size - idlen - 1, &cmd, err, sizeof(err)) ==
	      PROTO_OK);
	CHECK(strcmp(cmd.id, "-") == 0 && cmd.verb == req->verb && cmd.nargs == req->nargs);
	for (size_t a = 0; a < cmd.nargs; a++)
		CHECK(strcmp(cmd.args[a], req->args[a]) == 0);
	CHECK(memcmp(cmd.num, req->num, sizeof(cmd.num)) == 0 && cmd.on == req->on);
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
		check_command_form(line, size, &req);
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

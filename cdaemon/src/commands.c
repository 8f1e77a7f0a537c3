/* commands.c -- answer request lines: parse, run the verb's handler, reply.
 *
 * protocol.c turns a line into a struct request (shape only) whose verbs[]
 * entry names its handler; the handlers here resolve names against the
 * model, apply the change through changes.c and build the reply, which
 * fifo.c delivers. There is no dispatch switch: a new verb is a verbs[]
 * entry and its handler (for an LED verb, only its change in state.c: cmd_led
 * does the rest). Button actions run through the same handlers
 * (commands_run_action), with the reply going to the log instead of a FIFO.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "errmsg.h"
#include "ledd.h"
#include "log.h"
#include "protocol.h"


struct reply {
	enum proto_code code;
	char msg[256];
	char payload[LEDD_LINE_MAX];
	bool delivered;         /* the handler has answered already (WATCH) */
};

static void reply_state(struct ledd *d, struct reply *r)
{
	if (state_json(&d->st, backend_name(d), r->payload, sizeof(r->payload)) < 0) {
		r->code = PROTO_INTERNAL;
		set_err(r->msg, sizeof(r->msg), "state does not fit in a reply");
	}
}

static int need_led(struct ledd *d, const char *arg, struct reply *r)
{
	int i = state_find_led(&d->st, arg);

	if (i < 0) {
		r->code = PROTO_NOTFOUND;
		set_err(r->msg, sizeof(r->msg), "no LED '%.*s' (ids 0-%zu)", protocol_cut(arg, 40), arg, d->st.nleds - 1);
	}
	return i;
}

/* An LED verb: apply its change (verbs[].change) to the model, drive the
 * line; undo it in the model if the line refuses. */
void cmd_led(struct ledd *d, const struct request *req, struct reply *r)
{
	int i = need_led(d, req->args[0], r);
	struct led_state before;
	bool did;

	if (i < 0)
		return;
	before = d->st.leds[i];
	did = req->verb->change(&d->st, (size_t)i, req, mono_ns());
	if (drive_led(d, (size_t)i) < 0) {
		d->st.leds[i] = before;
		r->code = PROTO_GPIO;
		set_err(r->msg, sizeof(r->msg), "GPIO%u: %s", before.gpio, strerror(errno));
		return;
	}
	if (did)
		changed(d);
	reply_state(d, r);
}

/* ALL, ALL_BRIGHTNESS: the verb's change (verbs[].change) to every LED, or
 * to none. If the kernel refuses one line, the lines already switched are
 * switched back and the model is restored, so the state file, the watchers
 * and seq never see a change that did not happen. A line that
 * refuses to go back keeps its new level, and the model says so: then that
 * much did change, and is counted, saved and told like any change. */
void cmd_all(struct ledd *d, const struct request *req, struct reply *r)
{
	struct led_state before[LEDD_MAX_LEDS];
	bool did = false, stuck = false;
	uint64_t now = mono_ns();

	memcpy(before, d->st.leds, sizeof(before[0]) * d->st.nleds);
	for (size_t i = 0; i < d->st.nleds; i++) {
		did |= req->verb->change(&d->st, i, req, now);
		if (drive_led(d, i) == 0)
			continue;
		r->code = PROTO_GPIO;
		set_err(r->msg, sizeof(r->msg), "GPIO%u: %s", d->st.leds[i].gpio, strerror(errno));
		d->st.leds[i] = before[i];      /* its line never moved */
		for (size_t j = 0; j < i; j++) {
			struct led_state now = d->st.leds[j];
			d->st.leds[j] = before[j];
			if (drive_led(d, j) < 0) {
				d->st.leds[j] = now;    /* still at the new level */
				stuck |= memcmp(&now, &before[j], sizeof(now)) != 0;
			}
		}
		if (stuck)
			changed(d);
		return;
	}
	if (did)
		changed(d);
	reply_state(d, r);
}

/* PRESS / RELEASE: a simulated edge (sim backend only). */
static void button_command(struct ledd *d, const struct request *req, struct reply *r, bool press)
{
	int b = state_find_button(&d->st, req->args[0]);

	if (b < 0) {
		r->code = PROTO_NOTFOUND;
		if (d->st.nbuttons)
			set_err(r->msg, sizeof(r->msg), "no button '%.*s' (ids 0-%zu)",
				 protocol_cut(req->args[0], 40), req->args[0],
				 d->st.nbuttons - 1);
		else
			set_err(r->msg, sizeof(r->msg), "no button '%.*s' (none configured)",
				 protocol_cut(req->args[0], 40), req->args[0]);
		return;
	}
	if (gpio_sim_set_input(d->gpio, d->st.nleds + (size_t)b, press) < 0) {
		if (errno == ENOTSUP) {
			r->code = PROTO_NOTSUPPORTED;
			set_err(r->msg, sizeof(r->msg), "%s needs the sim backend (this is %s)",
				 req->verb->name, backend_name(d));
		} else {
			r->code = PROTO_INTERNAL;
			set_err(r->msg, sizeof(r->msg), "sim input: %s", strerror(errno));
		}
		return;
	}
	handle_edges(d);    /* so the reply already shows the press */
	reply_state(d, r);
}

void cmd_press(struct ledd *d, const struct request *req, struct reply *r)
{
	button_command(d, req, r, true);
}

void cmd_release(struct ledd *d, const struct request *req, struct reply *r)
{
	button_command(d, req, r, false);
}

/* WATCH: the client's reply FIFO becomes its event stream. ledd writes the
 * reply and the current state into it and keeps it open. */
void cmd_watch(struct ledd *d, const struct request *req, struct reply *r)
{
	char payload[LEDD_MAX_ID + 32], ok[2 * LEDD_MAX_ID + 64], event[LEDD_LINE_MAX];
	int n = event_line(d, event, sizeof(event)), k;
	bool gone;

	snprintf(payload, sizeof(payload), "{\"watching\":\"%s\"}", req->id);
	k = protocol_format_ok(ok, sizeof(ok), req->id, payload);
	if (n < 0 || k < 0) {
		r->code = PROTO_INTERNAL;
		set_err(r->msg, sizeof(r->msg), "state does not fit in an event");
		return;
	}
	r->code = fifo_watch_add(&d->fifo, req->id, ok, (size_t)k, event, (size_t)n, &gone,
				 r->msg, sizeof(r->msg));
	if (r->code == PROTO_OK)
		send_status(d);
	r->delivered = r->code == PROTO_OK || gone;
}

/* HELLO: who we are, the button settings the state has no room for, and
 * verbs[] itself, so that a client can check its own table against ours. */
void cmd_hello(struct ledd *d, const struct request *req, struct reply *r)
{
	char buttons[LEDD_LINE_MAX / 2], verb_table[LEDD_LINE_MAX / 2];
	int n;

	(void)req;
	if (config_buttons_json(&d->cfg, buttons, sizeof(buttons)) < 0 ||
	    protocol_verbs_json(verb_table, sizeof(verb_table)) < 0)
		n = -1;
	else
		n = snprintf(r->payload, sizeof(r->payload),
			     "{\"protocol\":%d,\"version\":\"%s\",\"backend\":\"%s\",\"buttons\":%s,"
			     "\"verbs\":%s}",
			     LEDD_PROTOCOL, LEDD_VERSION, backend_name(d), buttons, verb_table);
	if (n < 0 || (size_t)n >= sizeof(r->payload)) {
		r->code = PROTO_INTERNAL;
		set_err(r->msg, sizeof(r->msg), "HELLO does not fit in a reply");
	}
}

void cmd_state(struct ledd *d, const struct request *req, struct reply *r)
{
	(void)req;
	reply_state(d, r);
}

void commands_run_action(struct ledd *d, const struct action *a, const char *button,
			 const char *key)
{
	static struct request req;
	static struct reply r;

	if (!a->text[0])
		return;
	r.code = protocol_parse_command(a->text, strlen(a->text), &req, r.msg, sizeof(r.msg));
	r.delivered = false;
	if (r.code == PROTO_OK && !req.verb->action) {
		r.code = PROTO_INTERNAL;
		set_err(r.msg, sizeof(r.msg), "not an action verb");
	}
	if (r.code == PROTO_OK)
		req.verb->run(d, &req, &r);
	/* As for a client's request: a refused line is logged by drive_led(). */
	if (r.code == PROTO_INTERNAL)
		log_err("internal error running button %s %s '%s': %s", button, key, a->text, r.msg);
	else if (r.code != PROTO_OK)
		log_debug("button %s %s '%s': %s %s", button, key, a->text,
			  protocol_code_name(r.code), r.msg);
}

void commands_handle_line(void *ctx, const char *line, size_t len, bool complete)
{
	struct ledd *d = ctx;
	static struct request req;     /* a few KiB each: kept off the stack */
	static struct reply r;
	char out[LEDD_LINE_MAX + 64];
	int n;

	r.code = protocol_parse(line, len, &req, r.msg, sizeof(r.msg));
	r.payload[0] = '\0';
	r.delivered = false;
	if (!complete && r.code != PROTO_BADREQUEST) {
		r.code = PROTO_BADREQUEST;
		set_err(r.msg, sizeof(r.msg), "request without LF (one write per request)");
	}
	if (strcmp(req.id, "-") == 0) {
		/* No readable id, so no reply FIFO to answer on: only the log can say it. */
		log_limited(LOG_INFO, "request without a readable id dropped: %s", r.msg);
		return;
	}
	if (r.code == PROTO_OK)
		req.verb->run(d, &req, &r);
	if (r.code == PROTO_INTERNAL)
		log_err("internal error answering request %s: %s", req.id, r.msg);
	else if (r.code != PROTO_OK)
		log_debug("request %s: %s %s", req.id, protocol_code_name(r.code), r.msg);
	if (r.delivered)
		return;
	if (r.code == PROTO_OK)
		n = protocol_format_ok(out, sizeof(out), req.id, r.payload);
	else
		n = protocol_format_err(out, sizeof(out), req.id, r.code, r.msg);
	if (n < 0 || n >= PIPE_BUF) {
		log_err("internal: reply to %s does not fit in one pipe write", req.id);
		n = protocol_format_err(out, sizeof(out), req.id, PROTO_INTERNAL, "reply too long");
	}
	fifo_reply(&d->fifo, req.id, out, (size_t)n);
}

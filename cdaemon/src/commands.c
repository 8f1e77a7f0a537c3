/* commands.c -- answer request lines: parse, dispatch to a handler, reply.
 *
 * protocol.c turns a line into a struct request (shape only); the handlers
 * here resolve names against the model, apply the change through changes.c
 * and build the reply, which fifo.c delivers. A new verb is a verbs[] entry
 * in protocol.c plus one case in dispatch() here.
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

/* Apply an LED change to the line; undo it in the model if the line refuses. */
static void led_command(struct ledd *d, const struct request *req, struct reply *r)
{
	int i = need_led(d, req->args[0], r);
	struct led_state before;
	bool did;

	if (i < 0)
		return;
	before = d->st.leds[i];
	if (req->verb == VERB_ON || req->verb == VERB_OFF)
		did = state_led_set(&d->st, (size_t)i, req->verb == VERB_ON);
	else if (req->verb == VERB_TOGGLE)
		did = state_led_toggle(&d->st, (size_t)i);
	else
		did = state_led_blink(&d->st, (size_t)i, (unsigned int)req->num[1],
				      (unsigned int)req->num[2], mono_ns());
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

/* ALL: every LED or none. If the kernel refuses one line, the lines already
 * switched are switched back and the model is restored, so the state file,
 * the watchers and seq never see a change that did not happen. A line that
 * refuses to go back keeps its new level, and the model says so: then that
 * much did change, and is counted, saved and told like any change. */
static void all_command(struct ledd *d, const struct request *req, struct reply *r)
{
	struct led_state before[LEDD_MAX_LEDS];
	bool did = false, stuck = false;

	memcpy(before, d->st.leds, sizeof(before[0]) * d->st.nleds);
	for (size_t i = 0; i < d->st.nleds; i++) {
		did |= state_led_set(&d->st, i, req->on);
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

static void button_command(struct ledd *d, const struct request *req, struct reply *r)
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
	if (gpio_sim_set_input(d->gpio, d->st.nleds + (size_t)b, req->verb == VERB_PRESS) < 0) {
		if (errno == ENOTSUP) {
			r->code = PROTO_NOTSUPPORTED;
			set_err(r->msg, sizeof(r->msg), "%s needs the sim backend (this is %s)",
				 req->verb == VERB_PRESS ? "PRESS" : "RELEASE", backend_name(d));
		} else {
			r->code = PROTO_INTERNAL;
			set_err(r->msg, sizeof(r->msg), "sim input: %s", strerror(errno));
		}
		return;
	}
	handle_edges(d);    /* so the reply already shows the press */
	reply_state(d, r);
}

/* WATCH: the client's reply FIFO becomes its event stream. ledd writes the
 * reply and the current state into it and keeps it open. */
static void watch_command(struct ledd *d, const struct request *req, struct reply *r)
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

static void dispatch(struct ledd *d, const struct request *req, struct reply *r)
{
	switch (req->verb) {
	case VERB_HELLO: {
		char buttons[LEDD_LINE_MAX / 2]; /* button settings: actions.h */
		actions_hello_buttons(&d->cfg, buttons, sizeof(buttons));
		snprintf(r->payload, sizeof(r->payload),
			 "{\"protocol\":%d,\"version\":\"%s\",\"backend\":\"%s\",\"buttons\":%s}",
			 LEDD_PROTOCOL, LEDD_VERSION, backend_name(d), buttons);
		return;
	}
	case VERB_STATE:
		reply_state(d, r);
		return;
	case VERB_ON: case VERB_OFF: case VERB_TOGGLE: case VERB_BLINK:
		led_command(d, req, r);
		return;
	case VERB_ALL:
		all_command(d, req, r);
		return;
	case VERB_PRESS: case VERB_RELEASE:
		button_command(d, req, r);
		return;
	case VERB_WATCH:
		watch_command(d, req, r);
		return;
	}
	r->code = PROTO_INTERNAL;
	set_err(r->msg, sizeof(r->msg), "verb not dispatched");
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
		dispatch(d, &req, &r);
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

/* changes.c -- how a state change reaches the world.
 *
 * The model (state.c) only computes; here a change is applied to the GPIO
 * line, counted (seq), renamed into the state file before anybody hears of
 * it (so an acknowledged change survives kill -9), and broadcast to the
 * watchers. Button edges come in through the same path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ledd.h"
#include "log.h"
#include "notify.h"

uint64_t mono_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		die_perror("clock_gettime(CLOCK_MONOTONIC)");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t wall_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		die_perror("clock_gettime(CLOCK_REALTIME)");
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int drive_led(struct ledd *d, size_t i)
{
	if (pwm_drive(&d->pwm, &d->st, d->gpio, i, mono_ns()) < 0) {
		int e = errno;
		if (!d->led_failed[i])
			log_err("led %s (GPIO%u): %s", d->st.leds[i].name, d->st.leds[i].gpio, strerror(e));
		d->led_failed[i] = true;
		errno = e;
		return -1;
	}
	if (d->led_failed[i])
		log_notice("led %s (GPIO%u) works again", d->st.leds[i].name, d->st.leds[i].gpio);
	d->led_failed[i] = false;
	return 0;
}

void drive_leds(struct ledd *d, bool steady_too)
{
	pwm_reset(&d->pwm);
	for (size_t i = 0; i < d->st.nleds; i++) {
		const struct led_state *l = &d->st.leds[i];
		if (steady_too || (l->lit && l->brightness < LEDD_BRIGHTNESS_MAX))
			drive_led(d, i);
	}
}

const char *backend_name(const struct ledd *d)
{
	return config_backend_name(d->cfg.backend);
}

void send_status(struct ledd *d)
{
	/* gpio_describe(): "sim", or the chip, e.g. "/dev/gpiochip0 [pinctrl-bcm2711]". */
	notify_send("STATUS=%s, %zu LED%s, %zu button%s, %zu watcher%s", gpio_describe(d->gpio),
		    d->st.nleds, d->st.nleds == 1 ? "" : "s", d->st.nbuttons,
		    d->st.nbuttons == 1 ? "" : "s", d->fifo.nwatchers,
		    d->fifo.nwatchers == 1 ? "" : "s");
}

void save_state(struct ledd *d, bool durable)
{
	char err[LEDD_ERR_MAX];

	if (durable)
		d->sync_due_ns = 0;
	if (state_save(&d->st, d->cfg.state_file, durable, err, sizeof(err)) < 0) {
		if (!d->save_failed)
			log_err("cannot save state (changes will not survive a restart): %s", err);
		d->save_failed = true;
	} else if (d->save_failed) {
		log_notice("state saved again to %s", d->cfg.state_file);
		d->save_failed = false;
	}
}

int event_line(struct ledd *d, char *out, size_t outlen)
{
	static const char prefix[] = "event state ";
	int n = state_json(&d->st, backend_name(d), out + sizeof(prefix) - 1,
			   outlen - sizeof(prefix) - 1);

	if (n < 0)
		return -1;
	memcpy(out, prefix, sizeof(prefix) - 1);
	n += (int)sizeof(prefix) - 1;
	out[n++] = '\n';
	out[n] = '\0';
	return n;
}

/* Tell every watcher about the state as it is now. */
static void broadcast(struct ledd *d)
{
	char line[LEDD_LINE_MAX];
	int n = event_line(d, line, sizeof(line));

	if (n < 0) {
		log_err("internal: state event does not fit in %d bytes", LEDD_LINE_MAX);
		return;
	}
	if (fifo_broadcast(&d->fifo, line, (size_t)n))
		send_status(d);
}

/* Rename the new state into place now; schedule its fsync for the burst. */
void persist(struct ledd *d)
{
	save_state(d, false);
	if (!d->sync_due_ns)
		d->sync_due_ns = mono_ns() + (uint64_t)LEDD_STATE_SYNC_MS * 1000000u;
}

/* A state change: count it, persist it, tell the watchers. */
void changed(struct ledd *d)
{
	d->st.seq++;
	persist(d);
	broadcast(d);
}

void handle_edges(struct ledd *d)
{
	struct gpio_edge edges[LEDD_MAX_EDGES];
	int n;

	while ((n = gpio_read_edges(d->gpio, edges, LEDD_MAX_EDGES)) > 0) {
		for (int i = 0; i < n; i++) {
			size_t b = edges[i].line - d->st.nleds;
			struct button_state *bt;

			if (edges[i].line < d->st.nleds || b >= d->st.nbuttons)
				continue;
			bt = &d->st.buttons[b];
			if (bt->pressed == (edges[i].value != 0))
				continue;   /* no change (e.g. an edge lost in between) */
			bt->pressed = edges[i].value != 0;
			if (bt->pressed) {
				/* The edge's own time, not ours: mono age -> wall clock. */
				uint64_t now = mono_ns();
				uint64_t age = now > edges[i].timestamp_ns ? now - edges[i].timestamp_ns : 0;
				bt->presses++;
				bt->last_press_ms = wall_ms() - (int64_t)(age / 1000000u);
			}
			changed(d);     /* saved before it is told */
			log_debug("button %s %s", bt->name, bt->pressed ? "pressed" : "released");
			/* A button action: the request it is, an ordinary state change. */
			if (bt->pressed)
				commands_run_action(d, &d->cfg.buttons[b].on_press, bt->name, "on_press");
			else
				commands_run_action(d, &d->cfg.buttons[b].on_release, bt->name, "on_release");
		}
	}
	if (n < 0)
		log_err("reading button edges: %s", strerror(errno));
}


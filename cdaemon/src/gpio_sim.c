/* gpio_sim.c -- the simulated GPIO backend: no hardware, same behaviour.
 *
 * Outputs are remembered; inputs change only through gpio_sim_set_input().
 * A change queues an edge and makes an eventfd readable, exactly as the
 * chardev backend's line request fd becomes readable on a kernel edge, so the
 * main loop treats both the same. Edges are already clean (they come from
 * PRESS/RELEASE commands), so there is nothing to debounce.
 *
 * For tests of the failure paths, the GPIO numbers listed (comma-separated)
 * in $LEDD_SIM_REFUSE_GPIO refuse every set with EIO, as a kernel can refuse
 * a line operation on real hardware; "N:K" lets K sets of GPIO N succeed
 * first (a line that fails half-way through a command, e.g. in a rollback).
 *
 * For tests of the PWM (pwm.c), $LEDD_SIM_EDGE_LOG names a file that gets a
 * line "<CLOCK_MONOTONIC ns> <gpio> <level>" for every change of an output,
 * stamped when ledd sets it (lines set together share a stamp): what a logic
 * analyser on the header would see. Buffered; complete once ledd has exited.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "defaults.h"
#include "gpio_backend.h"

#define SIM_QUEUE 64

struct gpio_sim {
	struct gpio base;
	int *values;
	bool *output;
	long *refuse_after;     /* $LEDD_SIM_REFUSE_GPIO: sets left before EIO; -1: never */
	unsigned int *gpio;
	FILE *edge_log;         /* $LEDD_SIM_EDGE_LOG, or NULL */
	struct gpio_edge queue[SIM_QUEUE];
	size_t head, count;
};

static uint64_t sim_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int sim_set_at(struct gpio_sim *s, size_t line, int value, uint64_t now)
{
	if (!s->output[line]) {
		errno = EPERM;
		return -1;
	}
	if (s->refuse_after[line] == 0) {
		errno = EIO;
		return -1;
	}
	if (s->refuse_after[line] > 0)
		s->refuse_after[line]--;
	if (s->edge_log && s->values[line] != value)
		fprintf(s->edge_log, "%" PRIu64 " %u %d\n", now, s->gpio[line], value);
	s->values[line] = value;
	return 0;
}

static int sim_set(struct gpio *g, size_t line, int value)
{
	struct gpio_sim *s = (struct gpio_sim *)g;

	return sim_set_at(s, line, value, s->edge_log ? sim_now_ns() : 0);
}

static int sim_set_lines(struct gpio *g, uint64_t mask, int value)
{
	struct gpio_sim *s = (struct gpio_sim *)g;
	uint64_t now = s->edge_log ? sim_now_ns() : 0;

	for (size_t i = 0; i < g->nlines; i++)
		if ((mask >> i & 1) && sim_set_at(s, i, value, now) < 0)
			return -1;
	return 0;
}

static int sim_get(struct gpio *g, size_t line, int *value)
{
	*value = ((struct gpio_sim *)g)->values[line];
	return 0;
}

static int sim_read_edges(struct gpio *g, struct gpio_edge *edges, size_t max)
{
	struct gpio_sim *s = (struct gpio_sim *)g;
	uint64_t counter;
	size_t n = 0;

	while (n < max && s->count) {
		edges[n++] = s->queue[s->head];
		s->head = (s->head + 1) % SIM_QUEUE;
		s->count--;
	}
	if (s->count == 0 &&
	    read(g->event_fd, &counter, sizeof(counter)) < 0 && errno != EAGAIN)
		return -1;
	return (int)n;
}

static int sim_set_input(struct gpio *g, size_t line, int value)
{
	struct gpio_sim *s = (struct gpio_sim *)g;
	struct timespec ts;
	uint64_t one = 1;

	if (s->output[line]) {
		errno = EPERM;
		return -1;
	}
	if (s->values[line] == value)
		return 0;
	if (s->count == SIM_QUEUE) {
		errno = ENOBUFS;
		return -1;
	}
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return -1;
	s->values[line] = value;
	s->queue[(s->head + s->count) % SIM_QUEUE] = (struct gpio_edge){
		.line = line, .value = value,
		.timestamp_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
	};
	s->count++;
	if (write(g->event_fd, &one, sizeof(one)) < 0)
		return -1;
	return 0;
}

static void sim_close(struct gpio *g)
{
	struct gpio_sim *s = (struct gpio_sim *)g;

	if (g->event_fd >= 0)
		close(g->event_fd);
	if (s->edge_log)
		fclose(s->edge_log);
	free(s->gpio);
	free(s->values);
	free(s->output);
	free(s->refuse_after);
	free(s);
}

static const struct gpio_ops sim_ops = {
	.set = sim_set,
	.set_lines = sim_set_lines,
	.get = sim_get,
	.read_edges = sim_read_edges,
	.sim_set_input = sim_set_input,
	.close = sim_close,
};

struct gpio *gpio_sim_open(const struct gpio_line_config *lines, size_t nlines,
			   char *err, size_t errlen)
{
	struct gpio_sim *s = calloc(1, sizeof(*s));
	size_t ninputs = 0;

	const char *refuse = getenv(LEDD_SIM_REFUSE_ENV);
	const char *edge_log = getenv(LEDD_SIM_EDGE_LOG_ENV);

	if (!s || !(s->values = calloc(nlines ? nlines : 1, sizeof(int))) ||
	    !(s->output = calloc(nlines ? nlines : 1, sizeof(bool))) ||
	    !(s->refuse_after = calloc(nlines ? nlines : 1, sizeof(long))) ||
	    !(s->gpio = calloc(nlines ? nlines : 1, sizeof(unsigned int)))) {
		set_err(err, errlen, "sim: out of memory");
		if (s) {
			free(s->values);
			free(s->output);
			free(s->refuse_after);
			free(s);
		}
		errno = ENOMEM;
		return NULL;
	}
	s->base.ops = &sim_ops;
	s->base.nlines = nlines;
	s->base.event_fd = -1;
	for (size_t i = 0; i < nlines; i++) {
		if (lines[i].gpio > LEDD_MAX_GPIO) {
			set_err(err, errlen, "GPIO%u (%s) does not exist", lines[i].gpio, lines[i].label);
			sim_close(&s->base);
			errno = EINVAL;
			return NULL;
		}
		s->output[i] = lines[i].output;
		s->gpio[i] = lines[i].gpio;
		s->refuse_after[i] = -1;
		for (const char *p = refuse; p && *p; p += strcspn(p, ","), p += *p == ',') {
			char *end;
			if (*p >= '0' && *p <= '9' && strtoul(p, &end, 10) == lines[i].gpio)
				s->refuse_after[i] = *end == ':' ? strtol(end + 1, NULL, 10) : 0;
		}
		/* A released button reads 0; an output starts at its initial value. */
		s->values[i] = lines[i].output ? (lines[i].initial ? 1 : 0) : 0;
		ninputs += !lines[i].output;
	}
	if (ninputs) {
		s->base.event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (s->base.event_fd < 0) {
			set_err(err, errlen, "sim: eventfd: %s", strerror(errno));
			sim_close(&s->base);
			return NULL;
		}
	}
	if (edge_log && *edge_log) {
		/* Appended: a reload opens the backend again. */
		s->edge_log = fopen(edge_log, "ae");
		if (!s->edge_log) {
			set_err(err, errlen, "sim: %s=%s: %s", LEDD_SIM_EDGE_LOG_ENV, edge_log, strerror(errno));
			sim_close(&s->base);
			return NULL;
		}
		setvbuf(s->edge_log, NULL, _IOFBF, 1 << 16);
		for (size_t i = 0; i < nlines; i++)     /* where each output starts */
			if (lines[i].output)
				fprintf(s->edge_log, "%" PRIu64 " %u %d\n", sim_now_ns(), lines[i].gpio,
					s->values[i]);
	}
	snprintf(s->base.description, sizeof(s->base.description), "sim");
	return &s->base;
}

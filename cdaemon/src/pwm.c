/* pwm.c -- software PWM of dimmed LEDs: groups by frequency, one timerfd.
 *
 * What: while an LED is lit at a brightness of 1-99 %, its line is switched
 * here, high for brightness % of every period of its frequency (pwm_hz).
 *
 * How (see pwm.h): the LEDs of one frequency form a group sharing one
 * period, whose start advances by whole periods from the moment the group
 * was made (so it never drifts, whatever the wake-up latency). At a period
 * start every member goes high in one gpio_set_lines() call; each member
 * goes low at start + its duty, members due at the same instant in one call.
 * The next of those instants over every group is the one deadline of a
 * timerfd (TFD_TIMER_ABSTIME, CLOCK_MONOTONIC) that main.c polls with
 * everything else. Rising and falling edges are both scheduled on the
 * common grid, so a wake-up's latency delays both alike and the duty, the
 * difference, stays right on average.
 *
 * Late wake-ups: where they are short and alike that is all it takes. They
 * are not always (a loaded machine; under qemu TCG a wake-up can come 0.5 ms
 * late, the whole high time of 10 % at 200 Hz, which measured 5 % there).
 * So the engine keeps, per LED, the high time it owes: the integral of
 * duty - level over time, by its own clock at each switch. Each period's
 * fall is moved by what is owed when the period starts (kept inside the
 * period; the debt is capped at one period, so a stall of the machine is
 * not paid back for seconds). A pulse lost to a late start is then made up
 * by longer pulses after it, and the duty is right on average whatever the
 * latencies. Missed periods are skipped, not replayed; a member whose fall
 * is already due when its period starts stays low rather than flash for a
 * few microseconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pwm.h"

#define NS_PER_S 1000000000ull

int pwm_open(struct pwm *p)
{
	memset(p, 0, sizeof(*p));
	p->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (p->fd < 0)
		return -1;
	/* The kernel may defer a timer by the thread's slack, 50 us by
	 * default: 1 % of a 200 Hz period. Costs nothing while nothing is due. */
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	return 0;
}

void pwm_close(struct pwm *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static int group_of(const struct pwm *p, size_t i)
{
	for (size_t k = 0; k < p->ngroups; k++)
		if (p->groups[k].members >> i & 1)
			return (int)k;
	return -1;
}

static int group_at(const struct pwm *p, unsigned int hz)
{
	for (size_t k = 0; k < p->ngroups; k++)
		if (p->groups[k].hz == hz)
			return (int)k;
	return -1;
}

/* LED i leaves group k; a group left empty goes. */
static void leave(struct pwm *p, int k, size_t i)
{
	if (k < 0)
		return;
	p->groups[k].members &= ~(1u << i);
	if (!p->groups[k].members)
		p->groups[k] = p->groups[--p->ngroups];
}

/* Count member i's high time from since_ns to now_ns into what it owes. */
static void account(struct pwm *p, const struct ledd_state *st, const struct pwm_group *gr,
		    size_t i, uint64_t now_ns)
{
	uint64_t elapsed = now_ns > p->since_ns[i] ? now_ns - p->since_ns[i] : 0;
	int64_t cap = (int64_t)gr->period_ns;

	if (elapsed > 4 * gr->period_ns)        /* a stall: no debt of it (nor overflow) */
		elapsed = 4 * gr->period_ns;
	p->debt_ns[i] += (int64_t)(elapsed * p->duty_ns[i] / gr->period_ns);
	if (st->leds[i].level)
		p->debt_ns[i] -= (int64_t)elapsed;
	p->debt_ns[i] = p->debt_ns[i] > cap ? cap : p->debt_ns[i] < -cap ? -cap : p->debt_ns[i];
	p->since_ns[i] = now_ns;
}

/* Member i's fall in the period starting now: its duty point moved by
 * what it owes, inside the period. */
static uint64_t fall_in_period(const struct pwm *p, const struct pwm_group *gr, size_t i)
{
	int64_t at = (int64_t)p->duty_ns[i] + p->debt_ns[i];

	if (at < 0)
		at = 0;
	if (at >= (int64_t)gr->period_ns)
		at = (int64_t)gr->period_ns - 1;
	return gr->start_ns + (uint64_t)at;
}

static uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Switch the members of mask to value at once; their `level` follows. The
 * lines switch when the kernel is done, not when we woke up: their high
 * time is counted to the instant the call returns. */
static void switch_lines(struct pwm *p, struct ledd_state *st, struct gpio *g,
			 const struct pwm_group *gr, uint32_t mask, int value)
{
	uint64_t done;

	if (!mask)
		return;
	if (gpio_set_lines(g, mask, value) < 0) {
		if (!p->failed)
			log_err("PWM: switching dimmed LEDs %s: %s", value ? "on" : "off", strerror(errno));
		p->failed = true;
		return;
	}
	if (p->failed)
		log_notice("PWM: dimmed LEDs switch again");
	p->failed = false;
	done = clock_ns();
	for (size_t i = 0; mask >> i; i++) {
		if (!(mask >> i & 1))
			continue;
		account(p, st, gr, i, done);
		st->leds[i].level = value;
	}
}

/* Everything due at now_ns: period starts (every member high), then falls. */
static void process_due(struct pwm *p, struct ledd_state *st, struct gpio *g, uint64_t now_ns)
{
	for (size_t k = 0; k < p->ngroups; k++) {
		struct pwm_group *gr = &p->groups[k];
		uint32_t rising = 0, due = 0, down = 0;

		for (size_t i = 0; gr->members >> i; i++)
			if (gr->members >> i & 1)
				account(p, st, gr, i, now_ns);
		if (now_ns >= gr->start_ns + gr->period_ns) {
			/* Whole periods only: the grid stays where it was. */
			gr->start_ns += (now_ns - gr->start_ns) / gr->period_ns * gr->period_ns;
			rising = gr->members;
			for (size_t i = 0; rising >> i; i++)
				if (rising >> i & 1)
					p->fall_ns[i] = fall_in_period(p, gr, i);
		}
		for (size_t i = 0; gr->members >> i; i++) {
			if (!(gr->members >> i & 1) || p->fall_ns[i] > now_ns)
				continue;
			due |= 1u << i;         /* its fall in this period has come */
			if (st->leds[i].level)
				down |= 1u << i;
		}
		/* A member rising this late with its fall already due stays low. */
		switch_lines(p, st, g, gr, rising & ~due, 1);
		switch_lines(p, st, g, gr, down, 0);
	}
}

/* The earliest instant after now_ns at which a line must switch, or 0. */
static uint64_t next_deadline(const struct pwm *p, const struct ledd_state *st, uint64_t now_ns)
{
	uint64_t next = 0;

	for (size_t k = 0; k < p->ngroups; k++) {
		const struct pwm_group *gr = &p->groups[k];
		uint64_t t = gr->start_ns + gr->period_ns;

		for (size_t i = 0; gr->members >> i; i++) {
			uint64_t fall = p->fall_ns[i];
			/* A fall the kernel refused is tried again at the next period. */
			if ((gr->members >> i & 1) && st->leds[i].level && fall > now_ns && fall < t)
				t = fall;
		}
		if (!next || t < next)
			next = t;
	}
	return next;
}

static void arm(struct pwm *p, const struct ledd_state *st, uint64_t now_ns)
{
	uint64_t next = next_deadline(p, st, now_ns);
	struct itimerspec its;

	if (next == p->armed_ns)
		return;
	memset(&its, 0, sizeof(its));   /* all zero: disarm */
	its.it_value.tv_sec = (time_t)(next / NS_PER_S);
	its.it_value.tv_nsec = (long)(next % NS_PER_S);
	if (timerfd_settime(p->fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		die_perror("timerfd_settime (PWM)");
	p->armed_ns = next;
}

void pwm_reset(struct pwm *p)
{
	struct itimerspec off;

	memset(&off, 0, sizeof(off));
	p->ngroups = 0;
	if (p->armed_ns && timerfd_settime(p->fd, 0, &off, NULL) < 0)
		die_perror("timerfd_settime (PWM)");
	p->armed_ns = 0;
}

int pwm_drive(struct pwm *p, struct ledd_state *st, struct gpio *g, size_t i, uint64_t now_ns)
{
	struct led_state *led = &st->leds[i];
	bool dimmed = led->lit && led->brightness < LEDD_BRIGHTNESS_MAX, same = false;
	uint64_t period = 0, duty = 0, fall = 0;
	int level = led->lit, rc = -1, k;

	process_due(p, st, g, now_ns);  /* the groups' periods are current */
	if (dimmed) {
		period = NS_PER_S / led->pwm_hz;
		duty = period * led->brightness / LEDD_BRIGHTNESS_MAX;
		k = group_at(p, led->pwm_hz);
		same = k >= 0 && (p->groups[k].members >> i & 1) && p->duty_ns[i] == duty;
		/* Joining a running group: where its period is now. A new one
		 * starts now. Already in it as it is: nothing moves. */
		fall = same ? p->fall_ns[i] : (k < 0 ? now_ns : p->groups[k].start_ns) + duty;
		level = same ? led->level : fall > now_ns;
	}
	if (gpio_set(g, i, level) < 0)
		goto out;
	led->level = level;
	if (same)
		goto armed;
	leave(p, group_of(p, i), i);
	if (dimmed) {
		k = group_at(p, led->pwm_hz);   /* leave() may have moved it */
		if (k < 0) {
			k = (int)p->ngroups++;
			p->groups[k] = (struct pwm_group){ .hz = led->pwm_hz, .period_ns = period,
							   .start_ns = now_ns };
		}
		p->groups[k].members |= 1u << i;
		/* A new duty owes nothing yet. */
		p->duty_ns[i] = duty;
		p->fall_ns[i] = fall;
		p->debt_ns[i] = 0;
		p->since_ns[i] = now_ns;
	}
armed:
	rc = 0;
out:
	arm(p, st, now_ns);
	return rc;
}

void pwm_expire(struct pwm *p, struct ledd_state *st, struct gpio *g, uint64_t now_ns)
{
	uint64_t expirations;

	if (read(p->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_err("PWM timer: %s", strerror(errno));
	process_due(p, st, g, now_ns);
	arm(p, st, now_ns);
}

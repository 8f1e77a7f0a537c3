/* pwm.h -- software PWM of dimmed LEDs (brightness 1-99 %), on any backend.
 *
 * An LED is dimmed while it is lit (steady on, or in a blink's on phase) at
 * a brightness below 100 %. Its line is then switched by pwm.c: LEDs of one
 * frequency form a group with one common period; at the period's start all
 * of them go high in one gpio_set_lines() call, then each goes low at its
 * duty point (LEDs of equal brightness together). One timerfd, armed at the
 * earliest of those instants (absolute CLOCK_MONOTONIC deadlines, so the
 * period never drifts), wakes the poll loop: 1 + N wake-ups per period for
 * N dimmed LEDs of distinct brightness. Each LED's high time is also
 * measured (by the engine's own clock at each switch) and what a late
 * wake-up took or gave is made up in the next periods' falls, so the duty
 * is right on average even where wake-ups are slow and uneven (a busy
 * machine, an emulated CPU). Every other LED is a steady line
 * and costs nothing; with no dimmed LED the timer is disarmed and an idle
 * ledd makes no wake-up at all.
 *
 * The engine drives the lines and keeps each LED's `level` (the state
 * JSON's: the line's output now); the model (state.c) decides `lit`,
 * `brightness` and `pwm_hz`.
 */
#ifndef LEDD_PWM_H
#define LEDD_PWM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "defaults.h"
#include "gpio.h"
#include "state.h"

struct pwm_group {
	unsigned int hz;
	uint64_t period_ns;
	uint64_t start_ns;              /* CLOCK_MONOTONIC start of the current period */
	uint32_t members;               /* bit i: LED i is dimmed at this frequency */
};

struct pwm {
	int fd;                         /* the timerfd; -1 until pwm_open */
	uint64_t armed_ns;              /* its deadline; 0 = disarmed */
	struct pwm_group groups[LEDD_MAX_LEDS];
	size_t ngroups;
	uint64_t duty_ns[LEDD_MAX_LEDS]; /* a member's high time in each period */
	uint64_t fall_ns[LEDD_MAX_LEDS]; /* when it goes low in the current period */
	int64_t debt_ns[LEDD_MAX_LEDS]; /* high time owed (> 0) or given too much (< 0) */
	uint64_t since_ns[LEDD_MAX_LEDS]; /* debt_ns counts up to this instant */
	bool failed;                    /* a refused switch was logged (once) */
};

/* Create the timer. 0, or -1 with errno. */
int pwm_open(struct pwm *p);
void pwm_close(struct pwm *p);

/* Forget every LED and disarm (the lines were requested again). */
void pwm_reset(struct pwm *p);

/* Drive LED i's line to what the model says now: steady at `lit`, or into
 * (or out of) its frequency's group, high or low as the group's current
 * period has it. The engine changes only once the line did: -1 with errno
 * (the kernel refused) leaves LED i as the engine had it. */
int pwm_drive(struct pwm *p, struct ledd_state *st, struct gpio *g, size_t i, uint64_t now_ns);

/* The timer fired: switch the lines that are due at now_ns, arm the next. */
void pwm_expire(struct pwm *p, struct ledd_state *st, struct gpio *g, uint64_t now_ns);

#endif

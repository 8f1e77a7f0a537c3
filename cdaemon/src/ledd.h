/* ledd.h -- the daemon's one object (struct ledd) and what its modules share.
 *
 * main.c owns the lifecycle and the poll loop, changes.c applies state
 * changes (drive a line, persist, tell the watchers), commands.c answers
 * requests. Only the daemon's own .c files include this header; the pure
 * modules (protocol, config, state, framing) know nothing of it (protocol.h
 * names struct ledd only as its handlers' opaque argument).
 */
#ifndef LEDD_LEDD_H
#define LEDD_LEDD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "defaults.h"
#include "fifo.h"
#include "gpio.h"
#include "pwm.h"
#include "state.h"

/* What the command line says; NULL/-1 = not given. Flags win over the
 * environment, which wins over the config file. */
struct options {
	const char *config_path;
	const char *backend;
	const char *runtime_dir;
	const char *state_file;
	const char *chip;
	bool check_config;
	int verbose;
};

struct ledd {
	struct options opt;
	struct ledd_config cfg;
	struct gpio *gpio;
	struct ledd_state st;
	struct pwm pwm;         /* dimmed LEDs' lines (pwm.c) */
	struct fifo_server fifo;
	int sig_fd, wd_fd;
	bool running;
	bool save_failed;       /* log a failing save once, not per command */
	uint64_t sync_due_ns;   /* when the unsynced state file gets its fsync; 0 = synced */
	bool led_failed[LEDD_MAX_LEDS]; /* same for a line that refuses (blinking: 50/s) */
};

/* changes.c: clocks. */
uint64_t mono_ns(void);
int64_t wall_ms(void);

/* changes.c: applying state changes. */
const char *backend_name(const struct ledd *d);
void send_status(struct ledd *d);
void save_state(struct ledd *d, bool durable);
/* Drive LED i's line as the model says (steady, or dimmed by the PWM);
 * logs a refusal once. -1 with errno. */
int drive_led(struct ledd *d, size_t i);
/* The PWM forgets what it had and starts over with the dimmed LEDs; the
 * steady ones are driven too if steady_too (lines just requested already
 * have their initial values). */
void drive_leds(struct ledd *d, bool steady_too);
/* "event state <json>\n" into out; its length, or -1 if it does not fit. */
int event_line(struct ledd *d, char *out, size_t outlen);
/* Rename the new state into place now; schedule its fsync for the burst. */
void persist(struct ledd *d);
/* A state change: count it, persist it, tell the watchers. */
void changed(struct ledd *d);
/* Read pending button edges into the model (and tell the watchers). */
void handle_edges(struct ledd *d);

/* reload.c: the configuration, applied. */
/* Read the config file (or the built-in wiring when the default file does
 * not exist) and apply the environment and the flags over it. */
int load_config(const struct options *o, struct ledd_config *cfg, char *err, size_t errlen);
struct gpio *open_gpio(const struct ledd_config *cfg, const struct ledd_state *st, char *err,
		       size_t errlen);
/* Read every button's current level (after open or reload). */
void read_buttons(struct ledd *d);
/* How many watchers fit in the descriptor limit (raised if allowed). */
size_t watcher_budget(size_t wanted);
/* SIGHUP: read the config again. A bad config keeps the old one running. */
void reload(struct ledd *d);

/* commands.c: answer one request line (a fifo_line_fn; ctx is the struct ledd). */
void commands_handle_line(void *ctx, const char *line, size_t len, bool complete);
/* commands.c: run a button action (actions.h) as the request it is; key is
 * "on_press" or "on_release", for the log. A change counts as any other. */
void commands_run_action(struct ledd *d, const struct action *a, const char *button,
			 const char *key);

#endif

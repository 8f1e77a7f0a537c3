/* reload.c -- the configuration, applied: at start and on SIGHUP.
 *
 * load_config() reads the file (or takes the built-in wiring) and lays the
 * environment and the flags over it. reload() applies a new file to a
 * running ledd the way a restart would -- state carried over by name, lines
 * requested again only if the wiring changed -- but touches nothing a client
 * can see when no LED or button changed: no seq, no event, blink phases go
 * on. A broken file keeps the running config.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "errmsg.h"
#include "ledd.h"
#include "log.h"
#include "notify.h"

int set_path(char *dst, const char *src, const char *what, char *err, size_t errlen)
{
	if (src[0] != '/' && strcmp(what, "chip") != 0) {
		/* Relative paths would change meaning with the working directory. */
		char cwd[CONFIG_PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)) ||
		    snprintf(dst, CONFIG_PATH_MAX, "%s/%s", cwd, src) >= CONFIG_PATH_MAX) {
			set_err(err, errlen, "%s: path too long", what);
			return -1;
		}
		return 0;
	}
	if (strlen(src) >= CONFIG_PATH_MAX) {
		set_err(err, errlen, "%s: path too long", what);
		return -1;
	}
	strcpy(dst, src);
	return 0;
}

/* Every reply and event carrying the state is one atomic pipe write (docs/
 * protocol.md, "Limits"). Each limit alone allows that, but not all of them
 * at once: 16 LEDs and 8 buttons with the longest names, each button with
 * the longest actions, would not fit. So the config itself is checked: its
 * widest state, in a reply to the longest id and in an event. */
static int check_state_fits(const struct ledd_config *cfg, const char *path, char *err,
			    size_t errlen)
{
	int json = state_json_max(cfg);
	size_t reply = (size_t)LEDD_MAX_ID + sizeof(" OK ") - 1 + (size_t)json + 1;
	size_t event = sizeof("event state ") - 1 + (size_t)json + 1;
	size_t longest = reply > event ? reply : event;

	if (json >= 0 && longest < LEDD_LINE_MAX)
		return 0;
	set_err(err, errlen, "%s: the state of these %zu LEDs and %zu buttons could take %zu bytes, "
		"more than one pipe write (%d): shorten LED or button names or actions, or drop one",
		path, cfg->nleds, cfg->nbuttons, json < 0 ? (size_t)4 * LEDD_LINE_MAX : longest,
		LEDD_LINE_MAX);
	return -1;
}

/* Read the config file (or the built-in wiring when the default file does not
 * exist) and apply the environment and the flags over it. */
int load_config(const struct options *o, struct ledd_config *cfg, char *err, size_t errlen)
{
	const char *path = o->config_path ? o->config_path : LEDD_CONFIG_PATH;
	const char *env = getenv(LEDD_RUNTIME_DIR_ENV);

	if (config_load(path, cfg, err, errlen) < 0) {
		if (o->config_path || errno != ENOENT)
			return -1;
		log_warn("%s does not exist: using the built-in default wiring", path);
		config_default_wiring(cfg);
	}
	if (env && *env && set_path(cfg->runtime_dir, env, LEDD_RUNTIME_DIR_ENV, err, errlen) < 0)
		return -1;
	if (o->runtime_dir && set_path(cfg->runtime_dir, o->runtime_dir, "-r", err, errlen) < 0)
		return -1;
	if (o->state_file && set_path(cfg->state_file, o->state_file, "-s", err, errlen) < 0)
		return -1;
	if (o->chip && set_path(cfg->chip, o->chip, "chip", err, errlen) < 0)
		return -1;
	if (o->backend)
		cfg->backend = strcmp(o->backend, "sim") == 0 ? GPIO_BACKEND_SIM : GPIO_BACKEND_CHARDEV;
	return check_state_fits(cfg, path, err, errlen);
}

/* --- GPIO ---------------------------------------------------------------- */

struct gpio *open_gpio(const struct ledd_config *cfg, const struct ledd_state *st,
			      char *err, size_t errlen)
{
	struct gpio_line_config lines[LEDD_MAX_LEDS + LEDD_MAX_BUTTONS];
	char labels[LEDD_MAX_LEDS + LEDD_MAX_BUTTONS][LEDD_MAX_NAME + 8];
	size_t n = config_gpio_lines(cfg, lines, labels);

	for (size_t i = 0; i < cfg->nleds; i++)
		lines[i].initial = st->leds[i].lit;
	return gpio_open(cfg->backend, cfg->chip, lines, n, err, errlen);
}

/* Read every button's current level (after open or reload). */
void read_buttons(struct ledd *d)
{
	for (size_t i = 0; i < d->st.nbuttons; i++) {
		int v;
		if (gpio_get(d->gpio, d->st.nleds + i, &v) < 0)
			log_warn("button %s: cannot read: %s", d->st.buttons[i].name, strerror(errno));
		else
			d->st.buttons[i].pressed = v;
	}
}

/* How many watchers fit: each holds a descriptor, and a state save or a
 * reload must still find one free. Raise the soft limit as far as needed (and
 * allowed), else lower the watcher count rather than fail saves later. */
size_t watcher_budget(size_t wanted)
{
	rlim_t need = (rlim_t)wanted + LEDD_FD_RESERVE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return wanted;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rlim_t target = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) ? need : rl.rlim_max;
		if (target > rl.rlim_cur) {
			rl.rlim_cur = target;
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				getrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		size_t fit = rl.rlim_cur > LEDD_FD_RESERVE ? (size_t)(rl.rlim_cur - LEDD_FD_RESERVE) : 0;
		log_warn("max_watchers = %zu does not fit in the descriptor limit (%llu): using %zu",
			 wanted, (unsigned long long)rl.rlim_cur, fit);
		return fit;
	}
	return wanted;
}

/* --- reload ---------------------------------------------------------------- */

/* The same LEDs and buttons, with the same lines and actions: a reload
 * between the two changes nothing anybody can see in the state. */
static bool leds_and_buttons_equal(const struct ledd_config *a, const struct ledd_config *b)
{
	if (config_wiring_differs(a, b))
		return false;
	for (size_t i = 0; i < a->nbuttons; i++)
		if (!action_equal(&a->buttons[i].on_press, &b->buttons[i].on_press) ||
		    !action_equal(&a->buttons[i].on_release, &b->buttons[i].on_release))
			return false;
	return true;
}

/* SIGHUP: read the config again. A bad config keeps the old one running. */
void reload(struct ledd *d)
{
	static struct ledd_config cfg; /* large: kept off the stack */
	static struct ledd_state st;
	char err[LEDD_ERR_MAX], text[LEDD_STATE_MAX_BYTES];

	notify_send("RELOADING=1\nMONOTONIC_USEC=%" PRIu64, mono_ns() / 1000u);
	if (load_config(&d->opt, &cfg, err, sizeof(err)) < 0) {
		log_err("reload failed, keeping the running config: %s", err);
		goto done;
	}
	if (strcmp(cfg.runtime_dir, d->cfg.runtime_dir) != 0) {
		log_warn("runtime_dir changed to %s: that needs a restart; staying on %s",
			 cfg.runtime_dir, d->cfg.runtime_dir);
		strcpy(cfg.runtime_dir, d->cfg.runtime_dir);
	}
	if (config_equal(&cfg, &d->cfg)) {
		/* Nothing to do: no seq, no event, blink phases go on undisturbed. */
		log_notice("reloaded: nothing changed");
		goto done;
	}
	if (leds_and_buttons_equal(&cfg, &d->cfg)) {
		/* Only [ledd] settings changed (max_watchers, state_file, ...): the
		 * state is the same, so no seq, no event, no blink restart -- unless
		 * a new pwm_hz moves the LEDs that follow it. */
		bool moved = strcmp(cfg.state_file, d->cfg.state_file) != 0;
		d->cfg = cfg;
		d->fifo.max_watchers = watcher_budget(d->cfg.max_watchers);
		if (state_pwm_default(&d->st, d->cfg.pwm_hz)) {
			for (size_t i = 0; i < d->st.nleds; i++)
				drive_led(d, i);
			changed(d);
		} else if (moved) {
			save_state(d, true);
		}
		log_notice("reloaded: no LED or button changed");
		goto done;
	}
	/* Carry the state over by name, exactly as a restart would. */
	state_init(&st, &cfg);
	if (state_format(&d->st, text, sizeof(text)) < 0 ||
	    state_parse(&st, text, strlen(text), err, sizeof(err)) < 0) {
		log_err("reload failed, keeping the running config: state carry-over: %s", err);
		goto done;
	}
	state_blink_restart(&st, mono_ns());
	if (config_wiring_differs(&d->cfg, &cfg)) {
		struct gpio *g;
		gpio_close(d->gpio);
		d->gpio = NULL;
		g = open_gpio(&cfg, &st, err, sizeof(err));
		if (!g) {
			log_err("reload failed, keeping the running config: %s", err);
			d->gpio = open_gpio(&d->cfg, &d->st, err, sizeof(err));
			if (!d->gpio)
				die("cannot request the old lines again either: %s", err);
			drive_leds(d, false);
			goto done;
		}
		d->gpio = g;
		d->cfg = cfg;
		d->st = st;
		drive_leds(d, false);
		read_buttons(d);
		log_notice("reloaded: lines requested again (%s)", gpio_describe(d->gpio));
	} else {
		d->cfg = cfg;
		d->st = st;
		drive_leds(d, true);
		read_buttons(d);
		log_notice("reloaded: wiring unchanged");
	}
	d->fifo.max_watchers = watcher_budget(d->cfg.max_watchers);
	memset(d->led_failed, 0, sizeof(d->led_failed));
	changed(d);
done:
	notify_send("READY=1");
	send_status(d);
}

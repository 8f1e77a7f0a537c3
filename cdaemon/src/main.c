/* main.c -- ledd: options, lifecycle and the one poll loop.
 * (Requests are answered in commands.c, state changes applied in changes.c.)
 *
 * ledd owns the GPIO lines of a few LEDs and buttons and serves the FIFO
 * protocol of docs/protocol.md. Everything happens in one thread around one
 * poll(): signals arrive through a signalfd, button edges through the
 * backend's event fd, deleted FIFOs through inotify, the systemd watchdog
 * through a timerfd, and blink phases through poll's timeout. When nothing
 * blinks and there is no watchdog the timeout is infinite: an idle ledd
 * never wakes up.
 *
 * Every acknowledged change is renamed into the state file (state.c, atomic)
 * before its reply is written, so it survives kill -9; the fsync that makes it
 * survive a power cut follows within LEDD_STATE_SYNC_MS, once per burst, off
 * the clients' path (a one-shot deadline in the same poll timeout).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "ledd.h"
#include "log.h"
#include "notify.h"

/* --- options and configuration ------------------------------------------ */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ledd [-c CONFIG] [-b sim|chardev] [-r RUNTIME_DIR] [-s STATE_FILE] [-C CHIP]\n"
		"            [--check-config] [-v] [-h] [-V]\n"
		"Drive LEDs and watch buttons on GPIO lines; serve them over FIFOs.\n\n"
		"  -c, --config FILE       config file (default %s)\n"
		"  -b, --backend KIND      chardev (real GPIO) or sim (no hardware)\n"
		"  -r, --runtime-dir DIR   FIFO directory (default $%s, else %s)\n"
		"  -s, --state-file FILE   where LED states and press counters live (default %s)\n"
		"  -C, --chip CHIP         auto, /dev/gpiochipN, gpiochipN or a chip label\n"
		"      --check-config      validate the config and exit (0 valid, 1 invalid)\n"
		"  -v, --verbose           debug messages\n"
		"  -h, --help              this help\n"
		"  -V, --version           print the version\n",
		LEDD_CONFIG_PATH, LEDD_RUNTIME_DIR_ENV, LEDD_RUNTIME_DIR, LEDD_STATE_PATH);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "backend", required_argument, NULL, 'b' },
		{ "runtime-dir", required_argument, NULL, 'r' },
		{ "state-file", required_argument, NULL, 's' },
		{ "chip", required_argument, NULL, 'C' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:b:r:s:C:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config_path = optarg; break;
		case 'b': o->backend = optarg; break;
		case 'r': o->runtime_dir = optarg; break;
		case 's': o->state_file = optarg; break;
		case 'C': o->chip = optarg; break;
		case 'k': o->check_config = true; break;
		case 'v': o->verbose++; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("ledd %s (protocol %d)\n", LEDD_VERSION, LEDD_PROTOCOL); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ledd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		exit(2);
	}
	if (o->backend && strcmp(o->backend, "sim") != 0 && strcmp(o->backend, "chardev") != 0) {
		fprintf(stderr, "ledd: -b: '%s' is not sim or chardev\n", o->backend);
		exit(2);
	}
}

static int set_path(char *dst, const char *src, const char *what, char *err, size_t errlen)
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

/* Read the config file (or the built-in wiring when the default file does not
 * exist) and apply the environment and the flags over it. */
static int load_config(const struct options *o, struct ledd_config *cfg, char *err, size_t errlen)
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
	return 0;
}

/* --- GPIO ---------------------------------------------------------------- */

static struct gpio *open_gpio(const struct ledd_config *cfg, const struct ledd_state *st,
			      char *err, size_t errlen)
{
	struct gpio_line_config lines[LEDD_MAX_LEDS + LEDD_MAX_BUTTONS];
	char labels[LEDD_MAX_LEDS + LEDD_MAX_BUTTONS][LEDD_MAX_NAME + 8];
	size_t n = config_gpio_lines(cfg, lines, labels);

	for (size_t i = 0; i < cfg->nleds; i++)
		lines[i].initial = st->leds[i].level;
	return gpio_open(cfg->backend, cfg->chip, lines, n, err, errlen);
}

/* Read every button's current level (after open or reload). */
static void read_buttons(struct ledd *d)
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
static size_t watcher_budget(size_t wanted)
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
static void reload(struct ledd *d)
{
	static struct ledd_config cfg; /* large: kept off the stack */
	static struct ledd_state st;
	char err[512], text[LEDD_STATE_MAX_BYTES];

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
		 * state is the same, so no seq, no event, no blink restart. */
		bool moved = strcmp(cfg.state_file, d->cfg.state_file) != 0;
		d->cfg = cfg;
		d->fifo.max_watchers = watcher_budget(d->cfg.max_watchers);
		if (moved)
			save_state(d, true);
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
			goto done;
		}
		d->gpio = g;
		d->cfg = cfg;
		d->st = st;
		read_buttons(d);
		log_notice("reloaded: lines requested again (%s)", gpio_describe(d->gpio));
	} else {
		d->cfg = cfg;
		d->st = st;
		for (size_t i = 0; i < d->st.nleds; i++)
			drive_led(d, i);
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

/* --- setup ----------------------------------------------------------------- */

static int setup_signals(void)
{
	sigset_t mask;
	int fd;

	/* A client that vanishes must never kill us: writes get EPIPE instead. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die_perror("signal(SIGPIPE)");
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		die_perror("sigprocmask");
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		die_perror("signalfd");
	return fd;
}

/* The systemd watchdog: a timerfd at half the interval systemd asked for. */
static int setup_watchdog(void)
{
	uint64_t usec = notify_watchdog_usec();
	struct itimerspec its = { 0 };
	int fd;

	if (!usec)
		return -1;
	usec /= 2;
	its.it_value.tv_sec = (time_t)(usec / 1000000u);
	its.it_value.tv_nsec = (long)(usec % 1000000u) * 1000;
	its.it_interval = its.it_value;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		die_perror("timerfd_create");
	if (timerfd_settime(fd, 0, &its, NULL) < 0)
		die_perror("timerfd_settime");
	log_info("watchdog: pinging every %" PRIu64 " ms", usec / 1000u);
	return fd;
}

/* The state file's directory: systemd's StateDirectory= makes it on a Pi;
 * elsewhere make the last level, so a fresh -s path just works. */
static void make_state_dir(const char *path)
{
	char dir[CONFIG_PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		log_warn("cannot create %s: %s", dir, strerror(errno));
}

static void load_state(struct ledd *d)
{
	char err[512];
	int rc;

	make_state_dir(d->cfg.state_file);
	rc = state_load(&d->st, d->cfg.state_file, err, sizeof(err));

	if (rc == 1)
		log_warn("no state file yet (%s): all LEDs off, counters at zero", err);
	else if (rc < 0)
		log_warn("ignoring the state file: %s: all LEDs off, counters at zero", err);
	else if (err[0])
		log_notice("%s (ignored)", err);
	state_blink_restart(&d->st, mono_ns());
}

static void check_config_and_exit(const struct options *o)
{
	const char *path = o->config_path ? o->config_path : LEDD_CONFIG_PATH;
	struct ledd_config cfg;
	struct stat st;
	char err[512];

	if (!o->config_path && stat(path, &st) < 0 && errno == ENOENT) {
		/* The daemon would start on the built-in wiring; a check must not call that "ok". */
		fprintf(stderr, "%s: no such file (ledd would start with the built-in default wiring)\n",
			path);
		exit(1);
	}
	if (load_config(o, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	printf("%s: ok (%s, %zu LED%s, %zu button%s)\n", path, config_backend_name(cfg.backend),
	       cfg.nleds, cfg.nleds == 1 ? "" : "s", cfg.nbuttons, cfg.nbuttons == 1 ? "" : "s");
	exit(0);
}

static void startup(struct ledd *d)
{
	char err[512];

	if (load_config(&d->opt, &d->cfg, err, sizeof(err)) < 0)
		die("%s", err);
	if (fifo_lock(&d->fifo, d->cfg.runtime_dir, err, sizeof(err)) < 0)
		die("%s", err);
	state_init(&d->st, &d->cfg);
	load_state(d);
	d->gpio = open_gpio(&d->cfg, &d->st, err, sizeof(err));
	if (!d->gpio)
		die("%s", err);
	read_buttons(d);
	d->sig_fd = setup_signals();
	if (fifo_open(&d->fifo, watcher_budget(d->cfg.max_watchers), err, sizeof(err)) < 0)
		die("%s", err);
	d->wd_fd = setup_watchdog();
	save_state(d, true);
	log_notice("ledd %s ready: %s, %zu LED%s, %zu button%s, runtime dir %s, state %s",
		   LEDD_VERSION, gpio_describe(d->gpio), d->st.nleds, d->st.nleds == 1 ? "" : "s",
		   d->st.nbuttons, d->st.nbuttons == 1 ? "" : "s", d->cfg.runtime_dir,
		   d->cfg.state_file);
	notify_send("READY=1\nMAINPID=%ld", (long)getpid());
	send_status(d);
}

/* --- the loop -------------------------------------------------------------- */

enum { P_SIG, P_CMD, P_INOTIFY, P_GPIO, P_WD, P_FIXED };

static int poll_timeout(const struct ledd *d)
{
	uint64_t next = state_next_deadline(&d->st), now, log_due = log_limited_due();

	if (d->sync_due_ns && (!next || d->sync_due_ns < next))
		next = d->sync_due_ns;
	if (log_due && (!next || log_due < next))
		next = log_due;
	if (!next)
		return -1;
	now = mono_ns();
	if (next <= now)
		return 0;
	/* Round up: waking a little early would only loop back here. */
	uint64_t ms = (next - now + 999999u) / 1000000u;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static void handle_signals(struct ledd *d)
{
	struct signalfd_siginfo si;

	while (read(d->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_notice("SIGHUP: reloading %s",
				   d->opt.config_path ? d->opt.config_path : LEDD_CONFIG_PATH);
			reload(d);
		} else {
			log_notice("%s: stopping", strsignal((int)si.ssi_signo));
			d->running = false;
		}
	}
}

static void advance_blink(struct ledd *d)
{
	uint32_t mask = state_blink_advance(&d->st, mono_ns());

	for (size_t i = 0; mask; i++, mask >>= 1)
		if (mask & 1)
			drive_led(d, i);
}

static void run(struct ledd *d)
{
	struct pollfd *pfd = calloc(P_FIXED + LEDD_MAX_WATCHERS_LIMIT, sizeof(*pfd));

	if (!pfd)
		die("out of memory");
	d->running = true;
	while (d->running) {
		size_t nw = d->fifo.nwatchers;

		pfd[P_SIG] = (struct pollfd){ .fd = d->sig_fd, .events = POLLIN };
		pfd[P_CMD] = (struct pollfd){ .fd = d->fifo.cmd_fd, .events = POLLIN };
		pfd[P_INOTIFY] = (struct pollfd){ .fd = d->fifo.inotify_fd, .events = POLLIN };
		pfd[P_GPIO] = (struct pollfd){ .fd = gpio_event_fd(d->gpio), .events = POLLIN };
		pfd[P_WD] = (struct pollfd){ .fd = d->wd_fd, .events = POLLIN };
		/* Watchers: events 0, so only POLLERR (reader gone) wakes us. */
		for (size_t i = 0; i < nw; i++)
			pfd[P_FIXED + i] = (struct pollfd){ .fd = d->fifo.watchers[i].fd };

		if (poll(pfd, P_FIXED + nw, poll_timeout(d)) < 0) {
			if (errno == EINTR)
				continue;
			die_perror("poll");
		}
		bool dropped = false;
		for (size_t i = 0; i < nw; i++)
			if (pfd[P_FIXED + i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
				fifo_watch_drop_fd(&d->fifo, pfd[P_FIXED + i].fd);
				dropped = true;
			}
		if (dropped)
			send_status(d);
		if (pfd[P_CMD].revents & POLLIN) {
			fifo_check(&d->fifo);   /* the layout, before its FIFOs are used */
			fifo_read_commands(&d->fifo, commands_handle_line, d);
		}
		if (pfd[P_GPIO].revents & POLLIN)
			handle_edges(d);
		if (pfd[P_INOTIFY].revents & POLLIN)
			fifo_handle_inotify(&d->fifo);
		if (pfd[P_WD].revents & POLLIN) {
			uint64_t expirations;
			if (read(d->wd_fd, &expirations, sizeof(expirations)) > 0)
				notify_send("WATCHDOG=1");
		}
		if (pfd[P_SIG].revents & POLLIN)
			handle_signals(d);
		advance_blink(d);
		log_limited_flush();
		if (d->sync_due_ns && mono_ns() >= d->sync_due_ns)
			save_state(d, true);
	}
	free(pfd);
}

int main(int argc, char **argv)
{
	static struct ledd d = { .sig_fd = -1, .wd_fd = -1 };

	parse_options(argc, argv, &d.opt);
	log_set_verbose(d.opt.verbose);
	if (d.opt.check_config)
		check_config_and_exit(&d.opt);
	startup(&d);
	run(&d);
	notify_send("STOPPING=1");
	save_state(&d, true);
	fifo_close(&d.fifo);
	gpio_close(d.gpio);
	log_notice("stopped");
	return 0;
}

/* main.c -- ledd: options, lifecycle and the one poll loop.
 * (Requests are answered in commands.c, state changes applied in changes.c,
 * the configuration read and reloaded in reload.c.)
 *
 * ledd owns the GPIO lines of a few LEDs and buttons and serves the FIFO
 * protocol of docs/protocol.md. Everything happens in one thread around one
 * poll(): signals arrive through a signalfd, button edges through the
 * backend's event fd, deleted FIFOs through inotify, the systemd watchdog
 * through a timerfd, dimmed LEDs' PWM edges through another (pwm.c), and
 * blink phases through poll's timeout. When nothing blinks, nothing is
 * dimmed and there is no watchdog, the timeout is infinite and the PWM timer
 * disarmed: an idle ledd never wakes up.
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
	char err[LEDD_ERR_MAX];
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
	char err[LEDD_ERR_MAX];

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
	char err[LEDD_ERR_MAX];

	if (load_config(&d->opt, &d->cfg, err, sizeof(err)) < 0)
		die("%s", err);
	if (fifo_lock(&d->fifo, d->cfg.runtime_dir, err, sizeof(err)) < 0)
		die("%s", err);
	state_init(&d->st, &d->cfg);
	load_state(d);
	d->gpio = open_gpio(&d->cfg, &d->st, err, sizeof(err));
	if (!d->gpio)
		die("%s", err);
	if (pwm_open(&d->pwm) < 0)
		die_perror("timerfd_create (PWM)");
	drive_leds(d, false);   /* restored dimmed LEDs start their PWM */
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

enum { P_PWM, P_SIG, P_CMD, P_INOTIFY, P_GPIO, P_WD, P_FIXED };

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

		pfd[P_PWM] = (struct pollfd){ .fd = d->pwm.fd, .events = POLLIN };
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
		/* First: a PWM edge is late by whatever runs before it. */
		if (pfd[P_PWM].revents & POLLIN)
			pwm_expire(&d->pwm, &d->st, d->gpio, mono_ns());
		bool dropped = false;
		for (size_t i = 0; i < nw; i++)
			if (pfd[P_FIXED + i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
				fifo_watch_drop_fd(&d->fifo, pfd[P_FIXED + i].fd);
				dropped = true;
			}
		if (dropped)
			send_status(d);
		/* A change to the runtime directory is repaired before the requests
		 * that woke us with it are read. */
		if (pfd[P_INOTIFY].revents & POLLIN)
			fifo_handle_inotify(&d->fifo);
		if (pfd[P_CMD].revents & POLLIN) {
			fifo_check(&d->fifo);   /* ledd.cmd and reply/, before they are used */
			fifo_read_commands(&d->fifo, commands_handle_line, d);
		}
		if (pfd[P_GPIO].revents & POLLIN)
			handle_edges(d);
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
	static struct ledd d = { .sig_fd = -1, .wd_fd = -1, .pwm = { .fd = -1 } };

	parse_options(argc, argv, &d.opt);
	log_set_verbose(d.opt.verbose);
	if (d.opt.check_config)
		check_config_and_exit(&d.opt);
	startup(&d);
	run(&d);
	notify_send("STOPPING=1");
	save_state(&d, true);
	fifo_close(&d.fifo);
	pwm_close(&d.pwm);
	gpio_close(d.gpio);
	log_notice("stopped");
	return 0;
}

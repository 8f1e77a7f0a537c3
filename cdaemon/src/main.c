/* main.c -- ledd: options, lifecycle and the one poll loop.
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

#include "config.h"
#include "defaults.h"
#include "fifo.h"
#include "gpio.h"
#include "log.h"
#include "notify.h"
#include "protocol.h"
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
	struct fifo_server fifo;
	int sig_fd, wd_fd;
	bool running;
	bool save_failed;       /* log a failing save once, not per command */
	uint64_t sync_due_ns;   /* when the unsynced state file gets its fsync; 0 = synced */
	bool led_failed[LEDD_MAX_LEDS]; /* same for a line that refuses (blinking: 50/s) */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		die_perror("clock_gettime(CLOCK_MONOTONIC)");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		die_perror("clock_gettime(CLOCK_REALTIME)");
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
			snprintf(err, errlen, "%s: path too long", what);
			return -1;
		}
		return 0;
	}
	if (strlen(src) >= CONFIG_PATH_MAX) {
		snprintf(err, errlen, "%s: path too long", what);
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

static int drive_led(struct ledd *d, size_t i)
{
	if (gpio_set(d->gpio, i, d->st.leds[i].level) < 0) {
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

/* --- state changes -------------------------------------------------------- */

static const char *backend_name(const struct ledd *d)
{
	return config_backend_name(d->cfg.backend);
}

static void send_status(struct ledd *d)
{
	/* gpio_describe(): "sim", or the chip, e.g. "/dev/gpiochip0 [pinctrl-bcm2711]". */
	notify_send("STATUS=%s, %zu LED%s, %zu button%s, %zu watcher%s", gpio_describe(d->gpio),
		    d->st.nleds, d->st.nleds == 1 ? "" : "s", d->st.nbuttons,
		    d->st.nbuttons == 1 ? "" : "s", d->fifo.nwatchers,
		    d->fifo.nwatchers == 1 ? "" : "s");
}

static void save_state(struct ledd *d, bool durable)
{
	char err[512];

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

static int event_line(struct ledd *d, char *out, size_t outlen)
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
static void persist(struct ledd *d)
{
	save_state(d, false);
	if (!d->sync_due_ns)
		d->sync_due_ns = mono_ns() + (uint64_t)LEDD_STATE_SYNC_MS * 1000000u;
}

/* A state change: count it, persist it, tell the watchers. */
static void changed(struct ledd *d)
{
	d->st.seq++;
	persist(d);
	broadcast(d);
}

static int drive_cb(void *d, size_t i)
{
	return drive_led(d, i);
}

static void handle_edges(struct ledd *d)
{
	struct gpio_edge edges[LEDD_MAX_EDGES];
	bool any = false;
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
			d->st.seq++;
			broadcast(d);
			any = true;
			log_debug("button %s %s", bt->name, bt->pressed ? "pressed" : "released");
			if (action_run(bt->pressed ? &d->cfg.buttons[b].on_press : &d->cfg.buttons[b].on_release,
				       &d->st, mono_ns(), drive_cb, d))
				changed(d); /* a button action: an ordinary state change */
		}
	}
	if (n < 0)
		log_err("reading button edges: %s", strerror(errno));
	if (any)
		persist(d);
}

/* --- requests -------------------------------------------------------------- */

struct reply {
	enum proto_code code;
	char msg[256];
	char payload[LEDD_LINE_MAX];
};

static void reply_state(struct ledd *d, struct reply *r)
{
	if (state_json(&d->st, backend_name(d), r->payload, sizeof(r->payload)) < 0) {
		r->code = PROTO_INTERNAL;
		snprintf(r->msg, sizeof(r->msg), "state does not fit in a reply");
	}
}

static int need_led(struct ledd *d, const char *arg, struct reply *r)
{
	int i = state_find_led(&d->st, arg);

	if (i < 0) {
		r->code = PROTO_NOTFOUND;
		snprintf(r->msg, sizeof(r->msg), "no LED '%.40s' (ids 0-%zu)", arg, d->st.nleds - 1);
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
		did = state_led_blink(&d->st, (size_t)i, (unsigned int)req->on_ms,
				      (unsigned int)req->off_ms, mono_ns());
	if (drive_led(d, (size_t)i) < 0) {
		d->st.leds[i] = before;
		r->code = PROTO_GPIO;
		snprintf(r->msg, sizeof(r->msg), "GPIO%u: %s", before.gpio, strerror(errno));
		return;
	}
	if (did)
		changed(d);
	reply_state(d, r);
}

static void all_command(struct ledd *d, const struct request *req, struct reply *r)
{
	bool did = false;

	for (size_t i = 0; i < d->st.nleds; i++) {
		did |= state_led_set(&d->st, i, req->all_on);
		if (drive_led(d, i) < 0) {
			r->code = PROTO_GPIO;
			snprintf(r->msg, sizeof(r->msg), "GPIO%u: %s", d->st.leds[i].gpio, strerror(errno));
		}
	}
	if (did)
		changed(d);
	if (r->code == PROTO_OK)
		reply_state(d, r);
}

static void button_command(struct ledd *d, const struct request *req, struct reply *r)
{
	int b = state_find_button(&d->st, req->args[0]);

	if (b < 0) {
		r->code = PROTO_NOTFOUND;
		if (d->st.nbuttons)
			snprintf(r->msg, sizeof(r->msg), "no button '%.40s' (ids 0-%zu)", req->args[0],
				 d->st.nbuttons - 1);
		else
			snprintf(r->msg, sizeof(r->msg), "no button '%.40s' (none configured)", req->args[0]);
		return;
	}
	if (gpio_sim_set_input(d->gpio, d->st.nleds + (size_t)b, req->verb == VERB_PRESS) < 0) {
		if (errno == ENOTSUP) {
			r->code = PROTO_NOTSUPPORTED;
			snprintf(r->msg, sizeof(r->msg), "%s needs the sim backend (this is %s)",
				 req->verb == VERB_PRESS ? "PRESS" : "RELEASE", backend_name(d));
		} else {
			r->code = PROTO_INTERNAL;
			snprintf(r->msg, sizeof(r->msg), "sim input: %s", strerror(errno));
		}
		return;
	}
	handle_edges(d);    /* so the reply already shows the press */
	reply_state(d, r);
}

static void watch_command(struct ledd *d, const struct request *req, struct reply *r)
{
	char line[LEDD_LINE_MAX];
	int n = event_line(d, line, sizeof(line));

	if (n < 0) {
		r->code = PROTO_INTERNAL;
		snprintf(r->msg, sizeof(r->msg), "state does not fit in an event");
		return;
	}
	r->code = fifo_watch_add(&d->fifo, req->args[0], line, (size_t)n, r->msg, sizeof(r->msg));
	if (r->code != PROTO_OK)
		return;
	snprintf(r->payload, sizeof(r->payload), "{\"watching\":\"%s\"}", req->args[0]);
	send_status(d);
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
	snprintf(r->msg, sizeof(r->msg), "verb not dispatched");
}

static void handle_line(void *ctx, const char *line, size_t len, bool complete)
{
	struct ledd *d = ctx;
	static struct request req;     /* a few KiB each: kept off the stack */
	static struct reply r;
	char out[LEDD_LINE_MAX + 64];
	int n;

	r.code = protocol_parse(line, len, &req, r.msg, sizeof(r.msg));
	r.payload[0] = '\0';
	if (!complete && r.code != PROTO_BADREQUEST) {
		r.code = PROTO_BADREQUEST;
		snprintf(r.msg, sizeof(r.msg), "request without LF (one write per line)");
	}
	if (r.code == PROTO_OK)
		dispatch(d, &req, &r);
	if (r.code == PROTO_OK)
		n = protocol_format_ok(out, sizeof(out), req.id, r.payload);
	else
		n = protocol_format_err(out, sizeof(out), req.id, r.code, r.msg);
	if (r.code == PROTO_INTERNAL)
		log_err("internal error answering request %s: %s", req.id, r.msg);
	else if (r.code != PROTO_OK)
		log_debug("request %s: %s %s", req.id, protocol_code_name(r.code), r.msg);
	if (n < 0 || n >= PIPE_BUF) {
		log_err("internal: reply to %s does not fit in one pipe write", req.id);
		n = protocol_format_err(out, sizeof(out), req.id, PROTO_INTERNAL, "reply too long");
	}
	fifo_reply(&d->fifo, out, (size_t)n);
}

/* --- reload ---------------------------------------------------------------- */

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
	struct ledd_config cfg;
	char err[512];

	if (load_config(o, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	printf("%s: ok (%s, %zu LED%s, %zu button%s)\n",
	       o->config_path ? o->config_path : LEDD_CONFIG_PATH, config_backend_name(cfg.backend),
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
	uint64_t next = state_next_deadline(&d->st), now;

	if (d->sync_due_ns && (!next || d->sync_due_ns < next))
		next = d->sync_due_ns;
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
		if (pfd[P_CMD].revents & POLLIN)
			fifo_read_commands(&d->fifo, handle_line, d);
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

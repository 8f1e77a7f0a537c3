/* gpiotool.c -- static helper for the real-kernel GPIO test (runs inside the VM).
 *
 * The VM has busybox and nothing else, so what a shell cannot do is here:
 *
 *   gpiotool hold DEV OFFSET CONSUMER   request a line as another consumer, print
 *                                       "held", sleep until killed
 *   gpiotool info DEV OFFSET            "used=0|1 consumer=NAME flags=0x..."
 *   gpiotool sample FILE MS             poll a gpio-sim value file every ~1 ms
 *                                       for MS ms; print "t_ms value" per change
 *   gpiotool bounce FILE N US FINAL     write pull-down/pull-up alternately N
 *                                       times US µs apart, then FINAL (a burst
 *                                       of contact bounce)
 *   gpiotool runas UID GID CMD [ARG...] drop root (no supplementary groups)
 *                                       and exec CMD: busybox has no setuidgid
 *   gpiotool backend SYSFS              self-test of the chardev backend
 *                                       (cdaemon/src/gpio_chardev.c through
 *                                       gpio.h), SYSFS = the Pi chip's
 *                                       /sys/devices/platform/gpio-sim.N/gpiochipM
 *
 * Result lines are "PASS <name>" / "FAIL <name>: <why>", parsed by
 * tests/kernel/test_gpio_sim.py. Linked statically with gpio.c and the
 * chardev backend (gpio_chardev.c, gpio_chip.c, gpio_line_config.c); the sim
 * backend is stubbed out so this builds without the rest of the daemon.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "gpio_backend.h"

static int failures;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("gpiotool: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		printf("PASS %s\n", name);
	} else {
		failures++;
		printf("FAIL %s: ", name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		putchar('\n');
	}
	fflush(stdout);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The sim backend is not part of this test. */
struct gpio *gpio_sim_open(const struct gpio_line_config *lines, size_t nlines, char *err, size_t errlen)
{
	(void)lines;
	(void)nlines;
	snprintf(err, errlen, "sim backend not linked into gpiotool");
	errno = ENOSYS;
	return NULL;
}

/* ---- small file helpers ------------------------------------------------- */

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Physical value of a simulated line, as the "outside world" sees it. */
static int sim_value(const char *sysfs, unsigned int offset)
{
	char path[512], buf[16];

	snprintf(path, sizeof(path), "%s/sim_gpio%u/value", sysfs, offset);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	return atoi(buf);
}

static int sim_pull(const char *sysfs, unsigned int offset, const char *pull)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/sim_gpio%u/pull", sysfs, offset);
	return write_file(path, pull);
}

/* ---- hold / info / sample / bounce --------------------------------------- */

static int open_chip(const char *dev)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open %s: %s", dev, strerror(errno));
	return fd;
}

static int cmd_hold(const char *dev, unsigned int offset, const char *consumer)
{
	struct gpio_v2_line_request rq;
	int fd = open_chip(dev);

	memset(&rq, 0, sizeof(rq));
	rq.offsets[0] = offset;
	rq.num_lines = 1;
	rq.config.flags = GPIO_V2_LINE_FLAG_INPUT;
	snprintf(rq.consumer, sizeof(rq.consumer), "%s", consumer);
	if (ioctl(fd, GPIO_V2_GET_LINE_IOCTL, &rq) < 0)
		die("request %s line %u: %s", dev, offset, strerror(errno));
	printf("held\n");
	fflush(stdout);
	for (;;)
		pause();
	return 0;
}

static int line_used(const char *dev, unsigned int offset, char *consumer, size_t len, uint64_t *flags)
{
	struct gpio_v2_line_info li;
	int fd = open_chip(dev);

	memset(&li, 0, sizeof(li));
	li.offset = offset;
	if (ioctl(fd, GPIO_V2_GET_LINEINFO_IOCTL, &li) < 0)
		die("lineinfo %s %u: %s", dev, offset, strerror(errno));
	close(fd);
	snprintf(consumer, len, "%s", li.consumer);
	if (flags)
		*flags = li.flags;
	return (li.flags & GPIO_V2_LINE_FLAG_USED) != 0;
}

static int cmd_info(const char *dev, unsigned int offset)
{
	char consumer[GPIO_MAX_NAME_SIZE + 1];
	uint64_t flags;
	int used = line_used(dev, offset, consumer, sizeof(consumer), &flags);

	printf("used=%d consumer=%s flags=%#llx\n", used, consumer[0] ? consumer : "-", (unsigned long long)flags);
	return 0;
}

static int cmd_sample(const char *file, unsigned int ms)
{
	uint64_t start = now_ns(), end = start + (uint64_t)ms * 1000000u;
	int last = -1;
	unsigned long samples = 0;
	char buf[16];

	while (now_ns() < end) {
		if (read_file(file, buf, sizeof(buf)) < 0)
			die("read %s: %s", file, strerror(errno));
		int v = atoi(buf);
		samples++;
		if (v != last) {
			printf("%.1f %d\n", (double)(now_ns() - start) / 1e6, v);
			last = v;
		}
		sleep_ms(1);
	}
	printf("samples %lu\n", samples);
	return 0;
}

static int cmd_bounce(const char *file, unsigned int n, unsigned int us, const char *final)
{
	struct timespec ts = { 0, (long)us * 1000L };

	for (unsigned int i = 0; i < n; i++) {
		if (write_file(file, i % 2 == 0 ? "pull-down" : "pull-up") < 0)
			die("write %s: %s", file, strerror(errno));
		nanosleep(&ts, NULL);
	}
	if (write_file(file, final) < 0)
		die("write %s: %s", file, strerror(errno));
	return 0;
}

static int cmd_runas(unsigned int uid, unsigned int gid, char **argv)
{
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		die("dropping to %u:%u: %s", uid, gid, strerror(errno));
	execv(argv[0], argv);
	die("exec %s: %s", argv[0], strerror(errno));
}

/* ---- backend self-test -------------------------------------------------- */

/* Wait up to ms for edges; returns how many were read into edges[]. */
static int wait_edges(struct gpio *g, struct gpio_edge *edges, size_t max, unsigned int ms)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
	size_t n = 0;

	while (n < max) {
		uint64_t t = now_ns();
		if (t >= end)
			break;
		struct pollfd p = { .fd = gpio_event_fd(g), .events = POLLIN };
		int rc = poll(&p, 1, (int)((end - t) / 1000000u) + 1);
		if (rc < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (rc <= 0)
			continue;
		int got = gpio_read_edges(g, edges + n, max - n);
		if (got < 0)
			die("gpio_read_edges: %s", strerror(errno));
		n += (size_t)got;
	}
	return (int)n;
}

static const struct gpio_line_config wiring[] = {
	{ .label = "led red", .gpio = 17, .output = true },
	{ .label = "led green", .gpio = 27, .output = true, .active_low = true, .initial = 1 },
	{ .label = "button button", .gpio = 22, .bias = GPIO_BIAS_PULL_UP, .active_low = true, .debounce_ms = 30 },
};
#define NWIRING (sizeof(wiring) / sizeof(wiring[0]))

static void test_values(struct gpio *g, const char *sysfs)
{
	int v = -1;

	check(sim_value(sysfs, 17) == 0, "backend-initial-low", "GPIO17 is %d, want 0", sim_value(sysfs, 17));
	check(sim_value(sysfs, 27) == 0, "backend-initial-active-low",
	      "GPIO27 (active low, initial on) is %d, want physical 0", sim_value(sysfs, 27));
	check(gpio_set(g, 0, 1) == 0 && sim_value(sysfs, 17) == 1, "backend-set-on", "GPIO17 is %d after set 1",
	      sim_value(sysfs, 17));
	check(gpio_get(g, 0, &v) == 0 && v == 1, "backend-get-output", "get GPIO17 = %d", v);
	check(gpio_set(g, 0, 0) == 0 && sim_value(sysfs, 17) == 0, "backend-set-off", "GPIO17 is %d after set 0",
	      sim_value(sysfs, 17));
	check(gpio_set(g, 1, 0) == 0 && sim_value(sysfs, 27) == 1, "backend-set-active-low",
	      "GPIO27 is %d after logical 0, want physical 1", sim_value(sysfs, 27));
	v = -1;
	check(gpio_get(g, 2, &v) == 0 && v == 0, "backend-pull-up-released",
	      "button with pull-up reads logical %d, want 0 (released)", v);
}

static void test_edges(struct gpio *g, const char *sysfs)
{
	struct gpio_edge e[16];
	uint64_t before = now_ns();
	int n, v = -1;

	sim_pull(sysfs, 22, "pull-down");
	n = wait_edges(g, e, 1, 2000);
	check(n == 1 && e[0].line == 2 && e[0].value == 1, "backend-press-edge",
	      "got %d edges (line %zu value %d), want one press", n, n ? e[0].line : 0, n ? e[0].value : -1);
	check(n == 1 && e[0].timestamp_ns >= before && e[0].timestamp_ns <= now_ns(), "backend-edge-timestamp",
	      "timestamp %llu not within [%llu, now]", n ? (unsigned long long)e[0].timestamp_ns : 0ULL,
	      (unsigned long long)before);
	check(gpio_get(g, 2, &v) == 0 && v == 1, "backend-get-pressed", "pressed button reads %d", v);
	sim_pull(sysfs, 22, "pull-up");
	n = wait_edges(g, e, 1, 2000);
	check(n == 1 && e[0].value == 0, "backend-release-edge", "got %d edges, want one release", n);

	/* Contact bounce: 7 flips 2 ms apart (well under the 30 ms debounce),
	 * ending pressed: exactly one press must come out, then nothing. */
	char pull[512];
	snprintf(pull, sizeof(pull), "%s/sim_gpio22/pull", sysfs);
	cmd_bounce(pull, 7, 2000, "pull-down");
	n = wait_edges(g, e, 16, 500);
	check(n == 1 && e[0].value == 1, "backend-debounce-merges", "bounce burst gave %d edges (first value %d), want 1 press",
	      n, n ? e[0].value : -1);
	sim_pull(sysfs, 22, "pull-up");
	n = wait_edges(g, e, 16, 500);
	check(n == 1 && e[0].value == 0, "backend-debounce-release", "release gave %d edges, want 1", n);
}

/* Wrong opens: busy line, other chips by path/name/label, missing lines. */
static void test_errors(struct gpio *g, const char *dev)
{
	char err[512] = "";
	struct gpio *g2 = gpio_open(GPIO_BACKEND_CHARDEV, "auto", wiring, NWIRING, err, sizeof(err));

	check(!g2 && strstr(err, "GPIO17 (led red) is busy: used by \"ledd\" on ") && strstr(err, "[pinctrl-bcm2711]"),
	      "backend-busy-message", "second open gave %p, message: %s", (void *)g2, err);
	gpio_close(g2);
	(void)g;
	(void)dev;
}

static void test_chip_choice(const char *dev)
{
	char err[512] = "";
	struct gpio *g;

	g = gpio_open(GPIO_BACKEND_CHARDEV, dev, wiring, NWIRING, err, sizeof(err));
	check(g && strstr(gpio_describe(g), dev), "backend-chip-by-path", "%s: %s", dev, g ? gpio_describe(g) : err);
	gpio_close(g);
	g = gpio_open(GPIO_BACKEND_CHARDEV, dev + 5, wiring, NWIRING, err, sizeof(err));
	check(g != NULL, "backend-chip-by-name", "%s: %s", dev + 5, err);
	gpio_close(g);
	g = gpio_open(GPIO_BACKEND_CHARDEV, "pinctrl-bcm2711", wiring, NWIRING, err, sizeof(err));
	check(g && strstr(gpio_describe(g), dev), "backend-chip-by-label", "%s", g ? gpio_describe(g) : err);
	gpio_close(g);
	g = gpio_open(GPIO_BACKEND_CHARDEV, "no-such-label", wiring, NWIRING, err, sizeof(err));
	check(!g && strstr(err, "no-such-label"), "backend-chip-bad-label", "%s", g ? "opened" : err);
	gpio_close(g);
	g = gpio_open(GPIO_BACKEND_CHARDEV, "/dev/gpiochip0", wiring, NWIRING, err, sizeof(err));
	check(!g && strstr(err, "GPIO17 (led red): no such line on /dev/gpiochip0 [ledd-decoy]"), "backend-decoy-has-no-GPIO17",
	      "%s", g ? gpio_describe(g) : err);
	gpio_close(g);
	struct gpio_line_config far = { .label = "led far", .gpio = 40, .output = true };
	g = gpio_open(GPIO_BACKEND_CHARDEV, "auto", &far, 1, err, sizeof(err));
	check(!g && strstr(err, "GPIO40 (led far)"), "backend-missing-line", "%s", g ? gpio_describe(g) : err);
	gpio_close(g);
}

/* 8 buttons with 8 debounce periods and mixed flags + 16 LEDs cannot fit the
 * 10 attributes of one request: several requests and an epoll event fd. */
static void test_many_lines(const char *sysfs)
{
	struct gpio_line_config cfg[24];
	struct gpio_edge e[4];
	char err[512] = "", label[24][24];
	struct gpio *g;
	size_t n = 0;
	int got;

	for (unsigned int i = 0; i < 16; i++) {
		snprintf(label[n], sizeof(label[n]), "led l%u", i);
		cfg[n] = (struct gpio_line_config){ .label = label[n], .gpio = i, .output = true,
						    .active_low = i % 2, .initial = 0 };
		n++;
	}
	for (unsigned int i = 0; i < 8; i++) {
		snprintf(label[n], sizeof(label[n]), "button b%u", i);
		cfg[n] = (struct gpio_line_config){ .label = label[n], .gpio = 16 + i, .output = false,
						    .active_low = i % 2, .debounce_ms = 5 + i,
						    .bias = i % 2 ? GPIO_BIAS_PULL_UP : GPIO_BIAS_PULL_DOWN };
		n++;
	}
	g = gpio_open(GPIO_BACKEND_CHARDEV, "auto", cfg, n, err, sizeof(err));
	check(g != NULL, "backend-24-lines-open", "%s", err);
	if (!g)
		return;
	check(sim_value(sysfs, 1) == 1 && sim_value(sysfs, 0) == 0, "backend-24-lines-initial",
	      "GPIO0=%d GPIO1=%d, want 0 and 1 (GPIO1 active low, off)", sim_value(sysfs, 0), sim_value(sysfs, 1));
	gpio_set(g, 15, 1);
	check(sim_value(sysfs, 15) == 0, "backend-24-lines-set", "GPIO15 (active low, on) = %d", sim_value(sysfs, 15));
	/* Press the first and the last button: their lines are in different requests. */
	sim_pull(sysfs, 16, "pull-up");     /* b0: pull-down, active high: pressed */
	sim_pull(sysfs, 23, "pull-down");   /* b7: pull-up, active low: pressed */
	got = wait_edges(g, e, 2, 2000);
	int seen16 = 0, seen23 = 0;
	for (int i = 0; i < got; i++) {
		seen16 |= e[i].line == 16 && e[i].value == 1;
		seen23 |= e[i].line == 23 && e[i].value == 1;
	}
	check(got == 2 && seen16 && seen23, "backend-24-lines-edges", "got %d edges (b0 %d, b7 %d)", got, seen16, seen23);
	sim_pull(sysfs, 16, "pull-down");
	sim_pull(sysfs, 23, "pull-up");
	gpio_close(g);
}

/* A reader that falls behind: the kernel keeps 16 events per line and drops
 * the oldest, so the last edge read still tells the current state. */
static void test_overflow(const char *sysfs)
{
	struct gpio_line_config cfg = { .label = "button fast", .gpio = 24, .bias = GPIO_BIAS_PULL_DOWN };
	struct gpio_edge e[64];
	char err[512] = "";
	struct gpio *g = gpio_open(GPIO_BACKEND_CHARDEV, "auto", &cfg, 1, err, sizeof(err));
	int n, v = -1;

	check(g != NULL, "backend-overflow-open", "%s", err);
	if (!g)
		return;
	for (int i = 0; i < 40; i++) {
		sim_pull(sysfs, 24, i % 2 ? "pull-down" : "pull-up");
		sleep_ms(1);
	}
	sim_pull(sysfs, 24, "pull-up");
	sleep_ms(300);
	n = gpio_read_edges(g, e, 64);
	printf("info backend-overflow: 41 flips, %d edges queued\n", n);
	check(n >= 1 && n <= 16 && e[n - 1].value == 1 && gpio_get(g, 0, &v) == 0 && v == 1,
	      "backend-overflow-keeps-latest", "%d edges read (kernel keeps 16), last value %d, line %d", n,
	      n > 0 ? e[n - 1].value : -1, v);
	n = gpio_read_edges(g, e, 64);
	check(n == 0, "backend-read-never-blocks", "second read gave %d", n);
	gpio_close(g);
	sim_pull(sysfs, 24, "pull-down");
}

static int cmd_backend(const char *sysfs)
{
	char err[512] = "", consumer[GPIO_MAX_NAME_SIZE + 1], dev[64];
	const char *chip;
	struct gpio *g;

	chip = strrchr(sysfs, '/');
	if (!chip)
		die("bad sysfs path %s", sysfs);
	snprintf(dev, sizeof(dev), "/dev%s", chip);
	g = gpio_open(GPIO_BACKEND_CHARDEV, "auto", wiring, NWIRING, err, sizeof(err));
	check(g != NULL, "backend-open-auto", "%s", err);
	if (!g)
		return 1;
	check(strstr(gpio_describe(g), dev) && strstr(gpio_describe(g), "[pinctrl-bcm2711]"), "backend-describe",
	      "describe = %s, want %s [pinctrl-bcm2711]", gpio_describe(g), dev);
	check(line_used(dev, 17, consumer, sizeof(consumer), NULL) && strcmp(consumer, "ledd") == 0,
	      "backend-consumer-name", "GPIO17 consumer is \"%s\"", consumer);
	check(fcntl(gpio_event_fd(g), F_GETFD) == FD_CLOEXEC && (fcntl(gpio_event_fd(g), F_GETFL) & O_NONBLOCK),
	      "backend-event-fd-flags", "event fd not CLOEXEC|NONBLOCK");
	test_values(g, sysfs);
	test_edges(g, sysfs);
	test_errors(g, dev);
	gpio_close(g);
	int used = 0;
	for (unsigned int off = 17; off <= 27; off += 5)
		used += line_used(dev, off, consumer, sizeof(consumer), NULL);
	check(used == 0, "backend-close-releases", "%d of GPIO17/22/27 still used after close", used);
	test_chip_choice(dev);
	test_many_lines(sysfs);
	test_overflow(sysfs);
	printf("backend-done failures=%d\n", failures);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 5 && strcmp(argv[1], "hold") == 0)
		return cmd_hold(argv[2], (unsigned int)atoi(argv[3]), argv[4]);
	if (argc == 4 && strcmp(argv[1], "info") == 0)
		return cmd_info(argv[2], (unsigned int)atoi(argv[3]));
	if (argc == 4 && strcmp(argv[1], "sample") == 0)
		return cmd_sample(argv[2], (unsigned int)atoi(argv[3]));
	if (argc == 6 && strcmp(argv[1], "bounce") == 0)
		return cmd_bounce(argv[2], (unsigned int)atoi(argv[3]), (unsigned int)atoi(argv[4]), argv[5]);
	if (argc >= 5 && strcmp(argv[1], "runas") == 0)
		return cmd_runas((unsigned int)atoi(argv[2]), (unsigned int)atoi(argv[3]), argv + 4);
	if (argc == 3 && strcmp(argv[1], "backend") == 0)
		return cmd_backend(argv[2]);
	fprintf(stderr, "usage: gpiotool hold DEV OFFSET CONSUMER | info DEV OFFSET | sample FILE MS |\n"
			"       bounce FILE N US FINAL | runas UID GID CMD [ARG...] | backend SYSFS\n");
	return 2;
}

/* raspitool.c -- static helper inside the emulated Raspberry Pi 3B (tests/kernel/test_raspi.py).
 *
 * The VM has busybox and ledd; what the shell cannot do is here:
 *
 *   raspitool req DIR VERB [ARG...]   one request to the ledd on runtime dir DIR,
 *                                     by docs/protocol.md; prints the reply line.
 *                                     Exit 0 for OK, 1 for ERR, 3 no answer.
 *   raspitool chips                   "gpiochipN label=LABEL lines=N" per chip
 *   raspitool lineinfo DEV OFFSET     what the kernel reports about a line
 *                                     (GPIO_V2_GET_LINEINFO_IOCTL): consumer,
 *                                     flags by name, debounce period
 *   raspitool peek DEV OFFSET         request the line as input as a second
 *                                     consumer and print its value, or "busy"
 *   raspitool hold DEV OFFSET NAME    request the line as consumer NAME, print
 *                                     "held", sleep until killed
 *   raspitool level NAME              the line's level as gpiolib reads it from
 *                                     the chip, from debugfs: "out 1", "in 0"
 *   raspitool sample NAME MS          sample that level every ~1 ms for MS ms,
 *                                     print "t_ms value" at each change
 *
 * Why debugfs for levels: a line ledd requested cannot be requested again
 * through the uAPI (EBUSY, `peek` shows it), and lineinfo carries no value.
 * /sys/kernel/debug/gpio prints, for every requested line, the value the
 * driver reads back from the chip (GPLEV on the BCM2835), so it is a reader
 * independent of ledd.
 *
 * Built static for aarch64; the 32-bit ledd under test runs beside it on the
 * same arm64 kernel.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define REPLY_TIMEOUT_MS 5000
#define DEBUGFS_GPIO "/sys/kernel/debug/gpio"

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("raspitool: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int64_t now_ms(void)
{
	return (int64_t)(now_us() / 1000.0);
}

/* ---- the protocol client ------------------------------------------------ */

/* One exchange, protocol 2 (docs/protocol.md): make a private reply FIFO
 * reply/<id>, write "\n<id> <request>\n" to ledd.cmd in one write(), read the
 * one reply line from the FIFO, remove it. POLLERR on ledd.cmd means ledd has
 * gone. Returns 0 with the reply line (no LF) in reply, -1 with a reason. */
static int exchange(const char *dir, const char *request, char *reply, size_t len)
{
	char fifo[512], cmd[512], line[4096 + 256], id[64], *lf = NULL;
	int64_t deadline = now_ms() + REPLY_TIMEOUT_MS;
	int rfd = -1, cfd = -1, rc = -1, n;
	size_t have = 0;

	snprintf(id, sizeof(id), "raspitool-%ld-%lld", (long)getpid(), (long long)now_ms());
	snprintf(fifo, sizeof(fifo), "%s/reply/%s", dir, id);
	snprintf(cmd, sizeof(cmd), "%s/ledd.cmd", dir);
	if (mkfifo(fifo, 0600) < 0) {
		int e = errno;
		snprintf(reply, len, "mkfifo %s: %s (%s)", fifo, strerror(e), e == ENOENT && access(cmd, F_OK) == 0 ?
			 "ledd.cmd is there but reply/ is not: this ledd does not speak protocol 2" : "ledd not running?");
		return -1;
	}
	if (chmod(fifo, 0620) < 0 || (rfd = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
		snprintf(reply, len, "reply FIFO %s: %s", fifo, strerror(errno));
		goto out;
	}
	if ((cfd = open(cmd, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		snprintf(reply, len, "open %s: %s (ledd not running)", cmd, strerror(errno));
		goto out;
	}
	n = snprintf(line, sizeof(line), "\n%s %s\n", id, request);
	if (write(cfd, line, (size_t)n) != n) {
		snprintf(reply, len, "write request: %s", strerror(errno));
		goto out;
	}
	while (!(lf = memchr(line, '\n', have))) {
		struct pollfd p[2] = { { .fd = rfd, .events = POLLIN }, { .fd = cfd, .events = 0 } };
		int64_t left = deadline - now_ms();
		if (left <= 0 || poll(p, 2, (int)left) == 0 || have == sizeof(line) - 1) {
			snprintf(reply, len, "no reply within %d ms", REPLY_TIMEOUT_MS);
			goto out;
		}
		if (p[1].revents & POLLERR) {
			snprintf(reply, len, "ledd went away");
			goto out;
		}
		ssize_t got = read(rfd, line + have, sizeof(line) - 1 - have);
		if (got > 0)
			have += (size_t)got;
	}
	*lf = '\0';
	snprintf(reply, len, "%s", line);
	rc = 0;
out:
	if (cfd >= 0)
		close(cfd);
	if (rfd >= 0)
		close(rfd);
	unlink(fifo);
	return rc;
}

static int cmd_req(const char *dir, int argc, char **argv)
{
	char request[512] = "", reply[4096 + 256];
	size_t used = 0;

	for (int i = 0; i < argc; i++)
		used += (size_t)snprintf(request + used, sizeof(request) - used, "%s%s", i ? " " : "", argv[i]);
	if (exchange(dir, request, reply, sizeof(reply)) < 0) {
		printf("NOREPLY %s\n", reply);
		return 3;
	}
	printf("%s\n", reply);
	return strstr(reply, " OK ") ? 0 : 1;
}

/* ---- lines through the uAPI ------------------------------------------------ */

static int open_chip(const char *dev)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open %s: %s", dev, strerror(errno));
	return fd;
}

static int cmd_chips(void)
{
	struct dirent **names;
	int n = scandir("/dev", &names, NULL, versionsort);

	for (int i = 0; i < n; i++) {
		if (strncmp(names[i]->d_name, "gpiochip", 8) == 0) {
			char dev[300];
			struct gpiochip_info ci;
			snprintf(dev, sizeof(dev), "/dev/%s", names[i]->d_name);
			int fd = open_chip(dev);
			if (ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, &ci) < 0)
				die("chipinfo %s: %s", dev, strerror(errno));
			printf("%s label=%s lines=%u\n", names[i]->d_name, ci.label, ci.lines);
			close(fd);
		}
		free(names[i]);
	}
	free(names);
	return 0;
}

static const struct {
	uint64_t flag;
	const char *name;
} flag_names[] = {
	{ GPIO_V2_LINE_FLAG_USED, "used" },
	{ GPIO_V2_LINE_FLAG_ACTIVE_LOW, "active-low" },
	{ GPIO_V2_LINE_FLAG_INPUT, "input" },
	{ GPIO_V2_LINE_FLAG_OUTPUT, "output" },
	{ GPIO_V2_LINE_FLAG_EDGE_RISING, "edge-rising" },
	{ GPIO_V2_LINE_FLAG_EDGE_FALLING, "edge-falling" },
	{ GPIO_V2_LINE_FLAG_OPEN_DRAIN, "open-drain" },
	{ GPIO_V2_LINE_FLAG_OPEN_SOURCE, "open-source" },
	{ GPIO_V2_LINE_FLAG_BIAS_PULL_UP, "bias-pull-up" },
	{ GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN, "bias-pull-down" },
	{ GPIO_V2_LINE_FLAG_BIAS_DISABLED, "bias-disabled" },
	{ GPIO_V2_LINE_FLAG_EVENT_CLOCK_REALTIME, "event-clock-realtime" },
};

static int cmd_lineinfo(const char *dev, unsigned int offset)
{
	struct gpio_v2_line_info li;
	int fd = open_chip(dev);
	const char *sep = "";

	memset(&li, 0, sizeof(li));
	li.offset = offset;
	if (ioctl(fd, GPIO_V2_GET_LINEINFO_IOCTL, &li) < 0)
		die("lineinfo %s %u: %s", dev, offset, strerror(errno));
	close(fd);
	printf("name=%s consumer=%s flags=", li.name[0] ? li.name : "-", li.consumer[0] ? li.consumer : "-");
	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if (li.flags & flag_names[i].flag) {
			printf("%s%s", sep, flag_names[i].name);
			sep = ",";
		}
	printf("%s debounce_us=", *sep ? "" : "-");
	unsigned int debounce = 0;
	for (unsigned int a = 0; a < li.num_attrs; a++)
		if (li.attrs[a].id == GPIO_V2_LINE_ATTR_ID_DEBOUNCE)
			debounce = li.attrs[a].debounce_period_us;
	printf("%u\n", debounce);
	return 0;
}

/* Request one line as input, as a consumer other than ledd. -1 with errno. */
static int request_input(const char *dev, unsigned int offset, const char *consumer)
{
	struct gpio_v2_line_request rq;
	int fd = open_chip(dev), rc;

	memset(&rq, 0, sizeof(rq));
	rq.offsets[0] = offset;
	rq.num_lines = 1;
	rq.config.flags = GPIO_V2_LINE_FLAG_INPUT;
	snprintf(rq.consumer, sizeof(rq.consumer), "%s", consumer);
	rc = ioctl(fd, GPIO_V2_GET_LINE_IOCTL, &rq);
	close(fd);
	return rc < 0 ? -1 : rq.fd;
}

static int cmd_peek(const char *dev, unsigned int offset)
{
	struct gpio_v2_line_values v = { .mask = 1 };
	int fd = request_input(dev, offset, "raspitool");

	if (fd < 0) {
		printf("%s: %s\n", errno == EBUSY ? "busy" : "error", strerror(errno));
		return 1;
	}
	if (ioctl(fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0)
		die("get values: %s", strerror(errno));
	printf("value=%d\n", (int)(v.bits & 1));
	return 0;
}

static int cmd_hold(const char *dev, unsigned int offset, const char *consumer)
{
	if (request_input(dev, offset, consumer) < 0)
		die("request %s line %u: %s", dev, offset, strerror(errno));
	printf("held\n");
	fflush(stdout);
	for (;;)
		pause();
}

/* ---- levels from debugfs ---------------------------------------------------- */

/* Find " gpio-N (NAME |consumer) out hi ..." in the text; -1 if the line is
 * not requested (debugfs prints levels of requested lines only). */
static int parse_level(const char *text, const char *name, int *out)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "(%s ", name);
	p = strstr(text, key);
	if (!p || !(p = strchr(p, ')')))
		return -1;
	p++;
	while (*p == ' ')
		p++;
	*out = strncmp(p, "out", 3) == 0;
	p += 3;
	while (*p == ' ')
		p++;
	if (strncmp(p, "hi", 2) == 0)
		return 1;
	if (strncmp(p, "lo", 2) == 0)
		return 0;
	return -1;
}

static int read_level(int fd, const char *name, int *out)
{
	static char text[16384];
	size_t have = 0;
	ssize_t n;

	if (lseek(fd, 0, SEEK_SET) < 0)
		die("lseek %s: %s", DEBUGFS_GPIO, strerror(errno));
	while (have < sizeof(text) - 1 && (n = read(fd, text + have, sizeof(text) - 1 - have)) > 0)
		have += (size_t)n;
	text[have] = '\0';
	return parse_level(text, name, out);
}

static int open_debugfs(void)
{
	int fd = open(DEBUGFS_GPIO, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("open %s: %s (debugfs mounted?)", DEBUGFS_GPIO, strerror(errno));
	return fd;
}

static int cmd_level(const char *name)
{
	int out, fd = open_debugfs();
	int v = read_level(fd, name, &out);

	if (v < 0) {
		printf("free\n");  /* not requested by anyone */
		return 1;
	}
	printf("%s %d\n", out ? "out" : "in", v);
	return 0;
}

static int cmd_sample(const char *name, unsigned int ms)
{
	int fd = open_debugfs(), out, last = -2;
	struct timespec tick = { 0, 1000000L };
	unsigned long samples = 0;
	double start = now_us(), t;

	while ((t = now_us() - start) < ms * 1000.0) {
		int v = read_level(fd, name, &out);
		samples++;
		if (v != last) {
			printf("%.1f %d\n", t / 1000.0, v);
			last = v;
		}
		nanosleep(&tick, NULL);
	}
	printf("samples %lu\n", samples);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "req") == 0)
		return cmd_req(argv[2], argc - 3, argv + 3);
	if (argc == 2 && strcmp(argv[1], "chips") == 0)
		return cmd_chips();
	if (argc == 4 && strcmp(argv[1], "lineinfo") == 0)
		return cmd_lineinfo(argv[2], (unsigned int)atoi(argv[3]));
	if (argc == 4 && strcmp(argv[1], "peek") == 0)
		return cmd_peek(argv[2], (unsigned int)atoi(argv[3]));
	if (argc == 5 && strcmp(argv[1], "hold") == 0)
		return cmd_hold(argv[2], (unsigned int)atoi(argv[3]), argv[4]);
	if (argc == 3 && strcmp(argv[1], "level") == 0)
		return cmd_level(argv[2]);
	if (argc == 4 && strcmp(argv[1], "sample") == 0)
		return cmd_sample(argv[2], (unsigned int)atoi(argv[3]));
	fprintf(stderr, "usage: raspitool req DIR VERB [ARG...] | chips | lineinfo DEV OFFSET | peek DEV OFFSET |\n"
			"       level NAME | sample NAME MS\n");
	return 2;
}

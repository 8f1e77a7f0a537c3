/* gpio_chardev.c -- the Linux GPIO character device backend (uAPI v2).
 *
 * What: request every configured line from the header's /dev/gpiochipN with
 * raw ioctls of linux/gpio.h (no libgpiod: its 1.6 and 2.x APIs are
 * incompatible and Pi OS ships either), drive LEDs and report debounced
 * button edges with the kernel's timestamps.
 *
 * How:
 *  1. Find the chip. Its number depends on the model and the kernel (Pi 5:
 *     gpiochip4, then 0, then 11+), so with chip "auto" every /dev/gpiochip*
 *     is looked at (readdir, any numbers): the chip that names all our
 *     lines "GPIO<n>" wins, else a chip labelled pinctrl-bcm2835/bcm2711/rp1,
 *     else the chip with most of the names (so the error names the missing
 *     line). On a chip that names no line "GPIO<n>" at all, offset == BCM
 *     number. The config may name the chip by path, by name or by label.
 *  2. Map each line to an offset by its name, and refuse lines another
 *     consumer holds, naming the culprit (lineinfo tells us who).
 *  3. Request the lines. One GPIO_V2_GET_LINE request can carry 64 lines but
 *     only 10 per-line attributes (a flag set, the output values, one
 *     debounce period each). The default wiring needs 3, so normally it is
 *     one request and one fd; lines are packed greedily and a new request is
 *     started only when a line would overflow the attributes. With more than
 *     one request carrying inputs, an epoll fd over them is the event fd.
 *  4. Values are logical: the kernel applies ACTIVE_LOW to get/set and to
 *     the edge direction, so a rising edge always means "pressed".
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "defaults.h"
#include "errmsg.h"
#include "gpio_backend.h"

/* The uAPI is an ABI: if these ever differ, the ioctl numbers (which encode
 * the size) would silently stop matching the kernel's. Checked on x86_64,
 * aarch64 and armhf builds. */
_Static_assert(sizeof(struct gpio_v2_line_request) == 592, "gpio_v2_line_request size");
_Static_assert(sizeof(struct gpio_v2_line_event) == 48, "gpio_v2_line_event size");
_Static_assert(sizeof(struct gpio_v2_line_values) == 16, "gpio_v2_line_values size");
_Static_assert(sizeof(struct gpio_v2_line_info) == 256, "gpio_v2_line_info size");
_Static_assert(sizeof(struct gpiochip_info) == 68, "gpiochip_info size");

static const char *const pi_labels[] = LEDD_GPIO_PI_LABELS;
#define N_PI_LABELS (sizeof(pi_labels) / sizeof(pi_labels[0]))

struct line_req {
	int fd;
	unsigned int n;                 /* lines in this request */
	bool has_inputs;
	size_t index[GPIO_V2_LINES_MAX]; /* bit i of the request = line index[i] */
	uint32_t offset[GPIO_V2_LINES_MAX];
};

struct line_slot {
	size_t req;                     /* which request holds the line */
	unsigned int bit;               /* its bit in that request */
	uint32_t offset;
};

struct chardev {
	struct gpio base;               /* must stay first: gpio.c casts */
	struct line_req *reqs;
	size_t nreqs;
	struct line_slot *slots;        /* one per configured line */
	int epoll_fd;                   /* -1 unless several requests have inputs */
};

/* A chip as seen while searching. */
struct chip {
	int fd;
	char path[64];
	struct gpiochip_info info;
	char (*names)[GPIO_MAX_NAME_SIZE]; /* line names, read once by chip_open() */
	bool gpio_named;        /* some line is named "GPIO<n>" */
};

/* ioctl() retried on EINTR (a signal may land while the kernel waits on the
 * chip's lock). */
static int xioctl(int fd, unsigned long req, void *arg)
{
	int rc;

	do
		rc = ioctl(fd, req, arg);
	while (rc < 0 && errno == EINTR);
	return rc;
}

static void close_fd(int fd)
{
	/* close() on Linux releases the fd even when it reports EINTR, so
	 * retrying could close someone else's descriptor: never retry. */
	if (fd >= 0)
		(void)close(fd);
}

static const char *perm_hint(int e)
{
	return (e == EACCES || e == EPERM) ?
		" (is the user in the \"gpio\" group? see /dev/gpiochip* ownership)" : "";
}

/* ---- chips -------------------------------------------------------------- */

static void chip_close(struct chip *c)
{
	close_fd(c->fd);
	c->fd = -1;
	free(c->names);
	c->names = NULL;
}

static int line_info(const struct chip *c, uint32_t offset, struct gpio_v2_line_info *li)
{
	memset(li, 0, sizeof(*li));
	li->offset = offset;
	if (xioctl(c->fd, GPIO_V2_GET_LINEINFO_IOCTL, li) < 0)
		return -1;
	li->name[sizeof(li->name) - 1] = '\0';
	li->consumer[sizeof(li->consumer) - 1] = '\0';
	return 0;
}

/* Every line's name, once per chip (54 ioctls on a Pi), so that looking up
 * 24 configured lines on each of several chips stays cheap. */
static int load_names(struct chip *c)
{
	struct gpio_v2_line_info li;

	c->gpio_named = false;
	c->names = calloc(c->info.lines ? c->info.lines : 1, sizeof(*c->names));
	if (!c->names)
		return -1;
	for (uint32_t off = 0; off < c->info.lines; off++) {
		if (line_info(c, off, &li) < 0)
			return -1;
		memcpy(c->names[off], li.name, sizeof(c->names[off]));
		if (strncmp(li.name, "GPIO", 4) == 0 && isdigit((unsigned char)li.name[4]))
			c->gpio_named = true;
	}
	return 0;
}

static int chip_open(struct chip *c, const char *path)
{
	struct stat st = { 0 };
	int fd;

	c->fd = -1;
	c->names = NULL;
	snprintf(c->path, sizeof(c->path), "%s", path);
	do
		fd = open(path, O_RDWR | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	/* A GPIO chip is a character device that answers GET_CHIPINFO; anything
	 * else (a stray file, another driver) is refused here. */
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
		int e = S_ISCHR(st.st_mode) || st.st_mode == 0 ? errno : ENODEV;
		close_fd(fd);
		errno = e;
		return -1;
	}
	memset(&c->info, 0, sizeof(c->info));
	if (xioctl(fd, GPIO_GET_CHIPINFO_IOCTL, &c->info) < 0) {
		int e = errno;
		close_fd(fd);
		errno = e;
		return -1;
	}
	c->info.label[sizeof(c->info.label) - 1] = '\0';
	c->info.name[sizeof(c->info.name) - 1] = '\0';
	c->fd = fd;
	if (load_names(c) < 0) {
		int e = errno;
		chip_close(c);
		errno = e;
		return -1;
	}
	return 0;
}


/* Offset of the line named "GPIO<gpio>", or -1. When the chip names no line
 * "GPIO<n>" at all (c->gpio_named is false), the caller may fall back to the
 * number. */
static long find_line(const struct chip *c, unsigned int gpio)
{
	char want[GPIO_MAX_NAME_SIZE];

	snprintf(want, sizeof(want), "GPIO%u", gpio);
	for (uint32_t off = 0; off < c->info.lines; off++)
		if (strcmp(c->names[off], want) == 0)
			return off;
	return -1;
}

static bool is_pi_label(const char *label)
{
	for (size_t i = 0; i < N_PI_LABELS; i++)
		if (strcmp(label, pi_labels[i]) == 0)
			return true;
	return false;
}

/* How many configured lines the chip has by name. */
static size_t count_named(const struct chip *c, const struct gpio_line_config *lines, size_t nlines)
{
	size_t found = 0;

	for (size_t i = 0; i < nlines; i++)
		if (find_line(c, lines[i].gpio) >= 0)
			found++;
	return found;
}

static bool is_chip_name(const char *name)
{
	if (strncmp(name, "gpiochip", 8) != 0 || !name[8])
		return false;
	for (const char *p = name + 8; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	return true;
}

static int cmp_uint(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;

	return (x > y) - (x < y);
}

/* Numbers of every /dev/gpiochipN, whatever they are, sorted (2 before 10). */
static size_t list_chips(unsigned int *nums, size_t max)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	d = opendir(LEDD_GPIO_DEV_DIR);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		unsigned long num;

		if (!is_chip_name(de->d_name))
			continue;
		errno = 0;
		num = strtoul(de->d_name + 8, NULL, 10);
		if (errno || num > 65535)
			continue;
		nums[n++] = (unsigned int)num;
	}
	closedir(d);
	qsort(nums, n, sizeof(nums[0]), cmp_uint);
	return n;
}

static void chip_path(char *buf, size_t len, unsigned int num)
{
	snprintf(buf, len, "%s/gpiochip%u", LEDD_GPIO_DEV_DIR, num);
}

/* snprintf onto the end of buf, never past it (a long list is cut, not overrun). */
static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used >= len - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *used, len - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used = *used + (size_t)n < len ? *used + (size_t)n : len - 1;
}

/* "GPIO17, GPIO27, GPIO22" for the not-found message. */
static void wanted_names(const struct gpio_line_config *lines, size_t nlines, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < nlines; i++)
		append(buf, len, &used, "%sGPIO%u", i ? ", " : "", lines[i].gpio);
}

/* Search every chip (chip "auto"): all lines by name, else a Pi label, else
 * the chip with most of the names (so the error names the missing line). */
static int find_chip_auto(struct chip *out, const struct gpio_line_config *lines, size_t nlines,
			  char *err, size_t errlen)
{
	unsigned int nums[LEDD_GPIO_MAX_CHIPS];
	char looked[1024] = "", denied[512] = "", wanted[256];
	size_t nchips, used = 0, dused = 0, ndenied = 0, best_named = 0;
	int label_pick = -1, named_pick = -1, best = -1;

	nchips = list_chips(nums, LEDD_GPIO_MAX_CHIPS);
	for (size_t i = 0; i < nchips; i++) {
		char path[64];
		struct chip c;

		chip_path(path, sizeof(path), nums[i]);
		if (chip_open(&c, path) < 0) {
			int e = errno;
			append(looked, sizeof(looked), &used, "%s%s: %s", used ? ", " : "", path, strerror(e));
			if (e == EACCES || e == EPERM) {
				append(denied, sizeof(denied), &dused, "%s%s", dused ? ", " : "", path);
				ndenied++;
			}
			continue;
		}
		append(looked, sizeof(looked), &used, "%s%s [%s]", used ? ", " : "", path, c.info.label);
		size_t named = count_named(&c, lines, nlines);
		if (named == nlines) {
			chip_close(&c);
			best = (int)i;
			break;
		}
		if (named > best_named) {
			best_named = named;
			named_pick = (int)i;
		}
		if (label_pick < 0 && is_pi_label(c.info.label))
			label_pick = (int)i;
		chip_close(&c);
	}
	if (best < 0)
		best = label_pick >= 0 ? label_pick : named_pick;
	if (best >= 0) {
		char path[64];

		chip_path(path, sizeof(path), nums[best]);
		if (chip_open(out, path) < 0) {
			set_err(err, errlen, "cannot open %s: %s%s", path, strerror(errno), perm_hint(errno));
			return -1;
		}
		return 0;
	}
	if (ndenied > 0 && ndenied == nchips) {
		set_err(err, errlen, "cannot open %s: Permission denied%s", denied, perm_hint(EACCES));
		errno = EACCES;
		return -1;
	}
	wanted_names(lines, nlines, wanted, sizeof(wanted));
	set_err(err, errlen, "no GPIO chip found with lines %s or label pinctrl-bcm2835/bcm2711/rp1 (looked at: %s%s)",
		wanted, nchips ? looked : "no " LEDD_GPIO_DEV_DIR "/gpiochip* at all - is this a Raspberry Pi?",
		ndenied ? perm_hint(EACCES) : "");
	errno = ENODEV;
	return -1;
}

/* The config names the chip: "/dev/gpiochip4", "gpiochip4" or a label. */
static int find_chip_named(struct chip *out, const char *chip, char *err, size_t errlen)
{
	unsigned int nums[LEDD_GPIO_MAX_CHIPS];
	char path[300];
	size_t nchips;

	if (chip[0] == '/' || is_chip_name(chip)) {
		if (chip[0] == '/')
			snprintf(path, sizeof(path), "%s", chip);
		else
			snprintf(path, sizeof(path), "%s/%s", LEDD_GPIO_DEV_DIR, chip);
		if (chip_open(out, path) < 0) {
			set_err(err, errlen, "cannot open GPIO chip %s: %s%s", path,
				errno == ENOTTY || errno == ENODEV ? "not a GPIO chip" : strerror(errno),
				perm_hint(errno));
			return -1;
		}
		return 0;
	}
	nchips = list_chips(nums, LEDD_GPIO_MAX_CHIPS);
	for (size_t i = 0; i < nchips; i++) {
		chip_path(path, sizeof(path), nums[i]);
		if (chip_open(out, path) < 0)
			continue;
		if (strcmp(out->info.label, chip) == 0)
			return 0;
		chip_close(out);
	}
	set_err(err, errlen, "no GPIO chip labelled \"%s\" (chip = in the config: a path, gpiochipN or a label)", chip);
	errno = ENODEV;
	return -1;
}

/* ---- requests ----------------------------------------------------------- */

static uint64_t line_flags(const struct gpio_line_config *l)
{
	uint64_t f;

	if (l->output) {
		f = GPIO_V2_LINE_FLAG_OUTPUT;
	} else {
		f = GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_EDGE_FALLING;
		if (l->bias == GPIO_BIAS_PULL_UP)
			f |= GPIO_V2_LINE_FLAG_BIAS_PULL_UP;
		else if (l->bias == GPIO_BIAS_PULL_DOWN)
			f |= GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN;
		else if (l->bias == GPIO_BIAS_NONE)
			f |= GPIO_V2_LINE_FLAG_BIAS_DISABLED;
	}
	if (l->active_low)
		f |= GPIO_V2_LINE_FLAG_ACTIVE_LOW;
	return f;
}

/* Fill the request's config from the lines it holds: default flags are the
 * first line's, every other flag set, the output values and each distinct
 * debounce period take one attribute. Returns the number of attributes
 * needed, which may exceed the maximum (the caller then splits). */
static unsigned int build_config(struct gpio_v2_line_request *rq, const struct gpio_line_config *lines,
				 const size_t *index, unsigned int n)
{
	struct gpio_v2_line_config *cfg = &rq->config;
	struct gpio_v2_line_config_attribute attrs[GPIO_V2_LINES_MAX * 2 + 1];
	uint64_t values = 0, values_mask = 0;
	unsigned int na = 0;

	memset(cfg, 0, sizeof(*cfg));
	cfg->flags = line_flags(&lines[index[0]]);
	for (unsigned int i = 0; i < n; i++) {
		const struct gpio_line_config *l = &lines[index[i]];
		uint64_t f = line_flags(l), bit = 1ULL << i;

		if (l->output) {
			values_mask |= bit;
			if (l->initial)
				values |= bit;
		}
		if (f != cfg->flags) {
			unsigned int a;
			for (a = 0; a < na; a++)
				if (attrs[a].attr.id == GPIO_V2_LINE_ATTR_ID_FLAGS && attrs[a].attr.flags == f)
					break;
			if (a == na) {
				memset(&attrs[na], 0, sizeof(attrs[na]));
				attrs[na].attr.id = GPIO_V2_LINE_ATTR_ID_FLAGS;
				attrs[na].attr.flags = f;
				na++;
			}
			attrs[a].mask |= bit;
		}
		if (!l->output && l->debounce_ms) {
			uint32_t us = l->debounce_ms * 1000u;
			unsigned int a;
			for (a = 0; a < na; a++)
				if (attrs[a].attr.id == GPIO_V2_LINE_ATTR_ID_DEBOUNCE && attrs[a].attr.debounce_period_us == us)
					break;
			if (a == na) {
				memset(&attrs[na], 0, sizeof(attrs[na]));
				attrs[na].attr.id = GPIO_V2_LINE_ATTR_ID_DEBOUNCE;
				attrs[na].attr.debounce_period_us = us;
				na++;
			}
			attrs[a].mask |= bit;
		}
	}
	if (values_mask) {
		memset(&attrs[na], 0, sizeof(attrs[na]));
		attrs[na].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
		attrs[na].attr.values = values;
		attrs[na].mask = values_mask;
		na++;
	}
	if (na <= GPIO_V2_LINE_NUM_ATTRS_MAX) {
		memcpy(cfg->attrs, attrs, na * sizeof(attrs[0]));
		cfg->num_attrs = na;
	}
	return na;
}

/* Explain a failed request: find the line someone else holds, if any. */
static void explain_request_failure(const struct chip *c, const struct gpio_line_config *lines,
				    const struct line_req *r, int e, char *err, size_t errlen)
{
	struct gpio_v2_line_info li;

	for (unsigned int i = 0; i < r->n; i++) {
		const struct gpio_line_config *l = &lines[r->index[i]];
		if (line_info(c, r->offset[i], &li) == 0 && (li.flags & GPIO_V2_LINE_FLAG_USED)) {
			set_err(err, errlen, "GPIO%u (%s) is busy: used by \"%s\" on %s [%s]", l->gpio, l->label,
				li.consumer[0] ? li.consumer : "kernel", c->path, c->info.label);
			return;
		}
	}
	const struct gpio_line_config *l = &lines[r->index[0]];
	set_err(err, errlen, "cannot request GPIO%u (%s)%s on %s [%s]: %s%s", l->gpio, l->label,
		r->n > 1 ? " and the other lines" : "", c->path, c->info.label, strerror(e), perm_hint(e));
}

static int submit(struct chip *c, const struct gpio_line_config *lines, struct line_req *r,
		  char *err, size_t errlen)
{
	struct gpio_v2_line_request rq;
	int flags;

	memset(&rq, 0, sizeof(rq));
	snprintf(rq.consumer, sizeof(rq.consumer), "%s", LEDD_GPIO_CONSUMER);
	rq.num_lines = r->n;
	for (unsigned int i = 0; i < r->n; i++)
		rq.offsets[i] = r->offset[i];
	build_config(&rq, lines, r->index, r->n);
	if (xioctl(c->fd, GPIO_V2_GET_LINE_IOCTL, &rq) < 0) {
		int e = errno;
		explain_request_failure(c, lines, r, e, err, errlen);
		errno = e;
		return -1;
	}
	r->fd = rq.fd;
	/* The kernel gives O_CLOEXEC already; make sure, and never block in read(). */
	if ((flags = fcntl(r->fd, F_GETFL)) < 0 || fcntl(r->fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(r->fd, F_SETFD, FD_CLOEXEC) < 0) {
		int e = errno;
		set_err(err, errlen, "fcntl on the line request of %s: %s", c->path, strerror(e));
		close_fd(r->fd);
		r->fd = -1;
		errno = e;
		return -1;
	}
	return 0;
}

/* Greedy packing of lines into requests (see the header comment). */
static int pack_requests(struct chardev *d, const struct gpio_line_config *lines, size_t nlines)
{
	struct gpio_v2_line_request scratch;

	d->reqs = calloc(nlines, sizeof(*d->reqs)); /* at worst one line per request */
	if (!d->reqs)
		return -1;
	for (size_t i = 0; i < nlines; i++) {
		struct line_req *r = d->nreqs ? &d->reqs[d->nreqs - 1] : NULL;

		if (r && r->n < GPIO_V2_LINES_MAX) {
			r->index[r->n] = i;
			r->offset[r->n] = d->slots[i].offset;
			if (build_config(&scratch, lines, r->index, r->n + 1) <= GPIO_V2_LINE_NUM_ATTRS_MAX) {
				d->slots[i].req = d->nreqs - 1;
				d->slots[i].bit = r->n++;
				r->has_inputs |= !lines[i].output;
				continue;
			}
		}
		r = &d->reqs[d->nreqs];
		r->fd = -1;
		r->index[0] = i;
		r->offset[0] = d->slots[i].offset;
		r->n = 1;
		r->has_inputs = !lines[i].output;
		d->slots[i].req = d->nreqs;
		d->slots[i].bit = 0;
		d->nreqs++;
	}
	return 0;
}

/* ---- ops ---------------------------------------------------------------- */

static int chardev_set(struct gpio *g, size_t line, int value)
{
	struct chardev *d = (struct chardev *)g;
	const struct line_slot *s = &d->slots[line];
	struct gpio_v2_line_values v = { .mask = 1ULL << s->bit, .bits = (uint64_t)(value ? 1 : 0) << s->bit };

	return xioctl(d->reqs[s->req].fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0 ? -1 : 0;
}

static int chardev_get(struct gpio *g, size_t line, int *value)
{
	struct chardev *d = (struct chardev *)g;
	const struct line_slot *s = &d->slots[line];
	struct gpio_v2_line_values v = { .mask = 1ULL << s->bit };

	if (xioctl(d->reqs[s->req].fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0)
		return -1;
	*value = (v.bits >> s->bit) & 1;
	return 0;
}

static size_t line_of(const struct line_req *r, uint32_t offset)
{
	for (unsigned int i = 0; i < r->n; i++)
		if (r->offset[i] == offset)
			return r->index[i];
	return (size_t)-1;
}

static int chardev_read_edges(struct gpio *g, struct gpio_edge *edges, size_t max)
{
	struct chardev *d = (struct chardev *)g;
	struct gpio_v2_line_event ev[LEDD_MAX_EDGES];
	size_t n = 0;

	for (size_t q = 0; q < d->nreqs && n < max; q++) {
		struct line_req *r = &d->reqs[q];
		size_t want = max - n;
		ssize_t got;

		if (!r->has_inputs)
			continue;
		if (want > LEDD_MAX_EDGES)
			want = LEDD_MAX_EDGES;
		do
			got = read(r->fd, ev, want * sizeof(ev[0]));
		while (got < 0 && errno == EINTR);
		if (got < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return -1;
		}
		/* The kernel only hands out whole events. */
		for (size_t i = 0; i < (size_t)got / sizeof(ev[0]); i++) {
			size_t line = line_of(r, ev[i].offset);
			if (line == (size_t)-1)
				continue;
			edges[n].line = line;
			edges[n].value = ev[i].id == GPIO_V2_LINE_EVENT_RISING_EDGE ? 1 : 0;
			edges[n].timestamp_ns = ev[i].timestamp_ns;
			n++;
		}
	}
	return (int)n;
}

static void chardev_close(struct gpio *g)
{
	struct chardev *d = (struct chardev *)g;

	for (size_t q = 0; q < d->nreqs; q++)
		close_fd(d->reqs[q].fd);
	close_fd(d->epoll_fd);
	free(d->reqs);
	free(d->slots);
	free(d);
}

static const struct gpio_ops chardev_ops = {
	.set = chardev_set,
	.get = chardev_get,
	.read_edges = chardev_read_edges,
	.sim_set_input = NULL,
	.close = chardev_close,
};

/* ---- open --------------------------------------------------------------- */

/* Offsets of every line, with "missing" and "busy" explained per line. */
static int resolve_lines(struct chardev *d, const struct chip *c, const struct gpio_line_config *lines,
			 size_t nlines, char *err, size_t errlen)
{
	for (size_t i = 0; i < nlines; i++) {
		const struct gpio_line_config *l = &lines[i];
		struct gpio_v2_line_info li;
		bool named = c->gpio_named;
		long off = find_line(c, l->gpio);

		/* Chips without line names (some older Pi kernels): offset == BCM number. */
		if (off < 0 && !named && l->gpio < c->info.lines)
			off = l->gpio;
		if (off < 0) {
			if (named)
				set_err(err, errlen, "GPIO%u (%s): no line named GPIO%u on %s [%s]", l->gpio, l->label,
					l->gpio, c->path, c->info.label);
			else
				set_err(err, errlen, "GPIO%u (%s): no such line on %s [%s], which has %u lines",
					l->gpio, l->label, c->path, c->info.label, c->info.lines);
			errno = ENOENT;
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (d->slots[j].offset == (uint32_t)off) {
				set_err(err, errlen, "GPIO%u (%s) is configured twice (also %s)", l->gpio, l->label,
					lines[j].label);
				errno = EINVAL;
				return -1;
			}
		d->slots[i].offset = (uint32_t)off;
		if (line_info(c, (uint32_t)off, &li) < 0) {
			set_err(err, errlen, "GPIO%u (%s): line info on %s: %s", l->gpio, l->label, c->path,
				strerror(errno));
			return -1;
		}
		if (li.flags & GPIO_V2_LINE_FLAG_USED) {
			set_err(err, errlen, "GPIO%u (%s) is busy: used by \"%s\" on %s [%s]", l->gpio, l->label,
				li.consumer[0] ? li.consumer : "kernel", c->path, c->info.label);
			errno = EBUSY;
			return -1;
		}
	}
	return 0;
}

static int setup_event_fd(struct chardev *d, char *err, size_t errlen)
{
	size_t inputs = 0, last = 0;

	d->base.event_fd = -1;
	for (size_t q = 0; q < d->nreqs; q++)
		if (d->reqs[q].has_inputs) {
			inputs++;
			last = q;
		}
	if (inputs == 0)
		return 0;
	if (inputs == 1) {
		d->base.event_fd = d->reqs[last].fd;
		return 0;
	}
	d->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epoll_fd < 0) {
		set_err(err, errlen, "epoll_create1: %s", strerror(errno));
		return -1;
	}
	for (size_t q = 0; q < d->nreqs; q++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = q };
		if (d->reqs[q].has_inputs && epoll_ctl(d->epoll_fd, EPOLL_CTL_ADD, d->reqs[q].fd, &ev) < 0) {
			set_err(err, errlen, "epoll_ctl: %s", strerror(errno));
			return -1;
		}
	}
	d->base.event_fd = d->epoll_fd;
	return 0;
}

struct gpio *gpio_chardev_open(const char *chip, const struct gpio_line_config *lines, size_t nlines,
			       char *err, size_t errlen)
{
	struct chip c = { .fd = -1, .names = NULL };
	struct chardev *d;
	int e;

	if (nlines == 0) {
		set_err(err, errlen, "no GPIO lines configured");
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d || !(d->slots = calloc(nlines, sizeof(*d->slots)))) {
		free(d);
		set_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	d->base.ops = &chardev_ops;
	d->base.nlines = nlines;
	d->base.event_fd = -1;
	d->epoll_fd = -1;

	if (!chip || !*chip || strcmp(chip, "auto") == 0) {
		if (find_chip_auto(&c, lines, nlines, err, errlen) < 0)
			goto fail;
	} else if (find_chip_named(&c, chip, err, errlen) < 0) {
		goto fail;
	}
	if (resolve_lines(d, &c, lines, nlines, err, errlen) < 0)
		goto fail;
	if (pack_requests(d, lines, nlines) < 0) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t q = 0; q < d->nreqs; q++)
		if (submit(&c, lines, &d->reqs[q], err, errlen) < 0)
			goto fail;
	if (setup_event_fd(d, err, errlen) < 0)
		goto fail;
	snprintf(d->base.description, sizeof(d->base.description), "%s [%s]", c.path, c.info.label);
	/* The request fds live on without the chip fd. */
	chip_close(&c);
	return &d->base;

fail:
	e = errno ? errno : EIO;
	if (c.fd >= 0)
		chip_close(&c);
	chardev_close(&d->base);
	errno = e;
	return NULL;
}

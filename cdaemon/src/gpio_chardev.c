/* gpio_chardev.c -- the Linux GPIO character device backend (uAPI v2).
 *
 * What: request every configured line from the header's /dev/gpiochipN with
 * raw ioctls of linux/gpio.h (no libgpiod: its 1.6 and 2.x APIs are
 * incompatible and Pi OS ships either), drive LEDs and report debounced
 * button edges with the kernel's timestamps.
 *
 * How:
 *  1. Find the chip (gpio_chip.c): by line names "GPIO<n>", by the Pi's
 *     pinctrl labels, or as the config names it.
 *  2. Map each line to an offset by its name, and refuse lines another
 *     consumer holds, naming the culprit (lineinfo tells us who).
 *  3. Request the lines. One GPIO_V2_GET_LINE request can carry 64 lines but
 *     only 10 per-line attributes (gpio_line_config.c builds them). The
 *     default wiring needs 3, so normally it is one request and one fd;
 *     lines are packed greedily and a new request is started only when a
 *     line would overflow the attributes. With more than one request
 *     carrying inputs, an epoll fd over them is the event fd.
 *  4. Values are logical: the kernel applies ACTIVE_LOW to get/set and to
 *     the edge direction, so a rising edge always means "pressed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "defaults.h"
#include "errmsg.h"
#include "gpio_backend.h"
#include "gpio_chardev.h"

/* The uAPI is an ABI: if these ever differ, the ioctl numbers (which encode
 * the size) would silently stop matching the kernel's. Checked on x86_64,
 * aarch64 and armhf builds. The sizes are the headers', so asserting them
 * here covers gpio_chip.c and gpio_line_config.c too. */
_Static_assert(sizeof(struct gpio_v2_line_request) == 592, "gpio_v2_line_request size");
_Static_assert(sizeof(struct gpio_v2_line_event) == 48, "gpio_v2_line_event size");
_Static_assert(sizeof(struct gpio_v2_line_values) == 16, "gpio_v2_line_values size");
_Static_assert(sizeof(struct gpio_v2_line_info) == 256, "gpio_v2_line_info size");
_Static_assert(sizeof(struct gpiochip_info) == 68, "gpiochip_info size");

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

/* ---- requests ----------------------------------------------------------- */

/* Explain a failed request: find the line someone else holds, if any. */
static void explain_request_failure(const struct chip *c, const struct gpio_line_config *lines,
				    const struct line_req *r, int e, char *err, size_t errlen)
{
	struct gpio_v2_line_info li;

	for (unsigned int i = 0; i < r->n; i++) {
		const struct gpio_line_config *l = &lines[r->index[i]];
		if (chip_line_info(c, r->offset[i], &li) == 0 && (li.flags & GPIO_V2_LINE_FLAG_USED)) {
			set_err(err, errlen, "GPIO%u (%s) is busy: used by \"%s\" on %s [%s]", l->gpio, l->label,
				li.consumer[0] ? li.consumer : "kernel", c->path, c->info.label);
			return;
		}
	}
	const struct gpio_line_config *l = &lines[r->index[0]];
	set_err(err, errlen, "cannot request GPIO%u (%s)%s on %s [%s]: %s%s", l->gpio, l->label,
		r->n > 1 ? " and the other lines" : "", c->path, c->info.label, strerror(e), chardev_perm_hint(e));
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
	line_config_build(&rq.config, lines, r->index, r->n);
	if (chardev_ioctl(c->fd, GPIO_V2_GET_LINE_IOCTL, &rq) < 0) {
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
		chardev_close_fd(r->fd);
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
			if (line_config_build(&scratch.config, lines, r->index, r->n + 1) <= GPIO_V2_LINE_NUM_ATTRS_MAX) {
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

	return chardev_ioctl(d->reqs[s->req].fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0 ? -1 : 0;
}

/* One ioctl per request holding lines of mask (the default wiring: one). */
static int chardev_set_lines(struct gpio *g, uint64_t mask, int value)
{
	struct chardev *d = (struct chardev *)g;

	for (size_t q = 0; q < d->nreqs; q++) {
		const struct line_req *r = &d->reqs[q];
		struct gpio_v2_line_values v = { 0 };

		for (unsigned int b = 0; b < r->n; b++)
			if (mask >> r->index[b] & 1)
				v.mask |= 1ULL << b;
		v.bits = value ? v.mask : 0;
		if (v.mask && chardev_ioctl(r->fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0)
			return -1;
	}
	return 0;
}

static int chardev_get(struct gpio *g, size_t line, int *value)
{
	struct chardev *d = (struct chardev *)g;
	const struct line_slot *s = &d->slots[line];
	struct gpio_v2_line_values v = { .mask = 1ULL << s->bit };

	if (chardev_ioctl(d->reqs[s->req].fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0)
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
		chardev_close_fd(d->reqs[q].fd);
	chardev_close_fd(d->epoll_fd);
	free(d->reqs);
	free(d->slots);
	free(d);
}

static const struct gpio_ops chardev_ops = {
	.set = chardev_set,
	.set_lines = chardev_set_lines,
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
		long off = chip_find_line(c, l->gpio);

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
		if (chip_line_info(c, (uint32_t)off, &li) < 0) {
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
		if (chip_find_auto(&c, lines, nlines, err, errlen) < 0)
			goto fail;
	} else if (chip_find_named(&c, chip, err, errlen) < 0) {
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

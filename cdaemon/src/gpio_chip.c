/* gpio_chip.c -- find the Raspberry Pi header's GPIO chip (chardev backend).
 *
 * The chip's number depends on the model and the kernel (Pi 5: gpiochip4,
 * then 0, then 11+), so with chip "auto" every /dev/gpiochip* is looked at
 * (readdir, any numbers): the chip that names all our lines "GPIO<n>" wins,
 * else a chip labelled pinctrl-bcm2835/bcm2711/rp1 (LEDD_GPIO_PI_LABELS),
 * else the chip with most of the names (so the error names the missing
 * line). On a chip that names no line "GPIO<n>" at all, offset == BCM
 * number (gpio_chardev.c decides that). The config may instead name the
 * chip by path, by name or by label. Each chip's line names are read once,
 * when it is opened, so that matching many lines on several chips stays cheap.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "defaults.h"
#include "errmsg.h"
#include "gpio_chardev.h"

static const char *const pi_labels[] = LEDD_GPIO_PI_LABELS;
#define N_PI_LABELS (sizeof(pi_labels) / sizeof(pi_labels[0]))


void chip_close(struct chip *c)
{
	chardev_close_fd(c->fd);
	c->fd = -1;
	free(c->names);
	c->names = NULL;
}

int chip_line_info(const struct chip *c, uint32_t offset, struct gpio_v2_line_info *li)
{
	memset(li, 0, sizeof(*li));
	li->offset = offset;
	if (chardev_ioctl(c->fd, GPIO_V2_GET_LINEINFO_IOCTL, li) < 0)
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
		if (chip_line_info(c, off, &li) < 0)
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
		chardev_close_fd(fd);
		errno = e;
		return -1;
	}
	memset(&c->info, 0, sizeof(c->info));
	if (chardev_ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, &c->info) < 0) {
		int e = errno;
		chardev_close_fd(fd);
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
long chip_find_line(const struct chip *c, unsigned int gpio)
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
		if (chip_find_line(c, lines[i].gpio) >= 0)
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
int chip_find_auto(struct chip *out, const struct gpio_line_config *lines, size_t nlines,
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
			set_err(err, errlen, "cannot open %s: %s%s", path, strerror(errno), chardev_perm_hint(errno));
			return -1;
		}
		return 0;
	}
	if (ndenied > 0 && ndenied == nchips) {
		set_err(err, errlen, "cannot open %s: Permission denied%s", denied, chardev_perm_hint(EACCES));
		errno = EACCES;
		return -1;
	}
	wanted_names(lines, nlines, wanted, sizeof(wanted));
	set_err(err, errlen, "no GPIO chip found with lines %s or label pinctrl-bcm2835/bcm2711/rp1 (looked at: %s%s)",
		wanted, nchips ? looked : "no " LEDD_GPIO_DEV_DIR "/gpiochip* at all - is this a Raspberry Pi?",
		ndenied ? chardev_perm_hint(EACCES) : "");
	errno = ENODEV;
	return -1;
}

/* The config names the chip: "/dev/gpiochip4", "gpiochip4" or a label. */
int chip_find_named(struct chip *out, const char *chip, char *err, size_t errlen)
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
				chardev_perm_hint(errno));
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

/* gpio_chardev.h -- what the chardev backend's files share (private to them).
 *
 * The backend is three files, one concern each:
 *   gpio_chip.c         find the header's chip and read its lines' names and info;
 *   gpio_line_config.c  turn our lines into a uAPI v2 request's line config;
 *   gpio_chardev.c      request the lines, drive and read them, report edges.
 * All of them talk to the kernel through raw ioctls of linux/gpio.h.
 */
#ifndef LEDD_GPIO_CHARDEV_H
#define LEDD_GPIO_CHARDEV_H

#include <errno.h>
#include <linux/gpio.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "gpio.h"

/* A chip as seen while searching. */
struct chip {
	int fd;
	char path[64];
	struct gpiochip_info info;
	char (*names)[GPIO_MAX_NAME_SIZE]; /* line names, read once when the chip is opened */
	bool gpio_named;        /* some line is named "GPIO<n>" */
};

/* ioctl() retried on EINTR (a signal may land while the kernel waits on the
 * chip's lock). */
static inline int chardev_ioctl(int fd, unsigned long req, void *arg)
{
	int rc;

	do
		rc = ioctl(fd, req, arg);
	while (rc < 0 && errno == EINTR);
	return rc;
}

static inline void chardev_close_fd(int fd)
{
	/* close() on Linux releases the fd even when it reports EINTR, so
	 * retrying could close someone else's descriptor: never retry. */
	if (fd >= 0)
		(void)close(fd);
}

static inline const char *chardev_perm_hint(int e)
{
	return (e == EACCES || e == EPERM) ?
		" (is the user in the \"gpio\" group? see /dev/gpiochip* ownership)" : "";
}

/* gpio_chip.c. Find the chip: by search ("auto", see gpio_chip.c), or as the
 * config names it (a path, gpiochipN or a label). 0, or -1 with errno and
 * the reason in err. */
int chip_find_auto(struct chip *out, const struct gpio_line_config *lines, size_t nlines,
		   char *err, size_t errlen);
int chip_find_named(struct chip *out, const char *chip, char *err, size_t errlen);
/* The offset of the line named "GPIO<gpio>", or -1. */
long chip_find_line(const struct chip *c, unsigned int gpio);
/* Line info of one offset (name and consumer NUL-terminated). 0 or -1 with errno. */
int chip_line_info(const struct chip *c, uint32_t offset, struct gpio_v2_line_info *li);
void chip_close(struct chip *c);

/* gpio_line_config.c. Fill cfg for the n lines lines[index[0..n-1]] (bit i
 * of the request = lines[index[i]]). Returns the number of attributes they
 * need, which may exceed GPIO_V2_LINE_NUM_ATTRS_MAX: then cfg is left
 * without attributes and the caller must split the lines. */
unsigned int line_config_build(struct gpio_v2_line_config *cfg, const struct gpio_line_config *lines,
			       const size_t *index, unsigned int n);

#endif

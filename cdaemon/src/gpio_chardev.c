/* gpio_chardev.c -- placeholder until the uAPI v2 backend lands (issue 3). */
#include <errno.h>
#include <stdio.h>
#include "gpio_backend.h"


struct gpio *gpio_chardev_open(const char *chip, const struct gpio_line_config *lines, size_t nlines,
			       char *err, size_t errlen)
{
	(void)chip; (void)lines; (void)nlines;
	snprintf(err, errlen, "chardev backend not built yet");
	errno = ENOSYS;
	return NULL;
}

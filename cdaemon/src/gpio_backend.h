/* gpio_backend.h -- what a GPIO backend implements (private to gpio*.c).
 *
 * Each backend embeds `struct gpio` as the first member of its own handle and
 * fills in `ops`; gpio.c dispatches the public calls of gpio.h through it.
 */
#ifndef LEDD_GPIO_BACKEND_H
#define LEDD_GPIO_BACKEND_H

#include "gpio.h"

struct gpio_ops {
	int (*set)(struct gpio *g, size_t line, int value);
	int (*set_lines)(struct gpio *g, uint64_t mask, int value);
	int (*get)(struct gpio *g, size_t line, int *value);
	int (*read_edges)(struct gpio *g, struct gpio_edge *edges, size_t max);
	int (*sim_set_input)(struct gpio *g, size_t line, int value); /* NULL: not supported */
	void (*close)(struct gpio *g);
};

struct gpio {
	const struct gpio_ops *ops;
	size_t nlines;
	int event_fd;           /* -1 when there are no inputs */
	char description[160];
};

struct gpio *gpio_sim_open(const struct gpio_line_config *lines, size_t nlines,
			   char *err, size_t errlen);
struct gpio *gpio_chardev_open(const char *chip, const struct gpio_line_config *lines,
			       size_t nlines, char *err, size_t errlen);

#endif

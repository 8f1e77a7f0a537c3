/* gpio.c -- dispatch of the public GPIO calls (gpio.h) to the chosen backend.
 *
 * Bounds are checked here once, so backends can trust `line`.
 */
#include <errno.h>
#include <stdio.h>

#include "gpio_backend.h"

struct gpio *gpio_open(enum gpio_backend_kind kind, const char *chip,
		       const struct gpio_line_config *lines, size_t nlines,
		       char *err, size_t errlen)
{
	if (kind == GPIO_BACKEND_SIM)
		return gpio_sim_open(lines, nlines, err, errlen);
	return gpio_chardev_open(chip, lines, nlines, err, errlen);
}

int gpio_set(struct gpio *g, size_t line, int value)
{
	if (line >= g->nlines) {
		errno = EINVAL;
		return -1;
	}
	return g->ops->set(g, line, value ? 1 : 0);
}

int gpio_set_lines(struct gpio *g, uint64_t mask, int value)
{
	if (g->nlines < 64 && (mask >> g->nlines) != 0) {
		errno = EINVAL;
		return -1;
	}
	if (!mask)
		return 0;
	return g->ops->set_lines(g, mask, value ? 1 : 0);
}

int gpio_get(struct gpio *g, size_t line, int *value)
{
	if (line >= g->nlines) {
		errno = EINVAL;
		return -1;
	}
	return g->ops->get(g, line, value);
}

int gpio_event_fd(const struct gpio *g)
{
	return g->event_fd;
}

int gpio_read_edges(struct gpio *g, struct gpio_edge *edges, size_t max)
{
	if (g->event_fd < 0 || max == 0)
		return 0;
	return g->ops->read_edges(g, edges, max);
}

int gpio_sim_set_input(struct gpio *g, size_t line, int value)
{
	if (!g->ops->sim_set_input) {
		errno = ENOTSUP;
		return -1;
	}
	if (line >= g->nlines) {
		errno = EINVAL;
		return -1;
	}
	return g->ops->sim_set_input(g, line, value ? 1 : 0);
}

const char *gpio_describe(const struct gpio *g)
{
	return g->description;
}

void gpio_close(struct gpio *g)
{
	if (g)
		g->ops->close(g);
}

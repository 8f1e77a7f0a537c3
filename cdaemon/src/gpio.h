/* gpio.h -- the GPIO backend interface of ledd.
 *
 * ledd drives LEDs (outputs) and watches buttons (inputs) through one of two
 * backends with the same behaviour:
 *
 *   chardev  the Linux GPIO character device, uAPI v2 (linux/gpio.h), through
 *            raw ioctls on /dev/gpiochipN. The header's chip is found by line
 *            names ("GPIO17") or by label (pinctrl-bcm2835/2711/rp1), whatever
 *            its number, unless the config names one. Debounce and bias are
 *            done by the kernel; edges arrive as events on a file descriptor.
 *   sim      no hardware: outputs are remembered, inputs change only through
 *            gpio_sim_set_input(), whose edges come back through the same event
 *            descriptor so the main loop cannot tell the two apart.
 *
 * The caller passes every line it needs in one array at open time; after that
 * a line is named by its index in that array. Values here are *logical*:
 * 1 means "LED lit" or "button pressed", whatever active_low says.
 */
#ifndef LEDD_GPIO_H
#define LEDD_GPIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gpio_backend_kind { GPIO_BACKEND_SIM, GPIO_BACKEND_CHARDEV };

enum gpio_bias { GPIO_BIAS_AS_IS, GPIO_BIAS_NONE, GPIO_BIAS_PULL_UP, GPIO_BIAS_PULL_DOWN };

struct gpio_line_config {
	const char *label;      /* "led red", "button stop": used in error messages */
	unsigned int gpio;      /* BCM number: the chip line named "GPIO<gpio>" */
	bool output;            /* true: LED; false: button */
	bool active_low;
	enum gpio_bias bias;    /* inputs only */
	unsigned int debounce_ms; /* inputs only; 0 = none */
	int initial;            /* outputs only: logical value driven at request time */
};

/* One debounced edge of an input line. */
struct gpio_edge {
	size_t line;            /* index into the array given to gpio_open() */
	int value;              /* logical value after the edge: 1 = pressed */
	uint64_t timestamp_ns;  /* CLOCK_MONOTONIC, as the kernel reports it */
};

struct gpio;                /* opaque backend handle */

/* Open the backend and request every line. `chip` is NULL or "auto" to search,
 * else a path (/dev/gpiochip4), a name (gpiochip4) or a chip label.
 * On failure returns NULL and writes one human line (naming the chip or line
 * and the reason, e.g. "GPIO17 (led red) is busy: used by \"foo\"") to err. */
struct gpio *gpio_open(enum gpio_backend_kind kind, const char *chip,
		       const struct gpio_line_config *lines, size_t nlines,
		       char *err, size_t errlen);

/* Drive an output line to a logical value. 0 on success, -1 with errno. */
int gpio_set(struct gpio *g, size_t line, int value);

/* Drive every output line whose bit is set in mask (bit i = line i) to the
 * same logical value, at once: one line-values ioctl per kernel request
 * (normally one for all), so the lines switch together (PWM, pwm.c).
 * 0 on success, -1 with errno. */
int gpio_set_lines(struct gpio *g, uint64_t mask, int value);

/* Read a line's current logical value into *value. 0 on success, -1 with errno. */
int gpio_get(struct gpio *g, size_t line, int *value);

/* Descriptor that becomes readable when input edges are pending, or -1 when
 * there are no inputs. Non-blocking. */
int gpio_event_fd(const struct gpio *g);

/* Read up to `max` pending edges. Returns the count (0 when none are pending),
 * or -1 with errno on a real error. Never blocks. */
int gpio_read_edges(struct gpio *g, struct gpio_edge *edges, size_t max);

/* sim only: set an input line's logical value (1 = pressed). Queues an edge
 * when the value changes. -1 with errno = ENOTSUP on chardev. */
int gpio_sim_set_input(struct gpio *g, size_t line, int value);

/* "sim", or e.g. "/dev/gpiochip4 [pinctrl-rp1]": for logs and STATUS=. */
const char *gpio_describe(const struct gpio *g);

/* Release every line and free the handle. NULL is fine. */
void gpio_close(struct gpio *g);

#endif

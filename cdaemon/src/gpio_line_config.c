/* gpio_line_config.c -- the line config of a uAPI v2 line request (chardev backend).
 *
 * One GPIO_V2_GET_LINE request carries up to 64 lines but only
 * GPIO_V2_LINE_NUM_ATTRS_MAX (10) per-line attributes. The request's default
 * flags are its first line's; every other set of flags, every distinct
 * debounce period and the outputs' initial values take one attribute each,
 * shared by all the lines with the same value (a mask of request bits). As
 * in libgpiod's lib/line-config.c, each attribute kind has its own small
 * function; gpio_chardev.c packs lines into requests by asking how many
 * attributes a set of lines would need.
 */
#include <string.h>

#include "gpio_chardev.h"

/* Room for the worst case: flags and debounce for every line, plus values. */
struct attrs {
	struct gpio_v2_line_config_attribute a[GPIO_V2_LINES_MAX * 2 + 1];
	unsigned int n;
};

/* The line's flags: direction, edges and bias for inputs, active-low. */
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

/* The attribute equal to want (kind and value), added if there is none yet:
 * lines with the same setting share one attribute. want must be zeroed
 * beyond its id and value, so that whole attributes compare. */
static struct gpio_v2_line_config_attribute *attr_for(struct attrs *s,
						      const struct gpio_v2_line_attribute *want)
{
	for (unsigned int a = 0; a < s->n; a++)
		if (memcmp(&s->a[a].attr, want, sizeof(*want)) == 0)
			return &s->a[a];
	memset(&s->a[s->n], 0, sizeof(s->a[s->n]));
	s->a[s->n].attr = *want;
	return &s->a[s->n++];
}

/* Flags other than the request's default: one attribute per distinct set. */
static void add_flags(struct attrs *s, uint64_t flags, uint64_t bit)
{
	struct gpio_v2_line_attribute want;

	memset(&want, 0, sizeof(want));
	want.id = GPIO_V2_LINE_ATTR_ID_FLAGS;
	want.flags = flags;
	attr_for(s, &want)->mask |= bit;
}

/* An input's debounce period: one attribute per distinct period. */
static void add_debounce(struct attrs *s, unsigned int debounce_ms, uint64_t bit)
{
	struct gpio_v2_line_attribute want;

	memset(&want, 0, sizeof(want));
	want.id = GPIO_V2_LINE_ATTR_ID_DEBOUNCE;
	want.debounce_period_us = debounce_ms * 1000u;
	attr_for(s, &want)->mask |= bit;
}

/* The outputs' initial values: one attribute for all of them. */
static void add_output_values(struct attrs *s, uint64_t values, uint64_t mask)
{
	struct gpio_v2_line_attribute want;

	memset(&want, 0, sizeof(want));
	want.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
	want.values = values;
	attr_for(s, &want)->mask |= mask;
}

unsigned int line_config_build(struct gpio_v2_line_config *cfg, const struct gpio_line_config *lines,
			       const size_t *index, unsigned int n)
{
	struct attrs s = { .n = 0 };
	uint64_t values = 0, values_mask = 0;

	memset(cfg, 0, sizeof(*cfg));
	cfg->flags = line_flags(&lines[index[0]]);
	for (unsigned int i = 0; i < n; i++) {
		const struct gpio_line_config *l = &lines[index[i]];
		uint64_t f = line_flags(l), bit = 1ULL << i;

		if (f != cfg->flags)
			add_flags(&s, f, bit);
		if (!l->output && l->debounce_ms)
			add_debounce(&s, l->debounce_ms, bit);
		if (l->output) {
			values_mask |= bit;
			if (l->initial)
				values |= bit;
		}
	}
	if (values_mask)
		add_output_values(&s, values, values_mask);
	if (s.n <= GPIO_V2_LINE_NUM_ATTRS_MAX) {
		memcpy(cfg->attrs, s.a, s.n * sizeof(s.a[0]));
		cfg->num_attrs = s.n;
	}
	return s.n;
}

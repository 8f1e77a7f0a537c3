/* config_wiring.c -- what the rest of ledd reads from a parsed config.
 *
 * config.c turns ledd.conf into struct ledd_config; this file turns that
 * struct into what its users need: the backend's line array (LEDs first,
 * then buttons, so line i is LED i), the comparisons a reload (SIGHUP)
 * decides by (new lines, or only new settings?), and the button settings
 * HELLO reports. Pure functions over the struct, like config.c, so the
 * fuzzers can link both.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "config.h"

const char *config_backend_name(enum gpio_backend_kind kind)
{
	return kind == GPIO_BACKEND_SIM ? "sim" : "chardev";
}

void config_defaults(struct ledd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->backend = GPIO_BACKEND_CHARDEV;
	snprintf(cfg->chip, sizeof(cfg->chip), "%s", "auto");
	snprintf(cfg->runtime_dir, sizeof(cfg->runtime_dir), "%s", LEDD_RUNTIME_DIR);
	snprintf(cfg->state_file, sizeof(cfg->state_file), "%s", LEDD_STATE_PATH);
	cfg->debounce_ms = LEDD_DEBOUNCE_MS;
	cfg->max_watchers = LEDD_MAX_WATCHERS;
	cfg->pwm_hz = LEDD_PWM_HZ_DEFAULT;
}

void config_default_wiring(struct ledd_config *cfg)
{
	config_defaults(cfg);
	cfg->nleds = 2;
	snprintf(cfg->leds[0].name, sizeof(cfg->leds[0].name), "%s", "red");
	cfg->leds[0].gpio = 17;
	snprintf(cfg->leds[1].name, sizeof(cfg->leds[1].name), "%s", "green");
	cfg->leds[1].gpio = 27;
	cfg->nbuttons = 1;
	snprintf(cfg->buttons[0].name, sizeof(cfg->buttons[0].name), "%s", "button");
	cfg->buttons[0].gpio = 22;
	cfg->buttons[0].bias = GPIO_BIAS_PULL_UP;
	cfg->buttons[0].active_low = true;
	cfg->buttons[0].debounce_ms = LEDD_DEBOUNCE_MS;
}

size_t config_gpio_lines(const struct ledd_config *cfg, struct gpio_line_config *lines,
			 char labels[][LEDD_MAX_NAME + 8])
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->nleds; i++, n++) {
		snprintf(labels[n], LEDD_MAX_NAME + 8, "led %s", cfg->leds[i].name);
		lines[n] = (struct gpio_line_config){
			.label = labels[n], .gpio = cfg->leds[i].gpio, .output = true,
			.active_low = cfg->leds[i].active_low, .bias = GPIO_BIAS_AS_IS,
		};
	}
	for (size_t i = 0; i < cfg->nbuttons; i++, n++) {
		snprintf(labels[n], LEDD_MAX_NAME + 8, "button %s", cfg->buttons[i].name);
		lines[n] = (struct gpio_line_config){
			.label = labels[n], .gpio = cfg->buttons[i].gpio, .output = false,
			.active_low = cfg->buttons[i].active_low, .bias = cfg->buttons[i].bias,
			.debounce_ms = cfg->buttons[i].debounce_ms,
		};
	}
	return n;
}

bool config_wiring_differs(const struct ledd_config *a, const struct ledd_config *b)
{
	if (a->backend != b->backend || strcmp(a->chip, b->chip) != 0 ||
	    a->nleds != b->nleds || a->nbuttons != b->nbuttons)
		return true;
	for (size_t i = 0; i < a->nleds; i++)
		if (a->leds[i].gpio != b->leds[i].gpio || a->leds[i].active_low != b->leds[i].active_low ||
		    strcmp(a->leds[i].name, b->leds[i].name) != 0)
			return true;
	for (size_t i = 0; i < a->nbuttons; i++)
		if (a->buttons[i].gpio != b->buttons[i].gpio ||
		    a->buttons[i].active_low != b->buttons[i].active_low ||
		    a->buttons[i].bias != b->buttons[i].bias ||
		    a->buttons[i].debounce_ms != b->buttons[i].debounce_ms ||
		    strcmp(a->buttons[i].name, b->buttons[i].name) != 0)
			return true;
	return false;
}

static bool actions_differ(const struct ledd_config *a, const struct ledd_config *b)
{
	for (size_t i = 0; i < a->nbuttons; i++)
		if (!action_equal(&a->buttons[i].on_press, &b->buttons[i].on_press) ||
		    !action_equal(&a->buttons[i].on_release, &b->buttons[i].on_release))
			return true;
	return false;
}

bool config_equal(const struct ledd_config *a, const struct ledd_config *b)
{
	return !config_wiring_differs(a, b) && !actions_differ(a, b) &&
	       strcmp(a->runtime_dir, b->runtime_dir) == 0 &&
	       strcmp(a->state_file, b->state_file) == 0 && a->debounce_ms == b->debounce_ms &&
	       a->max_watchers == b->max_watchers && a->pwm_hz == b->pwm_hz;
}

int config_buttons_json(const struct ledd_config *cfg, char *out, size_t outlen)
{
	size_t len = 0;

	for (size_t i = 0; i <= cfg->nbuttons; i++) {
		const struct button_config *b = &cfg->buttons[i];
		int n = i == cfg->nbuttons
			? snprintf(out + len, outlen - len, "%s]", i ? "" : "[")
			: snprintf(out + len, outlen - len,
				   "%c{\"name\":\"%s\",\"gpio\":%u,\"pull\":\"%s\",\"active_low\":%s,"
				   "\"debounce_ms\":%u}",
				   i ? ',' : '[', b->name, b->gpio,
				   b->bias == GPIO_BIAS_PULL_UP     ? "up"
				   : b->bias == GPIO_BIAS_PULL_DOWN ? "down"
								    : "none",
				   b->active_low ? "true" : "false", b->debounce_ms);
		if (n < 0 || (size_t)n >= outlen - len) {
			snprintf(out, outlen, "[]");
			return -1;
		}
		len += (size_t)n;
	}
	return (int)len;
}

/* config.h -- ledd's configuration: the INI parser (config.c), the resulting
 * struct, and what ledd derives from it (config_wiring.c).
 *
 * config_parse() is a pure function over a buffer (no I/O, no globals) so the
 * fuzzer in cdaemon/fuzz/ can compile config.c alone. Errors name the file,
 * the line and the problem: "ledd.conf:12: gpio: 99 is not a GPIO number (0-53)".
 */
#ifndef LEDD_CONFIG_H
#define LEDD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "actions.h"
#include "defaults.h"
#include "gpio.h"

#define CONFIG_PATH_MAX 256

struct led_config {
	char name[LEDD_MAX_NAME + 1];
	unsigned int gpio;
	bool active_low;
};

struct button_config {
	char name[LEDD_MAX_NAME + 1];
	unsigned int gpio;
	bool active_low;
	enum gpio_bias bias;
	unsigned int debounce_ms;
	bool debounce_set;              /* else the [ledd] default applies */
	struct action on_press, on_release;     /* actions.h */
};

struct ledd_config {
	enum gpio_backend_kind backend;
	char chip[CONFIG_PATH_MAX];             /* "auto" or a chip path/name/label */
	char runtime_dir[CONFIG_PATH_MAX];
	char state_file[CONFIG_PATH_MAX];
	unsigned int debounce_ms;               /* default for buttons */
	unsigned int max_watchers;
	unsigned int pwm_hz;                    /* every LED's PWM frequency, unless FREQUENCY set one */
	size_t nleds, nbuttons;
	struct led_config leds[LEDD_MAX_LEDS];
	struct button_config buttons[LEDD_MAX_BUTTONS];
};

/* config.c: */

/* Parse an INI buffer over the defaults. Returns 0, or -1 with
 * "<filename>:<line>: <problem>" in err. `out` is only valid on success. */
int config_parse(const char *buf, size_t len, const char *filename,
		 struct ledd_config *out, char *err, size_t errlen);

/* Read a file and config_parse() it. -1 with the reason in err
 * (errno is ENOENT when the file does not exist). */
int config_load(const char *path, struct ledd_config *out, char *err, size_t errlen);

/* config_wiring.c: */

/* Built-in defaults: chardev, auto chip, /run/ledd, no LEDs or buttons. */
void config_defaults(struct ledd_config *cfg);

/* The documented default wiring (red GPIO17, green GPIO27, button GPIO22),
 * used when the default config file does not exist. */
void config_default_wiring(struct ledd_config *cfg);

/* Turn the config into the backend's line array: LEDs first (line i = LED i),
 * then buttons (line nleds + j = button j). Returns the number of lines. */
size_t config_gpio_lines(const struct ledd_config *cfg, struct gpio_line_config *lines,
			 char labels[][LEDD_MAX_NAME + 8]);

/* Everything the daemon uses is the same (a reload would change nothing). */
bool config_equal(const struct ledd_config *a, const struct ledd_config *b);

/* true if the two configs request different lines or line settings. */
bool config_wiring_differs(const struct ledd_config *a, const struct ledd_config *b);

const char *config_backend_name(enum gpio_backend_kind kind);

/* The button settings clients cannot see in the state (it has no room for
 * them under PIPE_BUF), for HELLO: [{"name":"button","gpio":22,"pull":"up",
 * "active_low":true,"debounce_ms":30}]. Length, or -1 if it does not fit. */
int config_buttons_json(const struct ledd_config *cfg, char *out, size_t outlen);

#endif

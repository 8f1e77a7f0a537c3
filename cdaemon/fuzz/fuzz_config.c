/* fuzz_config.c -- libFuzzer harness for config_parse() (cdaemon/src/config.c).
 *
 * The input is a whole config file, in a buffer of exactly its size (no NUL
 * terminator: config_parse() must respect len). Beyond "no crash, no UB", it
 * checks what the daemon relies on after a successful parse:
 *
 *   - 1..LEDD_MAX_LEDS LEDs and at most LEDD_MAX_BUTTONS buttons, each with a
 *     valid, unique (per kind), not-all-digits name and a GPIO <= LEDD_MAX_GPIO,
 *     no GPIO used twice, debounce and max_watchers in range, absolute paths,
 *     every string NUL-terminated inside its array;
 *   - every button action is a canonical request of an action verb, as the
 *     protocol's parser reads it, naming only this config's LEDs;
 *   - config_gpio_lines() gives one line per LED and button, LEDs first;
 *   - a failure always says "<file>:..." with a non-empty reason;
 *   - parsing is deterministic, and a config never "differs" from itself.
 *
 * Build: make -C cdaemon/fuzz (clang -fsanitize=fuzzer,address,undefined).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "protocol.h"

#define CHECK(cond) do { if (!(cond)) fail_check(#cond, __LINE__); } while (0)
#define FILENAME "fuzz.conf"

static void fail_check(const char *what, int line)
{
	fprintf(stderr, "fuzz_config.c:%d: property violated: %s\n", line, what);
	abort();
}

static int terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void check_name(const char *name, size_t size)
{
	size_t n;
	int digits = 1;

	CHECK(terminated(name, size));
	n = strlen(name);
	CHECK(n >= 1 && n <= LEDD_MAX_NAME);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-');
		if (c < '0' || c > '9')
			digits = 0;
	}
	CHECK(!digits);
}

/* A button action is a request the protocol's parser accepts, of a verb
 * verbs[] marks `action`, in canonical form (parsing it again gives the same
 * text), naming only LEDs of this config. */
static void check_action(const struct ledd_config *cfg, const struct action *a)
{
	static struct request req;
	static struct action again;
	char names[LEDD_MAX_ARGS][LEDD_MAX_NAME + 1], err[256];
	size_t n;

	CHECK(terminated(a->text, sizeof(a->text)));
	if (!a->text[0])
		return;
	CHECK(protocol_parse_command(a->text, strlen(a->text), &req, err, sizeof(err)) == PROTO_OK);
	CHECK(req.verb->action);
	CHECK(action_parse(a->text, &again, err, sizeof(err)) == 0 && strcmp(again.text, a->text) == 0);
	n = action_led_names(a, names, LEDD_MAX_ARGS);
	for (size_t k = 0; k < n; k++) {
		size_t i = 0;
		while (i < cfg->nleds && strcmp(cfg->leds[i].name, names[k]) != 0)
			i++;
		CHECK(i < cfg->nleds);
	}
}

static void check_config(const struct ledd_config *cfg)
{
	static struct gpio_line_config lines[LEDD_MAX_LEDS + LEDD_MAX_BUTTONS];
	static char labels[LEDD_MAX_LEDS + LEDD_MAX_BUTTONS][LEDD_MAX_NAME + 8];
	unsigned int used[LEDD_MAX_GPIO + 1] = { 0 };
	size_t n;

	CHECK(cfg->backend == GPIO_BACKEND_SIM || cfg->backend == GPIO_BACKEND_CHARDEV);
	CHECK(terminated(cfg->chip, sizeof(cfg->chip)) && cfg->chip[0] != '\0');
	CHECK(terminated(cfg->runtime_dir, sizeof(cfg->runtime_dir)) && cfg->runtime_dir[0] == '/');
	CHECK(terminated(cfg->state_file, sizeof(cfg->state_file)) && cfg->state_file[0] == '/');
	CHECK(cfg->debounce_ms <= LEDD_DEBOUNCE_MAX_MS);
	CHECK(cfg->max_watchers >= 1 && cfg->max_watchers <= LEDD_MAX_WATCHERS_LIMIT);
	CHECK(cfg->nleds >= 1 && cfg->nleds <= LEDD_MAX_LEDS);
	CHECK(cfg->nbuttons <= LEDD_MAX_BUTTONS);
	for (size_t i = 0; i < cfg->nleds; i++) {
		check_name(cfg->leds[i].name, sizeof(cfg->leds[i].name));
		CHECK(cfg->leds[i].gpio <= LEDD_MAX_GPIO);
		CHECK(used[cfg->leds[i].gpio]++ == 0);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(cfg->leds[i].name, cfg->leds[j].name) != 0);
	}
	for (size_t i = 0; i < cfg->nbuttons; i++) {
		const struct button_config *b = &cfg->buttons[i];

		check_name(b->name, sizeof(b->name));
		CHECK(b->gpio <= LEDD_MAX_GPIO);
		CHECK(used[b->gpio]++ == 0);
		CHECK(b->debounce_ms <= LEDD_DEBOUNCE_MAX_MS);
		CHECK(b->debounce_set || b->debounce_ms == cfg->debounce_ms);
		CHECK(b->bias == GPIO_BIAS_PULL_UP || b->bias == GPIO_BIAS_PULL_DOWN ||
		      b->bias == GPIO_BIAS_NONE);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(b->name, cfg->buttons[j].name) != 0);
		check_action(cfg, &b->on_press);
		check_action(cfg, &b->on_release);
	}
	n = config_gpio_lines(cfg, lines, labels);
	CHECK(n == cfg->nleds + cfg->nbuttons);
	for (size_t i = 0; i < n; i++) {
		CHECK(lines[i].output == (i < cfg->nleds));
		CHECK(lines[i].label != NULL && terminated(lines[i].label, LEDD_MAX_NAME + 8));
	}
	CHECK(!config_wiring_differs(cfg, cfg));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ledd_config cfg, again;
	char err[512], err2[512];
	char *buf;
	int rc, rc2;

	if (size > LEDD_CONFIG_MAX_BYTES)       /* config_load() refuses these */
		return 0;
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	err[0] = '\0';
	rc = config_parse(buf, size, FILENAME, &cfg, err, sizeof(err));
	if (rc == 0) {
		check_config(&cfg);
	} else {
		CHECK(rc == -1);
		CHECK(strncmp(err, FILENAME ":", strlen(FILENAME ":")) == 0);
		CHECK(strlen(err) > strlen(FILENAME ": "));
		for (const char *c = err; *c; c++)
			CHECK((unsigned char)*c >= 0x20 || *c == '\t');
	}
	err2[0] = '\0';
	rc2 = config_parse(buf, size, FILENAME, &again, err2, sizeof(err2));
	CHECK(rc2 == rc);
	if (rc == 0)
		CHECK(!config_wiring_differs(&cfg, &again));
	else
		CHECK(strcmp(err, err2) == 0);
	free(buf);
	return 0;
}

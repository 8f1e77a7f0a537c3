/* config.c -- parse ledd.conf (INI) into struct ledd_config.
 *
 * The format, every key and its range are documented in docs/config.md and in
 * the shipped cdaemon/ledd.conf. Sections are [ledd], [led NAME] and
 * [button NAME]; LEDs and buttons get ids in file order. Comments start with
 * '#' or ';' at the start of a line or after whitespace. Any problem is an
 * error naming file and line: a config that is half understood would drive
 * the wrong pins.
 *
 * Button actions (on_press/on_release) are parsed by actions.c, which uses
 * the protocol's own parser; their LED names are checked here once the
 * whole file is read. What ledd derives from the result (defaults, the
 * backend's lines, reload comparisons) is config_wiring.c.
 *
 * config_parse() is pure (no I/O, no globals) so it can be fuzzed alone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "config.h"

enum section { SEC_NONE, SEC_LEDD, SEC_LED, SEC_BUTTON };

struct parser {
	const char *filename;
	unsigned int lineno;
	char *err;
	size_t errlen;
	enum section section;
	struct ledd_config *cfg;
	unsigned int seen;      /* bitmask of keys seen in the current section */
	unsigned int led_line[LEDD_MAX_LEDS];           /* where each section starts, */
	unsigned int button_line[LEDD_MAX_BUTTONS];     /* for errors found at the end */
};

static int fail(struct parser *p, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->lineno)
		snprintf(p->err, p->errlen, "%s:%u: %s", p->filename, p->lineno, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->filename, msg);
	return -1;
}

static void copy_str(char *dst, size_t dstlen, const char *src)
{
	snprintf(dst, dstlen, "%s", src);
}

/* --- value parsers ---------------------------------------------------- */

static int parse_uint(struct parser *p, const char *key, const char *val,
		      unsigned int min, unsigned int max, const char *what, unsigned int *out)
{
	unsigned long v = 0;
	size_t n = strlen(val);

	if (n == 0 || n > 9)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		if (val[i] < '0' || val[i] > '9')
			goto bad;
		v = v * 10 + (unsigned long)(val[i] - '0');
	}
	if (v < min || v > max)
		goto bad;
	*out = (unsigned int)v;
	return 0;
bad:
	return fail(p, "%s: %.40s is not %s (%u-%u)", key, val, what, min, max);
}

static int parse_bool(struct parser *p, const char *key, const char *val, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(val, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(val, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return fail(p, "%s: '%.40s' is not a boolean (true or false)", key, val);
}

static int parse_path(struct parser *p, const char *key, const char *val, char *out, size_t outlen)
{
	if (val[0] != '/')
		return fail(p, "%s: '%.60s' is not an absolute path", key, val);
	if (strlen(val) >= outlen)
		return fail(p, "%s: path longer than %zu bytes", key, outlen - 1);
	copy_str(out, outlen, val);
	return 0;
}

/* A name: 1-24 of [A-Za-z0-9_-], not all digits (digits are ids). */
static int check_name(struct parser *p, const char *kind, const char *name)
{
	size_t n = strlen(name);
	bool digits = true;

	if (n == 0)
		return fail(p, "[%s] needs a name, e.g. [%s red]", kind, kind);
	if (n > LEDD_MAX_NAME)
		return fail(p, "%s name '%.40s' is longer than %d characters", kind, name, LEDD_MAX_NAME);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return fail(p, "%s name '%.40s' may only use A-Z a-z 0-9 _ -", kind, name);
		if (c < '0' || c > '9')
			digits = false;
	}
	if (digits)
		return fail(p, "%s name '%s' is all digits (digits are ids)", kind, name);
	return 0;
}

/* --- sections and keys ------------------------------------------------ */

static int begin_section(struct parser *p, char *text)
{
	char *space = strchr(text, ' ');
	char *name = "";
	struct ledd_config *cfg = p->cfg;

	if (space) {
		*space = '\0';
		name = space + 1;
		while (*name == ' ')
			name++;
	}
	p->seen = 0;
	if (strcmp(text, "ledd") == 0 && !space) {
		p->section = SEC_LEDD;
		return 0;
	}
	if (strcmp(text, "led") == 0) {
		if (check_name(p, "led", name))
			return -1;
		if (cfg->nleds == LEDD_MAX_LEDS)
			return fail(p, "more than %d LEDs", LEDD_MAX_LEDS);
		for (size_t i = 0; i < cfg->nleds; i++)
			if (strcmp(cfg->leds[i].name, name) == 0)
				return fail(p, "a second [led %s]", name);
		p->led_line[cfg->nleds] = p->lineno;
		struct led_config *led = &cfg->leds[cfg->nleds++];
		copy_str(led->name, sizeof(led->name), name);
		led->gpio = ~0u;
		p->section = SEC_LED;
		return 0;
	}
	if (strcmp(text, "button") == 0) {
		if (check_name(p, "button", name))
			return -1;
		if (cfg->nbuttons == LEDD_MAX_BUTTONS)
			return fail(p, "more than %d buttons", LEDD_MAX_BUTTONS);
		for (size_t i = 0; i < cfg->nbuttons; i++)
			if (strcmp(cfg->buttons[i].name, name) == 0)
				return fail(p, "a second [button %s]", name);
		p->button_line[cfg->nbuttons] = p->lineno;
		struct button_config *b = &cfg->buttons[cfg->nbuttons++];
		copy_str(b->name, sizeof(b->name), name);
		b->gpio = ~0u;
		b->bias = GPIO_BIAS_PULL_UP;
		b->active_low = true;
		p->section = SEC_BUTTON;
		return 0;
	}
	return fail(p, "unknown section [%.40s%s%.40s] (expected [ledd], [led NAME] or [button NAME])",
		    text, space ? " " : "", name);
}

/* Returns the bit of `key` in `keys`, failing on unknown or repeated keys. */
static int key_bit(struct parser *p, const char *const *keys, size_t nkeys, const char *key,
		   const char *section)
{
	for (size_t i = 0; i < nkeys; i++) {
		if (strcmp(keys[i], key) != 0)
			continue;
		if (p->seen & (1u << i))
			return fail(p, "%s: set twice in this section", key);
		p->seen |= 1u << i;
		return (int)i;
	}
	return fail(p, "unknown key '%.40s' in %s", key, section);
}

static int set_ledd_key(struct parser *p, const char *key, const char *val)
{
	static const char *const keys[] = {
		"backend", "chip", "runtime_dir", "state_file", "debounce_ms", "max_watchers", "pwm_hz",
	};
	struct ledd_config *cfg = p->cfg;

	switch (key_bit(p, keys, 7, key, "[ledd]")) {
	case 0:
		if (strcmp(val, "sim") == 0)
			cfg->backend = GPIO_BACKEND_SIM;
		else if (strcmp(val, "chardev") == 0)
			cfg->backend = GPIO_BACKEND_CHARDEV;
		else
			return fail(p, "backend: '%.40s' is not chardev or sim", val);
		return 0;
	case 1:
		if (strlen(val) >= sizeof(cfg->chip))
			return fail(p, "chip: longer than %zu bytes", sizeof(cfg->chip) - 1);
		copy_str(cfg->chip, sizeof(cfg->chip), val);
		return 0;
	case 2:
		return parse_path(p, key, val, cfg->runtime_dir, sizeof(cfg->runtime_dir));
	case 3:
		return parse_path(p, key, val, cfg->state_file, sizeof(cfg->state_file));
	case 4:
		return parse_uint(p, key, val, 0, LEDD_DEBOUNCE_MAX_MS, "a debounce time in ms",
				  &cfg->debounce_ms);
	case 5:
		return parse_uint(p, key, val, 1, LEDD_MAX_WATCHERS_LIMIT, "a watcher count",
				  &cfg->max_watchers);
	case 6:
		return parse_uint(p, key, val, LEDD_PWM_HZ_MIN, LEDD_PWM_HZ_MAX,
				  "a PWM frequency in Hz", &cfg->pwm_hz);
	}
	return -1;
}

static int set_led_key(struct parser *p, const char *key, const char *val)
{
	static const char *const keys[] = { "gpio", "active_low" };
	struct led_config *led = &p->cfg->leds[p->cfg->nleds - 1];

	switch (key_bit(p, keys, 2, key, "[led]")) {
	case 0:
		return parse_uint(p, key, val, 0, LEDD_MAX_GPIO, "a GPIO number", &led->gpio);
	case 1:
		return parse_bool(p, key, val, &led->active_low);
	}
	return -1;
}

static int set_button_key(struct parser *p, const char *key, const char *val)
{
	static const char *const keys[] = { "gpio", "active_low", "pull", "debounce_ms", "on_press",
					    "on_release" };
	char msg[160];
	struct button_config *b = &p->cfg->buttons[p->cfg->nbuttons - 1];

	switch (key_bit(p, keys, 6, key, "[button]")) {
	case 0:
		return parse_uint(p, key, val, 0, LEDD_MAX_GPIO, "a GPIO number", &b->gpio);
	case 1:
		return parse_bool(p, key, val, &b->active_low);
	case 2:
		if (strcmp(val, "up") == 0)
			b->bias = GPIO_BIAS_PULL_UP;
		else if (strcmp(val, "down") == 0)
			b->bias = GPIO_BIAS_PULL_DOWN;
		else if (strcmp(val, "none") == 0)
			b->bias = GPIO_BIAS_NONE;
		else
			return fail(p, "pull: '%.40s' is not up, down or none", val);
		return 0;
	case 3:
		b->debounce_set = true;
		return parse_uint(p, key, val, 0, LEDD_DEBOUNCE_MAX_MS, "a debounce time in ms",
				  &b->debounce_ms);
	case 4:
	case 5: {
		struct action *a = strcmp(key, "on_press") == 0 ? &b->on_press : &b->on_release;
		if (action_parse(val, a, msg, sizeof(msg)) < 0)
			return fail(p, "%s: %s", key, msg);
		a->line = p->lineno;
		return 0;
	}
	}
	return -1;
}

/* Strip an inline comment ('#' or ';' after whitespace) and surrounding blanks. */
static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	for (char *c = s; *c; c++) {
		if ((*c == '#' || *c == ';') && (c == s || c[-1] == ' ' || c[-1] == '\t')) {
			*c = '\0';
			break;
		}
	}
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

static int parse_line(struct parser *p, char *line)
{
	char *s = trim(line), *eq;

	if (*s == '\0')
		return 0;
	if (*s == '[') {
		char *close = strchr(s, ']');
		if (!close || close[1] != '\0')
			return fail(p, "section header must end with ']'");
		*close = '\0';
		return begin_section(p, trim(s + 1));
	}
	eq = strchr(s, '=');
	if (!eq)
		return fail(p, "expected 'key = value', '[section]' or a comment");
	*eq = '\0';
	char *key = trim(s), *val = trim(eq + 1);
	if (*key == '\0')
		return fail(p, "missing key before '='");
	if (*val == '\0')
		return fail(p, "%.40s: missing value", key);
	switch (p->section) {
	case SEC_LEDD:
		return set_ledd_key(p, key, val);
	case SEC_LED:
		return set_led_key(p, key, val);
	case SEC_BUTTON:
		return set_button_key(p, key, val);
	case SEC_NONE:
		break;
	}
	return fail(p, "'%.40s' outside a section (start with [ledd])", key);
}

/* Every LED an action names must be one of this file's [led] sections. */
static int check_action(struct parser *p, const struct button_config *b, const struct action *a,
			const char *key)
{
	char names[LEDD_MAX_ARGS][LEDD_MAX_NAME + 1];
	size_t n = action_led_names(a, names, LEDD_MAX_ARGS);

	for (size_t k = 0; k < n; k++) {
		size_t i = 0;

		while (i < p->cfg->nleds && strcmp(p->cfg->leds[i].name, names[k]) != 0)
			i++;
		if (i == p->cfg->nleds) {
			p->lineno = a->line;
			return fail(p, "%s: [button %s] names no [led %s] of this file", key, b->name,
				    names[k]);
		}
	}
	return 0;
}

static int check_actions(struct parser *p)
{
	for (size_t i = 0; i < p->cfg->nbuttons; i++) {
		const struct button_config *b = &p->cfg->buttons[i];

		if (check_action(p, b, &b->on_press, "on_press") < 0 ||
		    check_action(p, b, &b->on_release, "on_release") < 0)
			return -1;
	}
	return 0;
}

/* Checks across sections, once the whole file is read. */
static int check_whole(struct parser *p)
{
	struct ledd_config *cfg = p->cfg;
	unsigned int used[LEDD_MAX_LEDS + LEDD_MAX_BUTTONS];
	size_t nused = 0;

	if (cfg->nleds == 0) {
		p->lineno = 0;
		return fail(p, "no [led NAME] section (1-%d LEDs are needed)", LEDD_MAX_LEDS);
	}
	for (size_t i = 0; i < cfg->nleds + cfg->nbuttons; i++) {
		bool is_led = i < cfg->nleds;

		p->lineno = is_led ? p->led_line[i] : p->button_line[i - cfg->nleds];
		const char *name = is_led ? cfg->leds[i].name : cfg->buttons[i - cfg->nleds].name;
		unsigned int gpio = is_led ? cfg->leds[i].gpio : cfg->buttons[i - cfg->nleds].gpio;

		if (gpio == ~0u)
			return fail(p, "[%s %s] has no gpio", is_led ? "led" : "button", name);
		for (size_t j = 0; j < nused; j++)
			if (used[j] == gpio)
				return fail(p, "gpio: GPIO%u is already used by [%s %s]", gpio,
					    j < cfg->nleds ? "led" : "button",
					    j < cfg->nleds ? cfg->leds[j].name
							   : cfg->buttons[j - cfg->nleds].name);
		used[nused++] = gpio;
	}
	for (size_t i = 0; i < cfg->nbuttons; i++)
		if (!cfg->buttons[i].debounce_set)
			cfg->buttons[i].debounce_ms = cfg->debounce_ms;
	return check_actions(p);
}

int config_parse(const char *buf, size_t len, const char *filename,
		 struct ledd_config *out, char *err, size_t errlen)
{
	struct parser p = { .filename = filename, .err = err, .errlen = errlen, .cfg = out };
	char line[512];
	size_t pos = 0;

	config_defaults(out);
	while (pos < len) {
		size_t n = 0;

		p.lineno++;
		while (pos + n < len && buf[pos + n] != '\n')
			n++;
		if (n >= sizeof(line))
			return fail(&p, "line longer than %zu bytes", sizeof(line) - 1);
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if (n > 0 && line[n - 1] == '\r')   /* tolerate files edited on Windows */
			line[--n] = '\0';
		if (memchr(line, '\0', n))
			return fail(&p, "NUL byte in line");
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
				return fail(&p, "control character 0x%02x in line", (unsigned char)line[i]);
		if (parse_line(&p, line))
			return -1;
	}
	return check_whole(&p);
}

int config_load(const char *path, struct ledd_config *out, char *err, size_t errlen)
{
	static char buf[LEDD_CONFIG_MAX_BYTES + 1];
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		set_err(err, errlen, "%s: cannot open: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			set_err(err, errlen, "%s: cannot read: %s", path, strerror(e));
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > LEDD_CONFIG_MAX_BYTES) {
			set_err(err, errlen, "%s: larger than %d bytes", path, LEDD_CONFIG_MAX_BYTES);
			close(fd);
			errno = EFBIG;
			return -1;
		}
	}
	close(fd);
	errno = 0;
	return config_parse(buf, len, path, out, err, errlen);
}


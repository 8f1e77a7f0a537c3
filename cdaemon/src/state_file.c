/* state_file.c -- the state file: ledd's LEDs and counters across restarts.
 *
 * The state file is small text keyed by name (see state.h). It is always
 * replaced by rename, so a reader sees the old or the new version, never a
 * mix. Durability comes in two steps (changes.c decides when): before every
 * reply, a plain temp + rename, which survives any crash of ledd because the
 * page cache belongs to the kernel; then, once per burst of changes, the
 * classic temp + fsync + rename + fsync(dir), which survives a power cut.
 * fsync on every toggle would put an SD card's flush latency (often 10-100
 * ms on a Pi) inside every client's exchange, and wear the card for nothing.
 * Reading is all or nothing: a malformed file changes nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "state.h"
#include "textbuf.h"

#define STATE_MAGIC "ledd-state 1"

int state_format(const struct ledd_state *st, char *out, size_t outlen)
{
	struct textbuf b = { .p = out, .cap = outlen };

	put(&b, STATE_MAGIC "\nseq %" PRIu64 "\n", st->seq);
	for (size_t i = 0; i < st->nleds; i++) {
		const struct led_state *l = &st->leds[i];
		put(&b, "led %s on %d blink %u %u brightness %u pwm_hz ", l->name, l->on ? 1 : 0,
		    l->on_ms, l->off_ms, l->brightness);
		if (l->pwm_hz_set)
			put(&b, "%u\n", l->pwm_hz);
		else
			put(&b, "-\n");
	}
	for (size_t i = 0; i < st->nbuttons; i++) {
		put(&b, "button %s presses %" PRIu64 " last_press_ms ", st->buttons[i].name,
		    st->buttons[i].presses);
		if (st->buttons[i].last_press_ms < 0)
			put(&b, "-\n");
		else
			put(&b, "%" PRId64 "\n", st->buttons[i].last_press_ms);
	}
	return textbuf_result(&b);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!s || *s < '0' || *s > '9' || strlen(s) > LEDD_U64_DIGITS)
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return (errno || *end) ? -1 : 0;
}

/* Split a line on single spaces into at most `max` words. */
static size_t words(char *line, char **w, size_t max)
{
	size_t n = 0;

	for (char *tok = strtok(line, " "); tok; tok = strtok(NULL, " ")) {
		if (n == max)
			return max + 1;
		w[n++] = tok;
	}
	return n;
}

/* "brightness B pwm_hz HZ|-" after an LED's blink (an older ledd wrote
 * none): into *brightness and *hz (0 = the config's). */
static int parse_led_pwm(char **w, size_t n, uint64_t *brightness, uint64_t *hz)
{
	*brightness = LEDD_BRIGHTNESS_DEFAULT;
	*hz = 0;
	if (n == 7)
		return 0;
	if (n != 11 || strcmp(w[7], "brightness") != 0 || strcmp(w[9], "pwm_hz") != 0 ||
	    parse_u64(w[8], brightness) || *brightness < 1 || *brightness > LEDD_BRIGHTNESS_MAX)
		return -1;
	if (strcmp(w[10], "-") == 0)
		return 0;
	if (parse_u64(w[10], hz) || *hz < LEDD_PWM_HZ_MIN || *hz > LEDD_PWM_HZ_MAX)
		return -1;
	return 0;
}

static int parse_entry(struct ledd_state *st, char *line, int *unknown)
{
	char *w[12];
	size_t n = words(line, w, 11);
	uint64_t a, b;

	if (n == 2 && strcmp(w[0], "seq") == 0)
		return parse_u64(w[1], &st->seq);
	if ((n == 7 || n == 11) && strcmp(w[0], "led") == 0 && strcmp(w[2], "on") == 0 &&
	    strcmp(w[4], "blink") == 0) {
		uint64_t on, brightness, hz;
		if (parse_u64(w[3], &on) || on > 1 || parse_u64(w[5], &a) || parse_u64(w[6], &b) ||
		    parse_led_pwm(w, n, &brightness, &hz))
			return -1;
		if (!((a == 0 && b == 0) || (a >= LEDD_BLINK_MIN_MS && a <= LEDD_BLINK_MAX_MS &&
					     b >= LEDD_BLINK_MIN_MS && b <= LEDD_BLINK_MAX_MS && on)))
			return -1;
		for (size_t i = 0; i < st->nleds; i++) {
			struct led_state *led = &st->leds[i];
			if (strcmp(led->name, w[1]) != 0)
				continue;
			led->on = on;
			led->on_ms = (unsigned int)a;
			led->off_ms = (unsigned int)b;
			led->lit = on;
			led->level = (int)on;
			led->brightness = (unsigned int)brightness;
			if (hz) {
				led->pwm_hz = (unsigned int)hz;
				led->pwm_hz_set = true;
			}
			return 0;
		}
		(*unknown)++;
		return 0;
	}
	if (n == 6 && strcmp(w[0], "button") == 0 && strcmp(w[2], "presses") == 0 &&
	    strcmp(w[4], "last_press_ms") == 0) {
		int64_t last = -1;
		if (parse_u64(w[3], &a))
			return -1;
		if (strcmp(w[5], "-") != 0) {
			if (parse_u64(w[5], &b) || b > INT64_MAX)
				return -1;
			last = (int64_t)b;
		}
		for (size_t i = 0; i < st->nbuttons; i++) {
			if (strcmp(st->buttons[i].name, w[1]) != 0)
				continue;
			st->buttons[i].presses = a;
			st->buttons[i].last_press_ms = last;
			return 0;
		}
		(*unknown)++;
		return 0;
	}
	return -1;
}

int state_parse(struct ledd_state *st, const char *buf, size_t len, char *err, size_t errlen)
{
	struct ledd_state tmp = *st;
	char line[256];
	size_t pos = 0;
	unsigned int lineno = 0;
	int unknown = 0;

	while (pos < len) {
		size_t n = 0;

		lineno++;
		while (pos + n < len && buf[pos + n] != '\n')
			n++;
		if (pos + n == len) {
			set_err(err, errlen, "line %u: truncated (no newline)", lineno);
			return -1;
		}
		if (n >= sizeof(line) || memchr(buf + pos, '\0', n)) {
			set_err(err, errlen, "line %u: not a state line", lineno);
			return -1;
		}
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if (lineno == 1) {
			if (strcmp(line, STATE_MAGIC) != 0) {
				set_err(err, errlen, "line 1: not '%s'", STATE_MAGIC);
				return -1;
			}
			continue;
		}
		if (parse_entry(&tmp, line, &unknown)) {
			set_err(err, errlen, "line %u: malformed", lineno);
			return -1;
		}
	}
	if (lineno == 0) {
		set_err(err, errlen, "empty file");
		return -1;
	}
	*st = tmp;
	return unknown;
}

int state_load(struct ledd_state *st, const char *path, char *err, size_t errlen)
{
	char buf[LEDD_STATE_MAX_BYTES + 1], why[160];
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? 1 : -1;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			set_err(err, errlen, "%s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > LEDD_STATE_MAX_BYTES) {
			set_err(err, errlen, "%s: larger than %d bytes", path, LEDD_STATE_MAX_BYTES);
			close(fd);
			return -1;
		}
	}
	close(fd);
	int rc = state_parse(st, buf, len, why, sizeof(why));
	if (rc < 0) {
		set_err(err, errlen, "%s: %s", path, why);
		return -1;
	}
	if (rc > 0)
		set_err(err, errlen, "%s: %d entries name no configured LED or button", path, rc);
	else
		err[0] = '\0';
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* fsync the directory holding path, so the rename itself is on disk. */
static int sync_parent_dir(const char *path)
{
	char dir[CONFIG_PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if (snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path) >= (int)sizeof(dir))
		return errno = ENAMETOOLONG, -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	if (close(fd) < 0)
		rc = -1;
	return rc;
}

int state_save(const struct ledd_state *st, const char *path, bool durable, char *err,
	       size_t errlen)
{
	char text[LEDD_STATE_MAX_BYTES], tmp[CONFIG_PATH_MAX + 8];
	int len = state_format(st, text, sizeof(text));
	int fd;

	if (len < 0 || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		set_err(err, errlen, "%s: state or path too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		set_err(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write_all(fd, text, (size_t)len) < 0 || (durable && fsync(fd) < 0)) {
		set_err(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (durable && sync_parent_dir(path) < 0) {
		set_err(err, errlen, "%s: syncing its directory: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

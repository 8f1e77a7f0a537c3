/* log.h -- logging to stderr with syslog "<N>" level prefixes, which journald
 * turns into priorities (SyslogLevelPrefix=yes is systemd's default). */
#ifndef LEDD_LOG_H
#define LEDD_LOG_H

#include <stdint.h>
#include <syslog.h>

void log_set_verbose(int verbose);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A client's mistake: rate-limited (log.c). */
void log_limited(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* When the count of left-out lines is due (CLOCK_MONOTONIC ns), 0 if none. */
uint64_t log_limited_due(void);
/* Log that count if its period has ended. */
void log_limited_flush(void);
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void die_perror(const char *what);

#define log_err(...)     log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)    log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)

#endif

/* log.h -- logging to stderr with syslog "<N>" level prefixes, which journald
 * turns into priorities (SyslogLevelPrefix=yes is systemd's default). */
#ifndef LEDD_LOG_H
#define LEDD_LOG_H

#include <syslog.h>

void log_set_verbose(int verbose);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void die_perror(const char *what);

#define log_err(...)     log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)    log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)

#endif

/* notify.h -- systemd's sd_notify protocol without libsystemd. */
#ifndef LEDD_NOTIFY_H
#define LEDD_NOTIFY_H

#include <stdint.h>

/* Send one datagram ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET, if set.
 * Returns 0 (also when there is no socket), -1 with errno on failure. */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval asked for by systemd ($WATCHDOG_USEC, for this pid
 * when $WATCHDOG_PID is set), or 0 when there is no watchdog. */
uint64_t notify_watchdog_usec(void);

#endif

/* defaults.h -- every path, limit and period of the C daemon, in one place.
 *
 * The Python side has its own copy in ledd/defaults.py; the FIFO names and the
 * protocol limits must agree with it and with docs/protocol.md
 * (tests/daemon/test_defaults.py checks).
 */
#ifndef LEDD_DEFAULTS_H
#define LEDD_DEFAULTS_H

#define LEDD_VERSION            "0.1.0"
#define LEDD_PROTOCOL           2

/* Paths. */
#ifndef LEDD_CONFIG_PATH                /* -D for tests that need it missing */
#define LEDD_CONFIG_PATH        "/etc/ledd/ledd.conf"
#endif
#define LEDD_RUNTIME_DIR        "/run/ledd"
#define LEDD_RUNTIME_DIR_ENV    "LEDD_RUNTIME_DIR"
#define LEDD_STATE_PATH         "/var/lib/ledd/state"
#define LEDD_CMD_FIFO           "ledd.cmd"
#define LEDD_PID_FILE           "ledd.pid"
#define LEDD_REPLY_DIR          "reply"         /* clients' reply FIFOs: reply/<id> */

/* Modes and owners (docs/protocol.md, "Trust"). ledd runs as user ledd;
 * clients are members of group ledd. ledd's user owns the runtime directory,
 * ledd.cmd, ledd.pid and reply/, and ledd re-makes any of them that has
 * another owner, type or mode. The runtime directory: the group enters it,
 * creates nothing there. ledd.cmd: ledd reads, the group writes (nobody else
 * can read a request). reply/: a drop box -- the group may enter it and
 * create in it, not list it (-wx), sticky (a member removes only its own
 * entries), setgid (every FIFO made there is group ledd's, so ledd writes
 * into it through the group). A reply FIFO (made by its client under a name
 * of LEDD_REPLY_NAME_BITS random bits) is the reverse of ledd.cmd: the client
 * reads, ledd writes through the group. */
#define LEDD_RUNTIME_DIR_MODE   0750
#define LEDD_CMD_FIFO_MODE      0620
#define LEDD_REPLY_DIR_MODE     03730   /* setgid + sticky + rwx-wx--- */
#define LEDD_REPLY_FIFO_MODE    0620    /* what clients give their reply FIFOs */
#define LEDD_PID_FILE_MODE      0644
#define LEDD_REPLY_NAME_BITS    128     /* a reply name's random bits, at least (clients) */
/* What ledd moves aside when it must re-make a name: LEDD_ASIDE_PREFIX and
 * 16 random hex digits, in the runtime directory; removed as far as it can be. */
#define LEDD_ASIDE_PREFIX       ".ledd-old-"

/* Leftovers of crashed clients and whatever members drop in reply/: every
 * LEDD_REPLY_CHECK_EVERY requests ledd counts reply/, and sweeps it when it
 * holds LEDD_REPLY_SWEEP_AT entries more than the last sweep had to leave
 * (and always at start). No timer. Directories are removed to this depth. */
#define LEDD_REPLY_CHECK_EVERY  64
#define LEDD_REPLY_SWEEP_AT     256
#define LEDD_SWEEP_MAX_DEPTH    8

/* Clients' mistakes (bad lines, replies nobody can take) are logged at most
 * LEDD_LOG_CLIENT_BURST times per LEDD_LOG_CLIENT_PERIOD_MS; the rest are
 * counted, and the count is logged when the period ends. */
#define LEDD_LOG_CLIENT_BURST     5
#define LEDD_LOG_CLIENT_PERIOD_MS 10000

/* Protocol limits (docs/protocol.md, "Limits"). */
#define LEDD_MAX_REQUEST        256     /* request line, LF included */
#define LEDD_MAX_ID             64      /* the id is the reply FIFO's name */
#define LEDD_MAX_ARGS           3
#define LEDD_MAX_DIGITS         9       /* protocol numbers (blink periods) */
#define LEDD_U64_DIGITS         20      /* seq and press counters: up to 18446744073709551615 */
#define LEDD_MAX_LEDS           16
#define LEDD_MAX_BUTTONS        8
#define LEDD_MAX_NAME           24
#define LEDD_BLINK_MIN_MS       20
#define LEDD_BLINK_MAX_MS       60000
#define LEDD_DEBOUNCE_MS        30
#define LEDD_DEBOUNCE_MAX_MS    1000
#define LEDD_MAX_WATCHERS       64
#define LEDD_MAX_WATCHERS_LIMIT 1024    /* highest max_watchers a config may ask for */
#define LEDD_FD_RESERVE         32      /* descriptors kept free of watchers (state saves, lines) */

/* Brightness (BRIGHTNESS, ALL_BRIGHTNESS: percent; 0 in a request means off,
 * so a kept brightness is 1-100) and the software PWM that makes it (pwm.c):
 * FREQUENCY and the config's pwm_hz, in Hz. */
#define LEDD_BRIGHTNESS_MAX     100
#define LEDD_BRIGHTNESS_DEFAULT 100
#define LEDD_PWM_HZ_MIN         10
#define LEDD_PWM_HZ_MAX         1000
#define LEDD_PWM_HZ_DEFAULT     200

/* Hardware: BCM GPIO numbers of the 40-pin header and the SoC banks. */
#define LEDD_MAX_GPIO           53

/* The sim backend: GPIO numbers (comma-separated) whose sets fail, for tests. */
#define LEDD_SIM_REFUSE_ENV     "LEDD_SIM_REFUSE_GPIO"
/* The sim backend: a file that records every output change with its time (tests of the PWM). */
#define LEDD_SIM_EDGE_LOG_ENV   "LEDD_SIM_EDGE_LOG"

/* The chardev backend (gpio_chardev.c). */
#define LEDD_GPIO_CONSUMER      "ledd"  /* shows in gpioinfo / lineinfo */
#define LEDD_GPIO_DEV_DIR       "/dev"
/* Labels of the Raspberry Pi header's chip: Pi 1-3, Pi 4, Pi 5. */
#define LEDD_GPIO_PI_LABELS     { "pinctrl-bcm2835", "pinctrl-bcm2711", "pinctrl-rp1" }
#define LEDD_GPIO_MAX_CHIPS     64      /* /dev/gpiochip* looked at, at most */

/* State file durability: every change is renamed into place before its reply
 * (survives kill -9); the fsync that makes it survive a power cut is done at
 * most this long after the first unsynced change, once for a whole burst. */
#define LEDD_STATE_SYNC_MS      1000

/* Buffers. A reply or event line always fits in one atomic pipe write. */
#define LEDD_LINE_MAX           4096    /* == PIPE_BUF on Linux */
#define LEDD_CONFIG_MAX_BYTES   65536   /* bigger config files are refused */
#define LEDD_STATE_MAX_BYTES    8192
#define LEDD_MAX_EDGES          16      /* edges read per wake-up */
#define LEDD_READS_PER_WAKEUP   16      /* command FIFO reads, then back to poll (signals, edges) */
#define LEDD_READ_CHUNK         4096    /* bytes per read of a FIFO or of inotify (one pipe page) */
#define LEDD_ERR_MAX            512     /* a message handed back by a module (set_err) */
#define LEDD_LOG_LINE_MAX       1024    /* a log line, longer ones are cut */

#endif

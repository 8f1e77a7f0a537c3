"""Every path, limit and timeout the Python side shares, in one place.

The C daemon's own copy lives in ``cdaemon/src/defaults.h``; the two must agree
on the file names and limits below (``tests/daemon/test_defaults.py`` checks).
"""

#: Runtime directory on a Pi (systemd ``RuntimeDirectory=ledd``).
RUNTIME_DIR = "/run/ledd"
#: Environment variable that overrides the runtime directory.
RUNTIME_DIR_ENV = "LEDD_RUNTIME_DIR"

CMD_FIFO = "ledd.cmd"
#: Where clients make their reply FIFOs, ``reply/<id>`` (protocol 2).
REPLY_DIR = "reply"
#: Mode of a reply FIFO: its client reads, ledd writes through the group (reply/ is setgid ledd).
REPLY_FIFO_MODE = 0o620

#: Longest request line, LF included (protocol limit, far below PIPE_BUF).
MAX_REQUEST = 256
#: Longest request id, which is also the reply FIFO's name (1 to this many of [A-Za-z0-9_-]).
MAX_ID = 64
#: How long a client waits for its reply, in seconds (HTTP 504 after).
TIMEOUT_S = 2.0
#: Protocol version this client speaks.
PROTOCOL = 2

CONFIG_PATH = "/etc/ledd/ledd.conf"
STATE_PATH = "/var/lib/ledd/state"

# -- the web layer (ledd/web*.py, cgi-bin/, lighttpd.conf) -------------------

#: Largest POST body the API reads, in bytes (every valid body is far smaller).
WEB_MAX_BODY = 1024
#: Seconds between SSE keep-alive comments on an idle event stream (the issue asks for <= 25).
WEB_SSE_PING_S = 15.0
#: What an SSE stream tells EventSource to wait before reconnecting, in ms.
WEB_SSE_RETRY_MS = 1000
#: The board ``python3 -m ledd.board`` describes off a Pi: a Raspberry Pi 4 Model B (1.1, 4 GB).
BOARD_DEFAULT_REVISION = "c03111"
#: Where a Pi's kernel tells its board revision (device tree first, then /proc/cpuinfo).
BOARD_DT_REVISION = "/proc/device-tree/system/linux,revision"
BOARD_CPUINFO = "/proc/cpuinfo"
#: Protocol limits the web layer checks itself, for a clearer error (ledd checks them too).
BLINK_MIN_MS = 20
BLINK_MAX_MS = 60000
MAX_NAME = 24

# -- the daemon's limits the tests check against (issue 9; mirrors cdaemon/src/defaults.h) ----

#: LEDs and buttons a config may define.
MAX_LEDS = 16
MAX_BUTTONS = 8
#: Watchers ledd serves by default (``max_watchers``).
MAX_WATCHERS = 64
#: Largest plain decimal number in a request (blink periods): this many digits.
MAX_DIGITS = 9
#: ledd counts reply/ every REPLY_CHECK_EVERY requests and sweeps unread FIFOs past REPLY_SWEEP_AT entries.
REPLY_CHECK_EVERY = 64
REPLY_SWEEP_AT = 256
#: The atomic pipe write size on Linux (PIPE_BUF): every reply and event line is shorter.
PIPE_BUF = 4096

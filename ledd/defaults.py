"""Every path, limit and timeout the Python side shares, in one place.

The C daemon's own copy lives in ``cdaemon/src/defaults.h``; the two must agree
on the file names and limits below (``tests/daemon/test_defaults.py`` checks).
"""

#: Runtime directory on a Pi (systemd ``RuntimeDirectory=ledd``).
RUNTIME_DIR = "/run/ledd"
#: Environment variable that overrides the runtime directory.
RUNTIME_DIR_ENV = "LEDD_RUNTIME_DIR"

CMD_FIFO = "ledd.cmd"
REPLY_FIFO = "ledd.reply"
WATCH_DIR = "watch"

#: Longest request line, LF included (protocol limit, far below PIPE_BUF).
MAX_REQUEST = 256
#: How long a client waits for the lock plus its reply, in seconds (HTTP 504 after).
TIMEOUT_S = 2.0
#: Protocol version this client speaks.
PROTOCOL = 1

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

# -- the gpiozero pin factory (ledd/gpiozero_factory.py, issue 12) -----------

#: gpiozero looks pin factories up under this entry-point group; ours is named ``ledd``.
GPIOZERO_ENTRY_GROUP = "gpiozero_pin_factories"
GPIOZERO_FACTORY_NAME = "ledd"
#: While ledd is down, the factory's watcher tries to subscribe again this often, in seconds.
GPIOZERO_RECONNECT_S = 0.1

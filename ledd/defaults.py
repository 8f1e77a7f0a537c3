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
#: Seconds between SSE keep-alive comments on an idle event stream. lighttpd learns a browser
#: has gone only when a write to it fails, at the second write after it left: 2 pings <= 10 s.
WEB_SSE_PING_S = 4.0
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

# -- issue 10: web layer hardening (Host allowlist, event-stream limits) -----------

#: Extra Host names the dashboard answers to (space-separated), besides localhost, the
#: hostname(.local) and the machine's addresses; deploy.sh --host sets it for lighttpd.
WEB_ALLOWED_HOSTS_ENV = "LEDD_ALLOWED_HOSTS"
#: Where the kernel lists the machine's addresses (read for Host literals; built-ins only).
WEB_PROC_FIB_TRIE = "/proc/net/fib_trie"
WEB_PROC_IF_INET6 = "/proc/net/if_inet6"
#: A directory lighttpd and its CGIs may write (lighttpd.conf hands it to the CGIs).
WEB_STATE_DIR_ENV = "LEDD_WEB_STATE_DIR"
#: Subdirectory of it holding one lock file per client address with open event streams.
WEB_STREAMS_DIR = "streams"
#: Open event streams one client address may hold (ledd's max_watchers bounds them all).
WEB_SSE_PER_CLIENT = 8
#: Address files kept in WEB_STREAMS_DIR before unused ones are swept.
WEB_STREAM_FILES_MAX = 256
#: Seconds a client is told to wait (Retry-After) when a 503 answers it.
WEB_RETRY_AFTER_S = 5
#: Seconds a stream may stay unable to write to its browser before it gives up
#: (a client that stopped reading keeps a ledd watcher slot at most this long).
WEB_SSE_STALL_S = 8.0

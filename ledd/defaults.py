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
#: Random bits in a reply FIFO's name: nobody can guess it (reply/ cannot be listed).
REPLY_NAME_BITS = 128

#: Longest request line, LF included (protocol limit, far below PIPE_BUF).
MAX_REQUEST = 256
#: Longest request id, which is also the reply FIFO's name (1 to this many of [A-Za-z0-9_-]).
MAX_ID = 64
#: How long a client waits for its reply, in seconds (HTTP 504 after).
TIMEOUT_S = 2.0
#: Protocol version this client speaks.
PROTOCOL = 2

CONFIG_PATH = "/etc/ledd/ledd.conf"
#: ledd's PID, in its runtime directory (LEDD_PID_FILE in cdaemon/src/defaults.h).
PID_FILE = "ledd.pid"
STATE_PATH = "/var/lib/ledd/state"

# -- the web layer (ledd/web/, cgi-bin/, lighttpd.conf) -------------------

#: Largest POST body the API reads, in bytes (every valid body is far smaller).
WEB_MAX_BODY = 1024
#: Longest URL (path and query, as sent) the API answers, in bytes; longer ones get 414.
WEB_MAX_URI = 8192
#: lighttpd's limit on a request's line and headers together (server.max-request-field-size
#: in lighttpd.conf, its largest value): a URL up to this long still reaches the API's 414.
WEB_MAX_REQUEST_HEAD = 65535
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
#: Brightness in percent (BRIGHTNESS, ALL_BRIGHTNESS; 0 = off, the brightness kept), and an LED's
#: brightness until one is set.
BRIGHTNESS_MAX = 100
BRIGHTNESS_DEFAULT = 100
#: Software PWM frequency of a dimmed LED in Hz (FREQUENCY, ledd.conf's ``pwm_hz``), and its default.
PWM_HZ_MIN = 10
PWM_HZ_MAX = 1000
PWM_HZ_DEFAULT = 200

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

# -- the MQTT bridge (ledd/mqtt/, bin/ledd-mqtt, docs/mqtt.md) ----------------

#: The bridge's configuration file.
MQTT_CONFIG_PATH = "/etc/ledd/mqtt.conf"
#: systemd credential (LoadCredential=) holding the broker password, read from $CREDENTIALS_DIRECTORY.
MQTT_PASSWORD_CREDENTIAL = "mqtt-password"
#: Default broker ports for mqtt:// and mqtts://.
MQTT_PORT = 1883
MQTTS_PORT = 8883
#: Default QoS of state and command topics, keepalive in seconds (also the bridge's only idle wake-up).
MQTT_QOS = 1
MQTT_KEEPALIVE_S = 60
MQTT_KEEPALIVE_RANGE = (5, 3600)
#: How long one connection attempt (TCP + TLS + CONNECT) may take, in seconds.
MQTT_CONNECT_TIMEOUT_S = 5.0
#: Reconnect backoff to the broker: first delay, cap (seconds); doubles per failure.
MQTT_BACKOFF_S = (1.0, 60.0)
#: Re-watch backoff when ledd is down: first delay, cap (seconds).
MQTT_LEDD_BACKOFF_S = (0.2, 5.0)
#: Commands per second the bridge passes to ledd, and the burst above it; more are dropped with a log line.
MQTT_RATE_LIMIT = 20
MQTT_RATE_BURST = 40
#: Seconds between two "rate limit" log lines (the dropped count is summed meanwhile).
MQTT_RATE_LOG_S = 5.0
#: Longest command payload the bridge reads, in bytes (every valid one is far shorter).
MQTT_MAX_PAYLOAD = 256
#: Blink periods of a plain "BLINK" command or Home Assistant's "blink" effect, in ms.
MQTT_BLINK_MS = (500, 500)
#: Home Assistant's discovery prefix and its birth/will topic (under the prefix).
MQTT_DISCOVERY_PREFIX = "homeassistant"
MQTT_HA_STATUS = "status"
#: Where the machine id (stable across hostname changes) comes from, for unique ids.
MQTT_MACHINE_ID = "/etc/machine-id"
#: The board's model string from the device tree (the HA device card).
MQTT_DT_MODEL = "/proc/device-tree/model"

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

# -- the gpiozero pin factory (ledd/gpiozero_factory/, issue 12) -----------

#: gpiozero looks pin factories up under this entry-point group; ours is named ``ledd``.
GPIOZERO_ENTRY_GROUP = "gpiozero_pin_factories"
GPIOZERO_FACTORY_NAME = "ledd"
#: While ledd is down, the factory's watcher tries to subscribe again this often, in seconds.
GPIOZERO_RECONNECT_S = 0.1

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

"""The reference client of ledd's FIFO protocol (see docs/protocol.md).

A :class:`Client` sends one request line on ``ledd.cmd`` and reads its reply
from ``ledd.reply`` while holding ``flock(LOCK_EX)`` on the reply FIFO, so no
other client can take its reply. Every request carries a fresh id and every
line with another id is a stale reply of a client that gave up: it is dropped.

    >>> c = Client("/run/ledd")
    >>> c.on(0)["leds"][0]["on"]
    True

Only modules built into the interpreter are imported at load time (posix,
fcntl, select, time): the CGI scripts pay for every import on every request,
and ``os`` alone costs about a millisecond (it pulls in posixpath, stat and
collections.abc), so this module calls the ``posix`` functions ``os`` wraps. ``json`` is imported
only by the methods that decode a payload; :meth:`Client.request` returns the
raw payload bytes so a CGI can relay them without decoding.
"""

import fcntl
import posix
import select
import sys
import time

from ledd import defaults

__all__ = ["Client", "Watcher", "LeddError", "DaemonDown", "DaemonTimeout", "CommandError"]


class LeddError(Exception):
    """Base of every error the client raises; carries an HTTP status and a machine code."""

    http_status = 500
    code = "internal"

    def __init__(self, message, code=None):
        super().__init__(message)
        if code is not None:
            self.code = code


class DaemonDown(LeddError):
    """ledd is not running (no reader on the command FIFO) or stopped mid-exchange."""

    http_status = 503
    code = "daemon_down"


class DaemonTimeout(LeddError):
    """ledd did not answer before the deadline."""

    http_status = 504
    code = "timeout"


#: Daemon error codes (docs/protocol.md) and the HTTP status the web layer answers with.
HTTP_STATUS_OF_CODE = {
    "badrequest": 400,
    "badverb": 400,
    "badarg": 400,
    "notfound": 404,
    "notsupported": 409,
    "gpio": 500,
    "busy": 503,
    "internal": 500,
}


class CommandError(LeddError):
    """ledd answered ``ERR <code> <message>``."""

    def __init__(self, message, code="internal"):
        super().__init__(message, code)
        self.http_status = HTTP_STATUS_OF_CODE.get(code, 500)


def getenv(name):
    """``os.environ.get(name)`` without importing ``os``.

    ``posix.environ`` is the environment as the process started; once ``os``
    is loaded (ledctl, tests), its ``os.environ`` also sees later changes.
    """
    os_module = sys.modules.get("os")
    if os_module is not None:
        return os_module.environ.get(name)
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode("utf-8", "surrogateescape")


def join(directory, name):
    """``os.path.join`` for a directory and a plain file name."""
    return directory + name if directory.endswith("/") else directory + "/" + name


def runtime_dir_from_env(runtime_dir=None):
    """The runtime directory: the argument, else ``$LEDD_RUNTIME_DIR``, else ``/run/ledd``."""
    return runtime_dir or getenv(defaults.RUNTIME_DIR_ENV) or defaults.RUNTIME_DIR


_counter = 0


def _fresh_id():
    """An id no other request, past or concurrent, can carry: pid, clock and a counter."""
    global _counter
    _counter += 1
    return "%x.%x.%d" % (posix.getpid(), time.time_ns(), _counter)


def _check_arg(arg):
    """Refuse an argument that could smuggle a second field or line into the request."""
    text = str(arg)
    if not text or any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in text):
        raise CommandError("argument %r is empty or contains spaces or control characters" % text, "badarg")
    return text


class _Deadline:
    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())


def _open_reply_fifo(runtime_dir):
    try:
        return posix.open(join(runtime_dir, defaults.REPLY_FIFO), posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
    except FileNotFoundError:
        raise DaemonDown("ledd is not running (no %s in %s)" % (defaults.REPLY_FIFO, runtime_dir)) from None
    except PermissionError:
        raise DaemonDown("no permission to open ledd's FIFOs in %s (are you in the ledd group?)" % runtime_dir) from None


def _on_alarm(signum, frame):
    raise DaemonTimeout("timed out waiting for other clients of ledd")


def _lock(fd, deadline):
    """flock(LOCK_EX) on the reply FIFO, giving up at the deadline.

    Uncontended, one non-blocking call. Contended, in the main thread (a CGI,
    ledctl), block in the kernel and let SIGALRM end the wait: the lock passes
    on the moment it is released, and waiters burn no CPU. Elsewhere (signals
    only reach the main thread) back off in short sleeps. ``_signal`` is the
    built-in module: ``signal`` would import ``enum``, which costs a CGI more
    than the whole exchange.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    import _signal

    try:
        previous = _signal.signal(_signal.SIGALRM, _on_alarm)
    except ValueError:  # not the main thread
        return _lock_polling(fd, deadline)
    left = deadline.left()
    try:
        if left <= 0:
            raise DaemonTimeout("timed out waiting for other clients of ledd")
        _signal.setitimer(_signal.ITIMER_REAL, left)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
    finally:
        _signal.signal(_signal.SIGALRM, previous)


def _lock_polling(fd, deadline):
    pause = 0.0002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if deadline.left() <= 0:
                raise DaemonTimeout("timed out waiting for other clients of ledd") from None
            time.sleep(min(pause, deadline.left()))
            pause = min(pause * 2, 0.005)


def _open_cmd_fifo(runtime_dir):
    path = join(runtime_dir, defaults.CMD_FIFO)
    try:
        return posix.open(path, posix.O_WRONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
    except OSError as err:
        if err.errno in (6, 2):  # ENXIO: no reader; ENOENT: never started
            raise DaemonDown("ledd is not running (nobody reads %s)" % path) from None
        if err.errno == 13:
            raise DaemonDown("no permission to open %s (are you in the ledd group?)" % path) from None
        raise


def _read_reply(fd, request_id, deadline):
    """Read lines until the one that answers ``request_id``; return (status, rest) bytes."""
    want = request_id.encode() + b" "
    pending = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        left = deadline.left()
        if left <= 0 or not poller.poll(left * 1000):
            raise DaemonTimeout("ledd did not answer within %.1f s" % deadline.seconds)
        try:
            chunk = posix.read(fd, 65536)
        except BlockingIOError:
            continue
        if not chunk:
            raise DaemonDown("ledd stopped while answering")
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.startswith(want):
                return line[len(want):]
            # Anything else is a stale reply to a client that gave up: drop it.


class Client:
    """A connection-less client of ledd: every call is one locked exchange.

    ``runtime_dir`` defaults to ``$LEDD_RUNTIME_DIR`` or ``/run/ledd``;
    ``timeout`` bounds the whole exchange (lock wait included), in seconds.
    """

    def __init__(self, runtime_dir=None, timeout=defaults.TIMEOUT_S):
        self.runtime_dir = runtime_dir_from_env(runtime_dir)
        self.timeout = timeout

    # -- the exchange -----------------------------------------------------
    def request(self, verb, *args):
        """Send ``VERB args…`` and return the reply payload as raw bytes (JSON text).

        Raises :class:`DaemonDown`, :class:`DaemonTimeout` or :class:`CommandError`.
        """
        request_id = _fresh_id()
        line = " ".join([request_id, _check_arg(verb)] + [_check_arg(a) for a in args]) + "\n"
        data = line.encode("utf-8")
        if len(data) > defaults.MAX_REQUEST:
            raise CommandError("request longer than %d bytes" % defaults.MAX_REQUEST, "badarg")
        deadline = _Deadline(self.timeout)
        reply_fd = _open_reply_fifo(self.runtime_dir)
        cmd_fd = -1
        try:
            _lock(reply_fd, deadline)
            cmd_fd = _open_cmd_fifo(self.runtime_dir)
            try:
                posix.write(cmd_fd, data)
            except BlockingIOError:
                raise DaemonTimeout("ledd's command FIFO is full") from None
            except BrokenPipeError:
                raise DaemonDown("ledd stopped") from None
            reply = _read_reply(reply_fd, request_id, deadline)
        finally:
            if cmd_fd >= 0:
                posix.close(cmd_fd)
            posix.close(reply_fd)  # releases the lock
        if reply.startswith(b"OK "):
            return reply[3:]
        if reply.startswith(b"ERR "):
            code, _, message = reply[4:].decode("utf-8", "replace").partition(" ")
            raise CommandError(message or code, code)
        raise LeddError("malformed reply from ledd: %r" % reply[:80])

    def call(self, verb, *args):
        """Like :meth:`request`, but decode the JSON payload."""
        import json

        return json.loads(self.request(verb, *args))

    # -- the verbs, by name ----------------------------------------------
    def hello(self):
        """Protocol version, daemon version and backend."""
        return self.call("HELLO")

    def state(self):
        """The whole state: LEDs, buttons, seq, backend."""
        return self.call("STATE")

    def on(self, led):
        """Switch LED ``led`` (index or name) on; returns the new state."""
        return self.call("ON", led)

    def off(self, led):
        """Switch LED ``led`` off; returns the new state."""
        return self.call("OFF", led)

    def toggle(self, led):
        """Toggle LED ``led``; returns the new state."""
        return self.call("TOGGLE", led)

    def blink(self, led, on_ms, off_ms):
        """Blink LED ``led`` with the given periods (20-60000 ms); returns the new state."""
        return self.call("BLINK", led, int(on_ms), int(off_ms))

    def all(self, on):
        """Switch every LED on (``True``) or off; returns the new state."""
        return self.call("ALL", "ON" if on else "OFF")

    def press(self, button):
        """Press a simulated button (sim backend only); returns the new state."""
        return self.call("PRESS", button)

    def release(self, button):
        """Release a simulated button (sim backend only); returns the new state."""
        return self.call("RELEASE", button)

    def watch(self):
        """Subscribe to state changes; returns a :class:`Watcher` (use it in a ``with``)."""
        return Watcher(self)


#: Mode of a watcher's private FIFO: read by this client, written by ledd.
WATCH_FIFO_MODE = 0o622

_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class Watcher:
    """A private event FIFO subscribed to ledd's state changes.

    The first event is the current state. :meth:`next_event` returns each
    event's state JSON as bytes, or ``None`` when ``timeout`` passes first
    (the SSE script sends a keep-alive then). EOF means ledd stopped or
    dropped this watcher: :class:`DaemonDown`.
    """

    def __init__(self, client):
        self.client = client
        self.name = "w%x-%x-%d" % (posix.getpid(), time.time_ns(), id(self) & 0xFFFF)
        watch_dir = join(client.runtime_dir, defaults.WATCH_DIR)
        self.path = join(watch_dir, self.name)
        self.fd = -1
        self._pending = b""
        try:
            posix.mkfifo(self.path, 0o600)
        except FileNotFoundError:
            raise DaemonDown("ledd is not running (no %s)" % watch_dir) from None
        except PermissionError:
            raise DaemonDown("no permission to create a watcher in %s" % watch_dir) from None
        try:
            # ledd runs as its own user (ledd), this client often as another
            # (www-data), whose FIFO gets www-data's group: ledd can only open it
            # for writing through the "other" bits. The runtime directory (0770,
            # group ledd) keeps everyone else out. chmod, not mkfifo's mode,
            # which the umask would cut.
            posix.chmod(self.path, WATCH_FIFO_MODE)
            self.fd = posix.open(self.path, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
            client.request("WATCH", self.name)
        except BaseException:
            self.close()
            raise
        finally:
            # ledd holds the FIFO open now (or never will): the name is not needed any more.
            try:
                posix.unlink(self.path)
            except FileNotFoundError:
                pass
        self._poller = select.poll()
        self._poller.register(self.fd, select.POLLIN)

    def fileno(self):
        return self.fd

    def next_event(self, timeout=None):
        """The next event's state JSON (bytes), or None after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._pending:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
            if not self._poller.poll(wait):
                return None
            try:
                chunk = posix.read(self.fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                raise DaemonDown("ledd stopped or dropped this watcher")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        kind, _, payload = line.partition(b" ")
        if kind != b"event":
            raise LeddError("malformed event from ledd: %r" % line[:80])
        _, _, state = payload.partition(b" ")
        return state

    def __iter__(self):
        while True:
            yield self.next_event()

    def close(self):
        if self.fd >= 0:
            posix.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

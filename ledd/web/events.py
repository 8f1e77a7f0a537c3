"""``GET /api/events``: ledd's state changes as a Server-Sent Events stream.

The script subscribes a :class:`ledd.client.Watcher` and then sleeps in one
``poll()`` on the watcher's FIFO (ledd pushes every change) and stdout (the
pipe to lighttpd). No polling loop, so an idle stream costs no CPU; the only
timed wake-up is the keep-alive comment every ``WEB_SSE_PING_S``.

Stream format (docs/api.md)::

    retry: 1000

    id: 17
    event: state
    data: {"leds":[...],"buttons":[...],"seq":17,...}

    : ping

Limits, so that no client can hold ledd's watcher slots (``max_watchers``):

- lighttpd learns that a browser has gone only when a write to it fails, the
  second write after it left; the ping makes that happen within 2 pings.
- stdout is non-blocking. A browser that stops reading never blocks the
  script: it keeps reading ledd (so ledd never drops it as a slow watcher),
  keeps only the newest state once a backlog builds up (each event is the
  whole state), and gives up after ``WEB_SSE_STALL_S`` without progress.
- one client address holds at most ``WEB_SSE_PER_CLIENT`` streams (a lock
  file per address in ``$LEDD_WEB_STATE_DIR/streams``, one byte-range lock
  per stream, released by the kernel when the process ends, however it ends).
- over that, or over ledd's limit: 503 ``busy`` with ``Retry-After``.

When ledd stops, the states read before the end still go out, then
``event: down``, and the stream ends; the page reconnects (503 until ledd is
back). If ledd dropped only this watcher, the script subscribes again.

Memory matters (a process per open stream): only built-in modules are
imported (no ``os``); bench/web.py reports the PSS per stream.
"""

import fcntl
import posix
import select
import time

from ledd import defaults
from ledd.client import Client, LeddError, join
from ledd.web.api import (HTTPError, cgi_environ, check_host, check_method, check_same_origin, check_uri,
                      environ_runtime_dir, error_body, log, not_found, request_path, respond_error)

EVENTS_PATH = "/api/events"

HEADERS = (
    b"Status: 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-store\r\n"
    b"X-Accel-Buffering: no\r\n"
    b"\r\n"
)

PING = b": ping\n\n"
#: Whole frames queued for a browser that is not reading before only the newest is kept.
BACKLOG_FRAMES = 16


def seq_of(state):
    """The ``seq`` of a state JSON (bytes), found without decoding it (no json import); None if absent."""
    at = state.find(b'"seq":')
    if at < 0:
        return None
    digits = state[at + 6:at + 30].lstrip()
    end = 0
    while end < len(digits) and 48 <= digits[end] <= 57:
        end += 1
    return int(digits[:end]) if end else None


def frame(state):
    """One SSE ``state`` event carrying the state JSON (a single line), its id = seq."""
    seq = seq_of(state)
    head = b"id: %d\n" % seq if seq is not None else b""
    return head + b"event: state\ndata: " + state + b"\n\n"


def last_event_id(environ):
    """The browser's ``Last-Event-ID`` (the seq it saw last) when it reconnects, else None."""
    value = environ.get("HTTP_LAST_EVENT_ID", "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 20 else None


# -- the per-address cap ---------------------------------------------------------------

def client_key(address):
    """The address the cap counts by, as a file name: IPv4 whole, IPv6 by its /64 (one host's range)."""
    import _socket  # built-in

    try:
        if ":" in address:
            return "6-" + _socket.inet_pton(_socket.AF_INET6, address.partition("%")[0])[:8].hex()
        return "4-" + _socket.inet_pton(_socket.AF_INET, address).hex()
    except (OSError, ValueError):
        return "other"


def claim_stream_slot(environ, limit=defaults.WEB_SSE_PER_CLIENT):
    """Hold one of the client address's ``limit`` stream slots until this process ends.

    Returns the lock file's descriptor (keep it open), or None when no state
    directory was handed over (then only ledd's own limit applies). 503 busy
    when every slot is taken.
    """
    state_dir = environ.get(defaults.WEB_STATE_DIR_ENV)
    if not state_dir:
        return None
    directory = join(state_dir, defaults.WEB_STREAMS_DIR)
    try:
        posix.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    path = join(directory, client_key(environ.get("REMOTE_ADDR", "")))
    flags = posix.O_RDWR | posix.O_CLOEXEC | posix.O_NOFOLLOW
    try:
        try:
            fd = posix.open(path, flags)
        except FileNotFoundError:  # an address new here: its file, and a sweep if they pile up
            fd = posix.open(path, flags | posix.O_CREAT, 0o600)
            sweep_stream_files(directory)
    except OSError as err:
        log("ledd events: cannot count streams in %s: %s" % (path, err))
        return None
    for slot in range(limit):
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, slot)
            return fd
        except OSError:  # EAGAIN/EACCES: another stream of this address holds it
            continue
    posix.close(fd)
    raise HTTPError(503, "busy", "too many event streams from your address (at most %d); close some" % limit)


def sweep_stream_files(directory, keep=defaults.WEB_STREAM_FILES_MAX):
    """Past ``keep`` address files, delete the ones no stream holds a lock in (bounded disk use).

    A stream that opened such a file just before it goes counts on its own until it
    ends: the cap may be exceeded by that one stream, never more.
    """
    try:
        names = posix.listdir(directory)
    except OSError:
        return
    if len(names) <= keep:
        return
    for name in names:
        path = join(directory, name)
        try:
            fd = posix.open(path, posix.O_RDWR | posix.O_CLOEXEC | posix.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)  # the whole file: no stream in it
            posix.unlink(path)
        except OSError:
            pass
        finally:
            posix.close(fd)


# -- the stream ----------------------------------------------------------------------

class Outbox:
    """What is owed to the browser, written without ever blocking.

    ``partial`` is the unwritten rest of a frame already begun (SSE framing must
    not be cut); ``queued`` the whole frames after it. Past ``BACKLOG_FRAMES``
    only the newest state is kept: each event is the whole state, so a browser
    that catches up loses nothing but intermediate states (seq tells it so).
    """

    def __init__(self, fd):
        self.fd = fd
        self.partial = b""
        self.queued = []
        self.last_progress = time.monotonic()

    def __bool__(self):
        return bool(self.partial or self.queued)

    def add(self, data):
        if not self:
            self.last_progress = time.monotonic()  # the stall clock starts with the first byte owed
        self.queued.append(data)
        if len(self.queued) > BACKLOG_FRAMES:
            self.queued = self.queued[-1:]

    def flush(self):
        """Write what the pipe takes now; False if the reader has gone."""
        while self.partial or self.queued:
            if not self.partial:
                self.partial = b"".join(self.queued)
                self.queued = []
            try:
                written = posix.write(self.fd, self.partial)
            except BlockingIOError:
                return True
            except BrokenPipeError:
                return False
            self.partial = self.partial[written:]
            self.last_progress = time.monotonic()
        self.last_progress = time.monotonic()
        return True

    def drain(self, timeout):
        """Flush, waiting up to ``timeout`` s for the reader; False if it has gone or did not read."""
        poller = select.poll()
        poller.register(self.fd, select.POLLOUT)
        deadline = time.monotonic() + timeout
        while True:
            if not self.flush():
                return False
            if not self:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for _, events in poller.poll(left * 1000):
                if events & (select.POLLERR | select.POLLHUP):
                    return False


class Stream:
    """One browser's event stream: ledd's events in, SSE frames out, stamped and in seq order."""

    def __init__(self, watcher, out_fd=1, since=None):
        self.watcher = watcher
        self.out = Outbox(out_fd)
        self.first = True
        self.floor = since  # highest seq the browser has: later events must be newer

    def take(self, state):
        """Queue one state event, unless it is not newer than what the browser has."""
        seq = seq_of(state)
        if seq is not None and self.floor is not None and seq <= self.floor and not self.first:
            return  # a repeat (after subscribing again) or stale: never send it
        # The first event is the current state: always sent, even if the browser has it,
        # and it resets the floor (a ledd whose seq went back has no older state to send).
        self.first = False
        if seq is not None:
            self.floor = seq
        self.out.add(frame(state))

    def read_events(self):
        """Queue every event ledd has sent; on LeddError the ones read before it are queued too."""
        while True:
            state = self.watcher.next_event(0)
            if state is None:
                return
            self.take(state)


def resubscribe(stream):
    """ledd dropped this watcher: subscribe again if ledd runs (else LeddError propagates)."""
    old = stream.watcher
    stream.watcher = Client(old.client.runtime_dir).watch()
    old.close()


def pump(watcher, out_fd=1, ping_s=defaults.WEB_SSE_PING_S, stall_s=defaults.WEB_SSE_STALL_S, since=None):
    """Relay events until the browser leaves or stalls (returns) or ledd stops (raises LeddError).

    Before raising, the events read up to ledd's end are written (within ``stall_s``).
    """
    flags = fcntl.fcntl(out_fd, fcntl.F_GETFL)
    fcntl.fcntl(out_fd, fcntl.F_SETFL, flags | posix.O_NONBLOCK)
    stream = Stream(watcher, out_fd, since)
    out = stream.out
    poller = select.poll()
    poller.register(watcher.fileno(), select.POLLIN)
    last_write = time.monotonic()
    while True:
        poller.register(out_fd, select.POLLOUT if out else 0)  # 0: POLLERR/POLLHUP only
        now = time.monotonic()
        if out:
            wait = out.last_progress + stall_s - now
        else:
            wait = last_write + ping_s - now
        ready = poller.poll(max(0.0, wait) * 1000)
        for fd, events in ready:
            if fd == out_fd and events & (select.POLLERR | select.POLLHUP):
                return  # the browser left and lighttpd closed our pipe
        if any(fd == stream.watcher.fileno() for fd, _ in ready):
            try:
                stream.read_events()
            except LeddError as err:
                try:
                    resubscribe(stream)
                except LeddError:
                    out.drain(stall_s)  # defect 4: what ledd said before stopping still goes out
                    raise err from None
                poller = select.poll()
                poller.register(stream.watcher.fileno(), select.POLLIN)
                continue
        if out:
            if not out.flush():
                return
            if out and time.monotonic() - out.last_progress >= stall_s:
                log("ledd events: the browser has not read for %.0f s: stream closed" % stall_s)
                return
            last_write = time.monotonic()
        elif time.monotonic() - last_write >= ping_s:
            out.add(PING)
            if not out.flush():
                return
            last_write = time.monotonic()


def subscribe(environ):
    """Check the request and subscribe to ledd; errors come out as HTTPError (403, 421, 503, ...)."""
    check_host(environ)
    check_uri(environ)
    path = request_path(environ)
    if path != EVENTS_PATH:
        raise not_found(path)
    check_method(environ, ("GET",))
    check_same_origin(environ)  # a foreign page may not hold streams (ledd's slots) either
    slot = claim_stream_slot(environ)
    try:
        return Client(environ_runtime_dir()).watch(), slot
    except LeddError as err:
        if slot is not None:
            posix.close(slot)
        raise HTTPError.from_ledd(err) from None


def main(environ=None):
    """CGI entry point of ``cgi-bin/events.py``."""
    environ = cgi_environ() if environ is None else environ
    try:
        try:
            watcher, slot = subscribe(environ)
        except HTTPError as err:
            respond_error(err)
            return
        with watcher:
            out = Outbox(1)
            out.add(HEADERS + b"retry: %d\n\n" % defaults.WEB_SSE_RETRY_MS)
            if not out.drain(defaults.WEB_SSE_STALL_S):
                return
            try:
                pump(watcher, since=last_event_id(environ))
            except LeddError as err:
                log("ledd events: %s" % err)
                down = Outbox(1)
                down.add(b"event: down\ndata: " + error_body("daemon_down", "ledd stopped") + b"\n")
                down.drain(defaults.WEB_SSE_STALL_S)
        if slot is not None:
            posix.close(slot)
    except BrokenPipeError:
        pass  # the browser left

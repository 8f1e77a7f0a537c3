"""The reference client of ledd's FIFO protocol, version 2 (see docs/protocol.md).

A :class:`Client` receives its replies on a FIFO of its own,
``reply/<name>`` in ledd's runtime directory, which it creates on its first
request and keeps for the next ones. A request is one ``write()`` on
``ledd.cmd``: an LF, then ``<name> <VERB> [<arg>...]``, then an LF. ledd
answers into ``reply/<name>``, so no other client can take the reply: there
is no lock to wait for and no stale reply to skip. While it waits, the client
also polls its write end of ``ledd.cmd``: ``POLLERR`` there means ledd has
gone (the FIFO has no reader any more), so a dead ledd is noticed at once,
not after the timeout.

    >>> c = Client("/run/ledd")
    >>> c.on(0)["leds"][0]["on"]
    True

Only modules built into the interpreter are imported at load time (posix,
errno, select, time, atexit, _thread), besides ledd's own :mod:`ledd.defaults`,
:mod:`ledd.errors` and :mod:`ledd.verbs` (the verb methods' table), which
import nothing more: the CGI scripts pay for every import on every
request, and ``os`` alone costs about a millisecond (it pulls in posixpath,
stat and collections.abc), so this module calls the ``posix`` functions
``os`` wraps. ``json`` is imported only by the methods that decode a payload;
:meth:`Client.request` returns the raw payload bytes so a CGI can relay them
without decoding.
"""

import _thread
import atexit
import errno
import posix
import select
import sys
import time

from ledd import defaults
from ledd.errors import CommandError, DaemonDown, DaemonTimeout, LeddError
from ledd.verbs import add_methods

__all__ = ["Client", "Watcher", "LeddError", "DaemonDown", "DaemonTimeout", "CommandError"]


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


# -- reply FIFOs ---------------------------------------------------------------

#: Reply FIFOs this process made and has not removed yet: path -> pid (a forked
#: child must not remove its parent's). Removed at exit; ledd sweeps what a
#: crash leaves.
_live = {}
#: Paths of the reply FIFOs whose exchange is under way, and whether the exit
#: handler has run. Both change under _exit_lock only, so that the exit handler
#: never removes the FIFO a request (of another thread) is waiting on.
_busy = set()
_exiting = False
_exit_lock = _thread.allocate_lock()


def _fresh_name():
    """A FIFO name nobody else can have or guess: REPLY_NAME_BITS random bits (getrandom).

    ``reply/`` cannot be listed by the group, so a member who cannot guess the
    name can neither read nor forge this client's replies (docs/protocol.md, "Trust").
    """
    return posix.urandom(defaults.REPLY_NAME_BITS // 8).hex()


@atexit.register
def _remove_leftovers():
    """Remove this process's idle reply FIFOs at exit.

    A FIFO whose exchange is still under way is left to that exchange: exit
    handlers of other libraries may still be waiting on it (gpiozero stops its
    blink thread after this handler, while the thread's ``BLINK`` waits for
    its reply). Once this has run, every exchange removes its FIFO as it ends.
    """
    global _exiting
    me = posix.getpid()
    with _exit_lock:
        _exiting = True
        for path, pid in list(_live.items()):
            if pid == me and path not in _busy:
                try:
                    posix.unlink(path)
                except OSError:
                    pass


class _ReplyFifo:
    """``reply/<name>``: made by this client (mode 0620: it reads, ledd writes through the group)."""

    __slots__ = ("name", "path", "fd")

    def __init__(self, reply_dir, flags=posix.O_RDWR):
        # A request FIFO is opened O_RDWR: then this client is a writer of it
        # too, so between ledd's replies (each one open, write, close) the
        # FIFO never signals a hang-up. A watcher opens it O_RDONLY: it wants
        # EOF once ledd lets go.
        for _ in range(3):
            self.name = _fresh_name()
            self.path = join(reply_dir, self.name)
            try:
                posix.mkfifo(self.path, 0o600)
            except FileNotFoundError:
                raise DaemonDown("ledd is not running (no %s)" % reply_dir) from None
            except PermissionError:
                raise DaemonDown("no permission to create a FIFO in %s (are you in the ledd group?)" % reply_dir) from None
            _live[self.path] = posix.getpid()
            try:
                self.fd = posix.open(self.path, flags | posix.O_NONBLOCK | posix.O_CLOEXEC)
            except FileNotFoundError:
                # ledd's sweep saw it without a reader between mkfifo and open: make another.
                _live.pop(self.path, None)
                continue
            # The umask cut mkfifo's mode; the group (ledd, from reply/'s setgid
            # bit) needs write access.
            posix.fchmod(self.fd, defaults.REPLY_FIFO_MODE)
            return
        raise DaemonDown("cannot keep a reply FIFO in %s (removed as soon as made)" % reply_dir)

    def unlink(self):
        if _live.pop(self.path, None) is not None:
            try:
                posix.unlink(self.path)
            except FileNotFoundError:
                pass

    def close(self):
        """Remove the FIFO: a late reply then finds no reader and is dropped by ledd."""
        self.unlink()
        if self.fd >= 0:
            posix.close(self.fd)
            self.fd = -1


class Client:
    """A client of ledd. Each call is one exchange on this client's own reply FIFO.

    ``runtime_dir`` defaults to ``$LEDD_RUNTIME_DIR`` or ``/run/ledd``;
    ``timeout`` bounds each exchange, in seconds. The reply FIFO and the
    command FIFO's descriptor are kept between calls; :meth:`close` (or the
    end of a ``with`` block, or of the process) removes the FIFO. Threads may
    share a Client: each concurrent call takes a reply FIFO of its own.
    """

    def __init__(self, runtime_dir=None, timeout=defaults.TIMEOUT_S):
        self.runtime_dir = runtime_dir_from_env(runtime_dir)
        self.timeout = timeout
        self._idle = []  # reply FIFOs not in use (list append/pop are atomic)
        self._cmd_fd = -1

    # -- the exchange -----------------------------------------------------
    def request(self, verb, *args):
        """Send ``VERB args…`` and return the reply payload as raw bytes (JSON text).

        Raises :class:`DaemonDown`, :class:`DaemonTimeout` or :class:`CommandError`.
        """
        words = [_check_arg(verb)] + [_check_arg(a) for a in args]
        fifo = self._take_fifo()
        try:
            reply, _ = self._exchange(fifo, words)
        except CommandError:
            self._give_back(fifo)  # refused before it was sent: nothing can arrive late
            raise
        except BaseException:
            self._give_back(fifo, abandon=True)  # a late reply must not reach a later request
            raise
        self._give_back(fifo)
        return _payload(reply)

    def _take_fifo(self):
        """An idle reply FIFO (or a new one), marked busy so that the exit handler spares it."""
        with _exit_lock:
            fifo = self._idle.pop() if self._idle else None
            if fifo is not None and _exiting:
                fifo.close()  # the exit handler has removed it already
                fifo = None
            if fifo is None:
                fifo = _ReplyFifo(self._reply_dir())
            _busy.add(fifo.path)
            return fifo

    def _give_back(self, fifo, abandon=False):
        """Keep ``fifo`` for the next request, or remove it if abandoned or the process is exiting."""
        with _exit_lock:
            _busy.discard(fifo.path)
            if abandon or _exiting:
                fifo.close()
            else:
                self._idle.append(fifo)

    def _reply_dir(self):
        return join(self.runtime_dir, defaults.REPLY_DIR)

    def _cmd(self):
        """The write end of ``ledd.cmd`` (kept between calls)."""
        fd = self._cmd_fd
        if fd < 0:
            path = join(self.runtime_dir, defaults.CMD_FIFO)
            try:
                fd = posix.open(path, posix.O_WRONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
            except OSError as err:
                if err.errno in (errno.ENXIO, errno.ENOENT):  # no reader / never started
                    raise DaemonDown("ledd is not running (nobody reads %s)" % path) from None
                if err.errno == errno.EACCES:
                    raise DaemonDown("no permission to open %s (are you in the ledd group?)" % path) from None
                raise
            self._cmd_fd = fd
        return fd

    def _drop_cmd(self, fd):
        if self._cmd_fd == fd:
            self._cmd_fd = -1
            posix.close(fd)

    def _send(self, data, deadline):
        """Write one request; return the ``ledd.cmd`` descriptor it went out on.

        A full command FIFO (a burst, or a flood by someone else) is waited
        out until the deadline: the write is atomic, so it goes in whole or
        not at all.
        """
        reopened = False
        while True:
            fd = self._cmd()
            try:
                posix.write(fd, data)
                return fd
            except BlockingIOError:
                poller = select.poll()
                poller.register(fd, select.POLLOUT)
                left = deadline.left()
                if left <= 0 or not poller.poll(left * 1000):
                    raise DaemonTimeout("ledd's command FIFO stayed full for %.1f s" % deadline.seconds) from None
            except BrokenPipeError:
                # The ledd this descriptor reached has gone; a new one may read the FIFO now.
                self._drop_cmd(fd)
                if reopened:
                    raise DaemonDown("ledd is not running (nobody reads %s)" % defaults.CMD_FIFO) from None
                reopened = True

    def _exchange(self, fifo, words, deadline=None, read_size=65536):
        """Send one request naming ``fifo``; return (its reply line, bytes after it).

        ``read_size`` bounds the first read: a watcher reads no further than
        its reply, so the events after it stay in the pipe, where poll() on
        :meth:`Watcher.fileno` sees them.
        """
        data = ("\n" + fifo.name + " " + " ".join(words) + "\n").encode("utf-8")
        if len(data) - 1 > defaults.MAX_REQUEST:
            raise CommandError("request longer than %d bytes" % defaults.MAX_REQUEST, "badarg")
        deadline = deadline or _Deadline(self.timeout)
        cmd_fd = self._send(data, deadline)
        poller = select.poll()
        poller.register(fifo.fd, select.POLLIN)
        poller.register(cmd_fd, 0)  # only POLLERR: ledd.cmd lost its reader, ledd is gone
        pending = b""
        while True:
            left = deadline.left()
            events = dict(poller.poll(left * 1000)) if left > 0 else {}
            if not events:
                raise DaemonTimeout("ledd did not answer within %.1f s" % deadline.seconds)
            if events.get(fifo.fd, 0) & select.POLLIN:
                try:
                    chunk = posix.read(fifo.fd, read_size)
                except BlockingIOError:
                    continue
                if not chunk:
                    raise DaemonDown("ledd stopped while answering")
                read_size = 65536
                pending += chunk
                if b"\n" in pending:
                    line, rest = pending.split(b"\n", 1)
                    want = fifo.name.encode() + b" "
                    if not line.startswith(want):
                        raise LeddError("malformed reply from ledd: %r" % line[:80])
                    return line[len(want):], rest
            elif events.get(cmd_fd):
                self._drop_cmd(cmd_fd)
                raise DaemonDown("ledd stopped while answering")
            elif events.get(fifo.fd):
                raise DaemonDown("ledd stopped while answering")

    def close(self):
        """Remove this client's reply FIFOs and close the command FIFO."""
        while self._idle:
            self._idle.pop().close()
        if self._cmd_fd >= 0:
            self._drop_cmd(self._cmd_fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: posix may be gone already
            pass

    def call(self, verb, *args):
        """Like :meth:`request`, but decode the JSON payload."""
        import json

        return json.loads(self.request(verb, *args))

    # -- the verbs: one method per entry of ledd.verbs.VERBS (add_methods below) --
    def _run_verb(self, verb, values):
        return self.call(verb.name, *verb.words(values))

    def watch(self):
        """Subscribe to state changes; returns a :class:`Watcher` (use it in a ``with``)."""
        return Watcher(self)


add_methods(Client)


def _payload(reply):
    """The payload of ``OK <payload>``; raise :class:`CommandError` for ``ERR <code> <message>``."""
    if reply.startswith(b"OK "):
        return reply[3:]
    if reply.startswith(b"ERR "):
        code, _, message = reply[4:].decode("utf-8", "replace").partition(" ")
        raise CommandError(message or code, code)
    raise LeddError("malformed reply from ledd: %r" % reply[:80])


class Watcher:
    """A reply FIFO that ledd keeps open and writes every state change to.

    ``WATCH`` is sent like any request; ledd answers it on this FIFO, then
    writes the current state and, after every change, the new one. The FIFO's
    name is removed once ledd holds it. :meth:`next_event` returns each
    event's state JSON as bytes, or ``None`` when ``timeout`` passes first
    (the SSE script sends a keep-alive then). EOF means ledd stopped or
    dropped this watcher: :class:`DaemonDown`.
    """

    def __init__(self, client):
        self.client = client
        self.fd = -1
        self._pending = b""
        fifo = _ReplyFifo(client._reply_dir(), posix.O_RDONLY)
        self.name, self.path = fifo.name, fifo.path
        guard = -1
        try:
            # Our own writer until ledd holds one, so that nothing (say, ledd's
            # sweep probing for readers) makes the FIFO look closed meanwhile.
            guard = posix.open(fifo.path, posix.O_WRONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
            expected = b'%s OK {"watching":"%s"}\n' % (fifo.name.encode(), fifo.name.encode())
            reply, self._pending = client._exchange(fifo, ["WATCH"], read_size=len(expected))
            _payload(reply)
        except BaseException:
            fifo.close()
            raise
        finally:
            if guard >= 0:
                posix.close(guard)
        fifo.unlink()  # ledd holds it open now: the name is not needed any more
        self.fd = fifo.fd
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

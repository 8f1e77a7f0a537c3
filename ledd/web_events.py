"""``GET /api/events``: ledd's state changes as a Server-Sent Events stream.

The script subscribes a :class:`ledd.client.Watcher` and then sleeps in one
``poll()`` on two descriptors: the watcher's FIFO (ledd pushes every change)
and stdout (the pipe to lighttpd, which reports an error the moment the
browser has gone and lighttpd closed its end). No polling loop, so an idle
stream costs no CPU; the only timed wake-up is the keep-alive comment.

Stream format (docs/api.md)::

    retry: 1000

    event: state
    data: {"leds":[...],"buttons":[...],"seq":17,...}

    : ping

When ledd stops, an ``event: down`` is sent and the stream ends; the browser's
EventSource reconnects by itself and then gets a 503 until ledd is back.
"""

import os
import select

from ledd import defaults
from ledd.client import Client, LeddError
from ledd.web import (HTTPError, check_method, environ_runtime_dir, error_body, not_found, request_path, respond_error,
                      write_all)

EVENTS_PATH = "/api/events"

HEADERS = (
    b"Status: 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-store\r\n"
    b"X-Accel-Buffering: no\r\n"
    b"\r\n"
)


def frame(state):
    """One SSE ``state`` event carrying the state JSON (already a single line)."""
    return b"event: state\ndata: " + state + b"\n\n"


def subscribe(environ):
    """Check the request and subscribe to ledd; errors come out as HTTPError (503, 504, ...)."""
    path = request_path(environ)
    if path != EVENTS_PATH:
        raise not_found(path)
    check_method(environ, ("GET",))
    try:
        return Client(environ_runtime_dir()).watch()
    except LeddError as err:
        raise HTTPError.from_ledd(err) from None


def pump(watcher, out_fd=1, ping_s=defaults.WEB_SSE_PING_S):
    """Relay events until the browser leaves (returns) or ledd stops (raises LeddError)."""
    poller = select.poll()
    poller.register(watcher.fileno(), select.POLLIN)
    poller.register(out_fd, 0)  # POLLERR/POLLHUP only: the reader went away
    while True:
        ready = poller.poll(ping_s * 1000)
        if not ready:
            write_all(out_fd, b": ping\n\n")
            continue
        if any(fd == out_fd for fd, _ in ready):
            return
        frames = []
        while True:
            state = watcher.next_event(0)
            if state is None:
                break
            frames.append(frame(state))
        if frames:
            write_all(out_fd, b"".join(frames))


def main(environ=None):
    """CGI entry point of ``cgi-bin/events.py``."""
    environ = os.environ if environ is None else environ
    try:
        try:
            watcher = subscribe(environ)
        except HTTPError as err:
            respond_error(err)
            return
        with watcher:
            write_all(1, HEADERS + b"retry: %d\n\n" % defaults.WEB_SSE_RETRY_MS)
            try:
                pump(watcher)
            except LeddError as err:
                write_all(1, b"event: down\ndata: " + error_body("daemon_down", str(err)) + b"\n")
    except BrokenPipeError:
        pass  # the browser left

"""GET /api/events: SSE through the real lighttpd, fed by the real ledd's watcher pushes."""

import os
import signal
import threading
import time

import pytest

from ledd import web_events
from webstack import EventStream


@pytest.fixture
def stream(web):
    s = EventStream(web.url)
    yield s
    s.close()


def test_stream_headers_and_first_state(web, stream):
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-store"
    assert "content-security-policy" in stream.headers
    first = stream.next_event()
    assert first == web.ledd.client().state()


def test_button_press_from_the_fifo_side_arrives(web, stream):
    first = stream.next_event()
    client = web.ledd.client()
    client.press(0)
    pressed = stream.next_event(timeout=2)
    assert pressed["buttons"][0]["pressed"] is True
    assert pressed["buttons"][0]["presses"] == first["buttons"][0]["presses"] + 1
    assert pressed["seq"] > first["seq"]
    client.release(0)
    released = stream.next_event(timeout=2)
    assert released["buttons"][0]["pressed"] is False


def test_every_change_is_one_event_in_order(web, stream):
    seq = stream.next_event()["seq"]
    client = web.ledd.client()
    for i in range(10):
        client.toggle(i % 2)
    seqs = [stream.next_event(timeout=2)["seq"] for _ in range(10)]
    assert seqs == list(range(seq + 1, seq + 11))


def test_two_streams_see_the_same_changes(web):
    a, b = EventStream(web.url), EventStream(web.url)
    try:
        a.next_event(), b.next_event()
        web.post("/api/leds/1", {"on": True})
        ea, eb = a.next_event(timeout=2), b.next_event(timeout=2)
        assert ea == eb and ea["leds"][1]["on"] is True
    finally:
        a.close(), b.close()


def test_stream_ends_with_down_when_ledd_stops(web, stream):
    stream.next_event()
    web.ledd.stop()
    down = stream.next_event("down", timeout=5)
    assert '"code":"daemon_down"' in down
    with pytest.raises(EOFError):
        while True:
            stream.next(timeout=5)


def test_stream_reconnects_after_ledd_restart(web, stream):
    stream.next_event()
    web.ledd.restart()
    again = EventStream(web.url)
    try:
        assert again.status == 200
        assert again.next_event()["backend"] == "sim"
    finally:
        again.close()


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_events_wrong_method(web, method):
    import requests

    r = requests.request(method, web.url + "/api/events", timeout=10)
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET"
    assert r.json()["code"] == "method_not_allowed"


# -- the pump itself: keep-alives and noticing the browser has gone -------------------------

def test_pump_sends_pings_while_idle_and_returns_when_reader_leaves(ledd):
    watcher = ledd.client().watch()
    watcher.next_event(1)  # the current state
    read_fd, write_fd = os.pipe()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (web_events.pump(watcher, write_fd, ping_s=0.05), done.set()), daemon=True)
    thread.start()
    try:
        got = b""
        while got.count(b": ping") < 2:
            got += os.read(read_fd, 4096)
        ledd.client().on(0)
        while b"event: state" not in got:
            got += os.read(read_fd, 4096)
        assert b'"on":true' in got
    finally:
        os.close(read_fd)  # the browser leaves: lighttpd closes its end of the pipe
    assert done.wait(2), "pump() did not notice the reader had gone"
    os.close(write_fd)
    watcher.close()


def test_pump_raises_when_ledd_stops(ledd):
    from ledd.client import DaemonDown

    watcher = ledd.client().watch()
    read_fd, write_fd = os.pipe()
    errors = []

    def run():
        try:
            web_events.pump(watcher, write_fd, ping_s=5)
        except DaemonDown as err:
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.1)
    ledd.signal(signal.SIGTERM)
    thread.join(5)
    assert errors, "pump() did not end when ledd stopped"
    os.close(read_fd), os.close(write_fd)
    watcher.close()


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_stream_process_ends_when_the_browser_leaves(web):
    streams = [EventStream(web.url) for _ in range(3)]
    for s in streams:
        s.next_event()
    assert len(web.cgi_pids("cgi-bin/events.py")) == 3
    for s in streams:
        s.close()
    # lighttpd notices the browser left at its next write to it (an event here, else
    # the keep-alive ping), closes the CGI's pipe, and the script exits.
    web.ledd.client().toggle(0)
    assert wait_until(lambda: not web.cgi_pids("cgi-bin/events.py"), 5), web.cgi_pids("cgi-bin/events.py")
    # ...and ledd dropped its watchers: a new stream still works and gets events.
    again = EventStream(web.url)
    try:
        seq = again.next_event()["seq"]
        web.ledd.client().toggle(0)
        assert again.next_event(timeout=2)["seq"] == seq + 1
    finally:
        again.close()

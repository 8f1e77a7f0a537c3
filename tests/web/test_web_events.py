"""GET /api/events: SSE through the real lighttpd, fed by the real ledd's watcher pushes."""

import os
import signal
import threading
import time

import pytest

from ledd.web import events as web_events
from waiting import wait_for
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
    import select

    wait_for(lambda: select.select([read_fd], [], [], 0)[0], what="pump() to pass on the first state")
    ledd.signal(signal.SIGTERM)
    thread.join(5)
    assert errors, "pump() did not end when ledd stopped"
    os.close(read_fd), os.close(write_fd)
    watcher.close()


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
    assert not web.cgi_pids_after("cgi-bin/events.py", 5)
    # ...and ledd dropped its watchers: a new stream still works and gets events.
    again = EventStream(web.url)
    try:
        seq = again.next_event()["seq"]
        web.ledd.client().toggle(0)
        assert again.next_event(timeout=2)["seq"] == seq + 1
    finally:
        again.close()


# -- issue 10: streams that cannot lock anyone out, and lose nothing -----------------------

def read_available(fd, wait=0.5):
    """Everything the pipe holds now (waiting up to ``wait`` s for more to arrive)."""
    import select

    got = b""
    while select.select([fd], [], [], wait)[0]:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        got += chunk
    return got


def test_pump_writes_the_events_read_before_ledd_stops(ledd):
    """Defect 4: the last change before ledd stopped was thrown away with the DaemonDown."""
    from ledd.client import DaemonDown

    watcher = ledd.client().watch()
    last = ledd.client().toggle(0)["seq"]  # queued in the watcher's FIFO, unread...
    ledd.stop()  # ...and then EOF behind it
    read_fd, write_fd = os.pipe()
    try:
        with pytest.raises(DaemonDown):
            web_events.pump(watcher, write_fd, ping_s=5)
        got = read_available(read_fd, 0.2)
    finally:
        os.close(read_fd), os.close(write_fd)
        watcher.close()
    assert b'"seq":%d,' % last in got, got[-300:]


def test_pump_never_blocks_on_a_browser_that_stopped_reading(ledd):
    """Defect 3: a stream whose browser stopped reading blocked in write(); ledd dropped it as a
    slow watcher, and the browser, reading again, got 'down' although ledd ran. Now it keeps
    up with ledd, sends the newest state once the browser reads, and gives up after WEB_SSE_STALL_S."""
    from ledd import defaults

    watcher = ledd.client().watch()
    read_fd, write_fd = os.pipe()
    result = []
    thread = threading.Thread(target=lambda: result.append(web_events.pump(watcher, write_fd, ping_s=30)), daemon=True)
    thread.start()
    client = ledd.client()
    try:
        # ~400 bytes a state: 600 changes overflow the pipe (64 KiB) and then the watcher's FIFO.
        for _ in range(600):
            last = client.toggle(0)["seq"]
        got = read_available(read_fd)
        assert b"event: down" not in got
        assert b'"seq":%d,' % last in got, "the newest state did not arrive"
        assert thread.is_alive()
        # Still subscribed: the next change arrives too.
        nxt = client.toggle(1)["seq"]
        assert b'"seq":%d,' % nxt in read_available(read_fd)
        # Now stop reading for good: the stream ends by itself (ledd's slot is freed).
        for _ in range(600):
            client.toggle(0)
        thread.join(defaults.WEB_SSE_STALL_S + 3)
        assert not thread.is_alive(), "pump() kept a stalled stream open"
    finally:
        os.close(read_fd), os.close(write_fd)
        watcher.close()


def test_events_carry_their_seq_as_id(web):
    import requests

    with requests.get(web.url + "/api/events", stream=True, timeout=10) as r:
        lines = r.raw.readline(), r.raw.readline(), r.raw.readline(), r.raw.readline(), r.raw.readline()
    text = b"".join(lines).decode()
    seq = web.ledd.client().state()["seq"]
    assert "id: %d\nevent: state\ndata: {" % seq in text, text
    assert '"seq":%d' % seq in text


def test_stream_drops_events_not_newer_than_the_browser_has():
    """Last-Event-ID / resubscribing: the first event is the current state; later ones only if newer."""
    sent = []

    class Out:
        def add(self, data):
            sent.append(web_events.seq_of(data.split(b"data: ", 1)[1]))

    stream = web_events.Stream(watcher=None, since=7)
    stream.out = Out()
    for seq in (7, 7, 6, 8, 8, 9):
        stream.take(b'{"leds":[],"seq":%d,"backend":"sim"}' % seq)
    assert sent == [7, 8, 9]
    # A ledd whose seq went back (state file lost): its current state is still the truth.
    stream = web_events.Stream(watcher=None, since=50)
    stream.out = Out()
    sent.clear()
    stream.take(b'{"seq":3}')
    stream.take(b'{"seq":4}')
    assert sent == [3, 4]


def test_reconnect_with_last_event_id_gets_the_current_state_at_once(web):
    seq = web.ledd.client().toggle(0)["seq"]
    s = EventStream(web.url, headers={"Last-Event-ID": str(seq - 1)})
    try:
        assert s.next_event(timeout=2)["seq"] == seq
    finally:
        s.close()


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}, {"Origin": "null"}])
def test_cross_site_streams_are_refused(web, headers):
    import requests

    r = requests.get(web.url + "/api/events", headers=headers, timeout=10)
    assert r.status_code == 403 and r.json()["code"] == "cross_site"
    assert not web.cgi_pids_after("cgi-bin/events.py", 5)  # the CGI sent its 403 and exits


def test_streams_per_client_address_are_capped(web):
    import requests

    from ledd import defaults

    streams = [EventStream(web.url) for _ in range(defaults.WEB_SSE_PER_CLIENT)]
    try:
        assert all(s.status == 200 for s in streams)
        r = requests.get(web.url + "/api/events", timeout=10)
        assert r.status_code == 503 and r.json()["code"] == "busy"
        assert r.headers["Retry-After"] == str(defaults.WEB_RETRY_AFTER_S)
        assert "/" not in r.json()["error"]
        # The cap is per stream, not per request: the API still answers this client.
        assert web.get("/api/state").status_code == 200
    finally:
        for s in streams:
            s.close()
    # Departed streams give their slots back (within two pings, without any state change).
    def one_more_opens():
        s = EventStream(web.url)
        s.close()
        return s.status == 200

    wait_for(one_more_opens, 2 * defaults.WEB_SSE_PING_S + 3, what="a departed stream's slot to come back", interval=0.05)


def test_departed_streams_end_within_10_s_without_any_change(web):
    """Defect 2: a departed browser's stream held a ledd watcher slot until the 15 s ping or the next."""
    streams = [EventStream(web.url) for _ in range(3)]
    for s in streams:
        s.next_event()
    start = time.monotonic()
    for s in streams:
        s.close()
    assert not web.cgi_pids_after("cgi-bin/events.py", 12)
    assert time.monotonic() - start <= 10.5


CLAIM = """
import signal, sys
sys.path.insert(0, %r)
from ledd.web import events as web_events
try:
    web_events.claim_stream_slot(%r, limit=2)
    print("got", flush=True)
    if %r:
        signal.pause()  # hold the slot until the test kills this process
except web_events.HTTPError as err:
    print(err.status, err.code)
"""


def claim_slot_elsewhere(environ, hold=False):
    """Claim a stream slot from another process (as a stream's CGI would: locks are per process)."""
    import subprocess
    import sys

    root = web_events.__file__.rsplit("/ledd/", 1)[0]
    return subprocess.Popen([sys.executable, "-c", CLAIM % (root, environ, hold)], stdout=subprocess.PIPE, text=True)


def test_stream_slots_are_counted_per_address_and_swept(tmp_path):
    from ledd import defaults

    environ = {defaults.WEB_STATE_DIR_ENV: str(tmp_path), "REMOTE_ADDR": "192.0.2.7"}

    def claim(env):
        return claim_slot_elsewhere(env).communicate(timeout=10)[0].strip()

    holders = [claim_slot_elsewhere(environ, hold=True) for _ in range(2)]
    try:
        assert [h.stdout.readline().strip() for h in holders] == ["got", "got"]
        assert claim(environ) == "503 busy"
        assert claim(dict(environ, REMOTE_ADDR="192.0.2.8")) == "got"  # another address has slots of its own
    finally:
        for h in holders:
            h.kill(), h.wait()
    assert claim(environ) == "got"  # the kernel released the ended streams' locks
    # Files of addresses nobody streams from are swept once they pile up.
    streams = tmp_path / defaults.WEB_STREAMS_DIR
    for i in range(defaults.WEB_STREAM_FILES_MAX + 5):
        (streams / ("4-old%d" % i)).touch()
    assert claim(dict(environ, REMOTE_ADDR="198.51.100.1")) == "got"
    assert len(os.listdir(streams)) <= 3


def test_a_brightness_change_is_an_event_with_the_brightness(web, stream):
    """Issue 23: the event stream carries brightness, so every open dashboard sees a slider move."""
    first = stream.next_event()
    web.post("/api/leds/1", {"brightness": 25})
    event = stream.next_event(timeout=2)
    assert event["seq"] == first["seq"] + 1
    assert (event["leds"][1]["on"], event["leds"][1]["brightness"]) == (True, 25)

"""Protocol 2 from the reference client's side: a private reply FIFO per client, no lock.

What used to need a lock on a shared reply pipe (one client's reply never
reaches another) now follows from each client reading its own FIFO. These
tests pin the client's part: its FIFO is kept between calls and removed at
the end, a timed-out exchange abandons it (a late reply finds no reader),
and a stuck or hostile client cannot delay an honest one.
"""

import os
import select
import subprocess
import sys
import threading
import time

import pytest

from ledd import defaults
from ledd.client import Client, DaemonDown, DaemonTimeout
import rawfifo


def reply_names(ledd):
    return sorted(p.name for p in (ledd.runtime_dir / defaults.REPLY_DIR).iterdir())


def test_a_client_keeps_one_fifo_across_calls_and_removes_it_at_close(ledd):
    c = ledd.client()
    c.hello()
    names = reply_names(ledd)
    assert len(names) == 1
    for _ in range(20):
        c.toggle(0)
    assert reply_names(ledd) == names
    c.close()
    assert reply_names(ledd) == []


def test_a_one_shot_process_leaves_nothing_behind(ledd):
    code = "import sys; sys.path.insert(0, %r); from ledd.client import Client; print(Client(%r).state()['seq'])" % (
        str(rawfifo.Path(__file__).resolve().parents[2]), str(ledd.runtime_dir))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert reply_names(ledd) == []


def test_timed_out_exchange_abandons_its_fifo_and_the_late_reply_is_dropped(ledd):
    c = ledd.client(timeout=10)
    c.hello()
    first = reply_names(ledd)
    ledd.signal(19)   # SIGSTOP: ledd reads nothing for now
    try:
        c.timeout = 0.3   # only this exchange is impatient; a loaded machine may be slow on the others
        start = time.monotonic()
        with pytest.raises(DaemonTimeout):
            c.on(0)
        assert 0.25 < time.monotonic() - start < 2
        assert reply_names(ledd) == [], "the timed-out client removed its FIFO"
    finally:
        ledd.signal(18)   # SIGCONT: it now answers the ON into a FIFO that has gone
        c.timeout = 10
    s = c.state()
    assert s["leds"][0]["on"] is True   # the request itself did run
    assert reply_names(ledd) != first, "a fresh FIFO, so the late reply could not be taken for this one"


def test_threads_may_share_a_client(ledd):
    c = ledd.client(timeout=5)
    errors = []

    def work(led):
        try:
            for i in range(30):
                s = c.blink(led, 100 + i, 200 + i)
                if s["leds"][led]["blink"] != {"on_ms": 100 + i, "off_ms": 200 + i}:
                    errors.append(s["leds"][led]["blink"])
        except Exception as err:  # noqa: BLE001 -- reported below
            errors.append(repr(err))

    threads = [threading.Thread(target=work, args=(led,)) for led in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    c.close()
    assert reply_names(ledd) == []


def test_a_stuck_client_does_not_delay_others(ledd):
    """A client that sent a request and never reads (once the lock holder everyone waited for)."""
    with rawfifo.ReplyFifo(ledd.runtime_dir, "stuck"):
        rawfifo.write_cmd(ledd.runtime_dir, b"\nstuck STATE\n")
        start = time.monotonic()
        c = ledd.client(timeout=5)
        for _ in range(20):
            c.hello()
        # Had ledd waited on the stuck client, each HELLO would have timed out; 20 of them take
        # milliseconds, and seconds only on a machine loaded far beyond it.
        assert time.monotonic() - start < 5


def test_a_flood_of_foreign_requests_never_reaches_an_honest_client(ledd):
    """Requests with ids of other clients' (non-existent) FIFOs, garbage and fragments."""
    stop = threading.Event()

    def flood():
        fd = os.open(ledd.runtime_dir / defaults.CMD_FIFO, os.O_WRONLY | os.O_NONBLOCK)
        try:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    os.write(fd, b"\nghost%d STATE\nxx" % (i % 50))
                except BlockingIOError:
                    select.select((), (fd,), (), 0.1)   # until ledd has read some
        finally:
            os.close(fd)

    t = threading.Thread(target=flood)
    t.start()
    try:
        c = ledd.client(timeout=5)
        for i in range(100):
            s = c.blink(0, 1000 + i, 2000 + i)
            assert s["leds"][0]["blink"] == {"on_ms": 1000 + i, "off_ms": 2000 + i}
    finally:
        stop.set()
        t.join(10)


def test_daemon_down_when_nothing_was_ever_started(tmp_path):
    with pytest.raises(DaemonDown):
        Client(str(tmp_path / "nothing"), timeout=0.5).hello()
    assert not (tmp_path / "nothing").exists()


def test_daemon_down_after_ledd_stopped_and_up_again_after_restart(ledd):
    c = ledd.client()
    c.hello()
    ledd.stop()
    with pytest.raises(DaemonDown):
        c.hello()
    ledd.close_notify()
    ledd.notifications = []
    ledd.start()
    assert c.hello()["protocol"] == defaults.PROTOCOL   # the same Client object reconnects

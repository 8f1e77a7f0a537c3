"""Faults: clients that die mid-exchange, ledd killed with -9, FIFOs deleted or
replaced under a running ledd, a client that never reads its replies."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from pathlib import Path
import stat

from ledd import defaults
from ledd.client import DaemonDown, DaemonTimeout, LeddError
import rawfifo
from waiting import WAIT_S, wait_for


def test_client_killed_between_write_and_read(ledd):
    """Its reply finds no reader and is dropped; nobody else ever sees it."""
    script = textwrap.dedent("""
        import os, sys, time
        d = sys.argv[1]
        name = "victim-" + sys.argv[2]
        os.mkfifo(d + "/reply/" + name, 0o620)
        r = os.open(d + "/reply/" + name, os.O_RDWR | os.O_NONBLOCK)
        c = os.open(d + "/ledd.cmd", os.O_WRONLY | os.O_NONBLOCK)
        os.kill(os.getpid(), 9) if sys.argv[2] == "before" else None
        os.write(c, b"\\n%s ON 0\\n" % name.encode())
        os.kill(os.getpid(), 9)
    """)
    for when in ("before", "after"):
        victim = subprocess.run([sys.executable, "-c", script, str(ledd.runtime_dir), when])
        assert victim.returncode == -signal.SIGKILL
    c = ledd.client()
    assert c.hello()["protocol"] == defaults.PROTOCOL
    assert c.state()["leds"][0]["on"] is True, "the request written before the kill ran"
    assert ledd.proc.poll() is None
    # Its FIFO is a leftover now (no reader): the next ledd sweeps it at start.
    reply = ledd.runtime_dir / defaults.REPLY_DIR
    assert sorted(p.name for p in reply.iterdir() if p.name.startswith("victim")) == ["victim-after", "victim-before"]
    c.close()
    ledd.restart()
    assert list(reply.iterdir()) == []
    assert "swept 2 leftovers" in ledd.read_log()


def test_kill9_mid_traffic_then_restart_restores_acknowledged_state(ledd):
    acked = {}
    stop = threading.Event()

    def traffic():
        c = ledd.client(timeout=1)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                s = c.blink("green", 20 + i, 100)
                acked["blink"] = (i, s["leds"][1]["blink"]["on_ms"])
                s = c.press("button")
                s = c.release("button")
                acked["presses"] = s["buttons"][0]["presses"]
            except LeddError:
                return

    t = threading.Thread(target=traffic)
    t.start()
    wait_for(lambda: acked.get("presses", 0) >= 3, what="traffic to get through before the kill")
    ledd.kill9()
    stop.set()
    t.join(5)
    assert acked, "no traffic got through before the kill"
    ledd.close_notify()
    ledd.notifications = []
    ledd.start()
    s = ledd.client().state()
    # At most one more change than acknowledged: the one in flight at the kill.
    assert s["leds"][1]["blink"]["on_ms"] in (acked["blink"][1], acked["blink"][1] + 1)
    assert s["buttons"][0]["presses"] in (acked["presses"], acked["presses"] + 1)
    assert s["buttons"][0]["pressed"] is False  # the sim button starts released


def test_client_sees_daemon_down_when_ledd_is_gone(ledd):
    ledd.kill9()
    with pytest.raises(DaemonDown):
        ledd.client().hello()


def wait_until_works(d, timeout=WAIT_S):
    return wait_for(lambda: d.client(timeout=0.5).hello(), timeout, ignore=(DaemonDown, DaemonTimeout),
                    what=lambda: "ledd to recreate its FIFOs:\n" + d.read_log())


@pytest.mark.parametrize("victims", [(defaults.CMD_FIFO,), (defaults.REPLY_DIR,), (defaults.CMD_FIFO, defaults.REPLY_DIR)])
def test_deleted_fifos_are_recreated(ledd, victims):
    ledd.client().on(0)
    for name in victims:
        path = ledd.runtime_dir / name
        if path.is_dir():
            os.rmdir(path)
        else:
            os.unlink(path)
    wait_until_works(ledd)
    assert ledd.client().state()["leds"][0]["on"] is True
    assert (ledd.runtime_dir / defaults.CMD_FIFO).is_fifo()
    assert stat.S_IMODE((ledd.runtime_dir / defaults.REPLY_DIR).stat().st_mode) == 0o3730
    with ledd.client().watch() as w:
        assert json.loads(w.next_event(WAIT_S))["leds"][0]["on"] is True
    assert ledd.proc.poll() is None


@pytest.mark.parametrize("when", ["at start", "while running"])
def test_regular_file_in_place_of_the_command_fifo_is_replaced(ledd_factory, when):
    d = ledd_factory()
    cmd = d.runtime_dir / defaults.CMD_FIFO
    if when == "at start":
        d.runtime_dir.mkdir(parents=True)
        cmd.write_text("not a fifo")
        d.start()
    else:
        d.start()
        tmp = d.runtime_dir / "imposter"
        tmp.write_text("not a fifo")
        os.rename(tmp, cmd)
        wait_until_works(d)
    assert cmd.is_fifo()
    assert stat.S_IMODE(cmd.stat().st_mode) == 0o620
    assert d.client().hello()["protocol"] == defaults.PROTOCOL
    assert re.search(r"ledd.cmd: a file of uid \d+, mode 0\d+, is not what ledd made: replacing it", d.read_log())


def test_deleted_pid_file_is_recreated_and_still_locks(ledd, ledd_factory):
    os.unlink(ledd.runtime_dir / "ledd.pid")
    wait_for(lambda: (ledd.runtime_dir / "ledd.pid").exists(), what="ledd to recreate ledd.pid")
    second = ledd_factory(workdir=ledd.workdir)
    second.start(wait=False)
    assert second.proc.wait(10) == 1
    assert "already running" in second.read_log()


def test_client_that_never_reads_its_replies_does_not_block_ledd(ledd):
    # ~600 bytes per reply: its 64 KiB pipe is full after ~100 of them.
    with rawfifo.ReplyFifo(ledd.runtime_dir, "deaf"):
        for i in range(300):
            rawfifo.write_cmd(ledd.runtime_dir, b"\ndeaf STATE\n")
        wait_for(lambda: "its FIFO is full" in ledd.read_log(),
                 what=lambda: "the deaf client's FIFO to fill:\n" + ledd.read_log())
        start = time.monotonic()
        assert ledd.client(timeout=5).hello()["protocol"] == defaults.PROTOCOL
        assert ledd.client().on(1)["leds"][1]["on"] is True
        assert time.monotonic() - start < 5
    assert ledd.proc.poll() is None


def test_stale_requests_are_drained_and_leftover_fifos_swept_at_start(ledd_factory):
    d = ledd_factory()
    # What a previous ledd (same user) left: its layout, with its modes, is reused.
    (d.runtime_dir / defaults.REPLY_DIR).mkdir(parents=True)
    os.chmod(d.runtime_dir / defaults.REPLY_DIR, 0o3730)
    os.mkfifo(d.runtime_dir / defaults.CMD_FIFO)
    os.chmod(d.runtime_dir / defaults.CMD_FIFO, 0o620)
    for i in range(5):   # crashed clients' FIFOs: nobody reads them
        os.mkfifo(d.runtime_dir / defaults.REPLY_DIR / ("dead%d" % i), 0o620)
    (d.runtime_dir / defaults.REPLY_DIR / "junk").write_text("")
    # Hold the command FIFO open so the bytes stay in the pipe across ledd's start.
    cmd = os.open(d.runtime_dir / defaults.CMD_FIFO, os.O_RDWR | os.O_NONBLOCK)
    try:
        with rawfifo.ReplyFifo(d.runtime_dir, "alive") as alive:
            os.write(cmd, b"\nold ON 0\npartial-line-without-lf")
            d.start()
            assert sorted(p.name for p in (d.runtime_dir / defaults.REPLY_DIR).iterdir()) == ["alive"]
            lines = rawfifo.exchange(d.runtime_dir, b"\nnew STATE\n")
            assert len(lines) == 1 and lines[0].startswith(b"new OK ")
            assert json.loads(lines[0].split(b" ", 2)[2])["leds"][0]["on"] is False
            assert rawfifo.drain(alive.fd) == b"", "no reply went to a live FIFO nobody named"
    finally:
        os.close(cmd)


def test_leftover_fifos_are_swept_when_the_reply_dir_grows(ledd):
    reply = ledd.runtime_dir / defaults.REPLY_DIR
    for i in range(defaults.REPLY_SWEEP_AT + 10):
        os.mkfifo(reply / ("dead%d" % i), 0o620)
    c = ledd.client()
    with c.watch() as w:   # a live FIFO (held by ledd, unlinked) and c's own one survive
        for _ in range(defaults.REPLY_CHECK_EVERY):
            c.hello()
        assert sorted(p.name for p in reply.iterdir()) == [c._idle[0].name]
        c.on(0)
        assert json.loads(w.next_event(WAIT_S))["leds"][0]["on"] is False
        assert json.loads(w.next_event(WAIT_S))["leds"][0]["on"] is True
    assert "swept %d leftovers" % (defaults.REPLY_SWEEP_AT + 10) in ledd.read_log()


def test_no_sweep_below_the_bound(ledd):
    reply = ledd.runtime_dir / defaults.REPLY_DIR
    for i in range(10):
        os.mkfifo(reply / ("dead%d" % i), 0o620)
    c = ledd.client()
    for _ in range(2 * defaults.REPLY_CHECK_EVERY):
        c.hello()
    assert len(list(reply.iterdir())) == 11
    assert "swept" not in ledd.read_log()


def test_clients_giving_up_early_never_disturb_others(ledd):
    """Impatient clients leave late replies behind all the time; a patient one still gets its own."""
    stop = threading.Event()
    gave_up = [0]

    def impatient():
        c = ledd.client(timeout=0.0001)
        while not stop.is_set():
            try:
                c.state()
            except DaemonTimeout:
                gave_up[0] += 1
            except LeddError:
                pass

    threads = [threading.Thread(target=impatient) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        c = ledd.client(timeout=10)
        for i in range(40):
            s = c.blink(0, 1000 + i, 2000 + i)
            assert s["leds"][0]["blink"] == {"on_ms": 1000 + i, "off_ms": 2000 + i}
            assert c.hello()["protocol"] == defaults.PROTOCOL
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert gave_up[0] > 0, "the impatient clients never timed out: the test proves nothing"


def test_client_mid_exchange_sees_ledd_die_at_once(ledd):
    """POLLERR on its ledd.cmd write end: 503 at once, not after the timeout; its FIFO is removed."""
    c = ledd.client(timeout=30)
    c.hello()
    fifo = ledd.runtime_dir / defaults.REPLY_DIR / c._idle[0].name
    ledd.signal(signal.SIGSTOP)   # it will never answer what comes next
    outcome = []

    def ask():
        start = time.monotonic()
        try:
            c.state()
            outcome.append("answered")
        except DaemonDown:
            outcome.append(time.monotonic() - start)

    t = threading.Thread(target=ask)
    t.start()
    wait_for(lambda: rawfifo.pending(ledd.runtime_dir), what="the request to wait in ledd.cmd")
    ledd.kill9()
    t.join(10)
    assert len(outcome) == 1 and outcome[0] != "answered" and outcome[0] < 5, outcome
    assert not fifo.exists(), "the client removes its FIFO when ledd is gone"


@pytest.mark.skipif(bool(os.environ.get("LEDD_EXEC_PREFIX") or os.environ.get("LEDD_BINARY")),
                    reason="LD_PRELOAD reaches only a native, dynamically linked ledd")
def test_drain_stops_at_eof_even_after_an_eintr(ledd_factory, tmp_path):
    """drain() must not test errno after a read() that returned 0: the stale EINTR kept it spinning."""
    shim = tmp_path / "eof_after_eintr.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(shim),
                    str(Path(__file__).parent / "shims" / "eof_after_eintr.c"), "-ldl"], check=True)
    window_s = 3.0
    d = ledd_factory(env={"LD_PRELOAD": str(shim), "EOF_AFTER_EINTR_MS": str(int(window_s * 1000))})
    start = time.monotonic()
    d.start()   # the start-up drain of ledd.cmd meets EINTR, then EOF
    assert time.monotonic() - start < window_s - 1, "drain() spun on EOF until the shim gave up"
    # About time itself: the shim answers EINTR only within its window; ask once it is over.
    time.sleep(max(0.0, start + window_s - time.monotonic()))
    assert d.client().hello()["protocol"] == defaults.PROTOCOL

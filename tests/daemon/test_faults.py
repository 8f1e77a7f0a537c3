"""Faults: clients that die mid-exchange, ledd killed with -9, FIFOs deleted under
a running ledd, a reply pipe full of stale replies."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ledd.client import DaemonDown, DaemonTimeout, LeddError
import rawfifo


def test_client_killed_between_write_and_read(ledd):
    """Its late reply waits in the pipe; the next client discards it by id."""
    script = textwrap.dedent("""
        import fcntl, os, sys, time
        d = sys.argv[1]
        r = os.open(d + "/ledd.reply", os.O_RDONLY | os.O_NONBLOCK)
        fcntl.flock(r, fcntl.LOCK_EX)
        c = os.open(d + "/ledd.cmd", os.O_WRONLY | os.O_NONBLOCK)
        os.write(c, b"victim.1 ON 0\\n")
        print("sent", flush=True)
        time.sleep(60)
    """)
    victim = subprocess.Popen([sys.executable, "-c", script, str(ledd.runtime_dir)], stdout=subprocess.PIPE)
    assert victim.stdout.readline() == b"sent\n"
    time.sleep(0.1)  # ledd has answered into the pipe by now
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    # The stale reply is still in the pipe ...
    rfd = os.open(ledd.runtime_dir / "ledd.reply", os.O_RDONLY | os.O_NONBLOCK)
    try:
        fcntl.flock(rfd, fcntl.LOCK_EX)
        cfd = os.open(ledd.runtime_dir / "ledd.cmd", os.O_WRONLY | os.O_NONBLOCK)
        os.write(cfd, b"next.1 HELLO\n")
        os.close(cfd)
        lines = rawfifo.read_lines(rfd, 2)
    finally:
        os.close(rfd)
    assert lines[0].startswith(b"victim.1 OK "), "the late reply came first"
    assert lines[1].startswith(b"next.1 OK {\"protocol\":1")
    # ... and the reference client never mistakes one for its own.
    victim2 = subprocess.Popen([sys.executable, "-c", script.replace("victim.1 ON 0", "victim.2 OFF 0"),
                                str(ledd.runtime_dir)], stdout=subprocess.PIPE)
    assert victim2.stdout.readline() == b"sent\n"
    victim2.kill()
    victim2.wait()
    assert ledd.client().hello()["protocol"] == 1
    assert ledd.client().state()["leds"][0]["on"] is False


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
    time.sleep(0.5)
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


def wait_until_works(d, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return d.client(timeout=0.5).hello()
        except (DaemonDown, DaemonTimeout):
            assert time.monotonic() < deadline, "ledd did not recreate its FIFOs:\n" + d.read_log()
            time.sleep(0.02)


@pytest.mark.parametrize("victims", [("ledd.cmd",), ("ledd.reply",), ("ledd.cmd", "ledd.reply", "watch")])
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
    for name in ("ledd.cmd", "ledd.reply"):
        assert (ledd.runtime_dir / name).is_fifo()
    assert (ledd.runtime_dir / "watch").is_dir()
    with ledd.client().watch() as w:
        assert json.loads(w.next_event(2))["leds"][0]["on"] is True
    assert ledd.proc.poll() is None


def test_deleted_pid_file_is_recreated_and_still_locks(ledd, ledd_factory):
    os.unlink(ledd.runtime_dir / "ledd.pid")
    deadline = time.monotonic() + 5
    while not (ledd.runtime_dir / "ledd.pid").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = ledd_factory(workdir=ledd.workdir)
    second.start(wait=False)
    assert second.proc.wait(10) == 1
    assert "already running" in second.read_log()


def test_full_reply_pipe_does_not_block_ledd(ledd):
    # Requests nobody reads the replies of: ~600 bytes each, 64 KiB pipe.
    sent = 0
    for i in range(300):
        sent += rawfifo.write_cmd(ledd.runtime_dir, b"junk%d STATE\n" % i)
    deadline = time.monotonic() + 10
    while "draining" not in ledd.read_log():   # ledd hit the full pipe and drained it
        assert time.monotonic() < deadline, "reply pipe never filled:\n" + ledd.read_log()
        time.sleep(0.02)
    start = time.monotonic()
    assert ledd.client(timeout=5).hello()["protocol"] == 1
    assert ledd.client().on(1)["leds"][1]["on"] is True
    assert time.monotonic() - start < 5
    assert ledd.proc.poll() is None


def test_stale_bytes_in_fifos_are_drained_at_start(ledd_factory):
    d = ledd_factory()
    d.runtime_dir.mkdir(parents=True)
    os.mkfifo(d.runtime_dir / "ledd.cmd", 0o660)
    os.mkfifo(d.runtime_dir / "ledd.reply", 0o660)
    # Hold both open so the bytes stay in the pipes across ledd's start.
    cmd = os.open(d.runtime_dir / "ledd.cmd", os.O_RDWR | os.O_NONBLOCK)
    reply = os.open(d.runtime_dir / "ledd.reply", os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(cmd, b"old.1 ON 0\npartial-line-without-lf")
        os.write(reply, b"old.0 OK {}\n")
        d.start()
        lines = rawfifo.exchange(d.runtime_dir, b"new.1 STATE\n")
        assert len(lines) == 1 and lines[0].startswith(b"new.1 OK ")
        assert json.loads(lines[0].split(b" ", 2)[2])["leds"][0]["on"] is False
    finally:
        os.close(cmd)
        os.close(reply)


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
            assert c.hello()["protocol"] == 1
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert gave_up[0] > 0, "the impatient clients never timed out: the test proves nothing"


def test_reader_of_the_reply_fifo_sees_hangup_when_ledd_dies(ledd):
    """A client mid-exchange with a dying ledd fails at once (503), not after its timeout."""
    import select

    rfd = os.open(ledd.runtime_dir / "ledd.reply", os.O_RDONLY | os.O_NONBLOCK)
    try:
        poller = select.poll()
        poller.register(rfd, select.POLLIN)
        assert poller.poll(100) == [], "nothing to read while ledd lives (it holds a writer)"
        ledd.kill9()
        events = poller.poll(2000)
        assert events and events[0][1] & select.POLLHUP
    finally:
        os.close(rfd)

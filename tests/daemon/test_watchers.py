"""Live events: WATCH subscribers get the state at once and after every change;
a watcher that stops reading or goes away is dropped without slowing ledd."""

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ledd import defaults
from ledd.client import CommandError, DaemonDown
import rawfifo
from waiting import WAIT_S, holds_for, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_watch_gets_current_state_then_every_change(ledd):
    c = ledd.client()
    c.on("red")
    with c.watch() as w:
        first = json.loads(w.next_event(WAIT_S))
        assert first == c.state()
        c.off("red")
        c.blink("green", 100, 200)
        c.press("button")
        c.release("button")
        events = [json.loads(w.next_event(WAIT_S)) for _ in range(4)]
        assert [e["seq"] for e in events] == [first["seq"] + i for i in range(1, 5)]
        assert events[0]["leds"][0]["on"] is False
        assert events[1]["leds"][1]["blink"] == {"on_ms": 100, "off_ms": 200}
        assert events[2]["buttons"][0]["pressed"] is True
        assert events[3]["buttons"][0]["pressed"] is False
        assert w.next_event(0.3) is None, "queries and blink phases are not events"


def test_many_watchers_all_get_events(ledd):
    c = ledd.client()
    watchers = [c.watch() for _ in range(20)]
    try:
        for w in watchers:
            w.next_event(WAIT_S)
        seq = c.toggle(0)["seq"]
        for w in watchers:
            assert json.loads(w.next_event(WAIT_S))["seq"] == seq
    finally:
        for w in watchers:
            w.close()


def raw_watcher(ledd, name):
    """reply/<name> opened for reading as a watcher would, and WATCH sent for it; returns the fd."""
    fifo = rawfifo.ReplyFifo(ledd.runtime_dir, name, flags=os.O_RDONLY)
    rawfifo.write_cmd(ledd.runtime_dir, b"\n%s WATCH\n" % name.encode())
    return fifo


def test_watch_reply_then_events_on_the_same_fifo_which_may_be_unlinked(ledd):
    fifo = raw_watcher(ledd, "mywatch")
    try:
        lines = rawfifo.read_lines(fifo.fd, 2)
        assert lines[0] == b'mywatch OK {"watching":"mywatch"}'
        assert lines[1].startswith(b"event state ")
        os.unlink(fifo.path)
        ledd.client().on(1)
        line, = rawfifo.read_lines(fifo.fd, 1)
        assert line.split(b" ")[:2] == [b"event", b"state"]
        assert json.loads(line.split(b" ", 2)[2])["leds"][1]["on"] is True
    finally:
        fifo.close()


def wait_for_log(ledd, text, timeout=WAIT_S):
    wait_for(lambda: text in ledd.read_log(), timeout, what=lambda: "%r in the log:\n%s" % (text, ledd.read_log()))


def assert_no_watcher_added(ledd):
    """ledd's last STATUS still says 0 watchers. The start's STATUS is awaited first (the thread
    that collects the datagrams may not have it yet: ci12); a WATCH that added a watcher would have
    sent "1 watcher" before the answer that preceded this call, so the collector gets 0.3 s to see it."""
    ledd.wait_for("0 watchers")
    holds_for(lambda: "0 watchers" in ledd.notifications[-1], 0.3, what="the last STATUS saying 0 watchers")


def test_reply_to_a_symlink_or_non_fifo_is_never_written(ledd, tmp_path):
    reply = ledd.runtime_dir / defaults.REPLY_DIR
    (reply / "plain").write_text("")
    target = tmp_path / "target"
    os.mkfifo(target)
    tfd = os.open(target, os.O_RDONLY | os.O_NONBLOCK)
    os.symlink(target, reply / "link")
    try:
        for name in ("plain", "link"):
            for verb in (b"WATCH", b"STATE"):
                rawfifo.write_cmd(ledd.runtime_dir, b"\n%s %s\n" % (name.encode(), verb))
        wait_for_log(ledd, "reply/link is not a FIFO")
        assert ledd.client().on(0)["leds"][0]["on"] is True   # and it keeps serving
        assert (reply / "plain").read_text() == ""
        assert rawfifo.drain(tfd) == b""
        assert_no_watcher_added(ledd)
    finally:
        os.close(tfd)


def test_symlinked_reply_dir_is_replaced_not_followed(ledd, tmp_path):
    """ledd writes replies through its descriptor of reply/, never through a path."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.mkfifo(elsewhere / "evil")
    efd = os.open(elsewhere / "evil", os.O_RDONLY | os.O_NONBLOCK)
    reply = ledd.runtime_dir / defaults.REPLY_DIR
    try:
        ledd.signal(signal.SIGSTOP)   # swap the directory while ledd cannot look
        os.rename(reply, ledd.runtime_dir / "reply.old")
        os.symlink(elsewhere, reply)
        ledd.signal(signal.SIGCONT)
        rawfifo.write_cmd(ledd.runtime_dir, b"\nevil WATCH\n")
        rawfifo.write_cmd(ledd.runtime_dir, b"\nevil STATE\n")
        wait_for(lambda: not reply.is_symlink() and reply.is_dir(),
                 what=lambda: "the symlinked reply/ to be replaced:\n" + ledd.read_log())
        assert ledd.client().hello()["protocol"] == defaults.PROTOCOL
        assert rawfifo.drain(efd) == b""
        assert reply.is_dir() and not reply.is_symlink()
    finally:
        os.close(efd)


def test_watch_without_reader_adds_nothing(ledd):
    os.mkfifo(ledd.runtime_dir / defaults.REPLY_DIR / "noreader")
    rawfifo.write_cmd(ledd.runtime_dir, b"\nnoreader WATCH\n")
    assert ledd.client().hello()   # handled after the WATCH
    assert_no_watcher_added(ledd)


def test_too_many_watchers_is_busy(ledd_factory, tmp_path):
    cfg = rawfifo.write_config(tmp_path / "w.conf", ledd_section="max_watchers = 2\n")
    d = ledd_factory(config=cfg).start()
    c = d.client()
    w1, w2 = c.watch(), c.watch()
    with pytest.raises(CommandError) as err:
        c.watch()
    assert err.value.code == "busy"
    w1.close()
    # The closed watcher is noticed at once (POLLERR), not at the next event.
    wait_for(lambda: c.watch().close() or True, what="the closed watcher to be dropped", ignore=(CommandError,))
    w2.close()


def test_watcher_that_never_reads_is_dropped_and_ledd_stays_fast(ledd):
    sleeper = raw_watcher(ledd, "sleeper")
    fd = sleeper.fd
    c = ledd.client()
    try:
        with c.watch() as good:
            good.next_event(WAIT_S)
            seqs = []

            def read():
                for _ in range(300):
                    seqs.append(json.loads(good.next_event(5))["seq"])
            reader = threading.Thread(target=read)
            reader.start()
            start = time.monotonic()
            for i in range(300):   # ~600 bytes each: far more than a 64 KiB pipe holds
                # The reader is never more than 50 events (~30 KB) behind: it keeps up, however
                # a loaded machine schedules it (starved, it was rightly dropped as a sleeper).
                wait_for(lambda: i - len(seqs) < 50, what=lambda: "the reader at event %d" % i)
                c.toggle(0)
            elapsed = time.monotonic() - start
            reader.join(10)
            assert elapsed < 60
            # The watcher that reads got every event, in order.
            assert seqs == list(range(seqs[0], seqs[0] + 300))
        # The sleeper got a prefix of the events, then EOF: it was dropped.
        data = rawfifo.drain(fd)
        assert 0 < data.count(b"\n") < 300
        assert data.endswith(b"\n"), "events are never cut in half"
        assert os.read(fd, 1) == b"", "ledd closed its end: the watcher sees EOF"
    finally:
        sleeper.close()
    assert "dropped" in ledd.read_log()


def test_watchers_see_eof_when_ledd_stops(ledd):
    w = ledd.client().watch()
    w.next_event(WAIT_S)
    assert ledd.stop() == 0
    with pytest.raises(DaemonDown):
        w.next_event(WAIT_S)
    w.close()


def test_reply_dir_is_a_setgid_sticky_drop_box(ledd):
    mode = (ledd.runtime_dir / defaults.REPLY_DIR).stat().st_mode
    assert stat.S_IMODE(mode) == 0o3730   # the group may enter and create, not list


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_watch_works_when_ledd_and_client_are_different_users(ledd_binary, tmp_path):
    """As on a Pi: ledd runs as user ledd, the web CGIs as www-data in group ledd."""
    ledd_uid, client_uid, group = 23401, 23402, 23401
    base = Path(tempfile.mkdtemp(prefix="ledd-users-"))
    try:
        os.chmod(base, 0o755)
        os.chown(base, ledd_uid, group)
        cfg = rawfifo.write_config(base / "c.conf")
        # The checkout may sit in a private home (/root): give both users their own copies.
        binary = base / "ledd"
        shutil.copy(ledd_binary, binary)
        shutil.copytree(ROOT / "ledd", base / "pkg" / "ledd", ignore=shutil.ignore_patterns("__pycache__"))
        os.chmod(cfg, 0o644)
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LEDD_RUNTIME_DIR")}
        proc = subprocess.Popen(["setpriv", "--reuid", str(ledd_uid), "--regid", str(group), "--clear-groups"]
                                + rawfifo.ledd_argv(binary, "-b", "sim", "-c", cfg, "-r", base / "run",
                                                    "-s", base / "state"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: (base / "run" / defaults.REPLY_DIR).exists() or proc.poll() is not None, what="ledd's reply/")
            assert proc.poll() is None, "ledd exited with %s" % proc.returncode
            script = ("import sys; sys.path.insert(0, %r)\n"
                      "from ledd.client import Client\n"
                      "c = Client(%r)\n"
                      "with c.watch() as w:\n"
                      "    w.next_event(2)\n"
                      "    c.on(0)\n"
                      "    print(w.next_event(2).decode())\n") % (str(base / "pkg"), str(base / "run"))
            r = subprocess.run(["setpriv", "--reuid", str(client_uid), "--regid", str(client_uid),
                                "--groups", str(group), "/usr/bin/python3", "-I", "-c", script],
                               capture_output=True, text=True, timeout=30, cwd="/")
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout)["leds"][0]["on"] is True
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_descriptor_limit_caps_watchers_and_saves_still_work(ledd_factory):
    d = ledd_factory()
    plain = d.command
    d.command = lambda: ["prlimit", "--nofile=48"] + plain()   # soft and hard
    d.start()
    c = d.client()
    watchers = []
    try:
        with pytest.raises(CommandError) as err:
            for _ in range(40):
                watchers.append(c.watch())
        assert err.value.code == "busy"
        assert len(watchers) == 48 - 32   # LEDD_FD_RESERVE descriptors stay free
        assert "does not fit in the descriptor limit" in d.read_log()
        seq = c.toggle(0)["seq"]
        assert "cannot save state" not in d.read_log()
        for w in watchers:
            w.next_event(WAIT_S)
            assert json.loads(w.next_event(WAIT_S))["seq"] == seq
    finally:
        for w in watchers:
            w.close()
    assert c.hello()["protocol"] == defaults.PROTOCOL


def test_first_event_waits_in_the_pipe_so_poll_sees_it(ledd):
    """The SSE pump polls fileno() before reading: the subscription must not swallow the first event."""
    import select

    with ledd.client().watch() as w:
        poller = select.poll()
        poller.register(w.fileno(), select.POLLIN)
        assert poller.poll(2000), "the first event is not readable on fileno()"
        assert json.loads(w.next_event(0))["seq"] == ledd.client().state()["seq"]


def test_a_fifo_watches_once(ledd_factory):
    """Issue 20, 7: one FIFO could WATCH again and again: each change came as many events,
    and one client took every watcher slot."""
    d = ledd_factory().start()
    c = d.client()
    with rawfifo.ReplyFifo(d.runtime_dir, "twice", flags=os.O_RDONLY) as fifo:
        guard = os.open(fifo.path, os.O_WRONLY | os.O_NONBLOCK)
        try:
            for _ in range(defaults.MAX_WATCHERS + 5):
                rawfifo.write_cmd(d.runtime_dir, b"\ntwice WATCH\n")
            lines = fifo.read_lines(2, timeout=2)
            assert lines[0] == b'twice OK {"watching":"twice"}' and lines[1].startswith(b"event state ")
        finally:
            os.close(guard)
        others = [c.watch() for _ in range(3)]   # slots are left for everybody else
        try:
            c.on(0)
            lines = fifo.read_lines(1) + fifo.read_lines(2, timeout=0.5)   # the one event, then nothing more
            assert len(lines) == 1 and lines[0].startswith(b"event state "), lines
            for other in others:
                other.next_event(WAIT_S)
                assert json.loads(other.next_event(WAIT_S))["leds"][0]["on"] is True
        finally:
            for other in others:
                other.close()
    assert d.read_log().count("that FIFO is watching already") <= defaults.MAX_WATCHERS


@pytest.mark.skipif(bool(os.environ.get("LEDD_EXEC_PREFIX") or os.environ.get("LEDD_BINARY")),
                    reason="LD_PRELOAD reaches only a native, dynamically linked ledd")
def test_writes_interrupted_by_a_signal_are_retried(ledd_factory, tmp_path):
    """Issue 20, 11: WATCH's writes were not retried on EINTR, so a signal at that moment
    made ledd take a live watcher for a client that had gone."""
    shim = tmp_path / "eintr_writes.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(shim),
                    str(Path(__file__).parent / "shims" / "eintr_writes.c"), "-ldl"], check=True)
    d = ledd_factory(env={"LD_PRELOAD": str(shim)}).start()
    c = d.client()
    assert c.hello()["protocol"] == defaults.PROTOCOL
    with c.watch() as w:
        w.next_event(WAIT_S)
        c.on(0)
        assert json.loads(w.next_event(WAIT_S))["leds"][0]["on"] is True

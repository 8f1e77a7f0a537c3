"""Lifecycle as systemd sees it: READY=1, STATUS=, WATCHDOG=1, STOPPING=1, exit codes,
the pid lock, directory modes, and an idle daemon that never wakes up."""

import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from ledd import defaults
import rawfifo
from waiting import WAIT_S, holds_for, wait_for


def test_ready_and_status(ledd):
    assert any("READY=1" in n for n in ledd.notifications)
    ledd.wait_for("STATUS=sim, 2 LEDs, 1 button, 0 watchers")   # sent right after READY; collected by a thread
    with ledd.client().watch():
        wait_for(lambda: any("1 watcher" in n for n in list(ledd.notifications)), what="STATUS= with 1 watcher",
                 interval=0.01)


def test_ready_only_once_fifos_exist(ledd):
    # READY=1 came (fixture); right then the FIFOs must exist and answer.
    assert (ledd.runtime_dir / defaults.CMD_FIFO).is_fifo() and (ledd.runtime_dir / defaults.REPLY_DIR).is_dir()
    assert ledd.client().hello()["protocol"] == defaults.PROTOCOL


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_exits_0_with_stopping(ledd, sig):
    ledd.client().on(0)
    ledd.signal(sig)
    assert ledd.proc.wait(10) == 0
    ledd.wait_for("STOPPING=1", timeout=WAIT_S)
    assert ledd.state_file.read_text().count("led red on 1") == 1


def test_watchdog_pings_at_half_the_interval(ledd_factory):
    d = ledd_factory(env={"WATCHDOG_USEC": "200000"}).start()
    time.sleep(1.0)   # about time itself: the pings in one second
    pings = sum("WATCHDOG=1" in n for n in list(d.notifications))
    assert 5 <= pings <= 14, pings   # every 100 ms (a loaded machine may merge a few)


def test_no_watchdog_for_another_pid(ledd_factory):
    d = ledd_factory(env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}).start()
    holds_for(lambda: not any("WATCHDOG=1" in n for n in list(d.notifications)), 0.5, what="no WATCHDOG=1")


def test_second_daemon_on_the_same_dir_is_refused(ledd, ledd_factory):
    second = ledd_factory(workdir=ledd.workdir)
    second.start(wait=False)
    assert second.proc.wait(10) == 1
    assert "another ledd (pid %d) is already running" % ledd.proc.pid in second.read_log()
    assert ledd.client().hello()["protocol"] == defaults.PROTOCOL   # the first one is untouched


def test_runtime_dir_and_fifo_modes(ledd_factory):
    d = ledd_factory()
    old = os.umask(0o077)   # ledd must not depend on the caller's umask
    try:
        d.start()
    finally:
        os.umask(old)
    run = d.runtime_dir
    assert stat.S_IMODE(run.stat().st_mode) == 0o750   # pre-created by the fixture: mode set
    assert stat.S_IMODE((run / defaults.CMD_FIFO).stat().st_mode) == 0o620   # ledd reads, the group writes
    assert stat.S_IMODE((run / defaults.REPLY_DIR).stat().st_mode) == 0o3730   # setgid, sticky, the group may not list it
    c = d.client()
    c.hello()
    # A reply FIFO is the reverse of ledd.cmd: its client reads, ledd (the group) writes.
    fifo = run / defaults.REPLY_DIR / c._idle[0].name
    assert stat.S_IMODE(fifo.stat().st_mode) == defaults.REPLY_FIFO_MODE == 0o620
    assert fifo.stat().st_gid == (run / defaults.REPLY_DIR).stat().st_gid
    c.close()
    assert not fifo.exists()


def test_mode_of_an_existing_runtime_dir_is_set(ledd_factory):
    d = ledd_factory()
    d.runtime_dir.mkdir(parents=True)
    os.chmod(d.runtime_dir, 0o777)
    d.start()
    assert stat.S_IMODE(d.runtime_dir.stat().st_mode) == 0o750
    assert "had mode 0777: set to 0750" in d.read_log()


def test_symlinked_runtime_dir_is_refused(ledd_binary, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "run")
    r = subprocess.run(rawfifo.ledd_argv(ledd_binary, "-b", "sim", "-c", rawfifo.write_config(tmp_path / "c.conf"),
                                         "-r", tmp_path / "run", "-s", tmp_path / "state"),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "is a symlink or not a directory: refusing it" in r.stderr
    assert list(real.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory of another user")
def test_runtime_dir_of_another_user_is_refused(ledd_binary, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.chown(run, 23999, 23999)
    r = subprocess.run(rawfifo.ledd_argv(ledd_binary, "-b", "sim", "-c", rawfifo.write_config(tmp_path / "c.conf"),
                                         "-r", run, "-s", tmp_path / "state"),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "belongs to uid 23999" in r.stderr
    assert list(run.iterdir()) == []


def test_runtime_dir_is_created_0750(ledd_binary, tmp_path):
    run = tmp_path / "fresh" / "run"   # the fixture would create it: start ledd by hand
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LEDD_RUNTIME_DIR")}
    proc = subprocess.Popen(rawfifo.ledd_argv(ledd_binary, "-b", "sim", "-c", rawfifo.write_config(tmp_path / "c.conf"),
                                              "-r", run, "-s", tmp_path / "state"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (run / "ledd.cmd").exists() or proc.poll() is not None, what="ledd.cmd")
        assert proc.poll() is None, "ledd exited with %s" % proc.returncode
        assert stat.S_IMODE(run.stat().st_mode) == 0o750
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def idle_switches(pid, seconds=1.5):
    before = rawfifo.ctxt_switches(pid)
    time.sleep(seconds)   # about time itself: ledd's wake-ups in that many seconds
    after = rawfifo.ctxt_switches(pid)
    return after[0] - before[0]


def wait_until_quiet(pid):
    """Wait for a whole deferred-fsync period plus 0.2 s without a wake-up of ``pid``."""
    quiet_s = state_sync_seconds() + 0.2
    since = [time.monotonic(), rawfifo.ctxt_switches(pid)[0]]

    def quiet():
        now, switches = time.monotonic(), rawfifo.ctxt_switches(pid)[0]
        if switches != since[1]:
            since[:] = [now, switches]
        return now - since[0] >= quiet_s
    wait_for(quiet, WAIT_S + quiet_s, what="ledd to go quiet for %.1fs" % quiet_s)


def state_sync_seconds():
    """LEDD_STATE_SYNC_MS: after a change, ledd wakes once more to fsync the state file."""
    text = (Path(__file__).resolve().parents[2] / "cdaemon" / "src" / "defaults.h").read_text()
    return int(re.search(r"#define\s+LEDD_STATE_SYNC_MS\s+(\d+)", text).group(1)) / 1000


@pytest.mark.timing
def test_idle_daemon_never_wakes_up(ledd):
    c = ledd.client()
    c.on(0)
    with c.watch() as w:
        w.next_event(WAIT_S)
        wait_until_quiet(ledd.proc.pid)  # after the one deferred fsync of that change (slow on a busy disk)
        assert idle_switches(ledd.proc.pid) == 0


def test_clients_making_fifos_in_reply_cost_no_wake_up(ledd):
    """inotify watches the runtime directory for anything done to ledd's names (creations and
    attribute changes too), but not reply/: clients' FIFOs come and go without waking ledd."""
    reply = ledd.runtime_dir / defaults.REPLY_DIR
    ledd.client().hello()
    time.sleep(state_sync_seconds() + 0.5)   # nothing deferred left
    before = rawfifo.ctxt_switches(ledd.proc.pid)
    for i in range(50):
        path = reply / ("f%d" % i)
        os.mkfifo(path, 0o600)
        os.chmod(path, 0o620)
        os.mkdir(reply / ("d%d" % i))
        os.rmdir(reply / ("d%d" % i))
        os.unlink(path)
    time.sleep(0.3)
    after = rawfifo.ctxt_switches(ledd.proc.pid)
    assert after[0] - before[0] == 0, "ledd woke up for clients' traffic in reply/"


def test_changes_are_on_file_at_once_and_synced_then_quiet(ledd):
    """Each change is renamed into place before its reply; the deferred fsync does not repeat."""
    c = ledd.client()
    for _ in range(20):
        seq = c.toggle(0)["seq"]
    assert ("seq %d" % seq) in ledd.state_file.read_text()
    wait_until_quiet(ledd.proc.pid)
    assert idle_switches(ledd.proc.pid) == 0


@pytest.mark.timing
def test_blinking_daemon_does_wake_up(ledd):
    """The idle measurement can fail: a blink makes wake-ups, and only those."""
    c = ledd.client()
    c.blink(0, 50, 50)
    levels = set()
    wait_for(lambda: levels.add(c.state()["leds"][0]["level"]) or len(levels) == 2, what="the blink's phases")
    n = idle_switches(ledd.proc.pid, 1.0)
    assert 8 <= n <= 40, n   # ~20 phase changes per second


def test_logs_have_syslog_prefixes(ledd):
    ledd.client().hello()
    ledd.stop()
    lines = [l for l in ledd.read_log().splitlines() if l]
    assert lines and all(l[0] == "<" and l[1] in "01234567" and l[2] == ">" for l in lines), lines

"""The trust model of docs/protocol.md ("Trust"), tried with real separate uids.

ledd runs as its own uid; a victim and an attacker are two other uids, both
members of ledd's group, as the web server, the MQTT bridge and ledctl users
are on a Pi. The attacker tries every attack of issue 20 on the victim's
traffic, and each test checks what a user would: the victim's requests are
answered correctly, each within 2 s; ledd's CPU stays idle afterwards; the log
stays bounded; and ledd restarts cleanly on what is left.

The uids are throwaway numbers (setpriv switches to them; no account is
needed). Everything they run lives in a private directory under /tmp that
they can reach: a copy of ledd (so the sanitizer build can be tested too) and
of the ``ledd`` package.
"""

import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from ledd import defaults
import rawfifo

ROOT = Path(__file__).resolve().parents[2]
LEDD_UID, GROUP, VICTIM_UID, ATTACKER_UID = 23501, 23501, 23502, 23503
#: A ledd that loops on its own FIFO burns ~75 ticks a second; an idle one 0.
IDLE_TICKS = 5
#: Log lines an attack may cost at most (rate-limited client errors, repairs).
LOG_BUDGET = 40

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="needs root (to run as other uids) and setpriv")

#: Runs as a member: the client package and a few helpers, then the body.
PRELUDE = '''
import errno, fcntl, json, os, sys, time
sys.path.insert(0, {pkg!r})
from ledd.client import Client
RUN = {run!r}
REPLY = os.path.join(RUN, "reply")
CMD = os.path.join(RUN, "ledd.cmd")
def attempt(what, fn, *args):
    try:
        fn(*args)
        done.append(what)
    except OSError as err:
        refused.append("%s: %s" % (what, err.strerror))
done, refused = [], []
'''

#: The victim: N alternating ON/OFF and HELLO, each checked, each within 2 s.
VICTIM = '''
c = Client(RUN, timeout=2)
out = {{"ok": 0, "errors": [], "slowest": 0.0}}
for i in range({n}):
    start = time.monotonic()
    try:
        on = i % 2 == 0
        s = c.on(0) if on else c.off(0)
        h = c.hello()
        if s["leds"][0]["on"] != on or h.get("protocol") != 2 or "forged" in json.dumps([s, h]):
            out["errors"].append("wrong reply: %r %r" % (s, h))
        else:
            out["ok"] += 1
    except Exception as err:
        out["errors"].append(repr(err))
    out["slowest"] = max(out["slowest"], time.monotonic() - start)
print(json.dumps(out))
'''


class Site:
    """ledd as LEDD_UID on a runtime directory the members can reach, and the members."""

    def __init__(self, ledd_factory, ledd_binary, tmp_path, config_extra=""):
        self.base = Path(tempfile.mkdtemp(prefix="ledd-trust-"))
        os.chmod(self.base, 0o755)
        self.pkg = self.base / "pkg"
        shutil.copytree(ROOT / "ledd", self.pkg / "ledd", ignore=shutil.ignore_patterns("__pycache__"))
        binary = self.base / "ledd"
        shutil.copy(ledd_binary, binary)
        workdir = self.base / "w"
        workdir.mkdir()
        os.chown(workdir, LEDD_UID, GROUP)
        self.run = workdir / "run"
        self.run.mkdir(mode=0o700)   # as systemd's RuntimeDirectory= would: ledd's own
        os.chown(self.run, LEDD_UID, GROUP)
        config = rawfifo.write_config(self.base / "c.conf", ledd_section=config_extra)
        os.chmod(config, 0o644)
        self.ledd = ledd_factory(workdir=workdir, binary=binary, config=config)
        # The log is written through a descriptor the test opens: keep it where
        # the sanitizer run looks for reports.
        self.ledd.log_path = tmp_path / "ledd.log"
        plain = self.ledd.command
        self.ledd.command = lambda: ["setpriv", "--reuid", str(LEDD_UID), "--regid", str(GROUP),
                                     "--clear-groups"] + plain()

    def make_runtime_dir(self, mode):
        """The runtime directory as an older ledd (or a local run) left it."""
        os.chmod(self.run, mode)

    def start(self):
        self.ledd.start()
        return self

    def close(self):
        self.ledd.close()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- members -----------------------------------------------------------
    def member(self, uid, body, **fmt):
        """argv running ``body`` (Python) as uid, a member of ledd's group."""
        code = PRELUDE.format(pkg=str(self.pkg), run=str(self.run)) + textwrap.dedent(body).format(**fmt)
        return ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--groups", str(GROUP),
                "/usr/bin/python3", "-I", "-c", code]

    def attacker(self, body, **fmt):
        r = subprocess.run(self.member(ATTACKER_UID, body, **fmt), capture_output=True, text=True,
                           timeout=60, cwd="/")
        assert r.returncode == 0, r.stderr
        return r.stdout

    def attacker_in_background(self, body, **fmt):
        return subprocess.Popen(self.member(ATTACKER_UID, body, **fmt), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd="/")

    def victim(self, n=20):
        """The victim's n rounds; asserts every one was right and in time."""
        r = subprocess.run(self.member(VICTIM_UID, VICTIM, n=n), capture_output=True, text=True,
                           timeout=120, cwd="/")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["errors"] == [] and out["ok"] == n, "%s\n%s" % (out, self.ledd.read_log()[-3000:])
        assert out["slowest"] < 2.0, out
        return out

    # -- what the user sees of ledd -----------------------------------------
    def cpu_ticks(self):
        fields = Path("/proc/%d/stat" % self.ledd.proc.pid).read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])   # utime + stime

    def assert_idle(self, seconds=1.0):
        before = self.cpu_ticks()
        time.sleep(seconds)   # measuring a window of time, not waiting for a condition
        used = self.cpu_ticks() - before
        assert used <= IDLE_TICKS, "ledd used %d ticks in %.1f s while nobody asked anything" % (used, seconds)

    def assert_log_bounded(self, budget=LOG_BUDGET):
        lines = self.ledd.read_log().splitlines()
        assert len(lines) <= budget, "%d log lines:\n%s" % (len(lines), "\n".join(lines[:60]))

    def assert_restarts(self):
        assert self.ledd.stop() == 0, self.ledd.read_log()[-3000:]
        self.ledd.close_notify()
        self.ledd.notifications = []
        self.ledd.start()
        self.victim(4)


@pytest.fixture
def site(ledd_factory, ledd_binary, tmp_path):
    made = []

    def make(**kwargs):
        s = Site(ledd_factory, ledd_binary, tmp_path, **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_the_layout_members_see(site):
    s = site().start()
    assert (s.run.stat().st_uid, s.run.stat().st_mode & 0o7777) == (LEDD_UID, 0o750)
    cmd = (s.run / defaults.CMD_FIFO).stat()
    assert (cmd.st_uid, cmd.st_mode & 0o7777) == (LEDD_UID, 0o620)
    reply = (s.run / defaults.REPLY_DIR).stat()
    assert (reply.st_uid, reply.st_gid, reply.st_mode & 0o7777) == (LEDD_UID, GROUP, 0o3730)
    s.victim(2)


def test_a_member_cannot_replace_reply_dir(site):
    """Issue 20, 1: ``mkdir x; mv -T x reply`` shut off every reply, and ledd then refused to start."""
    s = site().start()
    out = s.attacker('''
        attempt("mkdir in the runtime directory", os.mkdir, os.path.join(RUN, "x"))
        attempt("mv -T x reply", os.rename, os.path.join(RUN, "x"), REPLY)
        attempt("mkdir in reply/", os.mkdir, os.path.join(REPLY, "x"))
        attempt("mv -T reply/x reply", os.rename, os.path.join(REPLY, "x"), REPLY)
        print(json.dumps([done, refused]))
    ''')
    s.victim()
    done, refused = json.loads(out)
    assert done == ["mkdir in reply/"], (done, refused)
    s.assert_idle()
    s.assert_log_bounded()
    s.assert_restarts()


def test_a_member_cannot_put_its_fifo_in_place_of_the_command_fifo(site):
    """Issue 20, 2: a member's FIFO moved over ledd.cmd was used, and the member read other clients' requests."""
    s = site().start()
    thief = s.attacker_in_background('''
        for where in (RUN, REPLY):
            y = os.path.join(where, "y")
            attempt("mkfifo " + y, os.mkfifo, y, 0o666)
            attempt("chmod " + y, os.chmod, y, 0o666)
            attempt("mv -T %s ledd.cmd" % y, os.rename, y, CMD)
        attempt("open ledd.cmd for reading", os.open, CMD, os.O_RDONLY | os.O_NONBLOCK)
        # Read whatever ledd.cmd is now, for as long as the victim talks.
        stolen = b""
        try:
            fd = os.open(CMD, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            fd = -1
        end = time.monotonic() + 4
        while fd >= 0 and time.monotonic() < end:
            try:
                stolen += os.read(fd, 65536)
            except BlockingIOError:
                time.sleep(0.001)
        print(json.dumps([done, refused, len(stolen)]))
    ''')
    try:
        s.victim()
    finally:
        out, err = thief.communicate(timeout=30)
    done, refused, stolen = json.loads(out)
    assert stolen == 0 and not any("ledd.cmd" in d for d in done), (done, refused, err)
    assert (s.run / defaults.CMD_FIFO).stat().st_uid == LEDD_UID
    s.assert_idle()
    s.assert_log_bounded()
    s.assert_restarts()


def test_ledd_never_answers_into_its_own_command_fifo(site):
    """Issue 20, 3: a hard link of ledd.cmd in reply/ and one request made ledd answer itself for ever.

    fs.protected_hardlinks keeps a member (who may only write ledd.cmd) from
    making that link on most systems; root makes it here, as a member could
    where that sysctl is off, so that ledd's own check is what is tested."""
    s = site().start()
    s.attacker('attempt("ln ledd.cmd reply/mine", os.link, CMD, os.path.join(REPLY, "mine"))')
    os.link(s.run / defaults.CMD_FIFO, s.run / defaults.REPLY_DIR / "loop")
    s.attacker('''
        fd = os.open(CMD, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, b"\\nloop FOO\\n")
        os.write(fd, b"\\nloop WATCH\\n")
        os.close(fd)
    ''')
    s.victim()
    s.assert_idle()
    s.assert_log_bounded()
    assert "reply/loop is ledd's own ledd.cmd" in s.ledd.read_log()
    s.assert_restarts()
    assert not (s.run / defaults.REPLY_DIR / "loop").exists(), "the sweep at start removes the link"


def test_a_member_can_neither_find_nor_forge_nor_read_another_members_replies(site):
    """Issue 20, 4: a member listed reply/, wrote forged replies into the victim's FIFO,
    and sent requests under the victim's id (the victim fell one reply behind)."""
    s = site().start()
    forger = s.attacker_in_background('''
        seen, forged, stolen, sent = set(), 0, 0, 0
        cmd = os.open(CMD, os.O_WRONLY | os.O_NONBLOCK)
        end = time.monotonic() + 4
        while time.monotonic() < end:
            try:
                names = os.listdir(REPLY)
            except OSError as err:
                refused.append("list reply/: " + err.strerror)
                names = []
                time.sleep(0.01)
            for name in names:
                seen.add(name)
                path = os.path.join(REPLY, name)
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                    os.write(fd, name.encode() + b' OK {{"forged":true}}\\n')
                    os.close(fd)
                    forged += 1
                except OSError:
                    pass
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                    try:
                        stolen += len(os.read(fd, 65536))
                    except BlockingIOError:
                        pass
                    os.close(fd)
                except OSError:
                    pass
                try:
                    os.write(cmd, b"\\n" + name.encode() + b" ALL ON\\n")
                    sent += 1
                except OSError:
                    pass
        print(json.dumps([sorted(seen), forged, stolen, sent, sorted(set(refused))]))
    ''')
    try:
        s.victim(40)
    finally:
        out, err = forger.communicate(timeout=30)
    seen, forged, stolen, sent, refused = json.loads(out)
    assert (seen, forged, stolen, sent) == ([], 0, 0, 0), (out, err)
    assert refused == ["list reply/: Permission denied"]
    s.assert_idle()
    s.assert_log_bounded()
    s.assert_restarts()


def test_ledd_starts_and_repairs_whatever_members_left_in_an_old_runtime_dir(site):
    """Where the runtime directory outlives ledd (a local run) and was group-writable (an older
    ledd's 0770): members' FIFO as ledd.cmd, a non-empty directory of theirs as reply/, a pid
    file of theirs, locked. ledd starts anyway, on a layout that is all its own."""
    s = site()
    s.make_runtime_dir(0o770)
    holder = s.attacker_in_background('''
        os.mkfifo(CMD, 0o666); os.chmod(CMD, 0o666)
        os.mkdir(REPLY, 0o700)
        os.mkdir(os.path.join(REPLY, "sub"), 0o700)
        open(os.path.join(REPLY, "sub", "f"), "w").close()
        pid = os.open(os.path.join(RUN, "ledd.pid"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(pid, fcntl.LOCK_EX)
        reader = os.open(CMD, os.O_RDONLY | os.O_NONBLOCK)
        print("ready", flush=True)
        stolen = b""
        end = time.monotonic() + 6
        while time.monotonic() < end:
            try:
                stolen += os.read(reader, 65536)
            except BlockingIOError:
                time.sleep(0.001)
        print(len(stolen))
    ''')
    try:
        assert holder.stdout.readline() == "ready\n", holder.stderr.read()
        s.start()
        s.victim()
    finally:
        out, err = holder.communicate(timeout=30)
    assert out.strip() == "0", "the member's old ledd.cmd got requests: " + out + err
    assert (s.run.stat().st_mode & 0o7777) == 0o750
    for name in (defaults.CMD_FIFO, defaults.REPLY_DIR, "ledd.pid"):
        assert (s.run / name).stat().st_uid == LEDD_UID, name
    s.assert_idle()
    s.assert_log_bounded()
    s.assert_restarts()


def test_junk_directories_in_reply_are_swept_once(site):
    """Issue 20, 6: non-empty directories in reply/ were never removed, so every 64th request
    swept again. Those ledd may empty go; those it may not stay, and are not retried."""
    s = site().start()
    s.attacker('''
        for i in range({n}):
            d = os.path.join(REPLY, "junk%d" % i)
            os.mkdir(d, 0o777); os.chmod(d, 0o777)      # ledd may empty it
            open(os.path.join(d, "f"), "w").close()
            os.mkdir(os.path.join(d, "deeper"), 0o777); os.chmod(os.path.join(d, "deeper"), 0o777)
            open(os.path.join(d, "deeper", "g"), "w").close()
        for i in range(3):
            d = os.path.join(REPLY, "mine%d" % i)
            os.mkdir(d, 0o700)                           # ledd may not
            open(os.path.join(d, "f"), "w").close()
    ''', n=defaults.REPLY_SWEEP_AT + 10)
    s.victim(defaults.REPLY_CHECK_EVERY)   # 2 requests a round: two checks at least
    left = sorted(p.name for p in (s.run / defaults.REPLY_DIR).iterdir())
    assert left == ["mine0", "mine1", "mine2"], left[:10]
    s.victim(3 * defaults.REPLY_CHECK_EVERY)
    log = s.ledd.read_log()
    assert log.count("swept %d leftovers" % (defaults.REPLY_SWEEP_AT + 10)) == 1, log
    assert log.count("that ledd may not remove") == 1, log
    s.assert_log_bounded()


def test_a_flood_of_bad_lines_costs_a_few_log_lines_and_a_count(site):
    """Issue 20, 8: one 3,000-byte write of lines without a readable id made 1,000 log lines."""
    s = site().start()
    s.attacker('''
        open(os.path.join(REPLY, "not-a-fifo"), "w").close()
        fd = os.open(CMD, os.O_WRONLY)
        for _ in range(20):
            os.write(fd, b"\\n!!\\n" * 750)                 # 3,000 bytes: 750 lines, no id
        os.write(fd, b"\\nnot-a-fifo STATE\\n" * 50)        # replies nobody can take
        os.close(fd)
    ''')
    s.victim(4)
    s.assert_log_bounded(15)
    deadline = time.monotonic() + 30   # the count comes when the 10 s period ends
    while "more client errors in the last" not in s.ledd.read_log():
        assert time.monotonic() < deadline and s.ledd.proc.poll() is None
        time.sleep(0.1)
    s.assert_log_bounded(16)
    s.assert_idle()

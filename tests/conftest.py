"""Fixtures shared by every test folder: build ledd once, run it on a private runtime directory.

``ledd`` (function scope) is a real ledd process with the sim backend, the
project's default wiring (cdaemon/ledd.conf) and its runtime directory and
state file under ``tmp_path``. It is started with ``$NOTIFY_SOCKET`` pointing
at an abstract socket of the test's own, and counts as ready on ``READY=1``,
exactly as systemd would see it.

Set ``LEDD_BINARY`` to test another build (the sanitizer build, a
cross-compiled binary run through qemu-user, …).

Under ``tests/run`` (``LEDD_STRICT=1``) two more rules hold for the whole suite:
a test skipped for want of a tool or module (a reason saying "not installed",
"could not import", "no <tool>" …) fails instead, because a fresh machine must
have everything tests/run installs; and the run fails if it changed the
checkout (generated files belong in temporary directories).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledd.client import Client  # noqa: E402
from waiting import WaitTimeout, wait_for  # noqa: E402

DEFAULT_CONFIG = ROOT / "cdaemon" / "ledd.conf"
READY_TIMEOUT_S = 10.0


def build_ledd():
    """Build cdaemon/ (make is incremental) and return the binary's path."""
    override = os.environ.get("LEDD_BINARY")
    if override:
        return Path(override)
    subprocess.run(["make", "-s", "-C", str(ROOT / "cdaemon")], check=True)
    return ROOT / "cdaemon" / "ledd"


class LeddProcess:
    """One ledd process under test, with helpers to talk to it and to kill or restart it."""

    def __init__(self, binary, workdir, config=DEFAULT_CONFIG, backend="sim", extra_args=(), env=None):
        self.binary = Path(binary)
        self.workdir = Path(workdir)
        self.runtime_dir = self.workdir / "run"
        self.state_file = self.workdir / "state"
        self.config = Path(config)
        self.backend = backend
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.proc = None
        self.notify = None
        self.log_path = self.workdir / "ledd.log"
        self.notifications = []

    # -- lifecycle ---------------------------------------------------------
    def command(self):
        cmd = [str(self.binary), "-c", str(self.config), "-r", str(self.runtime_dir), "-s", str(self.state_file)]
        if self.backend:
            cmd += ["-b", self.backend]
        prefix = os.environ.get("LEDD_EXEC_PREFIX")  # e.g. "qemu-aarch64-static -L /usr/aarch64-linux-gnu"
        return (prefix.split() if prefix else []) + cmd + self.extra_args

    def start(self, wait=True):
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        address = "\0ledd-test-%d-%d" % (os.getpid(), time.monotonic_ns())
        self.notify.bind(address)
        # Read the socket all the time, as systemd does: an unread socket fills
        # up after ~10 datagrams and ledd (rightly) drops what does not fit.
        self._notify_thread = threading.Thread(target=self._collect_notifications, args=(self.notify, self.notifications), daemon=True)
        self._notify_thread.start()
        env = dict(os.environ, NOTIFY_SOCKET="@" + address[1:], **self.env)
        env.pop("LEDD_RUNTIME_DIR", None)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env)
        if wait:
            self.wait_for("READY=1")
        return self

    @staticmethod
    def _collect_notifications(sock, notifications):
        while True:
            try:
                data = sock.recv(4096)
            except OSError:
                return
            if not data:  # shut down by close_notify()
                return
            notifications.append(data.decode())

    def wait_for(self, token, timeout=READY_TIMEOUT_S):
        """Wait for a notify datagram containing ``token`` (e.g. READY=1, STOPPING=1)."""
        def sent():
            return any(token in n for n in list(self.notifications))
        wait_for(lambda: sent() or self.proc.poll() is not None, timeout, interval=0.005,
                 what=lambda: "%s from ledd:\n%s" % (token, self.read_log()))
        if sent():
            return
        try:  # the datagrams ledd sent before it exited are in the socket: the reader thread picks them up
            wait_for(sent, 0.5, interval=0.005, what=token)
        except WaitTimeout:
            raise AssertionError("ledd exited with %s before %s:\n%s" % (self.proc.returncode, token, self.read_log())) from None

    def read_log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("ledd ignored SIGTERM for %ss:\n%s" % (timeout, self.read_log()))

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def restart(self):
        self.stop()
        self.close_notify()
        self.notifications = []
        return self.start()

    def close_notify(self):
        if self.notify is not None:
            try:
                self.notify.shutdown(socket.SHUT_RDWR)  # wakes the reader thread
            except OSError:
                pass
            self.notify.close()
            self.notify = None

    def close(self):
        """Stop ledd the way systemd does (SIGTERM, then SIGKILL), so a sanitizer build checks leaks."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            self.close_notify()
            if getattr(self, "log", None):
                self.log.close()

    # -- talking to it -----------------------------------------------------
    def client(self, timeout=2.0):
        return Client(str(self.runtime_dir), timeout=timeout)


@pytest.fixture(scope="session")
def ledd_binary():
    return build_ledd()


@pytest.fixture
def ledd_factory(tmp_path, ledd_binary):
    """Make LeddProcess objects (not started); every one is killed at teardown."""
    made = []

    def make(**kwargs):
        workdir = kwargs.pop("workdir", tmp_path / ("ledd%d" % len(made)))
        workdir.mkdir(parents=True, exist_ok=True)
        proc = LeddProcess(kwargs.pop("binary", ledd_binary), workdir, **kwargs)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.close()


@pytest.fixture
def ledd(ledd_factory):
    """A running sim ledd with the default wiring."""
    return ledd_factory().start()


def have(tool):
    return shutil.which(tool) is not None


# -- suite-wide rules under tests/run ------------------------------------------
STRICT = os.environ.get("LEDD_STRICT") == "1"
#: Skip reasons that mean "this machine lacks a package", not "this test does not apply here".
MISSING_TOOL = re.compile(r"not installed|could not import|no module named|not found on|\bno (gpiozero|clang|chromium|qemu|lighttpd|mosquitto|paho)", re.I)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2]
        if MISSING_TOOL.search(reason):
            report.outcome = "failed"
            report.longrepr = "skipped for a missing tool, which tests/run must install: %s" % reason


def pytest_configure(config):
    # A shell that starts the suite in the background (`./tests/run &`, some CI
    # runners) hands it SIGINT ignored, and exec keeps "ignored": every ledctl
    # or deploy.sh a test stops with Ctrl-C would then ignore it too.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def checkout_status():
    """``git status`` of the checkout (None outside a git work tree)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=all"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return set(out.stdout.splitlines()) if out.returncode == 0 else None


def pytest_sessionstart(session):
    session.config._ledd_checkout = checkout_status() if STRICT else None


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_ledd_checkout", None)
    if before is None:
        return
    after = checkout_status() or set()
    changed = sorted(after - before)
    if changed:
        session.config.get_terminal_writer().line(
            "error: the test run changed the checkout (tests must write to temporary directories):\n  "
            + "\n  ".join(changed), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

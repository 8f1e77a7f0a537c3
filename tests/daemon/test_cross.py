"""Cross-builds for Raspberry Pi OS (64-bit aarch64, 32-bit armhf), tested under qemu-user.

For each architecture: build ledd static with the Debian cross compiler
(-Werror is in cdaemon/Makefile), check the ELF is what a Pi runs, then run
the daemon's conformance tests (protocol, watchers, faults) and the ledctl
tests against it through ``LEDD_BINARY`` + ``LEDD_EXEC_PREFIX=qemu-*-static``.
A direct test checks, one by one, the kernel interfaces ledd relies on that
qemu-user has to translate: the sd_notify datagram socket (READY, STATUS,
WATCHDOG, STOPPING), signalfd (SIGHUP, SIGTERM), timerfd (blinking) and
inotify (a deleted FIFO comes back).

Pi Zero / Pi 1 (ARMv6): Debian's armhf toolchain and libc target ARMv7, so a
*static* armhf ledd dies with SIGILL on an ARMv6 CPU (checked with
``qemu-arm-static -cpu arm1176``). ledd's own code builds for ARMv6
(``-march=armv6+fp -marm``, checked below); a binary for those boards must be
linked against Raspberry Pi OS's ARMv6 libc, which deploy.sh does by
compiling on the Pi itself.
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent.parent

ARCHES = {
    # name: (compiler, qemu-user, what `file` says, Pi OS flavour)
    "aarch64": ("aarch64-linux-gnu-gcc", "qemu-aarch64-static", "ARM aarch64", "Raspberry Pi OS 64-bit"),
    "armhf": ("arm-linux-gnueabihf-gcc", "qemu-arm-static", "32-bit LSB executable, ARM, EABI5", "Raspberry Pi OS 32-bit"),
}
#: The daemon conformance tests re-run against each cross build (slow ones excluded).
CONFORMANCE = ["tests/daemon/test_protocol.py", "tests/daemon/test_watchers.py", "tests/daemon/test_faults.py",
               "tests/cli/test_ledctl.py"]
#: Tests that start ledd themselves without LEDD_EXEC_PREFIX (they cannot run a foreign binary).
NOT_UNDER_QEMU = ["test_watch_works_when_ledd_and_client_are_different_users"]


def require(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail("missing %s (tests/run installs them)" % ", ".join(missing))


@pytest.fixture(scope="module", params=sorted(ARCHES))
def cross(request, tmp_path_factory):
    """(arch, binary, qemu) for a static cross build."""
    arch = request.param
    cc, qemu = ARCHES[arch][:2]
    require(cc, qemu, "file", "readelf")
    out = tmp_path_factory.mktemp("cross-" + arch)
    subprocess.run(["make", "-s", "-C", str(ROOT / "cdaemon"), "CC=%s" % cc, "STATIC=1", "O=%s" % out], check=True)
    return arch, out / "ledd", qemu


def test_binary_is_for_the_pi(cross):
    arch, binary, _ = cross
    described = subprocess.run(["file", "-b", str(binary)], capture_output=True, text=True, check=True).stdout
    assert ARCHES[arch][2] in described and "statically linked" in described, described
    if arch == "armhf":
        attributes = subprocess.run(["readelf", "-A", str(binary)], capture_output=True, text=True, check=True).stdout
        assert "Tag_ABI_VFP_args: VFP registers" in attributes  # hard float, as Pi OS's armhf


def test_conformance_suite_under_qemu(cross, tmp_path):
    arch, binary, qemu = cross
    env = dict(os.environ, LEDD_BINARY=str(binary), LEDD_EXEC_PREFIX=qemu)
    env.pop("LEDD_RUNTIME_DIR", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "not slow and not timing", "-p", "no:cacheprovider",
           "--basetemp=%s" % (tmp_path / "run"), "-k", " and ".join("not " + t for t in NOT_UNDER_QEMU)]
    cmd += [str(ROOT / path) for path in CONFORMANCE]
    result = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, "%s (%s) under %s:\n%s%s" % (arch, ARCHES[arch][3], qemu, result.stdout[-6000:],
                                                                 result.stderr[-2000:])


def test_kernel_interfaces_work_under_qemu_user(cross, ledd_factory, monkeypatch):
    arch, binary, qemu = cross
    monkeypatch.setenv("LEDD_EXEC_PREFIX", qemu)
    daemon = ledd_factory(binary=binary, env={"WATCHDOG_USEC": "400000"})
    daemon.start()  # READY=1 arrived on $NOTIFY_SOCKET (an abstract AF_UNIX datagram socket)
    assert os.readlink("/proc/%d/exe" % daemon.proc.pid).endswith(qemu)  # really emulated
    client = daemon.client(timeout=5)
    assert client.hello()["backend"] == "sim"

    # sd_notify: STATUS= with the ready message, WATCHDOG=1 at WATCHDOG_USEC/2 (no WATCHDOG_PID set).
    daemon.wait_for("STATUS=")
    daemon.wait_for("WATCHDOG=1", timeout=5)

    # timerfd: a blinking LED's level changes with no command.
    client.blink("red", 20, 20)
    levels = set()
    wait_for(lambda: levels.add(client.state()["leds"][0]["level"]) or levels == {0, 1}, what="blink phases (timerfd)")

    # inotify: a deleted command FIFO is recreated.
    os.unlink(daemon.runtime_dir / "ledd.cmd")
    wait_for(lambda: (daemon.runtime_dir / "ledd.cmd").is_fifo(), what="ledd.cmd to come back (inotify)")
    client.on("green")

    # signalfd: SIGHUP reloads, SIGTERM saves and exits 0 after STOPPING=1.
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in daemon.read_log(), what="SIGHUP reload (signalfd)")
    assert daemon.stop() == 0, daemon.read_log()
    assert "stopped" in daemon.read_log()
    assert any("STOPPING=1" in n for n in daemon.notifications + pending_notifications(daemon))


def pending_notifications(daemon):
    """The datagrams still queued on the test's notify socket (ledd has exited)."""
    daemon.notify.settimeout(0.2)
    got = []
    try:
        while True:
            got.append(daemon.notify.recv(4096).decode())
    except OSError:  # socket.timeout
        return got


def test_own_code_builds_for_armv6(tmp_path):
    """Pi Zero / Pi 1: every object ledd is made of is ARMv6 code (the libc is the Pi's own)."""
    require("arm-linux-gnueabihf-gcc", "readelf")
    out = tmp_path / "armv6"
    subprocess.run(["make", "-s", "-C", str(ROOT / "cdaemon"), "CC=arm-linux-gnueabihf-gcc", "O=%s" % out,
                    "EXTRA_CFLAGS=-march=armv6+fp -marm"], check=True)
    objects = sorted((out / "obj").glob("*.o"))
    assert objects
    for obj in objects:
        attributes = subprocess.run(["readelf", "-A", str(obj)], capture_output=True, text=True, check=True).stdout
        assert "Tag_CPU_arch: v6" in attributes, "%s is not ARMv6 code:\n%s" % (obj.name, attributes)

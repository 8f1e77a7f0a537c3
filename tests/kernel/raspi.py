"""Boot Debian's arm64 kernel on qemu's emulated Raspberry Pi 3B, with the Pi's own device tree.

``qemu-system-aarch64 -M raspi3b`` models the BCM2837 with its GPIO block, so
Debian's stock arm64 kernel (``CONFIG_PINCTRL_BCM2835=y``, ``CONFIG_COMPAT=y``
for 32-bit programs) brings up the real ``pinctrl-bcm2835`` driver with the
line names of ``broadcom/bcm2837-rpi-3-b.dtb``, plus the firmware's
``raspberrypi-exp-gpio`` expander: the same two chips as on a real Pi 3B.

Public API (used by test_raspi.py)::

    info = fetch(cache_dir=None)
    # -> {"kver": "6.1.0-57-arm64", "vmlinuz": Path, "busybox": Path,
    #     "dtbs": {"3b": Path, "3b-plus": Path}}
    image = make_initramfs(dest, {"/init": text, "/usr/sbin/ledd": Path(...)}, info)
    run = boot(info["vmlinuz"], info["dtbs"]["3b"], image, timeout=BOOT_TIMEOUT_S)
    # -> kbuild.BootResult; stops qemu once END_MARKER is on the console

The packages come from Debian's archive with ``apt-get download`` (the arm64
architecture is added to dpkg first if it is missing: apt cannot name arm64
packages otherwise) and are unpacked with ``dpkg -x``: nothing is installed.
Debs and the files taken out of them stay in
``$LEDD_CACHE_DIR/raspi/<kver>/`` (default ``~/.cache/ledd-tests``).
"""

import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

try:
    from . import kbuild
except ImportError:  # imported as a top-level module (pytest's default "prepend" mode)
    import kbuild

ARCH = "arm64"
#: Debian meta package whose dependency names the current arm64 kernel ABI.
IMAGE_META = "linux-image-arm64:arm64"
BUSYBOX_PACKAGE = "busybox-static:arm64"
#: Device trees of the kernel package that qemu's raspi3b machine can run.
DTBS = {"3b": "broadcom/bcm2837-rpi-3-b.dtb", "3b-plus": "broadcom/bcm2837-rpi-3-b-plus.dtb"}

QEMU = "qemu-system-aarch64"
MACHINE = "raspi3b"
#: The raspi3b's first UART (PL011) is the serial port qemu puts on stdio.
CONSOLE = "ttyAMA0"
#: The /init prints this when it is done; `poweroff` does not end the raspi3b
#: machine, so boot() stops qemu itself when it sees it.
END_MARKER = "LEDD-TEST-END"
#: Console lines after which nothing more will come.
FATAL_MARKERS = ("Kernel panic - not syncing",)
STAMP = "fetch.json"


class RaspiError(kbuild.KbuildError):
    """Fetching or unpacking the arm64 packages failed; the message says which step and why."""


def _say(msg):
    print("raspi: %s" % msg, file=sys.stderr, flush=True)


def enable_arm64():
    """Make apt see arm64 packages: ``dpkg --add-architecture arm64`` and ``apt-get update`` once."""
    foreign = kbuild._run(["dpkg", "--print-foreign-architectures"]).split()
    if ARCH in foreign:
        return False
    if os.geteuid() != 0:
        raise RaspiError("apt does not know the arm64 architecture, and only root can add it: run "
                         "`dpkg --add-architecture arm64 && apt-get update` once (no package gets installed)")
    _say("enabling the arm64 architecture for apt (dpkg --add-architecture arm64; apt-get update): "
         "the Raspberry Pi test downloads Debian's arm64 kernel and busybox; nothing arm64 is installed")
    kbuild._run(["dpkg", "--add-architecture", ARCH])
    # Other sessions may be running apt: wait for its lock rather than fail.
    kbuild._run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=300"])
    return True


def resolve_kernel():
    """(kver, package version) of the kernel ``linux-image-arm64`` points at now (e.g. ``6.1.0-57-arm64``)."""
    out = subprocess.run(["apt-cache", "depends", IMAGE_META], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True).stdout
    m = re.search(r"Depends: linux-image-(\d\S*-arm64)(?::arm64)?\b", out)
    if not m:
        raise RaspiError("cannot find the kernel in `apt-cache depends %s` (apt-get update?):\n%s" % (IMAGE_META, out))
    kver = m.group(1)
    show = kbuild._run(["apt-cache", "show", "linux-image-%s:%s" % (kver, ARCH)])
    v = re.search(r"^Version: (\S+)", show, re.M)
    if not v:
        raise RaspiError("no Version for linux-image-%s:%s" % (kver, ARCH))
    return kver, v.group(1)


def _download(names, debdir, log):
    """``apt-get download`` what is not in debdir yet; refresh the lists once if apt cannot find it."""
    try:
        kbuild._run(["apt-get", "download", "-q"] + names, cwd=debdir, log=log)
    except kbuild.KbuildError:
        if os.geteuid() != 0:
            raise
        kbuild._run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=300"], log=log)
        kbuild._run(["apt-get", "download", "-q"] + names, cwd=debdir, log=log)


def _unpack(cache, kver, log):
    debdir = cache / "debs"
    image = sorted(debdir.glob("linux-image-%s_*_arm64.deb" % kver))
    busybox = sorted(debdir.glob("busybox-static_*_arm64.deb"))
    if not image or not busybox:
        raise RaspiError("apt-get download left no %s in %s" % ("kernel" if not image else "busybox", debdir))
    root = cache / "root"
    if root.exists():
        shutil.rmtree(root)
    for deb in (image[-1], busybox[-1]):
        kbuild._run(["dpkg", "-x", str(deb), str(root)], log=log)
    out = cache / "out"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    wanted = {"vmlinuz": root / "boot" / ("vmlinuz-" + kver), "busybox": root / "bin" / "busybox"}
    for name, rel in DTBS.items():
        wanted[name + ".dtb"] = root / "usr" / "lib" / ("linux-image-" + kver) / rel
    for name, src in wanted.items():
        if not src.exists():
            raise RaspiError("%s is not in the packages (the layout changed?)" % src)
        shutil.copy(src, out / name)
    shutil.rmtree(root)


def fetch(cache_dir=None, log=None):
    """Download (or reuse) the arm64 kernel, its Pi 3 device trees and busybox-static.

    Returns ``dict(kver=str, vmlinuz=Path, busybox=Path, dtbs={name: Path})``.
    Several processes may call it at once: a lock file serialises them.
    """
    cache_root = Path(cache_dir) if cache_dir else kbuild.default_cache_dir()
    enable_arm64()
    kver, version = resolve_kernel()
    cache = cache_root / "raspi" / kver
    (cache / "debs").mkdir(parents=True, exist_ok=True)
    log = Path(log) if log else cache / "fetch.log"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / STAMP).exists():
            started = time.monotonic()
            log.write_text("")
            missing = []
            if not list((cache / "debs").glob("linux-image-%s_*_arm64.deb" % kver)):
                missing.append("linux-image-%s:%s=%s" % (kver, ARCH, version))
            if not list((cache / "debs").glob("busybox-static_*_arm64.deb")):
                missing.append(BUSYBOX_PACKAGE)
            if missing:
                _say("downloading %s into %s" % (" ".join(missing), cache / "debs"))
                _download(missing, cache / "debs", log)
            _unpack(cache, kver, log)
            (cache / STAMP).write_text(json.dumps({"kver": kver, "version": version,
                                                   "seconds": round(time.monotonic() - started, 1)}))
    out = cache / "out"
    info = {"kver": kver, "vmlinuz": out / "vmlinuz", "busybox": out / "busybox",
            "dtbs": {name: out / (name + ".dtb") for name in DTBS}}
    for path in [info["vmlinuz"], info["busybox"], *info["dtbs"].values()]:
        if not path.exists():
            raise RaspiError("cached %s is gone; remove %s and retry" % (path, cache / STAMP))
    return info


def make_initramfs(dest, files, info):
    """kbuild's busybox initramfs, with the arm64 busybox in place of the host's.

    The applet links come from the host's busybox-static: the same Debian
    release, so the same applets.
    """
    return kbuild.make_initramfs(dest, dict(files, **{"/bin/busybox": Path(info["busybox"])}))


def boot(vmlinuz, dtb, initramfs, timeout, console_log=None, append="", armed_by=None, armed_timeout=None):
    """Boot raspi3b; stop qemu at END_MARKER, a kernel panic, or after ``timeout`` seconds.

    With ``armed_by``, a second budget of ``armed_timeout`` seconds starts when
    that text first appears on the console (``timeout`` stays the overall
    cap): a bound on what init does, whatever the time the kernel took to get
    there on a loaded machine.

    Returns kbuild.BootResult; ``timed_out`` is set when qemu had to be
    stopped without the end marker.
    """
    cmd = [QEMU, "-M", MACHINE, "-kernel", str(vmlinuz), "-dtb", str(dtb), "-initrd", str(initramfs),
           "-append", "console=%s rdinit=/init panic=-1 quiet loglevel=4 %s" % (CONSOLE, append),
           "-nographic", "-monitor", "none", "-no-reboot"]
    started = time.monotonic()
    deadline = started + timeout
    chunks, tail, finished = [], b"", False
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        while not finished:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
            if not ready:
                continue
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:  # qemu exited (a panic with -no-reboot)
                finished = True
                break
            chunks.append(data)
            # Look for the markers in the new data plus the end of the old one.
            window = tail + data
            if armed_by and armed_by.encode() in window:
                deadline = min(deadline, time.monotonic() + armed_timeout)
                armed_by = None
            finished = END_MARKER.encode() + b"\r\n" in window or END_MARKER.encode() + b"\n" in window \
                or any(m.encode() in window for m in FATAL_MARKERS)
            tail = window[-200:]
        if finished and proc.poll() is None:
            time.sleep(0.2)  # the rest of a panic message
    finally:
        # Also on KeyboardInterrupt: never leave a qemu behind.
        if proc.poll() is None:
            proc.kill()
        try:
            rest = proc.communicate(timeout=10)[0] or b""
        except subprocess.TimeoutExpired:
            rest = b""
        chunks.append(rest)
    console = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    if console_log:
        Path(console_log).write_text(console)
    return kbuild.BootResult(console, proc.returncode, not finished, time.monotonic() - started)


if __name__ == "__main__":
    print(fetch(sys.argv[1] if len(sys.argv) > 1 else None))

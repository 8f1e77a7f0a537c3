"""Build the kernel GPIO simulator (gpio-sim) for Debian's stock kernel, and boot it in qemu.

This machine's kernel has no GPIO. Debian bookworm's ``linux-image-amd64`` has
the GPIO character device (CONFIG_GPIO_CDEV=y) but neither gpio-sim nor
CONFIG_IRQ_SIM, so we build gpio-sim out of tree, with the IRQ simulator
compiled into the same module, and boot that kernel under ``qemu-system-x86_64``
with a busybox initramfs. Everything is downloaded with ``apt-get download``
and unpacked with ``dpkg -x`` into the cache: no change to the host system.

Public API (also used by the virtual-Pi deploy test)::

    info = build_gpio_sim(cache_dir=None)
    # -> {"kver": "6.1.0-56-amd64", "vmlinuz": Path, "gpio_sim_ko": Path,
    #     "configfs_ko": Path}
    script = pi_chip_setup_script(decoy=True)    # busybox sh snippet
    image = make_initramfs(dest, files={"/init": text_or_path, ...}, info=info)
    run = boot(info["vmlinuz"], image, timeout=300)  # -> BootResult(console, returncode, timed_out)

Results are cached under ``$LEDD_CACHE_DIR/kernel/<kver>/`` (default
``~/.cache/ledd-tests``). Kernel sources are GPL: they are fetched at test time
and never committed.
"""

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: Debian meta package whose dependency names the current kernel ABI.
IMAGE_META = "linux-image-amd64"
#: Debian's source package of the same kernel series.
SOURCE_PACKAGE = "linux-source-6.1"
KBUILD_PACKAGE = "linux-kbuild-6.1"
#: The three files of the kernel tree gpio-sim needs.
SOURCE_FILES = ("drivers/gpio/gpio-sim.c", "drivers/gpio/gpiolib.h", "kernel/irq/irq_sim.c")
#: irq_to_desc() is not exported to modules; generic_handle_irq() does the same and is.
IRQ_SIM_PATTERN = r"handle_simple_irq\(irq_to_desc\(([^()]*)\)\)"
IRQ_SIM_REPLACEMENT = r"generic_handle_irq(\1)"

#: The label and line count of the simulated Raspberry Pi header chip.
PI_CHIP_LABEL = "pinctrl-bcm2711"
PI_CHIP_LINES = 32
DECOY_LABEL = "ledd-decoy"
DECOY_LINES = 8

QEMU = "qemu-system-x86_64"
QEMU_MEMORY_MB = 256
BUSYBOX = "/bin/busybox"
#: Stamp file that marks a finished build in a cache directory.
STAMP = "build.json"


class KbuildError(RuntimeError):
    """A step of the gpio-sim build failed; the message says which and why."""


def default_cache_dir():
    """``$LEDD_CACHE_DIR``, else ``$XDG_CACHE_HOME/ledd-tests``, else ``~/.cache/ledd-tests``."""
    env = os.environ.get("LEDD_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "ledd-tests"


def _run(cmd, cwd=None, log=None, env=None):
    """Run a command; on failure raise KbuildError with its output's tail."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if log is not None:
        with open(log, "a") as f:
            f.write("$ %s\n%s\n" % (" ".join(map(str, cmd)), proc.stdout))
    if proc.returncode != 0:
        raise KbuildError("%s failed (%d):\n%s" % (" ".join(map(str, cmd)), proc.returncode, proc.stdout[-4000:]))
    return proc.stdout


def resolve_kernel():
    """Return (kver, package version) of the kernel ``linux-image-amd64`` currently points at.

    Resolved at test time because Debian drops old ABI versions from the archive.
    """
    out = _run(["apt-cache", "depends", IMAGE_META])
    m = re.search(r"Depends: linux-image-(\d[^\s]*-amd64)\b", out)
    if not m:
        raise KbuildError("cannot find the kernel package in `apt-cache depends %s`:\n%s" % (IMAGE_META, out))
    kver = m.group(1)
    show = _run(["apt-cache", "show", "linux-image-" + kver])
    v = re.search(r"^Version: (\S+)", show, re.M)
    if not v:
        raise KbuildError("no Version for linux-image-%s" % kver)
    return kver, v.group(1)


def _packages(kver, version):
    common = kver[: -len("-amd64")] + "-common"
    return [
        ("linux-image-" + kver, version),
        ("linux-headers-" + kver, version),
        ("linux-headers-" + common, version),
        (KBUILD_PACKAGE, version),
        (SOURCE_PACKAGE, version),
    ]


def _download(pkgs, debdir, log):
    """``apt-get download`` each package (skipped when already there). Returns {name: deb path}."""
    debdir.mkdir(parents=True, exist_ok=True)
    found = {}
    missing = []
    for name, version in pkgs:
        debs = sorted(debdir.glob("%s_*.deb" % name))
        if debs:
            found[name] = debs[-1]
        else:
            missing.append("%s=%s" % (name, version))
    if missing:
        try:
            _run(["apt-get", "download", "-q"] + missing, cwd=debdir, log=log)
        except KbuildError:
            # The package lists may be stale on a fresh machine; refresh once, as root.
            if os.geteuid() != 0:
                raise
            _run(["apt-get", "update", "-q"], log=log)
            _run(["apt-get", "download", "-q"] + missing, cwd=debdir, log=log)
        for name, _ in pkgs:
            debs = sorted(debdir.glob("%s_*.deb" % name))
            if not debs:
                raise KbuildError("apt-get download did not produce %s" % name)
            found[name] = debs[-1]
    return found


def _extract_sources(source_deb, work, log):
    """Pull the three needed files out of linux-source's tarball, without unpacking the rest."""
    srcroot = work / "srcpkg"
    _run(["dpkg", "-x", str(source_deb), str(srcroot)], log=log)
    tarballs = list((srcroot / "usr" / "src").glob("linux-source-*.tar.*"))
    if not tarballs:
        raise KbuildError("no linux-source tarball in %s" % source_deb)
    tarball = tarballs[0]
    top = tarball.name.split(".tar")[0]
    members = ["%s/%s" % (top, f) for f in SOURCE_FILES]
    out = work / "src"
    out.mkdir(exist_ok=True)
    _run(["tar", "-xf", str(tarball), "-C", str(out)] + members, log=log)
    shutil.rmtree(srcroot)
    return {f: out / top / f for f in SOURCE_FILES}


def _write_module_tree(sources, moddir):
    """Lay out gpio-sim's sources as one out-of-tree module (gpio-sim.ko = gpio-sim core + irq_sim)."""
    moddir.mkdir(parents=True, exist_ok=True)
    shutil.copy(sources["drivers/gpio/gpio-sim.c"], moddir / "gpio-sim-core.c")
    shutil.copy(sources["drivers/gpio/gpiolib.h"], moddir / "gpiolib.h")
    irq_sim = sources["kernel/irq/irq_sim.c"].read_text()
    patched, n = re.subn(IRQ_SIM_PATTERN, IRQ_SIM_REPLACEMENT, irq_sim)
    if n == 0:
        raise KbuildError("irq_sim.c: pattern %r not found; the kernel source changed, update kbuild.py" % IRQ_SIM_PATTERN)
    if "irq_to_desc" in patched:
        raise KbuildError("irq_sim.c still calls the unexported irq_to_desc() after patching")
    (moddir / "irq_sim.c").write_text(patched)
    (moddir / "Kbuild").write_text("obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-core.o irq_sim.o\n")


def _fix_headers_makefile(root, kver):
    """The headers' Makefile includes the -common tree by absolute path: point it into our root."""
    mk = root / "usr" / "src" / ("linux-headers-" + kver) / "Makefile"
    text = mk.read_text()
    fixed = re.sub(r"(^|\s)/usr/src/", lambda m: m.group(1) + str(root / "usr" / "src") + "/", text)
    if fixed == text:
        raise KbuildError("%s has no absolute /usr/src/ path to fix; layout changed:\n%s" % (mk, text))
    mk.write_text(fixed)
    return mk.parent


def _build(cache, kver, version, log):
    work = cache / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    debs = _download(_packages(kver, version), cache / "debs", log)
    root = work / "root"
    for name, deb in debs.items():
        if name != SOURCE_PACKAGE:
            _run(["dpkg", "-x", str(deb), str(root)], log=log)
    sources = _extract_sources(debs[SOURCE_PACKAGE], work, log)
    headers = _fix_headers_makefile(root, kver)
    moddir = work / "gpio-sim"
    _write_module_tree(sources, moddir)
    jobs = str(os.cpu_count() or 2)
    _run(["make", "-j", jobs, "-C", str(headers), "M=" + str(moddir), "modules"], log=log)

    out = cache / "out"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    modroot = root / "lib" / "modules" / kver / "kernel"
    configfs = modroot / "fs" / "configfs" / "configfs.ko"
    if not configfs.exists():
        raise KbuildError("%s missing (compressed modules? the image layout changed)" % configfs)
    shutil.copy(root / "boot" / ("vmlinuz-" + kver), out / "vmlinuz")
    shutil.copy(configfs, out / "configfs.ko")
    shutil.copy(moddir / "gpio-sim.ko", out / "gpio-sim.ko")
    # Only out/ (about 10 MB) is needed again: the 230 MB of packages and the
    # unpacked trees go. A rebuild (stamp removed) downloads them anew.
    shutil.rmtree(work)
    shutil.rmtree(cache / "debs")
    return out


def build_gpio_sim(cache_dir=None, log=None):
    """Build (or reuse) gpio-sim.ko for Debian's current amd64 kernel.

    Returns ``dict(kver=str, vmlinuz=Path, gpio_sim_ko=Path, configfs_ko=Path)``.
    Safe to call from several processes at once: a lock file serialises them.
    Raises KbuildError with the failing step's output.
    """
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
    kver, version = resolve_kernel()
    cache = cache_root / "kernel" / kver
    cache.mkdir(parents=True, exist_ok=True)
    log = Path(log) if log else cache / "build.log"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = cache / STAMP
        if not stamp.exists():
            started = time.monotonic()
            log.write_text("")
            out = _build(cache, kver, version, log)
            stamp.write_text(json.dumps({"kver": kver, "version": version,
                                         "seconds": round(time.monotonic() - started, 1)}))
        out = cache / "out"
    info = {"kver": kver, "vmlinuz": out / "vmlinuz", "gpio_sim_ko": out / "gpio-sim.ko",
            "configfs_ko": out / "configfs.ko"}
    for key in ("vmlinuz", "gpio_sim_ko", "configfs_ko"):
        if not info[key].exists():
            raise KbuildError("cached %s is gone; remove %s and retry" % (info[key], cache / STAMP))
    return info


# -- the simulated Pi header ----------------------------------------------------------

def sim_chip_script(name, label, nlines, line_names=None, var=None):
    """busybox sh that creates and enables one gpio-sim chip through configfs.

    ``name`` is the configfs directory, ``label`` the chip label, ``nlines``
    its line count, ``line_names`` a {offset: name} dict (None: unnamed
    lines). With ``var`` (e.g. ``"PI"``) the script sets ``$PI_CHIP``
    (``gpiochip1``), ``$PI_DEV`` (``/dev/gpiochip1``) and ``$PI_SYSFS``
    (``/sys/devices/platform/gpio-sim.1/gpiochip1``, where line K's simulated
    input is ``$PI_SYSFS/sim_gpioK/pull`` and its driven value
    ``$PI_SYSFS/sim_gpioK/value``), and waits for the device node.
    Disable it again with ``echo 0 > /sys/kernel/config/gpio-sim/NAME/live``.
    """
    top = "/sys/kernel/config/gpio-sim/%s" % name
    lines = [
        "mkdir %s %s/bank0" % (top, top),
        "echo %d > %s/bank0/num_lines" % (nlines, top),
        "echo %s > %s/bank0/label" % (label, top),
    ]
    for offset, line_name in sorted((line_names or {}).items()):
        d = "%s/bank0/line%d" % (top, offset)
        lines += ["mkdir %s" % d, "echo %s > %s/name" % (line_name, d)]
    lines.append("echo 1 > %s/live" % top)
    if var:
        lines += [
            "%s_CHIP=$(cat %s/bank0/chip_name)" % (var, top),
            "%s_DEV=/dev/$%s_CHIP" % (var, var),
            "%s_SYSFS=/sys/devices/platform/$(cat %s/dev_name)/$%s_CHIP" % (var, top, var),
            "i=0; while [ ! -e \"$%s_DEV\" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done" % var,
        ]
    return "\n".join(lines) + "\n"


def pi_chip_setup_script(decoy=True, label=PI_CHIP_LABEL, nlines=PI_CHIP_LINES):
    """A busybox sh snippet that creates a Raspberry-Pi-like GPIO chip with gpio-sim.

    Needs configfs mounted on /sys/kernel/config and gpio-sim loaded
    (module_setup_script() does both). With ``decoy`` a small unrelated chip
    (label ``ledd-decoy``, lines ``DECOY<n>``) is made first, so the header
    chip is *not* gpiochip0. The header chip has ``nlines`` lines named
    ``GPIO0``… and label ``label``; its configfs directory is ``pi``.

    Afterwards ``$PI_CHIP``, ``$PI_DEV`` and ``$PI_SYSFS`` are set (see
    sim_chip_script()): e.g. ``echo pull-down > $PI_SYSFS/sim_gpio22/pull``
    presses an active-low button on GPIO22, ``cat $PI_SYSFS/sim_gpio17/value``
    reads the LED on GPIO17.
    """
    script = ""
    if decoy:
        script += sim_chip_script("decoy", DECOY_LABEL, DECOY_LINES,
                                  {i: "DECOY%d" % i for i in range(DECOY_LINES)}, var="DECOY")
    script += sim_chip_script("pi", label, nlines, {i: "GPIO%d" % i for i in range(nlines)}, var="PI")
    return script


def module_setup_script():
    """busybox sh: mount the pseudo filesystems, load configfs.ko and gpio-sim.ko from /lib/ledd-test."""
    return (
        "mount -t proc proc /proc\n"
        "mount -t sysfs sysfs /sys\n"
        "mount -t devtmpfs devtmpfs /dev\n"
        "mkdir -p /tmp /run && mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /run\n"
        "insmod /lib/ledd-test/configfs.ko\n"
        "mount -t configfs configfs /sys/kernel/config\n"
        "insmod /lib/ledd-test/gpio-sim.ko\n"
    )


# -- initramfs and boot ----------------------------------------------------------------

def make_initramfs(dest, files, info=None):
    """Write a gzip'd newc initramfs at ``dest`` with busybox (all applets) and ``files``.

    ``files`` maps an absolute path in the VM to a ``Path`` (copied, mode kept)
    or a ``str`` (written, mode 0755). With ``info`` from build_gpio_sim(),
    configfs.ko and gpio-sim.ko go to /lib/ledd-test/.
    """
    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix="ledd-initramfs-") as tmp:
        root = Path(tmp) / "root"
        for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "run", "etc", "lib/ledd-test", "usr/bin", "usr/sbin"):
            (root / d).mkdir(parents=True, exist_ok=True)
        shutil.copy(BUSYBOX, root / "bin" / "busybox")
        applets = _run([BUSYBOX, "--list-full"]).split()
        for applet in applets:
            link = root / applet
            if not link.exists() and applet != "bin/busybox":
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to("/bin/busybox")
        all_files = dict(files)
        if info:
            all_files["/lib/ledd-test/configfs.ko"] = Path(info["configfs_ko"])
            all_files["/lib/ledd-test/gpio-sim.ko"] = Path(info["gpio_sim_ko"])
        for vm_path, content in all_files.items():
            target = root / vm_path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            if isinstance(content, Path):
                shutil.copy(content, target)
            else:
                target.write_text(content)
                target.chmod(0o755)
        names = subprocess.run(["find", "."], cwd=root, stdout=subprocess.PIPE, check=True).stdout
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=names,
                              stdout=subprocess.PIPE, check=True).stdout
        dest.write_bytes(__import__("gzip").compress(cpio, 6))
    return dest


@dataclass
class BootResult:
    console: str
    returncode: int
    timed_out: bool
    seconds: float


def boot(vmlinuz, initramfs, timeout=300, append="", memory_mb=QEMU_MEMORY_MB, console_log=None):
    """Boot the kernel with the initramfs under TCG (KVM hangs here); return the serial console.

    The init must power the VM off (``poweroff -f``). A VM still running after
    ``timeout`` seconds is killed and ``timed_out`` is set.
    """
    cmd = [QEMU, "-accel", "tcg", "-m", str(memory_mb), "-nographic", "-no-reboot",
           "-kernel", str(vmlinuz), "-initrd", str(initramfs),
           "-append", "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=4 " + append,
           "-monitor", "none", "-serial", "stdio", "-nic", "none"]
    # -nographic already implies a serial on stdio; keep exactly one.
    cmd.remove("-serial")
    cmd.remove("stdio")
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # Also on KeyboardInterrupt: never leave a qemu behind.
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        console = out.read().decode("utf-8", "replace").replace("\r\n", "\n")
    if console_log:
        Path(console_log).write_text(console)
    return BootResult(console, proc.returncode, timed_out, time.monotonic() - started)


if __name__ == "__main__":
    import sys
    print(build_gpio_sim(sys.argv[1] if len(sys.argv) > 1 else None))

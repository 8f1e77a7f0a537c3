"""ledd's chardev backend on a real kernel: Debian's stock kernel + gpio-sim, booted in qemu.

One VM boot (about 10 s under TCG once the module is cached) runs every check
of vm_script.py: the backend alone through gpiotool, then the real ledd,
statically linked, with the chardev backend and the shipped default wiring
(cdaemon/ledd.conf), driven over its FIFO protocol from busybox sh. Each
check is its own pytest case here, so a failure names what broke; its message
carries the whole serial console.

How it works and what it cannot cover: docs/kernel-test.md.
"""

import os
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

import kbuild
import vm_script

ROOT = Path(__file__).resolve().parents[2]
CDAEMON = ROOT / "cdaemon"
SRC = CDAEMON / "src"
DEFAULT_CONFIG = CDAEMON / "ledd.conf"
HERE = Path(__file__).resolve().parent
#: A VM that has not powered off by then is killed and the test fails.
VM_TIMEOUT_S = 420
#: Budget of the deliberately hung VM (it boots to init in about 3 s).
HANG_TIMEOUT_S = 30
#: The blink periods must come out within this fraction of what was asked
#: (TCG emulation and 1 ms sampling make it coarse; a wrong period is 2x off).
BLINK_TOLERANCE = 0.35
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-static"]

pytestmark = [pytest.mark.slow, pytest.mark.vm]

RESULT_RE = re.compile(r"^LEDD-TEST (PASS|FAIL) ([\w.-]+)(?:: (.*))?$", re.M)
SAMPLE_RE = re.compile(r"^LEDD-SAMPLE (\w+) ([\d.]+) (\d)$", re.M)
DUTY_RE = re.compile(r"^LEDD-DUTY (\d+) duty ([\d.]+) samples (\d+)$", re.M)


def _need(tool):
    if shutil.which(tool) is None:
        pytest.skip("%s not installed (tests/run installs it)" % tool)


def build_gpiotool(outdir):
    """gpiotool, statically linked with the backend under test."""
    out = Path(outdir) / "gpiotool"
    subprocess.run(["gcc", *CFLAGS, "-I", str(SRC), "-o", str(out), str(HERE / "gpiotool.c"),
                    *(str(SRC / name) for name in ("gpio.c", "gpio_chardev.c", "gpio_chip.c", "gpio_line_config.c"))],
                   check=True)
    return out


def build_dutytool(outdir):
    """dutytool: samples a gpio-sim line's value from the kernel's side (the PWM's duty)."""
    out = Path(outdir) / "dutytool"
    subprocess.run(["gcc", *CFLAGS, "-o", str(out), str(HERE / "dutytool.c")], check=True)
    return out


def build_static_ledd(outdir):
    """The real daemon, statically linked (`make -C cdaemon STATIC=1 O=dir`). None if it does not build."""
    override = os.environ.get("LEDD_KERNEL_TEST_BINARY")
    if override:
        return Path(override), ""
    proc = subprocess.run(["make", "-s", "-C", str(CDAEMON), "STATIC=1", "O=%s" % outdir],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    binary = Path(outdir) / "ledd"
    if proc.returncode != 0 or not binary.exists():
        return None, proc.stdout[-3000:]
    return binary, ""


class VmRun:
    def __init__(self, boot, ledd_error, log_path):
        self.boot = boot
        self.console = boot.console
        self.ledd_error = ledd_error
        self.log_path = log_path
        self.results = {m.group(2): (m.group(1) == "PASS", m.group(3) or "") for m in RESULT_RE.finditer(self.console)}
        self.samples = {}
        for m in SAMPLE_RE.finditer(self.console):
            self.samples.setdefault(m.group(1), []).append((float(m.group(2)), int(m.group(3))))
        self.duty = {}  # percent -> [(measured, samples)], one per window
        for m in DUTY_RE.finditer(self.console):
            self.duty.setdefault(int(m.group(1)), []).append((float(m.group(2)), int(m.group(3))))

    def explain(self, what):
        tail = self.console[-12000:]
        return "%s\n(console saved at %s; last part below)\n%s" % (what, self.log_path, tail)


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    _need(kbuild.QEMU)
    _need("apt-get")
    _need("cpio")
    if not Path(kbuild.BUSYBOX).exists():
        pytest.skip("busybox-static not installed")
    work = tmp_path_factory.mktemp("kernel")
    info = kbuild.build_gpio_sim()
    gpiotool = build_gpiotool(work)
    ledd, ledd_error = build_static_ledd(work / "ledd-build")
    files = {vm_script.VM_GPIOTOOL: gpiotool, vm_script.VM_DUTYTOOL: build_dutytool(work)}
    if ledd is not None and DEFAULT_CONFIG.exists():
        files[vm_script.VM_LEDD] = ledd
        files[vm_script.VM_CONFIG] = DEFAULT_CONFIG
    elif ledd is not None:
        ledd_error = "%s is missing" % DEFAULT_CONFIG
    (work / "init.sh").write_text(vm_script.init_script(with_ledd=vm_script.VM_LEDD in files))
    image = kbuild.make_initramfs(work / "initramfs.gz",
                                  dict(files, **{"/init": (work / "init.sh").read_text()}), info)
    log_path = work / "console.log"
    boot = kbuild.boot(info["vmlinuz"], image, timeout=VM_TIMEOUT_S, console_log=log_path)
    return VmRun(boot, ledd_error, log_path)


def test_hung_vm_is_killed(tmp_path):
    """The timeout is real: an init that never powers off is killed and reported as hung."""
    _need(kbuild.QEMU)
    _need("apt-get")
    info = kbuild.build_gpio_sim()
    init = "#!/bin/sh\necho LEDD-HANG-START\nwhile :; do sleep 1; done\n"
    image = kbuild.make_initramfs(tmp_path / "hang.gz", {"/init": init})
    run = kbuild.boot(info["vmlinuz"], image, timeout=HANG_TIMEOUT_S)
    assert run.timed_out, run.console
    assert "LEDD-HANG-START" in run.console, run.console


def test_vm_ran_to_the_end(vm):
    assert not vm.boot.timed_out, vm.explain("the VM hung: killed after %ss" % VM_TIMEOUT_S)
    assert "LEDD-TEST-END" in vm.console, vm.explain("the VM's init did not finish")
    assert "LEDD-TEST-CHIP gpiochip" in vm.console, vm.explain("gpio-sim chip setup failed")


@pytest.mark.parametrize("name", vm_script.BACKEND_CHECKS)
def test_backend(vm, name):
    assert name in vm.results, vm.explain("check %s never reported" % name)
    ok, why = vm.results[name]
    assert ok, vm.explain("%s: %s" % (name, why))


@pytest.mark.parametrize("name", vm_script.LEDD_CHECKS)
def test_ledd(vm, name):
    if vm.ledd_error:
        pytest.fail("cannot run ledd in the VM: static build failed:\n%s" % vm.ledd_error)
    assert name in vm.results, vm.explain("check %s never reported" % name)
    ok, why = vm.results[name]
    assert ok, vm.explain("%s: %s" % (name, why))


def _periods(samples):
    """(high durations, low durations) in ms between complete transitions."""
    highs, lows = [], []
    for (t0, v0), (t1, _) in zip(samples[1:], samples[2:]):
        (highs if v0 == 1 else lows).append(t1 - t0)
    return highs, lows


def test_blink_periods(vm):
    if vm.ledd_error:
        pytest.fail("cannot run ledd in the VM: static build failed:\n%s" % vm.ledd_error)
    samples = vm.samples.get("blink", [])
    highs, lows = _periods(samples)
    want = (vm_script.BLINK_ON_MS, vm_script.BLINK_OFF_MS)
    # 3 s of a 450 ms cycle: at least 4 full periods of each phase.
    assert len(highs) >= 4 and len(lows) >= 4, vm.explain("blink: too few transitions: %r" % samples)
    for got, expect, phase in ((statistics.median(highs), want[0], "on"), (statistics.median(lows), want[1], "off")):
        assert abs(got - expect) <= expect * BLINK_TOLERANCE, vm.explain(
            "blink %s phase median %.1f ms, want %d ms +-%d%% (highs %r lows %r)"
            % (phase, got, expect, BLINK_TOLERANCE * 100, highs, lows))


@pytest.mark.parametrize("percent", vm_script.PWM_PERCENTS)
def test_pwm_duty_seen_by_the_kernel(vm, percent):
    """Issue 23: a dimmed LED's duty cycle, sampled from gpio-sim's value attribute at random
    instants, is close to its brightness at the default frequency (vm_script.PWM_TOLERANCE_PP: the
    median of PWM_WINDOWS windows)."""
    if vm.ledd_error:
        pytest.fail("cannot run ledd in the VM: static build failed:\n%s" % vm.ledd_error)
    assert percent in vm.duty, vm.explain("no duty measured at %d %%" % percent)
    windows = vm.duty[percent]
    assert len(windows) == vm_script.PWM_WINDOWS, vm.explain("duty windows at %d %%: %r" % (percent, windows))
    assert all(samples >= 800 for _, samples in windows), vm.explain("too few samples at %d %%: %r" % (percent, windows))
    measured = statistics.median(duty for duty, _ in windows)
    print("duty at %d %%: %s, median %.2f %%" % (percent, " ".join("%.2f" % d for d, _ in windows), measured))
    assert abs(measured - percent) <= vm_script.PWM_TOLERANCE_PP, vm.explain(
        "duty at %d %%: median %.2f %% of windows %r, want +-%d points"
        % (percent, measured, windows, vm_script.PWM_TOLERANCE_PP))

"""ledd on an emulated Raspberry Pi 3B: the real pinctrl-bcm2835 driver and device tree, 64 and 32 bit.

One qemu ``raspi3b`` boot per device tree (Pi 3B, Pi 3B+) runs Debian's own
arm64 kernel; inside, the static aarch64 ledd and then the static armhf ledd
(run through the kernel's 32-bit compat layer) go through the scenario of
raspi_script.py with the shipped cdaemon/ledd.conf (``chip = auto``). Each
check is its own pytest case, named ``<dtb>-<build>-<check>``.

What this emulation can and cannot show: docs/kernel-test.md.
"""

import configparser
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

import raspi
import raspi_script as script
# The gpio-sim test's blink judge: same sampling format, same tolerance.
from test_gpio_sim import BLINK_TOLERANCE
from test_gpio_sim import _periods as blink_phases

ROOT = Path(__file__).resolve().parents[2]
CDAEMON = ROOT / "cdaemon"
DEFAULT_CONFIG = CDAEMON / "ledd.conf"
HERE = Path(__file__).resolve().parent
#: The ledd builds, by name: the cross compiler of each (as in tests/daemon/test_cross.py).
BUILDS = {"aarch64": "aarch64-linux-gnu-gcc", "armhf": "arm-linux-gnueabihf-gcc"}
#: raspitool runs as aarch64 beside both builds.
TOOL_CC = BUILDS["aarch64"]
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-static"]
#: One boot runs both builds (about 30 s of wall time each); a VM that has not
#: printed its end marker by then is stopped and the test fails.
BOOT_TIMEOUT_S = 300
#: Budget of the deliberately hung VM's init, counted from its first line (reaching init takes
#: about 5 s of wall time on an idle machine and more than 20 s on a loaded one, so the budget
#: does not include it; BOOT_TIMEOUT_S caps the whole boot).
HANG_TIMEOUT_S = 10
#: What the Pi's model string says for each device tree.
MODELS = {"3b": "Raspberry Pi 3 Model B", "3b-plus": "Raspberry Pi 3 Model B+"}

pytestmark = [pytest.mark.slow, pytest.mark.vm]

#: A level change from `raspitool sample`: "<t_ms> <0|1>" (its last line, "samples N", is not one).
SAMPLE_RE = re.compile(r"^\d+(\.\d+)? [01]$")


def _need(tool):
    if shutil.which(tool) is None:
        pytest.skip("%s not installed (tests/run installs it)" % tool)


def _make(outdir, cc):
    proc = subprocess.run(["make", "-s", "-C", str(CDAEMON), "CC=%s" % cc, "STATIC=1", "O=%s" % outdir],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, "static %s build of ledd failed:\n%s" % (cc, proc.stdout[-3000:])
    return Path(outdir) / "ledd"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The initramfs: busybox, both static ledd builds, raspitool, the default config, /init."""
    for tool in [raspi.QEMU, "apt-get", "dpkg", "cpio", raspi.kbuild.BUSYBOX, *BUILDS.values()]:
        _need(tool)
    work = tmp_path_factory.mktemp("raspi")
    info = raspi.fetch()
    tool = work / "raspitool"
    subprocess.run([TOOL_CC, *CFLAGS, "-o", str(tool), str(HERE / "raspitool.c")], check=True)
    files = {script.VM_TOOL: tool, script.VM_CONFIG: DEFAULT_CONFIG}
    for build, cc in BUILDS.items():
        files[script.VM_LEDD % build] = _make(work / ("ledd-" + build), cc)
    files["/init"] = script.init_script(list(BUILDS))
    (work / "init.sh").write_text(files["/init"])
    return info, raspi.make_initramfs(work / "initramfs.gz", files, info), work


def test_hung_pi_is_stopped(image, tmp_path):
    """The bound is real: a raspi3b whose init never prints the end marker is stopped at the timeout."""
    info, _, _ = image
    init = "#!/bin/sh\necho LEDD-HANG-START\nwhile :; do sleep 1; done\n"
    hang = raspi.make_initramfs(tmp_path / "hang.gz", {"/init": init}, info)
    run = raspi.boot(info["vmlinuz"], info["dtbs"]["3b"], hang, BOOT_TIMEOUT_S,
                     armed_by="LEDD-HANG-START", armed_timeout=HANG_TIMEOUT_S)
    assert "LEDD-HANG-START" in run.console, run.console
    assert run.timed_out and run.returncode is not None, run.console
    # Stopped by the init budget, not by the overall one.
    assert run.seconds < BOOT_TIMEOUT_S, run


class PiRun:
    def __init__(self, dtb, boot, log_path):
        self.dtb = dtb
        self.boot = boot
        self.console = boot.console
        self.log_path = log_path
        self.results = {}
        self.samples = {}
        self.lineinfo = {}
        for line in self.console.splitlines():
            words = line.split(" ", 3)
            if words[0] == "LEDD-TEST" and len(words) >= 3 and words[1] in ("PASS", "FAIL"):
                name, _, why = " ".join(words[2:]).partition(": ")
                self.results[name.rstrip(":")] = (words[1] == "PASS", why)
            elif words[0] == "LEDD-SAMPLE" and len(words) == 4 and SAMPLE_RE.match(" ".join(words[2:])):
                self.samples.setdefault(words[1], []).append((float(words[2]), int(words[3])))
            elif words[0] == "LEDD-LINEINFO" and len(words) == 4:
                self.lineinfo[(words[1], int(words[2]))] = dict(
                    kv.split("=", 1) for kv in words[3].split() if "=" in kv)

    def explain(self, what):
        return "%s\n(%s: console saved at %s; last part below)\n%s" % (
            what, self.dtb, self.log_path, self.console[-12000:])


@pytest.fixture(scope="module", params=sorted(raspi.DTBS))
def pi(request, image):
    info, initramfs, work = image
    dtb = request.param
    log_path = work / ("console-%s.log" % dtb)
    boot = raspi.boot(info["vmlinuz"], info["dtbs"][dtb], initramfs, BOOT_TIMEOUT_S, console_log=log_path)
    print("raspi %s: %.1f s from qemu start to the end marker" % (dtb, boot.seconds))
    return PiRun(dtb, boot, log_path)


def test_pi_ran_to_the_end(pi):
    assert not pi.boot.timed_out, pi.explain("no end marker within %s s" % BOOT_TIMEOUT_S)
    assert "\n%s\n" % raspi.END_MARKER in pi.console, pi.explain("the VM stopped before the end (kernel panic?)")
    assert "\nLEDD-TEST-MODEL %s\n" % MODELS[pi.dtb] in pi.console, pi.explain("wrong board model")


def test_the_board_has_the_pi_chip_and_the_decoy(pi):
    """The real device tree gives the header chip (54 named lines) and the firmware's GPIO expander."""
    assert "LEDD-TEST-CHIP gpiochip0 label=%s lines=54" % script.PI_LABEL in pi.console, pi.explain("no Pi chip")
    assert "label=%s lines=8" % script.DECOY_LABEL in pi.console, pi.explain("no decoy chip")


@pytest.mark.parametrize("name", script.CHECKS)
@pytest.mark.parametrize("build", sorted(BUILDS))
def test_check(pi, build, name):
    key = "%s/%s" % (build, name)
    assert key in pi.results, pi.explain("check %s never reported" % key)
    ok, why = pi.results[key]
    assert ok, pi.explain("%s: %s" % (key, why))


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_blink_period(pi, build):
    samples = pi.samples.get(build + "-blink", [])
    highs, lows = blink_phases(samples)
    # 2 s of a 300 ms cycle: 6 periods; at least 4 whole ones of each phase.
    assert len(highs) >= 4 and len(lows) >= 4, pi.explain("blink: too few level changes: %r" % samples)
    for got, want, phase in ((statistics.median(highs), script.BLINK_ON_MS, "on"),
                             (statistics.median(lows), script.BLINK_OFF_MS, "off")):
        assert abs(got - want) <= want * BLINK_TOLERANCE, pi.explain(
            "blink %s phase median %.1f ms, want %d ms +-%d%% (highs %r lows %r)"
            % (phase, got, want, BLINK_TOLERANCE * 100, highs, lows))


def _expected_button_flags():
    """The lineinfo flags and debounce the shipped config asks for its button."""
    cfg = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    cfg.read(DEFAULT_CONFIG)
    (section,) = [s for s in cfg.sections() if s.startswith("button ")]
    button = cfg[section]
    assert int(button["gpio"]) == script.BUTTON, "raspi_script.BUTTON is not the default config's button"
    flags = {"used", "input", "edge-rising", "edge-falling"}
    if button.getboolean("active_low", False):
        flags.add("active-low")
    flags.add({"up": "bias-pull-up", "down": "bias-pull-down", "none": "bias-disabled"}[button.get("pull", "none")])
    debounce_ms = int(button.get("debounce_ms", cfg["ledd"].get("debounce_ms", "0")))
    return flags, debounce_ms * 1000


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_button_request_flags_as_the_kernel_reports_them(pi, build):
    """GPIO_V2_GET_LINEINFO_IOCTL on GPIO22: input, both edges, active low, pull-up, 30 ms debounce, by ledd."""
    info = pi.lineinfo.get((build, script.BUTTON))
    assert info, pi.explain("no lineinfo for the button")
    flags, debounce_us = _expected_button_flags()
    assert info["consumer"] == "ledd", pi.explain("button consumer %r" % info)
    assert set(info["flags"].split(",")) == flags, pi.explain("button flags %s, want %s" % (
        info["flags"], ",".join(sorted(flags))))
    assert int(info["debounce_us"]) == debounce_us, pi.explain("button debounce %r, want %d us" % (info, debounce_us))


def test_init_script_is_shellcheck_clean(tmp_path):
    """The generated /init (busybox ash) passes shellcheck as dash (no VM needed)."""
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    init = tmp_path / "init"
    init.write_text(script.init_script(sorted(BUILDS)))
    proc = subprocess.run(["shellcheck", "-s", "dash", "-S", "warning", str(init)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout

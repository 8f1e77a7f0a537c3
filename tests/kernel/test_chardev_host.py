"""Checks of the chardev backend that need no VM: the uAPI ABI on every target, behaviour without GPIO.

The backend pins the sizes of the uAPI v2 structs with _Static_assert (the
ioctl numbers encode them); compiling it for x86_64, aarch64 (Pi OS 64-bit)
and armhf (Pi OS 32-bit) proves they hold on each. The real-kernel behaviour
is in test_gpio_sim.py.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "cdaemon" / "src"
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]
COMPILERS = ["gcc", "clang", "aarch64-linux-gnu-gcc", "arm-linux-gnueabihf-gcc"]


@pytest.mark.parametrize("cc", COMPILERS)
def test_backend_compiles_with_uapi_sizes_pinned(cc, tmp_path):
    if shutil.which(cc) is None:
        pytest.skip("%s not installed (tests/run installs it)" % cc)
    proc = subprocess.run([cc, *CFLAGS, "-c", "-o", str(tmp_path / "gpio_chardev.o"), str(SRC / "gpio_chardev.c")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout


def test_static_asserts_are_real(tmp_path):
    """A wrong pinned size must break the build (the asserts are not dead text)."""
    text = (SRC / "gpio_chardev.c").read_text()
    broken = text.replace("sizeof(struct gpio_v2_line_event) == 48", "sizeof(struct gpio_v2_line_event) == 47")
    assert broken != text, "the gpio_v2_line_event size assert is gone"
    src = tmp_path / "gpio_chardev.c"
    src.write_text(broken)
    proc = subprocess.run(["gcc", *CFLAGS, "-I", str(SRC), "-c", "-o", str(tmp_path / "x.o"), str(src)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode != 0 and "gpio_v2_line_event size" in proc.stdout, proc.stdout


def test_no_libgpiod_no_sysfs():
    text = (SRC / "gpio_chardev.c").read_text()
    assert "gpiod.h" not in text and "/sys/class/gpio" not in text


def test_chardev_without_gpio_says_so(ledd_factory):
    """On a machine without /dev/gpiochip* ledd -b chardev exits with one clear line, no hang."""
    if list(Path("/dev").glob("gpiochip*")):
        pytest.skip("this machine has GPIO chips; the VM test covers the real thing")
    ledd = ledd_factory(backend="chardev").start(wait=False)
    try:
        rc = ledd.proc.wait(10)
    except subprocess.TimeoutExpired:
        ledd.proc.kill()
        pytest.fail("ledd -b chardev kept running without any GPIO chip:\n" + ledd.read_log())
    log = ledd.read_log()
    assert rc != 0, log
    assert "no GPIO chip found with lines GPIO17, GPIO27" in log, log
    assert "pinctrl-bcm2835/bcm2711/rp1" in log and "is this a Raspberry Pi?" in log, log


def test_vm_init_script_is_shellcheck_clean(tmp_path):
    """The generated /init (busybox ash) passes shellcheck as dash, minus what ash adds.

    Excluded: SC3045 (busybox's read has -t) and SC2034 (the chip setup
    snippet sets $X_CHIP/$X_DEV/$X_SYSFS for whoever uses it).
    """
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    import vm_script

    init = tmp_path / "init"
    init.write_text(vm_script.init_script())
    proc = subprocess.run(["shellcheck", "-s", "dash", "-S", "warning", "-e", "SC3045,SC2034", str(init)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout

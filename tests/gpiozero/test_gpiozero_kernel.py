"""A gpiozero script on a real kernel: ledd's chardev backend on gpio-sim, in qemu.

The VM of tests/kernel (Debian's stock kernel, gpio-sim, a busybox initramfs)
gets the real ledd (static, chardev backend, the shipped default wiring) and
Debian's own Python with gpiozero 1.6, the factory registered the way deploy.sh
does it (``--register`` into /usr/local/lib/python3.11/dist-packages, a .pth
pointing at /opt/ledd). The docs example "a button that toggles an LED" runs
unchanged with GPIOZERO_PIN_FACTORY=ledd; the VM presses the button by pulling
the gpio-sim line and reads the LED's line.

Only the Python files the script imports are copied into the VM (found by
importing the same modules on the host), to keep the boot short.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zerostack import ROOT, SYSTEM_PYTHON, examples

sys.path.insert(0, str(ROOT / "tests" / "kernel"))
import kbuild  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.vm]

VM_TIMEOUT_S = 420
SITE = "/usr/local/lib/python3.11/dist-packages"
DIST = "/usr/lib/python3/dist-packages"
# Not anchored at the line start: the console's escape codes may precede the first marker.
RESULT_RE = re.compile(r"LEDD-TEST (PASS|FAIL) ([\w.-]+)(?:: (.*))?$", re.M)
CHECKS = ["ledd-ready", "script-running", "press-toggles-on", "press-toggles-off", "line-held-by-ledd"]

PROBE = r"""
import site, sys
site.addsitedir(sys.argv[1])
import pkg_resources
for entry_point in pkg_resources.iter_entry_points("gpiozero_pin_factories", "ledd"):
    entry_point.load()   # what gpiozero 1.6 does: it parses the dist-info's METADATA too
import gpiozero, gpiozero.pins.pi, gpiozero.pins.data, signal, ledd.gpiozero_factory, ledd.board
for name, module in sorted(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if path:
        print(path)
"""

INIT = r"""#!/bin/sh
echo
@MODULES@
@CHIP@
pass() { echo "LEDD-TEST PASS $1"; }
fail() { echo "LEDD-TEST FAIL $1: $2"; }
value() { cat "$PI_SYSFS/sim_gpio$1/value"; }
pull() { echo "$2" > "$PI_SYSFS/sim_gpio$1/pull"; }
mkdir -p /run/ledd /var/lib/ledd
pull 22 pull-up
/usr/sbin/ledd -c /etc/ledd/ledd.conf -b chardev -r /run/ledd -s /var/lib/ledd/state > /tmp/ledd.log 2>&1 &
i=0; while [ ! -p /run/ledd/ledd.cmd ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if [ -p /run/ledd/ledd.cmd ]; then pass ledd-ready; else fail ledd-ready "no FIFOs"; cat /tmp/ledd.log; fi
cd /opt/scripts
LEDD_RUNTIME_DIR=/run/ledd GPIOZERO_PIN_FACTORY=ledd /usr/bin/python3 button_toggles_led.py > /tmp/script.log 2>&1 &
SCRIPT=$!
# Press (pull the active-low line down) until the script has set its callback and toggles red on.
on=0; i=0
while [ $i -lt 60 ] && [ $on = 0 ]; do
    kill -0 $SCRIPT 2>/dev/null || break
    pull 22 pull-down; sleep 0.5
    [ "$(value 17)" = 1 ] && on=1
    pull 22 pull-up; sleep 0.5
    i=$((i+1))
done
if kill -0 $SCRIPT 2>/dev/null; then pass script-running; else fail script-running "the script ended"; fi
if [ $on = 1 ]; then pass press-toggles-on; else fail press-toggles-on "GPIO17 never went high"; fi
pull 22 pull-down; sleep 1; pull 22 pull-up; sleep 1
if [ "$(value 17)" = 0 ]; then pass press-toggles-off; else fail press-toggles-off "GPIO17=$(value 17) after a second press"; fi
# The line is ledd's: the script holds no GPIO chip of its own.
if ls -l /proc/$SCRIPT/fd 2>/dev/null | grep -q gpiochip; then fail line-held-by-ledd "the script holds a gpiochip";
else pass line-held-by-ledd; fi
echo "--- script output"; cat /tmp/script.log
echo "--- ledd log"; cat /tmp/ledd.log
kill $SCRIPT
echo LEDD-TEST-END
poweroff -f
"""


def python_files(python, site_dir):
    """{VM path: host Path} of the interpreter, its libraries and the modules the script needs."""
    files = {}
    out = subprocess.run([python, "-c", PROBE, str(site_dir)], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout.split()
    packages = set()
    for path in out:
        p = Path(path)
        if str(p).startswith(str(ROOT)):
            continue
        for pkg in ("gpiozero", "colorzero", "pkg_resources", "encodings"):
            if "/%s/" % pkg in str(p):
                packages.add(Path(str(p).split("/%s/" % pkg)[0]) / pkg)
        files[str(p)] = p
    for pkg in packages:
        for f in pkg.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                files[str(f)] = f
    real = Path(os.path.realpath(python))
    files["/usr/bin/python3"] = real
    stdlib = Path(sys.base_prefix if python == sys.executable else "/usr") / "lib" / real.name
    files[str(stdlib / "os.py")] = stdlib / "os.py"  # the landmark Python finds its prefix by
    libs = set()
    for binary in [real] + [Path(p) for p in files if p.endswith(".so")]:
        for line in subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout.splitlines():
            m = re.search(r"(/\S+) \(0x", line)
            if m:
                libs.add(m.group(1))
    for lib in libs:
        files[lib] = Path(os.path.realpath(lib))
    return files


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    for tool in (kbuild.QEMU, "cpio", "apt-get", "ldd"):
        if shutil.which(tool) is None:
            pytest.skip("%s not installed" % tool)
    if not os.path.exists(SYSTEM_PYTHON) or subprocess.run([SYSTEM_PYTHON, "-c", "import gpiozero"]).returncode:
        pytest.skip("no python3-gpiozero under /usr/bin/python3")
    work = tmp_path_factory.mktemp("kernel-gpiozero")
    info = kbuild.build_gpio_sim()
    subprocess.run(["make", "-s", "-C", str(ROOT / "cdaemon"), "STATIC=1", "O=%s" % (work / "build")], check=True)
    site = work / "site"
    site.mkdir()
    subprocess.run([SYSTEM_PYTHON, "-m", "ledd.gpiozero_factory", "--register", str(site), "--home", "/opt/ledd"],
                   cwd=ROOT, check=True, capture_output=True)
    probe_site = work / "probe-site"
    probe_site.mkdir()
    subprocess.run([SYSTEM_PYTHON, "-m", "ledd.gpiozero_factory", "--register", str(probe_site)],
                   cwd=ROOT, check=True, capture_output=True)
    files = python_files(SYSTEM_PYTHON, probe_site)
    for f in site.rglob("*"):
        if f.is_file():
            files["%s/%s" % (SITE, f.relative_to(site))] = f
    for f in (ROOT / "ledd").rglob("*.py"):  # the package with its subpackages (the factory is one)
        if "__pycache__" not in f.parts:
            files["/opt/ledd/ledd/%s" % f.relative_to(ROOT / "ledd")] = f
    files["/usr/sbin/ledd"] = work / "build" / "ledd"
    files["/etc/ledd/ledd.conf"] = ROOT / "cdaemon" / "ledd.conf"
    files["/opt/scripts/button_toggles_led.py"] = examples()["button_toggles_led.py"]
    init = INIT.replace("@MODULES@", kbuild.module_setup_script()).replace(
        "@CHIP@", kbuild.pi_chip_setup_script(decoy=True))
    files["/init"] = init
    image = kbuild.make_initramfs(work / "initramfs.gz", files, info)
    log = work / "console.log"
    boot = kbuild.boot(info["vmlinuz"], image, timeout=VM_TIMEOUT_S, console_log=log, memory_mb=512)
    boot.results = {m.group(2): (m.group(1) == "PASS", m.group(3) or "") for m in RESULT_RE.finditer(boot.console)}
    boot.log = log
    return boot


def test_vm_ran_to_the_end(vm):
    assert not vm.timed_out and "LEDD-TEST-END" in vm.console, vm.console[-8000:]


@pytest.mark.parametrize("name", CHECKS)
def test_gpiozero_script_on_chardev(vm, name):
    assert name in vm.results, "%s never reported (console %s):\n%s" % (name, vm.log, vm.console[-8000:])
    ok, why = vm.results[name]
    assert ok, "%s: %s\n%s" % (name, why, vm.console[-8000:])

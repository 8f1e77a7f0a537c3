"""The virtual Pi's shared parts for tests/deploy/test_vm.py: one boot, the simulated header,
deploy.sh as the Pi's login user, and steps that fail with the guest's journal.

The test module boots its own virtual Pi (``boot()`` in a module fixture); tests/run runs it
beside the rest of the suite, one qemu on one core.
"""

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import requests

from vm import VM, ensure_image
import waiting

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kernel"))
import kbuild  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_IGNORE = (".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", "obj", "build", "run", "*.o",
                   "board.json")
SHARE = "/mnt/src"
ADMIN = "pi"         # the login user who runs `sudo ./deploy.sh`
XFER = "/mnt/xfer"
DEPLOY_TIMEOUT_S = 900
LED_GPIO = 17        # [led red] in cdaemon/ledd.conf, id 0
BUTTON_GPIO = 22     # [button button], active low with pull-up
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def cache_dir():
    return Path(os.environ.get("LEDD_CACHE_DIR") or Path.home() / ".cache" / "ledd-tests")


class Pi:
    """The booted virtual Pi plus what the scenario learns on the way."""

    def __init__(self, vm):
        self.vm = vm
        self.password = None
        self.sysfs = None
        self.port = 80

    def sh(self, script, timeout=120):
        return self.vm.check(script, timeout)

    def line_value(self, gpio):
        return int(self.sh("cat %s/sim_gpio%d/value" % (self.sysfs, gpio)).strip())

    def pull(self, gpio, direction):
        self.sh("echo pull-%s > %s/sim_gpio%d/pull" % (direction, self.sysfs, gpio))

    def url(self, path, port=80):
        return "http://127.0.0.1:%d%s" % (self.vm.ports[port], path)

    def api(self, method, path, body=None, auth=True):
        return requests.request(method, self.url(path, self.port), json=body, timeout=15,
                                auth=("ledd", self.password) if auth else None)

    def main_pid(self, unit):
        return int(self.sh("systemctl show -p MainPID --value %s" % unit).strip())

    def diagnostics(self):
        parts = []
        try:
            parts.append(self.vm.run("journalctl -b --no-pager -o short-monotonic | tail -n 250", timeout=60)[1])
        except Exception as e:  # the guest may be gone
            parts.append("(no journal: %s)" % e)
        parts.append("--- console ---\n" + self.vm.console(tail=60))
        parts.append("(every guest command with its output: %s/agent.log, kept in "
                     "$LEDD_CACHE_DIR/vpi-last-run-NAME/ after the run)" % self.vm.workdir)
        return "\n".join(parts)

def boot(tmp_path_factory, name):
    """Boot a virtual Pi for one test module (a generator for a module fixture)."""
    cache = cache_dir()
    kernel = kbuild.build_gpio_sim(cache)
    image = ensure_image(cache, kver=kernel["kver"])
    workdir = tmp_path_factory.mktemp("vpi-" + name)
    # A snapshot of the checkout: edits made while the VM runs cannot reach it.
    src = workdir / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(*SNAPSHOT_IGNORE))
    vm = VM(image, workdir, share=src)
    (workdir / "xfer").mkdir()
    (workdir / "xfer" / "gpio-sim.ko").write_bytes(Path(kernel["gpio_sim_ko"]).read_bytes())
    try:
        vm.start()
        yield Pi(vm)
    finally:
        vm.powerdown()  # also when the boot failed: never leave a qemu behind
        vm.keep_logs(cache / ("vpi-last-run-" + name))


def step(pi, what, fn):
    """Run one scenario step; on failure, fail with the guest's journal and console attached."""
    try:
        return fn()
    except Exception as e:
        pytest.fail("%s: %s\n\n%s" % (what, e, pi.diagnostics()), pytrace=True)


def wait_for(predicate, timeout, what):
    """The suite's wait_for, at a guest's pace; any error means "not yet" (e.g. connection refused during a restart)."""
    return waiting.wait_for(predicate, timeout, what, interval=0.5, ignore=(Exception,))


#: The virtual Pi's GPIO header as a boot service, so that it is there from boot on, as on a real Pi
#: (ledd.service finds it at boot, and again after a reboot). Part of the image under test, not of deploy.sh.
GPIO_UNIT = """[Unit]
Description=The virtual Pi's GPIO header (gpio-sim)
Before=ledd.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh /usr/local/lib/vpi/gpio.sh

[Install]
WantedBy=multi-user.target
"""
GPIO_ENV = "/run/vpi-gpio.env"


def mount_shares(pi):
    """The checkout snapshot (read-only) and the scratch directory, again after each boot."""
    pi.sh("mkdir -p %s %s\n"
          "mountpoint -q %s || mount -t 9p -o trans=virtio,version=9p2000.L,ro src %s\n"
          "mountpoint -q %s || mount -t 9p -o trans=virtio,version=9p2000.L xfer %s\n"
          % (SHARE, XFER, SHARE, SHARE, XFER, XFER))


def read_gpio_env(pi, timeout=180):
    """Where this boot's simulated header is in sysfs (the boot service writes it down; after a
    reboot the agent may answer before that service has finished, so wait for it)."""
    out = pi.sh("timeout %d sh -c 'until [ -s %s ]; do sleep 0.5; done'; cat %s" % (timeout, GPIO_ENV, GPIO_ENV),
                timeout=timeout + 30)
    match = re.search(r"SYSFS=(\S+) DEV=(\S+)", out)
    assert match, "no %s" % GPIO_ENV
    pi.sysfs = match.group(1)
    assert match.group(2) != "/dev/gpiochip0", "the decoy chip should come first"


def setup_gpio(pi):
    mount_shares(pi)
    script = ("set -e\nmodprobe configfs\n"
              "mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config\n"
              "insmod /usr/local/lib/vpi/gpio-sim.ko\n"
              + kbuild.pi_chip_setup_script(decoy=True)
              + 'echo "SYSFS=$PI_SYSFS DEV=$PI_DEV" >%s\n' % GPIO_ENV)
    (pi.vm.xfer / "vpi-gpio.sh").write_text(script)
    (pi.vm.xfer / "vpi-gpio.service").write_text(GPIO_UNIT)
    pi.sh("install -D -m 0644 %s/gpio-sim.ko /usr/local/lib/vpi/gpio-sim.ko\n"
          "install -m 0644 %s/vpi-gpio.sh /usr/local/lib/vpi/gpio.sh\n"
          "install -m 0644 %s/vpi-gpio.service /etc/systemd/system/vpi-gpio.service\n"
          "systemctl daemon-reload && systemctl enable --now --quiet vpi-gpio.service\n" % (XFER, XFER, XFER))
    read_gpio_env(pi)


def add_admin(pi):
    """A login user with sudo, like the Pi's own user: deploy.sh is run by it, through sudo."""
    pi.sh("useradd -m -s /bin/bash %s\n"
          "echo '%s ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/%s\n" % (ADMIN, ADMIN, ADMIN))


def deploy(pi, *args, env="", check=True, stdin=None):
    """``sudo [env ...] ./deploy.sh ARGS`` as the admin user (``stdin``: a line on its stdin);
    returns (status, output)."""
    feed = "printf '%%s\\n' %s | " % shlex.quote(stdin) if stdin is not None else ""
    rc, out = pi.vm.run("cd %s && %srunuser -u %s -- sudo %s ./deploy.sh %s"
                        % (SHARE, feed, ADMIN, ("env " + env) if env else "", " ".join(args)), timeout=DEPLOY_TIMEOUT_S)
    if check:
        assert rc == 0, "deploy.sh %s exited %d; its last lines:\n%s" % (
            " ".join(args), rc, "\n".join(out.splitlines()[-60:]))
        return out
    return rc, out

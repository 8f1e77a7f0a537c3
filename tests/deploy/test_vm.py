"""The virtual Pi: `sudo ./deploy.sh` on a real Debian with systemd, apt, lighttpd and kernel GPIO.

One long scenario (each step needs the previous one), in a qemu VM (TCG, no
KVM) booted from a cached Debian bookworm image (vm.py, vmimage.sh):

1. load gpio-sim (tests/kernel/kbuild.py, built for the same kernel) and make
   a Pi-like chip (label pinctrl-bcm2711, lines GPIO0..GPIO31) after a decoy;
2. run deploy.sh from a read-only 9p share of the checkout, as user pi via sudo;
3. ledd and lighttpd active, the system "running";
4. from the host, through the forwarded port, with the printed credentials:
   the state API (backend chardev), an LED switched on shows on the simulated
   line, a button pulled low shows as a press in the API and in Chromium;
   ledctl works for pi (added to group ledd), not for other users;
5. `systemctl kill -s KILL ledd`: systemd restarts it, the LED comes back on;
6. deploy.sh again: nothing changed, nothing restarted;
7. deploy.sh --uninstall: service, user, files gone, lighttpd's own site back.

Any failure carries the guest's journal and console. Typical time: ~4 min
with the base image cached, +5-8 min to build it (docs/deploy.md).
"""

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
import requests

from vm import VM, ensure_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kernel"))
import kbuild  # noqa: E402

pytestmark = pytest.mark.slow

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

    def sh(self, script, timeout=120):
        return self.vm.check(script, timeout)

    def line_value(self, gpio):
        return int(self.sh("cat %s/sim_gpio%d/value" % (self.sysfs, gpio)).strip())

    def pull(self, gpio, direction):
        self.sh("echo pull-%s > %s/sim_gpio%d/pull" % (direction, self.sysfs, gpio))

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.vm.http_port, path)

    def api(self, method, path, body=None, auth=True):
        return requests.request(method, self.url(path), json=body, timeout=15,
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
                     "$LEDD_CACHE_DIR/vpi-last-run/ after the run)" % self.vm.workdir)
        return "\n".join(parts)


@pytest.fixture(scope="module")
def pi(tmp_path_factory):
    cache = cache_dir()
    kernel = kbuild.build_gpio_sim(cache)
    image = ensure_image(cache, kver=kernel["kver"])
    workdir = tmp_path_factory.mktemp("vpi")
    # A snapshot of the checkout: edits made while the VM runs cannot reach it.
    src = workdir / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(*SNAPSHOT_IGNORE))
    vm = VM(image, workdir, share=src)
    (workdir / "xfer").mkdir()
    (workdir / "xfer" / "gpio-sim.ko").write_bytes(Path(kernel["gpio_sim_ko"]).read_bytes())
    vm.start()
    pi = Pi(vm)
    yield pi
    vm.powerdown()
    vm.keep_logs(cache / "vpi-last-run")


def step(pi, what, fn):
    """Run one scenario step; on failure, fail with the guest's journal and console attached."""
    try:
        return fn()
    except Exception as e:
        pytest.fail("%s: %s\n\n%s" % (what, e, pi.diagnostics()), pytrace=True)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # e.g. connection refused during a restart
            last = e
        time.sleep(0.5)
    raise AssertionError("%s: not within %ss (last: %r)" % (what, timeout, last))


def setup_gpio(pi):
    pi.sh("mkdir -p %s %s\n"
          "mount -t 9p -o trans=virtio,version=9p2000.L,ro src %s\n"
          "mount -t 9p -o trans=virtio,version=9p2000.L xfer %s\n" % (SHARE, XFER, SHARE, XFER))
    pi.sh("modprobe configfs\n"
          "mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config\n"
          "insmod %s/gpio-sim.ko\n" % XFER)
    out = pi.sh(kbuild.pi_chip_setup_script(decoy=True) + 'echo "SYSFS=$PI_SYSFS DEV=$PI_DEV"\n')
    match = re.search(r"SYSFS=(\S+) DEV=(\S+)", out)
    assert match, out
    pi.sysfs = match.group(1)
    assert match.group(2) != "/dev/gpiochip0", "the decoy chip should come first"


def add_admin(pi):
    """A login user with sudo, like the Pi's own user: deploy.sh is run by it, through sudo."""
    pi.sh("useradd -m -s /bin/bash %s\n"
          "echo '%s ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/%s\n" % (ADMIN, ADMIN, ADMIN))


def deploy(pi, *args):
    rc, out = pi.vm.run("cd %s && runuser -u %s -- sudo ./deploy.sh %s" % (SHARE, ADMIN, " ".join(args)),
                        timeout=DEPLOY_TIMEOUT_S)
    assert rc == 0, "deploy.sh %s exited %d; its last lines:\n%s" % (
        " ".join(args), rc, "\n".join(out.splitlines()[-60:]))
    return out


def test_virtual_pi(pi):
    step(pi, "gpio-sim setup", lambda: setup_gpio(pi))
    step(pi, "admin user", lambda: add_admin(pi))

    # -- first install ------------------------------------------------------------
    out = step(pi, "first deploy", lambda: deploy(pi))
    match = re.search(r"user: ledd  password: (\S+)", out)
    assert match, "no credentials printed:\n" + out
    pi.password = match.group(1)
    assert "health check: the API answers through lighttpd: backend chardev" in out, out

    def services_up():
        assert pi.sh("systemctl is-active ledd lighttpd").split() == ["active", "active"]
        rc, state = pi.vm.run("systemctl is-system-running --wait", timeout=120)
        assert state.strip() == "running", state + pi.sh("systemctl --failed --no-pager")
    step(pi, "services", services_up)

    # -- the API from the host, auth on -----------------------------------------------
    def api_state():
        assert pi.api("GET", "/api/state", auth=False).status_code == 401
        r = pi.api("GET", "/api/state")
        assert r.status_code == 200, r.text
        state = r.json()
        assert state["backend"] == "chardev"
        assert [(led["name"], led["gpio"]) for led in state["leds"]] == [("red", 17), ("green", 27)]
        return state
    step(pi, "GET /api/state", api_state)

    def led_on():
        assert pi.line_value(LED_GPIO) == 0
        r = pi.api("POST", "/api/leds/0", {"on": True})
        assert r.status_code == 200 and r.json()["leds"][0]["on"] is True, r.text
        assert pi.line_value(LED_GPIO) == 1
        pi.api("POST", "/api/leds/0", {"on": False})
        assert pi.line_value(LED_GPIO) == 0
        pi.api("POST", "/api/leds/0", {"on": True})
        assert pi.line_value(LED_GPIO) == 1
    step(pi, "LED on the simulated line", led_on)

    def ledctl_as_admin():
        # deploy.sh put the sudo user in group ledd: a new login (ssh) can use ledctl on the FIFOs.
        assert "ledd" in pi.sh("id -nG %s" % ADMIN).split()
        pi.sh("runuser -u %s -- ledctl on green" % ADMIN)
        assert pi.line_value(27) == 1
        state = json.loads(pi.sh("runuser -u %s -- ledctl -j status" % ADMIN))
        assert state["leds"][1]["on"] is True and state["backend"] == "chardev"
        pi.sh("runuser -u %s -- ledctl off green" % ADMIN)
        assert pi.line_value(27) == 0
        rc, out = pi.vm.run("runuser -u nobody -- ledctl status")  # not in the group
        assert rc != 0, out
    step(pi, "ledctl over the FIFOs as the admin user", ledctl_as_admin)

    step(pi, "button press in the API and in Chromium", lambda: button_press_in_browser(pi))

    # -- crash recovery -------------------------------------------------------------------
    def kill_and_restart():
        old = pi.main_pid("ledd")
        pi.sh("systemctl kill -s KILL ledd")
        wait_for(lambda: pi.main_pid("ledd") not in (0, old) and
                 pi.sh("systemctl is-active ledd").strip() == "active", 30, "ledd restarted by systemd")
        assert int(pi.sh("systemctl show -p NRestarts --value ledd").strip()) >= 1
        wait_for(lambda: pi.api("GET", "/api/state").json()["leds"][0]["on"] is True, 20, "LED state restored")
        assert pi.line_value(LED_GPIO) == 1
    step(pi, "systemctl kill -s KILL ledd", kill_and_restart)

    # -- second run: idempotent -----------------------------------------------------------
    def second_run():
        pids = pi.main_pid("ledd"), pi.main_pid("lighttpd")
        stamp = pi.sh("find /opt/ledd /etc/ledd /etc/systemd/system/ledd.service /usr/local/sbin/ledd "
                      "-printf '%p %T@\\n' | sort")
        out = deploy(pi)
        assert "nothing changed" in out and "nothing restarted" in out, out
        assert "password:" in out and pi.password not in out
        assert (pi.main_pid("ledd"), pi.main_pid("lighttpd")) == pids
        assert pi.sh("find /opt/ledd /etc/ledd /etc/systemd/system/ledd.service /usr/local/sbin/ledd "
                     "-printf '%p %T@\\n' | sort") == stamp
    step(pi, "second deploy", second_run)

    # -- uninstall -----------------------------------------------------------------------------
    def uninstall():
        out = deploy(pi, "--uninstall")
        assert "uninstalled" in out, out
        rc, _ = pi.vm.run("systemctl cat ledd.service")
        assert rc != 0, "ledd.service still known"
        for what in ("id ledd", "getent group ledd", "test -e /opt/ledd", "test -e /usr/local/sbin/ledd",
                     "test -e /usr/local/bin/ledctl", "test -e /etc/systemd/system/lighttpd.service.d/ledd.conf",
                     "test -e /etc/ledd/web", "test -e /etc/udev/rules.d/60-ledd-gpio.rules"):
            assert pi.vm.run(what)[0] != 0, "still there after --uninstall: " + what
        assert pi.vm.run("test -f /etc/ledd/ledd.conf && test -f /var/lib/ledd/state")[0] == 0, \
            "config and state must be kept without --purge"
        # lighttpd runs Debian's own, untouched configuration again.
        assert "/etc/lighttpd/lighttpd.conf" in pi.sh("systemctl show -p ExecStart --value lighttpd")
        pi.sh("dpkg-query -W -f='${Conffiles}\\n' lighttpd | awk '$1 == \"/etc/lighttpd/lighttpd.conf\" "
              "{print $2 \"  \" $1}' | md5sum -c -")
        assert pi.sh("systemctl is-active lighttpd").strip() == "active"
        # (a list: a 404 Response is falsy)
        r = wait_for(lambda: [requests.get(pi.url("/api/state"), timeout=10)], 30, "lighttpd answers")[0]
        assert r.status_code == 404 and "WWW-Authenticate" not in r.headers
    step(pi, "uninstall", uninstall)


def button_press_in_browser(pi):
    from playwright.sync_api import sync_playwright

    before = pi.api("GET", "/api/state").json()["buttons"][0]
    assert before["pressed"] is False
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(http_credentials={"username": "ledd", "password": pi.password})
            page = context.new_page()
            page.goto(pi.url("/"))
            card = page.locator("#buttons li.button").first
            card.locator(".presses").wait_for()
            page.wait_for_function("document.querySelector('#buttons .presses').textContent === '%d'"
                                   % before["presses"], timeout=20000)
            pi.pull(BUTTON_GPIO, "down")   # active low: pressed
            page.wait_for_function("document.querySelector('#buttons li.button').dataset.pressed === 'true'",
                                   timeout=20000)
            pi.pull(BUTTON_GPIO, "up")
            page.wait_for_function("document.querySelector('#buttons .presses').textContent === '%d'"
                                   % (before["presses"] + 1), timeout=20000)
        finally:
            browser.close()
    after = pi.api("GET", "/api/state").json()["buttons"][0]
    assert after["presses"] == before["presses"] + 1 and after["pressed"] is False, after

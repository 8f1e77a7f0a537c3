"""The virtual Pi: `sudo ./deploy.sh` on a real Debian with systemd, apt, lighttpd and kernel GPIO.

One long scenario in one boot (each step needs the previous one's system), in a
qemu VM (TCG, no KVM) booted from a cached Debian bookworm image (vm.py, vmimage.sh):

1. gpio-sim makes a Pi-like chip after a decoy; a login user `pi` with sudo;
2. a Pi with a life: Debian's lighttpd serves the owner's page on :80;
3. a plain deploy is refused (port 80 named, --port suggested) and changes nothing;
   a first install failing at the health check (LEDD_DEPLOY_FAIL_AT) and one killed
   by SIGTERM midway (LEDD_DEPLOY_PAUSE_AT) are both rolled back: the listing of
   /etc, /opt, /usr/local, enabled units, packages, users and groups is unchanged;
4. the install on --port 8080 next to the owner's page (which never changes):
   ledd-web as its own user on IPv4 and IPv6, the API, LEDs, ledctl, a button in
   Chromium, ledd killed and restarted by systemd;
5. a re-run keeps port 8080 and changes nothing; the password is in no file and no
   journal line; a broken config makes `systemctl reload ledd` fail, the old wiring
   works on; a failed and an interrupted upgrade leave the old install running;
6. /opt/ledd/deploy.sh --uninstall, then --purge --yes: back to the listing of step 2.

The second test, on the same boot: an install by the older deploy.sh upgraded by
a plain run (choices, config and state kept), --tls, --mqtt against a broker on
the host (Home Assistant discovery, a command over MQTT), a reboot (the header,
the units, the LEDs, HTTPS and the bridge come back), a failed --no-mqtt (the
bridge comes back, its user too), and --purge.

Any failure carries the guest's journal and console.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from vm import VM, ensure_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kernel"))
import kbuild  # noqa: E402
# The MQTT broker on the host (appended: no module of tests/mqtt shadows one of ours).
sys.path.append(str(Path(__file__).resolve().parents[1] / "mqtt"))
import mqttstack  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_IGNORE = (".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", "obj", "build", "run", "*.o",
                   "board.json")
#: The last version of deploy.sh that ran the site through a drop-in for Debian's lighttpd.service.
OLD_TREE_COMMIT = "7ab5113"
SHARE = "/mnt/src"
ADMIN = "pi"         # the login user who runs `sudo ./deploy.sh`
XFER = "/mnt/xfer"
DEPLOY_TIMEOUT_S = 900
LED_GPIO = 17        # [led red] in cdaemon/ledd.conf, id 0
BUTTON_GPIO = 22     # [button button], active low with pull-up
#: The host's loopback as the guest sees it (slirp): the test broker listens on 127.0.0.1 there.
HOST_FROM_GUEST = "10.0.2.2"
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
    # The older tree for the upgrade scenario, from git (the snapshot has no .git).
    old = workdir / "xfer" / "old"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_TREE_COMMIT], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
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


def read_gpio_env(pi):
    """Where this boot's simulated header is in sysfs (the boot service wrote it down)."""
    match = re.search(r"SYSFS=(\S+) DEV=(\S+)", pi.sh("cat %s" % GPIO_ENV))
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


#: What "the system" is for the before/after comparisons: files under /etc and /opt, enabled units,
#: installed packages, users and groups. (Logs, caches and /var/lib are not part of it.)
LISTING = ("find /etc /opt /usr/local -xdev ! -path '/etc/ld.so.cache' ! -path '/etc/machine-id' "
           "! -path '/etc/.pwd.lock' ! -name '*-' | sort; echo ---; "
           "systemctl list-unit-files --state=enabled --no-legend | awk '{print $1}' | sort; echo ---; "
           "dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' | awk '$1 == \"ii\" {print $2}' | sort; echo ---; "
           "cut -d: -f1 /etc/passwd | sort; cut -d: -f1,4 /etc/group | sort")


def listing(pi):
    return pi.sh(LISTING, timeout=120)


def assert_same_listing(before, after, what):
    if before != after:
        import difflib
        diff = "\n".join(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0))
        raise AssertionError("%s: the system differs:\n%s" % (what, diff))


def debian_page(pi):
    """Debian's own lighttpd site on :80 (status, body)."""
    r = requests.get(pi.url("/"), timeout=15)
    return r.status_code, r.text


def prepare(pi):
    """gpio-sim and the admin user, once per boot (each test may run alone)."""
    if pi.sysfs is None:
        step(pi, "gpio-sim setup", lambda: setup_gpio(pi))
        step(pi, "admin user", lambda: add_admin(pi))


def test_virtual_pi(pi):
    prepare(pi)

    # -- a Pi with a life: Debian's lighttpd already serves a site on :80 ----------------------
    def existing_site():
        pi.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lighttpd "
              ">/tmp/apt.log 2>&1 || { tail /tmp/apt.log; exit 1; }\n"
              "echo '<h1>the owner site</h1>' > /var/www/html/index.html", timeout=600)
        return wait_for(lambda: debian_page(pi)[0] == 200 and debian_page(pi), 60, "Debian's site answers")
    page = step(pi, "existing lighttpd site", existing_site)
    assert "the owner site" in page[1]
    before = step(pi, "listing", lambda: listing(pi))

    def port_taken():
        rc, out = deploy(pi, check=False)
        assert rc != 0, out
        assert re.search(r"port 80 is in use by lighttpd \(pid \d+, lighttpd.service\); nothing was changed", out), out
        assert "--port 8080" in out, out
        assert_same_listing(before, listing(pi), "after the refused run")
        assert debian_page(pi) == page
    step(pi, "port taken: refused before any change", port_taken)

    def failed_first_install():
        rc, out = deploy(pi, "--port", "8080", env="LEDD_DEPLOY_FAIL_AT=health", check=False)
        assert rc != 0 and "test hook: step health fails" in out, out
        assert "rolled back" in out, out
        assert_same_listing(before, listing(pi), "after a failed first install")
        assert debian_page(pi) == page
    step(pi, "first install fails at the health check: rolled back", failed_first_install)

    def interrupted_first_install():
        sigterm_midway(pi, "--port 8080", "services")
        assert_same_listing(before, listing(pi), "after SIGTERM during a first install")
        assert debian_page(pi) == page
    step(pi, "first install killed by SIGTERM midway: rolled back", interrupted_first_install)

    # -- first install, next to the owner's site ---------------------------------------------------
    out = step(pi, "first deploy", lambda: deploy(pi, "--port", "8080"))
    match = re.search(r"user: ledd  password: (\S+)", out)
    assert match, "no credentials printed:\n" + out
    pi.password = match.group(1)
    pi.port = 8080
    assert "health check: the API answers through the web server: backend chardev" in out, out
    assert "Basic auth without TLS" in out
    assert debian_page(pi) == page

    def services_up():
        assert pi.sh("systemctl is-active ledd ledd-web lighttpd").split() == ["active"] * 3
        rc, state = pi.vm.run("systemctl is-system-running --wait", timeout=120)
        assert state.strip() == "running", state + pi.sh("systemctl --failed --no-pager")
        assert pi.sh("ps -o user= -p $(systemctl show -p MainPID --value ledd-web)").strip() == "ledd-web"
        assert "ledd" not in pi.sh("id -nG www-data").split()  # other web apps cannot reach the FIFOs
        listen = pi.sh("ss -Htln 'sport = :8080'")
        assert "0.0.0.0:8080" in listen and "[::]:8080" in listen, listen
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
    step(pi, "LED on the simulated line", led_on)

    def ledctl_as_admin():
        assert "ledd" in pi.sh("id -nG %s" % ADMIN).split()
        pi.sh("runuser -u %s -- ledctl on green" % ADMIN)
        assert pi.line_value(27) == 1
        pi.sh("runuser -u %s -- ledctl off green" % ADMIN)
        assert pi.line_value(27) == 0
        rc, out = pi.vm.run("runuser -u nobody -- ledctl status")  # not in the group
        assert rc != 0, out
    step(pi, "ledctl over the FIFOs as the admin user", ledctl_as_admin)

    step(pi, "button press in the API and in Chromium", lambda: button_press_in_browser(pi))

    def kill_and_restart():
        old = pi.main_pid("ledd")
        pi.sh("systemctl kill -s KILL ledd")
        wait_for(lambda: pi.main_pid("ledd") not in (0, old) and
                 pi.sh("systemctl is-active ledd").strip() == "active", 30, "ledd restarted by systemd")
        wait_for(lambda: pi.api("GET", "/api/state").json()["leds"][0]["on"] is True, 20, "LED state restored")
        assert pi.line_value(LED_GPIO) == 1
    step(pi, "systemctl kill -s KILL ledd", kill_and_restart)

    # -- second run: remembered choices, idempotent -------------------------------------------
    def second_run():
        pids = pi.main_pid("ledd"), pi.main_pid("ledd-web")
        out = deploy(pi)
        assert "settings kept from the last run" in out and "port=8080" in out, out
        assert "nothing changed" in out and "nothing restarted" in out, out
        assert pi.password not in out
        assert (pi.main_pid("ledd"), pi.main_pid("ledd-web")) == pids
        assert debian_page(pi) == page
    step(pi, "second deploy", second_run)

    def password_nowhere():
        rc, out = pi.vm.run("grep -rlF -- '%s' /var/log /etc /opt /root /home /var/lib /tmp 2>/dev/null; "
                            "journalctl -b --no-pager | grep -cF -- '%s'" % (pi.password, pi.password))
        assert out.strip() == "0", "the password is on disk or in the journal:\n" + out
        assert pi.sh("cut -d: -f2 /etc/ledd/web/htpasswd").startswith("$2y$")
    step(pi, "the password is in no file and no journal line", password_nowhere)

    def reload_broken_config():
        pi.sh("cp /etc/ledd/ledd.conf /root/ledd.conf.good && printf '\\n[led bad]\\ngpio = banana\\n' >> /etc/ledd/ledd.conf")
        assert pi.vm.run("systemctl reload ledd")[0] != 0, "reload of a broken config succeeded"
        assert "/etc/ledd/ledd.conf:" in pi.sh("journalctl -u ledd -n 10 --no-pager")  # ledd's file:line
        assert pi.sh("systemctl is-active ledd").strip() == "active"
        r = pi.api("POST", "/api/leds/0", {"on": False})
        assert r.status_code == 200 and pi.line_value(LED_GPIO) == 0
        pi.sh("cp /root/ledd.conf.good /etc/ledd/ledd.conf && rm /root/ledd.conf.good && systemctl reload ledd")
    step(pi, "systemctl reload ledd with a broken config", reload_broken_config)

    def failed_upgrade():
        installed = listing(pi)
        conf = pi.sh("cat /etc/ledd/deploy.conf /etc/ledd/web/web.env /etc/ledd/web/auth.conf")
        rc, out = deploy(pi, "--port", "8081", env="LEDD_DEPLOY_FAIL_AT=health", check=False)
        assert rc != 0 and "rolled back" in out, out
        assert_same_listing(installed, listing(pi), "after a failed upgrade")
        assert pi.sh("cat /etc/ledd/deploy.conf /etc/ledd/web/web.env /etc/ledd/web/auth.conf") == conf
        wait_for(lambda: pi.api("GET", "/api/state").status_code == 200, 30, "the old dashboard answers")
        sigterm_midway(pi, "--no-auth", "health")
        assert_same_listing(installed, listing(pi), "after SIGTERM during an upgrade")
        wait_for(lambda: pi.api("GET", "/api/state").status_code == 200, 30, "the old dashboard answers")
        assert pi.api("GET", "/api/state", auth=False).status_code == 401
    step(pi, "failed and interrupted upgrades: the old install keeps running", failed_upgrade)

    # -- uninstall, then purge -------------------------------------------------------------------
    def uninstall():
        out = pi.vm.check("/opt/ledd/deploy.sh --uninstall", timeout=DEPLOY_TIMEOUT_S)  # no checkout needed
        assert "uninstalled" in out, out
        for what in ("systemctl cat ledd.service", "systemctl cat ledd-web.service", "id ledd", "id ledd-web",
                     "getent group ledd", "test -e /opt/ledd", "test -e /usr/local/sbin/ledd",
                     "test -e /usr/local/bin/ledctl", "test -e /etc/ledd/web"):
            assert pi.vm.run(what)[0] != 0, "still there after --uninstall: " + what
        assert pi.vm.run("test -f /etc/ledd/ledd.conf && test -f /var/lib/ledd/state")[0] == 0
        assert debian_page(pi) == page  # the owner's site never moved
        assert pi.sh("systemctl is-enabled lighttpd; systemctl is-active lighttpd").split() == ["enabled", "active"]
    step(pi, "uninstall", uninstall)

    def purge():
        out = pi.vm.check("cd %s && ./deploy.sh --uninstall --purge --yes" % SHARE, timeout=DEPLOY_TIMEOUT_S)
        assert "apt-get purge" in out, out
        assert_same_listing(before, listing(pi), "after --uninstall --purge")
        assert pi.vm.run("test -e /var/log/ledd-deploy.log || test -e /var/lib/ledd")[0] != 0
        assert debian_page(pi) == page
    step(pi, "purge", purge)


def sigterm_midway(pi, args, step_name):
    """Start deploy.sh paused before STEP_NAME, send it SIGTERM there, and check that it rolled back."""
    pi.sh("cd %s && (setsid env LEDD_DEPLOY_PAUSE_AT=%s ./deploy.sh %s >/root/deploy-bg.log 2>&1 & "
          "echo $! >/root/deploy-bg.pid)" % (SHARE, step_name, args))
    wait_for(lambda: "test hook: pausing before step %s" % step_name in pi.sh("cat /root/deploy-bg.log"),
             DEPLOY_TIMEOUT_S, "deploy.sh reaches step " + step_name)
    pid = re.search(r"pausing before step \S+ \(pid (\d+)\)", pi.sh("cat /root/deploy-bg.log")).group(1)
    pi.sh("kill -TERM %s" % pid)
    wait_for(lambda: pi.vm.run("kill -0 %s" % pid)[0] != 0, 600, "deploy.sh ends after SIGTERM")
    out = pi.sh("cat /root/deploy-bg.log; rm -f /root/deploy-bg.log /root/deploy-bg.pid")
    assert "interrupted by SIGTERM" in out and "rolled back" in out, out


def button_press_in_browser(pi):
    from playwright.sync_api import sync_playwright

    before = pi.api("GET", "/api/state").json()["buttons"][0]
    assert before["pressed"] is False
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(http_credentials={"username": "ledd", "password": pi.password})
            page = context.new_page()
            page.goto(pi.url("/", pi.port))
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


def test_upgrade_from_the_drop_in_version_then_tls(pi):
    """An install by the older deploy.sh (lighttpd drop-in, --port 8081 --no-auth, rewired), upgraded
    by a plain run of this one: port, auth mode, config and LED state are kept, and Debian's lighttpd
    gets its own site back. Then --tls: HTTPS with the generated certificate, HTTP redirects."""
    prepare(pi)
    old = XFER + "/old"
    pi.sh("systemctl is-active lighttpd || (DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
          "--no-install-recommends lighttpd >/tmp/apt.log 2>&1)", timeout=600)
    pi.port, pi.password = 8081, None

    def old_install():
        rc, out = pi.vm.run("cd %s && runuser -u %s -- sudo ./deploy.sh --port 8081 --no-auth" % (old, ADMIN),
                            timeout=DEPLOY_TIMEOUT_S)
        assert rc == 0, out[-3000:]
        assert pi.vm.run("test -f /etc/systemd/system/lighttpd.service.d/ledd.conf")[0] == 0
        # The owner rewires: green moves to GPIO 5 (reload), and switches it on.
        pi.sh("sed -i 's/^gpio = 27$/gpio = 5/' /etc/ledd/ledd.conf && systemctl reload ledd")
        wait_for(lambda: [led["gpio"] for led in pi.api("GET", "/api/state", auth=False).json()["leds"]] == [17, 5],
                 30, "the new wiring")
        assert pi.api("POST", "/api/leds/1", {"on": True}, auth=False).status_code == 200
        assert pi.line_value(5) == 1
    step(pi, "install by the older deploy.sh", old_install)
    conf = pi.sh("md5sum /etc/ledd/ledd.conf")

    def upgrade():
        out = deploy(pi)
        assert "taken over from the previous install (port 8081, auth none)" in out, out
        assert "password:" not in out  # --no-auth kept: no new random password
        assert pi.sh("md5sum /etc/ledd/ledd.conf") == conf
        assert pi.vm.run("test -e /etc/systemd/system/lighttpd.service.d/ledd.conf")[0] != 0
        assert pi.sh("systemctl is-active ledd ledd-web lighttpd").split() == ["active"] * 3
        state = wait_for(lambda: pi.api("GET", "/api/state", auth=False).json(), 30, "the API on 8081, no auth")
        assert [led["gpio"] for led in state["leds"]] == [17, 5] and state["leds"][1]["on"] is True
        assert pi.line_value(5) == 1
        assert "/etc/lighttpd/lighttpd.conf" in pi.sh("systemctl show -p ExecStart --value lighttpd")
        assert requests.get(pi.url("/"), timeout=15).status_code == 200  # Debian's own site on :80 again
        assert "port=8081" in pi.sh("cat /etc/ledd/deploy.conf")
    step(pi, "plain upgrade keeps port, auth, config and state", upgrade)

    def tls():
        out = deploy(pi, "--tls", "--port", "443", "--redirect-port", "8081")
        fingerprint = re.search(r"SHA-256 fingerprint: ([0-9A-F:]{95})", out)
        assert fingerprint, out
        pi.sh("cp /etc/ledd/web/tls/cert.pem %s/cert.pem" % XFER)
        cert = str(Path(pi.vm.xfer) / "cert.pem")
        r = wait_for(lambda: requests.get("https://127.0.0.1:%d/api/state" % pi.vm.ports[443], verify=cert,
                                          timeout=15), 30, "HTTPS answers")
        assert r.status_code == 200 and r.json()["leds"][1]["on"] is True
        r = requests.get(pi.url("/api/state?x=1", 8081), allow_redirects=False, timeout=15)
        assert r.status_code == 308 and r.headers["Location"] == "https://127.0.0.1/api/state?x=1", r.headers
        kept = deploy(pi)  # TLS is remembered too
        assert "tls=self-signed" in kept and "nothing changed" in kept, kept
    step(pi, "--tls", tls)

    broker_dir = pi.vm.workdir / "broker"
    broker_dir.mkdir()
    broker = mqttstack.Broker(broker_dir, mqttstack.make_pki(broker_dir)).start()
    try:
        step(pi, "--mqtt: Home Assistant discovery on the host's broker", lambda: mqtt_bridge(pi, broker))
        step(pi, "reboot: units, LEDs, dashboard and bridge come back", lambda: reboot(pi, broker))
        step(pi, "--no-mqtt failing at the health check: the bridge comes back", lambda: failed_no_mqtt(pi, broker))
    finally:
        broker.stop()

    def uninstall():
        pi.vm.check("/opt/ledd/deploy.sh --uninstall --purge --yes", timeout=DEPLOY_TIMEOUT_S)
        assert pi.sh("systemctl is-active lighttpd").strip() == "active"
        assert requests.get(pi.url("/"), timeout=15).status_code == 200
        for what in ("id ledd-mqtt", "systemctl cat ledd-mqtt.service", "test -e /etc/ledd/mqtt.conf",
                     "dpkg-query -W -f='${Status}' python3-paho-mqtt | grep -q 'install ok installed'"):
            assert pi.vm.run(what)[0] != 0, "still there after --purge: " + what
    step(pi, "uninstall after the upgrade", uninstall)


def discovery(broker):
    """{(component, object): config} of the retained Home Assistant discovery configs, when the
    Pi's two LEDs (GPIO 17 and, rewired, 5) and its button (GPIO 22) are all announced."""
    configs = {}
    for topic, payload in mqttstack.retained(broker, "homeassistant/#").items():
        parts = topic.split("/")
        if len(parts) == 5 and parts[4] == "config" and payload:
            configs[(parts[1], parts[3])] = json.loads(payload)
    wanted = {("light", "gpio17"), ("light", "gpio5"), ("binary_sensor", "gpio22")}
    return configs if wanted <= set(configs) else None


def command(broker, config, on):
    """Switch an LED the way Home Assistant does: its discovery config's command topic and payload."""
    probe = mqttstack.Probe(broker, subscribe=("ledd-test/commands",))
    try:
        probe.publish(config["command_topic"], config.get("payload_on" if on else "payload_off", "ON" if on else "OFF"))
    finally:
        probe.close()


def mqtt_bridge(pi, broker):
    """deploy.sh --mqtt against a broker on the host: discovery configs arrive, a command lights an LED,
    and the broker password is in no file but the credential."""
    url = "mqtt://%s@%s:%d" % (mqttstack.USER, HOST_FROM_GUEST, broker.port)
    out = deploy(pi, "--mqtt", url, "--mqtt-password-stdin", stdin=mqttstack.PASSWORD)
    assert "MQTT: ledd-mqtt.service -> %s" % url in out, out
    assert mqttstack.PASSWORD not in out
    assert pi.sh("systemctl is-active ledd-mqtt").strip() == "active"
    configs = wait_for(lambda: discovery(broker), 90, "the discovery configs on the host's broker")
    assert configs[("light", "gpio17")]["device"] == configs[("binary_sensor", "gpio22")]["device"]
    assert pi.line_value(LED_GPIO) == 0
    command(broker, configs[("light", "gpio17")], on=True)
    wait_for(lambda: pi.line_value(LED_GPIO) == 1, 30, "GPIO 17 on after the MQTT command")
    rc, out = pi.vm.run("grep -rlF -- %s /var/log /etc /opt /root /home /var/lib /tmp 2>/dev/null; "
                        "journalctl -b --no-pager | grep -cF -- %s" % ((shlex.quote(mqttstack.PASSWORD),) * 2))
    assert out.split() == ["/etc/ledd/credentials/mqtt-password", "0"], out
    kept = deploy(pi)  # --mqtt is remembered
    assert "mqtt_url=%s" % url in kept and "nothing changed" in kept, kept


def reboot(pi, broker):
    """A reboot: both web units and the bridge come back, the LEDs are restored from the state file,
    the dashboard answers over HTTPS, and the bridge takes commands again."""
    pi.vm.reboot()
    mount_shares(pi)
    read_gpio_env(pi)
    units = ["ledd", "ledd-web", "ledd-mqtt"]
    wait_for(lambda: pi.sh("systemctl is-active %s || true" % " ".join(units)).split() == ["active"] * 3,
             120, "the units after the reboot")
    rc, state = pi.vm.run("systemctl is-system-running --wait", timeout=180)
    assert state.strip() == "running", state + pi.sh("systemctl --failed --no-pager")
    # Red (switched on over MQTT) and green (on GPIO 5 since the rewiring) were on before the reboot.
    assert (pi.line_value(LED_GPIO), pi.line_value(5)) == (1, 1)
    cert = str(Path(pi.vm.xfer) / "cert.pem")
    r = wait_for(lambda: requests.get("https://127.0.0.1:%d/api/state" % pi.vm.ports[443], verify=cert, timeout=15),
                 60, "HTTPS answers after the reboot")
    assert r.status_code == 200 and [led["on"] for led in r.json()["leds"]] == [True, True], r.text
    configs = wait_for(lambda: discovery(broker), 60, "the discovery configs after the reboot")
    command(broker, configs[("light", "gpio17")], on=False)
    wait_for(lambda: pi.line_value(LED_GPIO) == 0, 60, "GPIO 17 off after an MQTT command")


def failed_no_mqtt(pi, broker):
    """--no-mqtt removes the bridge's unit, config, password and user; when the run fails, all of it,
    the user included, comes back and the bridge runs again."""
    installed = listing(pi)
    rc, out = deploy(pi, "--no-mqtt", env="LEDD_DEPLOY_FAIL_AT=health", check=False)
    assert rc != 0 and "rolled back" in out, out
    assert "delete system user ledd-mqtt" in out, out
    assert_same_listing(installed, listing(pi), "after a failed --no-mqtt")
    wait_for(lambda: pi.sh("systemctl is-active ledd-mqtt || true").strip() == "active", 60, "the bridge again")
    configs = wait_for(lambda: discovery(broker), 60, "the discovery configs")
    command(broker, configs[("light", "gpio17")], on=True)
    wait_for(lambda: pi.line_value(LED_GPIO) == 1, 60, "GPIO 17 on after an MQTT command")

"""The virtual Pi: `sudo ./deploy.sh` on a real Debian with systemd, apt, lighttpd and kernel GPIO.

One long scenario in one boot (each step needs the previous one's system), in a
qemu VM (TCG, no KVM) booted from a cached Debian bookworm image (vm.py, vmimage.sh):

1. gpio-sim makes a Pi-like chip after a decoy; a login user `pi` with sudo;
2. a Pi with a life: python3, and Debian's lighttpd serving the owner's page on :80;
3. a plain deploy is refused (port 80 named, --port suggested) and changes nothing;
   a first install failing at the health check (LEDD_DEPLOY_FAIL_AT) and one killed
   by SIGTERM midway (LEDD_DEPLOY_PAUSE_AT) are both rolled back: the listing of
   /etc, /opt, /usr/local, enabled units, packages, users and groups is unchanged;
4. the install on --port 8080 next to the owner's page (which never changes):
   ledd-web as its own user on IPv4 and IPv6, the API, LEDs, ledctl, a button in
   Chromium, ledd killed and restarted by systemd;
5. a re-run keeps port 8080 and changes nothing; the password is in no file and no
   journal line;
6. /opt/ledd/deploy.sh --uninstall, then --purge --yes: back to the listing of step 2.

The upgrade scenario (failed and interrupted upgrades, a broken config on reload,
--tls, --mqtt, a reboot) boots its own virtual Pi: test_vm_upgrade.py. tests/run
runs the two side by side.

Any failure carries the guest's journal and console.
"""
import re

import pytest

from vpi import (ADMIN, BUTTON_GPIO, CHROMIUM_ARGS, DEPLOY_TIMEOUT_S, LED_GPIO, OWNER_PAGE, SHARE, assert_same_listing,
                 boot, debian_page, deploy, listing, prepare, sigterm_midway, step, wait_for)

pytestmark = [pytest.mark.slow, pytest.mark.vm]


@pytest.fixture(scope="module")
def pi(tmp_path_factory):
    yield from boot(tmp_path_factory, "first-install")


def test_virtual_pi(pi):
    prepare(pi)

    # -- a Pi with a life: Debian's lighttpd already serves a site on :80 ----------------------
    page = step(pi, "existing lighttpd site",
                lambda: wait_for(lambda: debian_page(pi)[0] == 200 and debian_page(pi), 60, "Debian's site answers"))
    assert OWNER_PAGE in page[1]
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
        # Paused midway (packages, users, files in place; services next), the owner's site still answers.
        sigterm_midway(pi, "--port 8080", "services", while_paused=lambda: debian_page(pi) == page)
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

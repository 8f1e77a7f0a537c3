"""A fresh Raspberry Pi OS Lite, in a container, on bookworm and trixie: no lighttpd, no python3, a `gpio`
group and Raspberry Pi OS's own udev rule, /boot/firmware/config.txt, a login user who is not `pi`.

`sudo ./deploy.sh` installs (401 without the password, 200 with it; an LED through the API and through
ledctl as the login user); a re-run changes nothing; `/opt/ledd/deploy.sh --set-password` and a re-run
from /opt/ledd work without the checkout; `/opt/ledd/deploy.sh --uninstall`, then `--purge` brings back
the exact listing of the fresh Pi (/var included, but for ctpi.VOLATILE_PATHS).
"""

import re

import pytest

from container import ADMIN
from ctpi import DEPLOY_TIMEOUT_S, assert_same_listing, boot, set_password_on_a_terminal, step, suites

pytestmark = pytest.mark.slow


@pytest.fixture
def pi(tmp_path_factory, suite):
    yield from boot(tmp_path_factory, "fresh", suite)


@suites()
def test_fresh_pi_install_rerun_set_password_uninstall_purge(pi):
    assert pi.run("command -v python3 || command -v lighttpd || id pi")[0] != 0, "not a fresh Lite image"
    before = step(pi, "listing", pi.listing)
    config_txt = pi.sh("md5sum /boot/firmware/config.txt")

    out = step(pi, "first install", pi.install)
    assert pi.password, "no credentials printed:\n" + out
    assert "health check: the API answers through the web server" in out, out

    def dashboard():
        assert pi.sh("systemctl is-active ledd ledd-web").split() == ["active"] * 2
        assert pi.api("GET", "/api/state", auth=False)[0] == 401
        status, state = pi.api("GET", "/api/state")
        assert status == 200, state
        assert [led["name"] for led in state["leds"]] == ["red", "green"]
        assert pi.get("/")[0] == 401  # the page, too, wants the password
        listen = pi.sh("ss -Htln 'sport = :80'")
        assert "0.0.0.0:80" in listen and "[::]:80" in listen, listen
        failed = pi.sh("systemctl list-units --failed --no-legend --plain")
        assert "ledd" not in failed, failed
    step(pi, "401, then 200 with the password", dashboard)

    def led_by_api_and_ledctl():
        status, state = pi.api("POST", "/api/leds/0", {"on": True})
        assert status == 200 and state["leds"][0]["on"] is True, state
        assert "ledd" in pi.sh("id -nG %s" % ADMIN).split()
        pi.sh("runuser -u %s -- ledctl on green" % ADMIN)
        status, state = pi.api("GET", "/api/state")
        assert [led["on"] for led in state["leds"]] == [True, True], state
        assert pi.run("runuser -u nobody -- ledctl status")[0] != 0  # not in the group
    step(pi, "an LED through the API and through ledctl", led_by_api_and_ledctl)

    def raspberry_pi_os_specifics():
        # The image's gpio group is used, not replaced; Raspberry Pi OS's rule already gives it the chips.
        assert pi.sh("getent group gpio").split(":")[2] == before_gid
        assert pi.run("test -e /etc/udev/rules.d/60-ledd-gpio.rules")[0] != 0, \
            "deploy.sh added its own GPIO rule although Raspberry Pi OS's 99-com.rules grants group gpio"
        assert pi.sh("md5sum /boot/firmware/config.txt") == config_txt
    before_gid = re.search(r"^gpio:(\d+):", before, re.M).group(1)
    step(pi, "Raspberry Pi OS's gpio group, udev rule and config.txt", raspberry_pi_os_specifics)

    def rerun_is_a_no_op():
        pids = pi.main_pid("ledd"), pi.main_pid("ledd-web")
        installed = pi.listing()
        out = pi.deploy()
        assert "nothing changed" in out and "nothing restarted" in out, out
        assert (pi.main_pid("ledd"), pi.main_pid("ledd-web")) == pids
        assert_same_listing(installed, pi.listing(), "after a re-run")
    step(pi, "re-run: nothing changed", rerun_is_a_no_op)

    def set_password_from_opt():
        # The lost-password recovery of docs/deploy.md, with no checkout at hand.
        new = "horse-battery-%s" % pi.suite
        status, out = set_password_on_a_terminal(pi, new)
        assert status == 0, out
        assert new not in out, "the password is echoed back:\n" + out
        old, pi.password = pi.password, new
        assert pi.api("GET", "/api/state")[0] == 200
        pi.password = old
        assert pi.api("GET", "/api/state")[0] == 401
        pi.password = new
    step(pi, "/opt/ledd/deploy.sh --set-password", set_password_from_opt)

    def rerun_from_opt():
        out = pi.deploy(script="/opt/ledd/deploy.sh", cwd="/")
        assert "nothing changed" in out, out
        assert pi.api("GET", "/api/state")[0] == 200
    step(pi, "a re-run from /opt/ledd", rerun_from_opt)

    def uninstall():
        out = pi.sh("/opt/ledd/deploy.sh --uninstall", timeout=DEPLOY_TIMEOUT_S)
        assert "uninstalled" in out, out
        for what in ("systemctl cat ledd.service", "systemctl cat ledd-web.service", "id ledd", "id ledd-web",
                     "getent group ledd", "test -e /opt/ledd", "test -e /usr/local/sbin/ledd",
                     "test -e /usr/local/bin/ledctl", "test -e /etc/ledd/web"):
            assert pi.run(what)[0] != 0, "still there after --uninstall: " + what
        assert pi.run("test -f /etc/ledd/ledd.conf && test -f /var/lib/ledd/state")[0] == 0
        assert pi.sh("getent group gpio").split(":")[2] == before_gid  # Raspberry Pi OS's, not ours
    step(pi, "/opt/ledd/deploy.sh --uninstall", uninstall)

    def purge():
        out = pi.deploy("--uninstall", "--purge", "--yes")
        assert "apt-get purge" in out, out
        assert_same_listing(before, pi.listing(), "after --uninstall --purge")
        assert pi.run("test -e /var/log/ledd-deploy.log")[0] != 0
    step(pi, "--purge: the fresh Pi's exact listing", purge)


@pytest.fixture
def tools_pi(tmp_path_factory, suite):
    yield from boot(tmp_path_factory, "no-ipv6", suite, build_tools=True)


@suites()
def test_fresh_pi_without_ipv6(tools_pi):
    """IPv6 off in the kernel (net.ipv6.conf.all.disable_ipv6=1 in the container's own network
    namespace, as ipv6.disable=1 would leave it): the dashboard listens on IPv4 and answers. (On a Pi with
    deploy.sh's packages already: the point is the web server's sockets, not apt.)"""
    pi = tools_pi
    pi.sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 "
          "net.ipv6.conf.lo.disable_ipv6=1")
    assert pi.run("ip -6 addr show dev lo | grep -q inet6")[0] != 0
    out = step(pi, "install without IPv6", lambda: pi.install())
    assert "health check: the API answers through the web server" in out, out
    status, _ = pi.api("GET", "/api/state")
    assert status == 200
    listen = pi.sh("ss -Htln 'sport = :80'")
    assert "0.0.0.0:80" in listen, listen

"""The virtual Pi: what only a kernel and a real boot can show, in one qemu VM (TCG, no KVM) booted from
a cached Debian bookworm image (vm.py, vmimage.sh). Every other deploy scenario (interruptions, port
conflicts, upgrades, TLS, purge, bookworm and trixie) runs in containers at native speed:
tests/deploy/test_ct_*.py.

One scenario in one boot:

1. gpio-sim makes a Pi-like chip after a decoy, from a boot service (as a Pi's header is there from
   boot on); the Pi has Raspberry Pi OS's `gpio` group and its udev rule
   (SUBSYSTEM=="gpio", GROUP="gpio", MODE="0660"), and a login user with sudo;
2. `sudo ./deploy.sh`: ledd on the chardev backend finds the chip by its label, runs as ledd with
   group gpio, and its unit allows the GPIO character devices and no other device (DeviceAllow);
   the chip's device node is the gpio group's by udev;
3. the API switches the simulated lines; ledctl as the login user too;
4. a button press on the simulated line reaches Chromium through the live events;
5. `systemctl kill -s KILL ledd`: systemd restarts it and the LEDs come back from its state file;
6. a reboot: the header, ledd and ledd-web come back, the lines are driven as before, the dashboard
   answers.

Any failure carries the guest's journal and console.
"""
import re

import pytest

from vpi import (ADMIN, BUTTON_GPIO, CHROMIUM_ARGS, GPIO_ENV, LED_GPIO, add_admin, boot, deploy, mount_shares,
                 read_gpio_env, setup_gpio, step, wait_for)

pytestmark = [pytest.mark.slow, pytest.mark.vm]

#: Raspberry Pi OS's own permission rule for the GPIO devices (its /etc/udev/rules.d/99-com.rules).
PI_OS_RULE = 'SUBSYSTEM=="gpio", GROUP="gpio", MODE="0660"'


@pytest.fixture(scope="module")
def pi(tmp_path_factory):
    yield from boot(tmp_path_factory, "kernel-gpio")


def raspberry_pi_os(pi):
    """The gpio group and Raspberry Pi OS's rule, applied to the chips that are already there (on a Pi
    they are there at boot, after the rule)."""
    pi.sh("groupadd --system gpio\n"
          "printf '%%s\\n' '%s' >/etc/udev/rules.d/99-com.rules\n"
          "udevadm control --reload && udevadm trigger --subsystem-match=gpio --action=change && udevadm settle"
          % PI_OS_RULE)


def chip_node(pi):
    """The /dev/gpiochipN of the simulated header (as its boot service wrote it down), its group and mode."""
    out = pi.sh("stat -c '%%n %%G %%a' $(sed -n 's/.* DEV=\\(\\S*\\).*/\\1/p' %s)" % GPIO_ENV)
    match = re.search(r"(/dev/gpiochip\d+) (\S+) (\d+)", out)
    assert match, "no device node for the simulated header:\n" + out
    return match.groups()


def test_kernel_gpio_udev_device_allow_browser_kill_and_reboot(pi):
    step(pi, "gpio-sim as a boot service", lambda: setup_gpio(pi))
    step(pi, "login user", lambda: add_admin(pi))
    step(pi, "Raspberry Pi OS's gpio group and udev rule", lambda: raspberry_pi_os(pi))
    # The image's package lists are as fresh as apt.systemd.daily keeps a Pi's: deploy.sh installs
    # the web server from the prefetched packages without an apt-get update over slirp (~30 s under TCG).
    pi.sh("mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp")

    out = step(pi, "sudo ./deploy.sh", lambda: deploy(pi))
    match = re.search(r"user: ledd  password: (\S+)", out)
    assert match, "no credentials printed:\n" + out
    pi.password = match.group(1)
    assert "health check: the API answers through the web server: backend chardev" in out, out

    def kernel_side():
        node, group, mode = chip_node(pi)
        assert (group, mode) == ("gpio", "660"), "%s is %s %s" % (node, group, mode)
        pid = pi.main_pid("ledd")
        assert pi.sh("ps -o user=,group= -p %d" % pid).split() == ["ledd", "ledd"]
        assert "gpio" in pi.sh("id -nG ledd").split() or \
            "gpio" in pi.sh("ps -o supgrp= -p %d" % pid).split(","), "ledd lacks group gpio"
        assert pi.sh("systemctl show -p DevicePolicy --value ledd").strip() == "closed"
        # The GPIO chips, and the clock read-only (systemd's own addition for ProtectClock=yes).
        allowed = pi.sh("systemctl show -p DeviceAllow --value ledd").split()
        assert set(zip(allowed[::2], allowed[1::2])) <= {("char-gpiochip", "rw"), ("char-rtc", "r")}, allowed
        assert ("char-gpiochip", "rw") in set(zip(allowed[::2], allowed[1::2])), allowed
        # The device cgroup at work: the chip opens under the unit's policy, /dev/mem does not.
        probe = ("systemd-run --wait --quiet --pipe -p DevicePolicy=closed -p 'DeviceAllow=char-gpiochip rw' "
                 "sh -c '(exec 3<>%s) && echo chip-ok; (exec 4</dev/mem) 2>/dev/null && echo mem-ok; true'" % node)
        out = pi.sh(probe)
        assert "chip-ok" in out and "mem-ok" not in out, out
        state = pi.api("GET", "/api/state").json()
        assert state["backend"] == "chardev"
    step(pi, "chardev backend, udev's gpio group, DeviceAllow", kernel_side)

    def led_on():
        assert pi.api("GET", "/api/state", auth=False).status_code == 401
        assert pi.line_value(LED_GPIO) == 0
        r = pi.api("POST", "/api/leds/0", {"on": True})
        assert r.status_code == 200 and r.json()["leds"][0]["on"] is True, r.text
        assert pi.line_value(LED_GPIO) == 1
        assert "ledd" in pi.sh("id -nG %s" % ADMIN).split()
        pi.sh("runuser -u %s -- ledctl on green" % ADMIN)
        assert pi.line_value(27) == 1
    step(pi, "LEDs on the simulated lines: API and ledctl", led_on)

    step(pi, "button press in the API and in Chromium", lambda: button_press_in_browser(pi))

    def kill_and_restart():
        old = pi.main_pid("ledd")
        pi.sh("systemctl kill -s KILL ledd")
        wait_for(lambda: pi.main_pid("ledd") not in (0, old) and
                 pi.sh("systemctl is-active ledd").strip() == "active", 30, "ledd restarted by systemd")
        wait_for(lambda: pi.api("GET", "/api/state").json()["leds"][0]["on"] is True, 20, "LED state restored")
        assert (pi.line_value(LED_GPIO), pi.line_value(27)) == (1, 1)
    step(pi, "systemctl kill -s KILL ledd", kill_and_restart)

    def reboot():
        pi.vm.reboot()
        rc, state = pi.vm.run("systemctl is-system-running --wait", timeout=300)
        assert state.strip() == "running", state + pi.sh("systemctl --failed --no-pager")
        mount_shares(pi)
        read_gpio_env(pi)
        wait_for(lambda: pi.sh("systemctl is-active ledd ledd-web || true").split() == ["active"] * 2,
                 120, "the units after the reboot")
        assert chip_node(pi)[1:] == ("gpio", "660")
        assert (pi.line_value(LED_GPIO), pi.line_value(27)) == (1, 1)
        r = wait_for(lambda: pi.api("GET", "/api/state"), 60, "the dashboard after the reboot")
        assert r.status_code == 200 and [led["on"] for led in r.json()["leds"]] == [True, True], r.text
    step(pi, "reboot: header, units, LEDs and dashboard come back", reboot)


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

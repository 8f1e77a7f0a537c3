"""An upgrade from the drop-in version of deploy.sh (the last one that served the site through a
drop-in for Debian's lighttpd.service, OLD_TREE_COMMIT), in a bookworm container: the upgrade fails
and is interrupted midway through the migration (after the drop-in is gone, before the services move),
and each time the old install comes back exactly, and answers; then a plain run upgrades it, keeping
port, auth mode, config and LED state.

The old deploy.sh calls `udevadm control` unconditionally, which fails where no udevd runs (a
container): its Pi therefore has an owner's udev rule for the GPIO chips, which that version honours
by installing none of its own.
"""

import subprocess

import pytest

from ctpi import (BG_LOG, ROOT, SHARE, assert_same_listing, boot, signal_group, start_background, step, wait_for,
                  wait_in_container)

pytestmark = pytest.mark.slow

#: The last version of deploy.sh that ran the site through a drop-in for Debian's lighttpd.service.
OLD_TREE_COMMIT = "7ab5113"
OLD = SHARE + "/.old-tree"
#: What "the old install" is beyond the listing: its settings and the site's wiring.
CONFIG_FILES = "/etc/ledd/ledd.conf /etc/systemd/system/lighttpd.service.d/ledd.conf"


@pytest.fixture
def pi(tmp_path_factory, suite):
    yield from boot(tmp_path_factory, "upgrade", suite, before_boot=add_old_tree, build_tools=True)


def add_old_tree(src):
    """The old deploy.sh's tree inside the checkout snapshot, from git."""
    old = src / ".old-tree"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_TREE_COMMIT], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)


def old_install(pi):
    pi.sh("printf '%s\\n' 'SUBSYSTEM==\"gpio\", KERNEL==\"gpiochip*\", GROUP=\"gpio\", MODE=\"0660\"' "
          ">/etc/udev/rules.d/90-owner-gpiochip.rules")
    rc, out = pi.run("cd %s && runuser -u owner -- sudo env LEDD_BACKEND=sim ./deploy.sh --port 8081 --no-auth"
                     % OLD, timeout=600)
    assert rc == 0, out[-4000:]
    assert pi.run("test -f /etc/systemd/system/lighttpd.service.d/ledd.conf")[0] == 0
    pi.port = 8081
    status, state = pi.api("POST", "/api/leds/1", {"on": True}, auth=False)
    assert status == 200 and state["leds"][1]["on"] is True, state


def old_site_answers(pi):
    status, state = wait_for(lambda: pi.api("GET", "/api/state", auth=False), 30, "the old dashboard")
    assert status == 200 and state["leds"][1]["on"] is True, state
    assert pi.sh("systemctl is-active ledd lighttpd").split() == ["active"] * 2


@pytest.mark.parametrize("suite", ["bookworm"])
def test_failed_upgrade_from_the_drop_in_version(pi):
    step(pi, "install by the drop-in version", lambda: old_install(pi))
    installed = step(pi, "listing", pi.listing)
    conf = pi.sh("md5sum %s" % CONFIG_FILES)

    def failed_midway():
        rc, out = pi.deploy(env=("LEDD_DEPLOY_FAIL_AT=python_entry_points",), check=False)
        assert rc != 0 and "rolled back" in out, out
        assert "the system is as it was" in out, out
        assert_same_listing(installed, pi.listing(), "after an upgrade failing midway through the migration")
        assert pi.sh("md5sum %s" % CONFIG_FILES) == conf
        old_site_answers(pi)
    step(pi, "an upgrade failing after the drop-in's removal", failed_midway)

    def interrupted_midway():
        pgid = start_background(pi, (), env=("LEDD_DEPLOY_PAUSE_AT=python_entry_points",))
        assert wait_in_container(pi, "grep -qF 'pausing before step python_entry_points' %s" % BG_LOG, pgid), \
            pi.sh("cat %s" % BG_LOG)
        out = signal_group(pi, pgid)
        assert "interrupted by SIGINT" in out and "rolled back" in out, out
        assert_same_listing(installed, pi.listing(), "after Ctrl-C midway through the migration")
        assert pi.sh("md5sum %s" % CONFIG_FILES) == conf
        old_site_answers(pi)
    step(pi, "Ctrl-C after the drop-in's removal", interrupted_midway)

    def upgrade():
        out = pi.deploy()
        assert "taken over from the previous install (port 8081, auth none)" in out, out
        assert pi.run("test -e /etc/systemd/system/lighttpd.service.d/ledd.conf")[0] != 0
        assert pi.sh("systemctl is-active ledd ledd-web").split() == ["active"] * 2
        status, state = wait_for(lambda: pi.api("GET", "/api/state", auth=False), 30, "the API on 8081")
        assert status == 200 and state["leds"][1]["on"] is True, state
    step(pi, "a plain run upgrades", upgrade)

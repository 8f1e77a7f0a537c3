"""deploy.sh interrupted and failing the way an owner meets it, in containers on bookworm and trixie;
each case ends with the system's listing exactly as before the run (ctpi.listing_script).

* Ctrl-C: SIGINT to deploy.sh's whole process group, as a terminal sends it (its `tee` included),
  inside apt (while dpkg unpacks), during the copying of the tree, and before every install step;
  SIGTERM and SIGHUP to the group (a `kill -- -PGID`, a closed terminal) once each;
* a failing undo: the rollback goes on with every other undo, names the one that failed, and does
  not claim the system is as it was;
* a broken package: dpkg fails midway through deploy.sh's apt-get install; what apt did install is
  removed again.
"""

import pytest

from ctpi import (BACKEND_ARGS, BG_LOG, INSTALL_STEPS, assert_rolled_back, assert_same_listing, boot,
                  interrupt_at_step, signal_group, start_background, step, suites, wait_in_container)

pytestmark = pytest.mark.slow

@pytest.fixture
def pi(tmp_path_factory, suite, request):
    yield from boot(tmp_path_factory, request.node.originalname.replace("test_", ""), suite)


@pytest.fixture
def tools_pi(tmp_path_factory, suite):
    """A Pi with deploy.sh's packages already (ctpi.BUILD_TOOLS_LAYER): no interruption waits for apt."""
    yield from boot(tmp_path_factory, "ctrl_c_before_every_step", suite, build_tools=True)


def interrupted_when(pi, condition, what, sig="INT"):
    """Start an install, wait until CONDITION (a shell test in the container) holds, then SIG to the
    process group; the run must roll back."""
    pgid = start_background(pi, BACKEND_ARGS)
    reached = wait_in_container(pi, condition, pgid, then="kill -%s -- -%d" % (sig, pgid))
    out = signal_group(pi, pgid, None if reached else sig)
    assert reached, "deploy.sh ended before %s:\n%s" % (what, out)
    assert_rolled_back(out, sig)
    return out


@suites()
def test_ctrl_c_inside_apt_and_during_copying(pi):
    before = step(pi, "listing", pi.listing)

    def inside_apt():
        # dpkg has unpacked some of deploy.sh's packages and not yet the rest.
        # (dpkg.log has the image's own installs: count the lines this run adds.)
        seen = int(pi.sh("grep -c ' status unpacked ' /var/log/dpkg.log || true").strip())
        out = interrupted_when(pi, "[ $(grep -c ' status unpacked ' /var/log/dpkg.log) -gt %d ]" % seen,
                               "dpkg unpacked")
        assert_same_listing(before, pi.listing(), "after Ctrl-C inside apt")
        return out
    step(pi, "Ctrl-C inside apt-get install", inside_apt)

    def during_copying():
        interrupted_when(pi, "test -d /opt/ledd/www", "the tree's copying")
        assert_same_listing(before, pi.listing(), "after Ctrl-C while the tree is copied")
    step(pi, "Ctrl-C while the tree is copied to /opt/ledd", during_copying)


@suites()
def test_ctrl_c_before_every_step(tools_pi):
    """On a Pi that already has deploy.sh's packages (so that no interruption waits for apt; Debian's
    lighttpd came with them, and its owner switched it off): Ctrl-C before each install step, and
    SIGTERM and SIGHUP to the process group."""
    pi = tools_pi
    before = step(pi, "listing", pi.listing)
    for name in INSTALL_STEPS:
        def interrupted():
            assert_rolled_back(interrupt_at_step(pi, BACKEND_ARGS, name))
            assert_same_listing(before, pi.listing(), "after Ctrl-C before step %s" % name)
        step(pi, "Ctrl-C before step %s" % name, interrupted)
    for sig, name in (("TERM", "services"), ("HUP", "files")):
        def signalled():
            assert_rolled_back(interrupt_at_step(pi, BACKEND_ARGS, name, sig=sig), sig)
            assert_same_listing(before, pi.listing(), "after SIG%s before step %s" % (sig, name))
        step(pi, "SIG%s to the process group before step %s" % (sig, name), signalled)


@suites()
def test_failing_undo_does_not_stop_the_rollback(pi):
    """A process of the new system user ledd keeps running (userdel refuses to delete a user in use):
    every other undo is still done, the failed one is named, and no "system is as it was"."""
    before = step(pi, "listing", pi.listing)

    def failing_undo():
        pgid = start_background(pi, BACKEND_ARGS, env=("LEDD_DEPLOY_PAUSE_AT=files",))
        assert wait_in_container(pi, "grep -qF 'pausing before step files' %s" % BG_LOG, pgid), \
            pi.sh("cat %s" % BG_LOG)
        pi.sh("systemd-run --quiet --unit=ledd-user-busy --uid=ledd sleep 600")
        out = signal_group(pi, pgid)
        assert "interrupted by SIGINT" in out, out
        assert "the system is as it was" not in out, out
        assert "ledd" in out.split("rolling back", 1)[1], out
        pi.sh("systemctl stop ledd-user-busy")
        # Everything else is undone: only the user (and its group) that could not be deleted remain.
        after = pi.listing()
        pi.sh("userdel ledd; getent group ledd >/dev/null && groupdel ledd || true")
        assert_same_listing(before, pi.listing(), "after the failed undo, once the user is gone")
        return after
    step(pi, "a failing undo", failing_undo)


@suites()
def test_broken_package(pi):
    """dpkg cannot unpack apache2-utils: the owner's own package already ships /usr/bin/htpasswd (a file
    conflict, as a third-party .deb makes one). apt fails midway, deploy.sh fails, and the packages apt
    did install are purged again."""
    pi.sh("mkdir -p /tmp/owner-tools/DEBIAN /tmp/owner-tools/usr/bin\n"
          "printf '%s\\n' 'Package: owner-tools' 'Version: 1.0' 'Architecture: all' 'Maintainer: owner <owner@pi>' "
          "'Description: the owner'\\''s own htpasswd' >/tmp/owner-tools/DEBIAN/control\n"
          "printf '#!/bin/sh\\necho mine\\n' >/tmp/owner-tools/usr/bin/htpasswd && chmod 0755 /tmp/owner-tools/usr/bin/htpasswd\n"
          "dpkg-deb -b /tmp/owner-tools /tmp/owner-tools.deb >/dev/null && dpkg -i /tmp/owner-tools.deb >/dev/null\n"
          "rm -rf /tmp/owner-tools /tmp/owner-tools.deb")
    before = step(pi, "listing", pi.listing)

    def broken():
        rc, out = pi.deploy(*BACKEND_ARGS, check=False)
        assert rc != 0, out
        assert "apt-get install" in out and "failed" in out, out
        assert "rolled back" in out, out
        assert_same_listing(before, pi.listing(), "after a broken package")
    step(pi, "a package that dpkg cannot unpack", broken)

"""The container Pis' harness itself (container.py): containers that run side by side must not share
a cgroup. With --keep-unit each container's systemd takes nspawn's cgroup as its root, so two that
shared one removed each other's units' cgroups, and trixie's systemd then failed to start a unit
("Failed to spawn executor") whenever the other container had just stopped the same unit.
"""

from pathlib import Path

import pytest

from container import Container, ensure_image
from ctpi import cache_dir, snapshot, suites

pytestmark = pytest.mark.slow


def host_cgroups(pid):
    """{hierarchy: path} of a process as the host sees it (/proc/PID/cgroup), the v1 controllers
    that the container's systemd leaves alone (all but name=systemd) left out."""
    cgroups = {}
    for line in Path("/proc/%d/cgroup" % pid).read_text().splitlines():
        hid, controllers, path = line.split(":", 2)
        if hid == "0" or controllers == "name=systemd":
            cgroups[controllers or "unified"] = path
    return cgroups


@suites()
def test_containers_side_by_side_have_cgroups_of_their_own(tmp_path, suite):
    lower = ensure_image(cache_dir(), suite)
    src = snapshot(tmp_path / "src")
    cts = [Container(lower, tmp_path / name, src, name=name) for name in ("ledd-ct-a", "ledd-ct-b")]
    try:
        for ct in cts:
            ct.start()
        seen = [host_cgroups(ct.init_pid) for ct in cts]
        assert seen[0].keys() == seen[1].keys() and seen[0], seen
        for hierarchy in seen[0]:
            a, b = seen[0][hierarchy], seen[1][hierarchy]
            # Neither is inside the other: each container's systemd owns a tree nobody else writes.
            assert not (a + "/").startswith(b.rsplit("/init.scope", 1)[0] + "/"), (hierarchy, seen)
            assert not (b + "/").startswith(a.rsplit("/init.scope", 1)[0] + "/"), (hierarchy, seen)
        # A unit stopped in one container leaves the other's alone.
        for ct in cts:
            ct.check("systemctl start systemd-hostnamed")
        cts[0].check("systemctl stop systemd-hostnamed")
        cts[1].check("systemctl restart systemd-hostnamed")
        own = [cg for ct in cts for cg in ct.cgroups]
    finally:
        for ct in cts:
            try:
                ct.stop()
            finally:
                ct.remove()
    assert not [cg for cg in own if cg.exists()], "stop() leaves no cgroup behind"

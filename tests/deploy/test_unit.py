"""systemd/ledd.service: what systemd itself says about it, and the settings the design relies on."""

import re
import shutil
import subprocess

import pytest

from deployutil import UNIT, deploy_var, unit_settings

from ledd import defaults

MAX_EXPOSURE = 1.5


def analyze(*args, cwd):
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_verify_is_clean(tmp_path, ledd_binary):
    # verify insists that ExecStart's binary exists: point the unit at the built one.
    sbin = deploy_var("LEDD_SBIN")
    unit = tmp_path / "ledd.service"
    unit.write_text(UNIT.read_text().replace(sbin, str(ledd_binary)))
    proc = analyze("verify", str(unit), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr.strip() == "" and proc.stdout.strip() == "", proc.stderr


def exposure(source, tmp_path):
    """`systemd-analyze security`'s overall exposure of a unit file, and its whole report."""
    unit = tmp_path / source.name
    shutil.copy(source, unit)
    proc = analyze("security", "--offline=true", "--no-pager", str(unit), cwd=tmp_path)
    match = re.search(r"Overall exposure level for %s: (\d+\.\d+)" % re.escape(source.name), proc.stdout)
    assert match, proc.stdout + proc.stderr
    return float(match.group(1)), proc.stdout


def test_security_exposure_at_most_1_5(tmp_path):
    level, report = exposure(UNIT, tmp_path)
    assert level <= MAX_EXPOSURE, report


def test_lifecycle_settings():
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert s["Restart"] == ["on-failure"]
    assert s["WatchdogSec"] and s["WatchdogSec"][0] != "0"
    # A broken config fails `systemctl reload ledd` (with ledd's file:line) before any SIGHUP.
    assert s["ExecReload"] == ["%s --check-config -c %s" % (deploy_var("LEDD_SBIN"), deploy_var("CONF_FILE")),
                               "/bin/kill -HUP $MAINPID"]


def test_paths_agree_with_deploy_and_defaults():
    s = unit_settings()
    start = s["ExecStart"][0].split()
    assert start[0] == deploy_var("LEDD_SBIN")
    assert start[start.index("-c") + 1] == deploy_var("CONF_FILE") == defaults.CONFIG_PATH
    assert start[start.index("-r") + 1] == deploy_var("RUNTIME_DIR") == defaults.RUNTIME_DIR
    assert start[start.index("-s") + 1] == defaults.STATE_PATH
    assert "/run/" + s["RuntimeDirectory"][0] == defaults.RUNTIME_DIR
    assert defaults.STATE_PATH.startswith("/var/lib/%s/" % s["StateDirectory"][0])
    assert any("--check-config" in v for v in s["ExecStartPre"])


def test_fifo_sharing_and_devices():
    s = unit_settings()
    assert s["RuntimeDirectoryMode"] == ["0750"]  # the group creates nothing there (docs/protocol.md)
    assert s["Group"] == [deploy_var("DAEMON_USER")]
    assert s["UMask"] == ["0007"]  # FIFOs 0660: the web server's group can use them
    assert s["DeviceAllow"] == ["char-gpiochip rw"]  # every /dev/gpiochipN, whatever N
    assert s["DevicePolicy"] == ["closed"]
    assert "PrivateDevices" not in s  # would hide /dev/gpiochip*
    assert s["RestrictAddressFamilies"] == ["AF_UNIX"]
    assert "@system-service" in s["SystemCallFilter"]


@pytest.mark.parametrize("name", ["60-ledd-gpio.rules"])
def test_udev_rule_targets_gpiochips(name):
    rule = (UNIT.parent / name).read_text()
    assert re.search(r'^SUBSYSTEM=="gpio", KERNEL=="gpiochip\*", GROUP="gpio", MODE="0660"$', rule, re.M)


# --- ledd-web.service: our own lighttpd instance ---------------------------------------------

WEB_UNIT = UNIT.parent / "ledd-web.service"
MAX_WEB_EXPOSURE = 2.0


def test_web_unit_verify_is_clean(tmp_path):
    unit = tmp_path / "ledd-web.service"
    shutil.copy(WEB_UNIT, unit)
    proc = analyze("verify", str(unit), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


def test_web_unit_security_exposure_at_most_2_0(tmp_path):
    level, report = exposure(WEB_UNIT, tmp_path)
    assert level <= MAX_WEB_EXPOSURE, report


def test_web_unit_runs_our_config_as_its_own_user():
    s = unit_settings(WEB_UNIT.read_text())
    home = deploy_var("LEDD_HOME_DIR")
    assert s["User"] == [deploy_var("WEB_USER")] != ["www-data"]
    assert s["SupplementaryGroups"] == [deploy_var("DAEMON_USER")]  # the FIFOs' group
    assert s["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"] == s["AmbientCapabilities"]
    assert s["ExecStart"] == ["/usr/sbin/lighttpd -D -f %s/lighttpd.conf" % home]
    assert s["ExecStartPre"] == ["/usr/sbin/lighttpd -tt -f %s/lighttpd.conf" % home]
    assert s["EnvironmentFile"] == [deploy_var("WEB_ENV_FILE")]
    assert deploy_var("WEB_STATE_DIR") in s["ReadWritePaths"]
    assert "AF_INET6" in s["RestrictAddressFamilies"][0]


def test_runtime_file_names_agree_with_defaults():
    assert deploy_var("LEDD_CMD_NAME") == defaults.CMD_FIFO
    assert deploy_var("LEDD_REPLY_NAME") == defaults.REPLY_DIR
    header = (UNIT.parents[1] / "cdaemon/src/defaults.h").read_text()
    assert '#define LEDD_PID_FILE           "%s"' % deploy_var("LEDD_PID_NAME") in header


def test_the_unit_lets_ledd_make_its_reply_directory_setgid():
    """ledd chmods reply/ to a setgid mode (client FIFOs then belong to group ledd);
    RestrictSUIDSGID=yes refuses that chmod, and ledd then failed at start in the VM."""
    header = (UNIT.parents[1] / "cdaemon" / "src" / "defaults.h").read_text()
    mode = int(re.search(r"#define LEDD_REPLY_DIR_MODE\s+(0[0-7]+)", header).group(1), 8)
    if mode & 0o2000:
        assert not re.search(r"^RestrictSUIDSGID\s*=\s*(yes|true|1)", UNIT.read_text(), re.M)

"""systemd/ledd-mqtt.service: what systemd says about it, and the settings the bridge relies on."""

import os
import re
import shutil
import subprocess

import pytest

from ledd import defaults
from mqttstack import ROOT

UNIT = ROOT / "systemd" / "ledd-mqtt.service"
MAX_EXPOSURE = 1.5

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")


def settings():
    out = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_verify_is_clean(tmp_path):
    # verify insists that ExecStart's program exists: point the unit at this tree's launcher.
    unit = tmp_path / "ledd-mqtt.service"
    unit.write_text(UNIT.read_text().replace("/opt/ledd/bin/ledd-mqtt", str(ROOT / "bin" / "ledd-mqtt")))
    (tmp_path / "ledd.service").write_text((ROOT / "systemd" / "ledd.service").read_text())
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    problems = [l for l in proc.stderr.splitlines() if "ledd-mqtt.service" in l]
    assert proc.returncode == 0 and not problems, proc.stderr


def test_security_exposure(tmp_path):
    shutil.copy(UNIT, tmp_path / UNIT.name)
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", UNIT.name],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    match = re.search(r"Overall exposure level for ledd-mqtt.service: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, proc.stdout


def test_settings_the_bridge_relies_on():
    s = settings()
    assert s["Requires"] == ["ledd.service"] and "ledd.service" in s["After"][0].split()
    assert s["User"] == ["ledd-mqtt"] and s["Group"] == ["ledd"]
    start = s["ExecStart"][0].split()
    assert start[start.index("-c") + 1] == defaults.MQTT_CONFIG_PATH
    assert start[start.index("-r") + 1] == defaults.RUNTIME_DIR
    assert any("--check-config" in v for v in s["ExecStartPre"])
    name, _, source = s["LoadCredential"][0].partition(":")
    assert name == defaults.MQTT_PASSWORD_CREDENTIAL and source.startswith("/etc/ledd/")
    assert s["ReadWritePaths"] == ["/run"]  # not /run/ledd: ledd recreates it on every restart
    # Group ledd could read ledd's state file; the unit's comment says the bridge cannot.
    assert "-" + os.path.dirname(defaults.STATE_PATH) in s["InaccessiblePaths"][0].split()
    assert s["PrivateDevices"] == ["yes"]  # no GPIO for the bridge
    assert set(s["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert not any("PASSWORD" in v.upper() for v in s.get("Environment", []))

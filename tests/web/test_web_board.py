"""ledd.board: the 40-pin header data the dashboard draws, from gpiozero's board database."""

import json
import subprocess
import sys

import pytest

from ledd import board, defaults
from webstack import ROOT

pytest.importorskip("gpiozero")


def test_default_board_is_a_pi_4b_with_the_default_wiring():
    data = board.describe(defaults.BOARD_DEFAULT_REVISION, "default")
    assert data["model"] == "4B" and data["header"] == "J8"
    pins = {p["pin"]: p for p in data["pins"]}
    assert len(pins) == 40
    # The default wiring: red LED GPIO17 = pin 11, green GPIO27 = pin 13, button GPIO22 = pin 15.
    assert (pins[11]["gpio"], pins[13]["gpio"], pins[15]["gpio"]) == (17, 27, 22)
    assert pins[1]["name"] == "3V3" and pins[6]["name"] == "GND" and pins[6]["gpio"] is None
    assert (pins[11]["row"], pins[11]["col"], pins[12]["col"]) == (6, 1, 2)


def test_revision_from_device_tree_then_cpuinfo(tmp_path):
    dt = tmp_path / "linux,revision"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nHardware\t: BCM2835\nRevision\t: A02082\nSerial\t\t: 0000\n")
    assert board.read_revision(str(dt), str(cpuinfo)) == "a02082"
    dt.write_bytes(bytes.fromhex("00c03111"))
    assert board.read_revision(str(dt), str(cpuinfo)) == "c03111"
    assert board.read_revision(str(tmp_path / "none"), str(tmp_path / "none")) is None


@pytest.mark.parametrize("model, expected", [("4B", "4B"), ("3b+", "3B+"), ("Zero W", "Zero W"), ("zero2w", "Zero2W"), ("5B", "5B")])
def test_model_names(model, expected):
    revision = board.revision_of_model(model)
    assert board.describe(revision)["model"] == expected


def run(*args):
    return subprocess.run([sys.executable, "-m", "ledd.board", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_cli_writes_the_file(tmp_path):
    out = tmp_path / "board.json"
    result = run("--out", str(out), "--revision", "a02082")
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["model"] == "3B" and data["source"] == "argument" and len(data["pins"]) == 40


@pytest.mark.parametrize("args, message", [
    (["--revision", "zz"], "not a board revision"),
    (["--revision", "123456"], "not a board revision"),
    (["--model", "nope"], "unknown Raspberry Pi model"),
    (["--model", "A"], "no 40-pin"),
])
def test_cli_errors_are_one_clear_line(tmp_path, args, message):
    out = tmp_path / "board.json"
    result = run("--out", str(out), *args)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_debian_gpiozero_1_6_works_too(tmp_path):
    """/usr/bin/python3 (what deploy.sh runs) may have Debian's older gpiozero, with other field names."""
    probe = subprocess.run(["/usr/bin/python3", "-c", "import gpiozero"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no gpiozero for /usr/bin/python3 (deploy.sh installs python3-gpiozero on a Pi)")
    out = tmp_path / "board.json"
    result = subprocess.run(["/usr/bin/python3", "-m", "ledd.board", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data == board.describe(defaults.BOARD_DEFAULT_REVISION, "default")


def test_unknown_board_of_this_pi_falls_back_to_the_common_header(tmp_path, monkeypatch):
    monkeypatch.setattr(board, "read_revision", lambda *a: "123456")
    out = tmp_path / "board.json"
    assert board.main(["--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["source"] == "fallback" and data["revision"] == "123456"
    assert len(data["pins"]) == 40 and data["pins"][10]["gpio"] == 17


def test_a_missing_gpiozero_is_reported_as_such(tmp_path):
    """Without gpiozero the command says so (it once blamed the default revision code)."""
    out = tmp_path / "board.json"
    hide_gpiozero = "import sys; sys.modules['gpiozero'] = None; from ledd import board; sys.exit(board.main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", hide_gpiozero, "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "gpiozero is not installed" in result.stderr and "revision" not in result.stderr
    assert not out.exists()

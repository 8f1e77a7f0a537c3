"""ledctl against a real (sim) ledd: every subcommand, --json, errors and exit codes, watch.

Each command is checked through a second channel (the FIFO client reading
the daemon's state), not only through ledctl's own output.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def ctl(ledd, run_ledctl):
    """Run ledctl against the test's ledd (via --runtime-dir)."""
    def run(*args, **kwargs):
        return run_ledctl("--runtime-dir", ledd.runtime_dir, *args, **kwargs)

    return run


def ok_json(result):
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def one_line_error(result, status):
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("ledctl: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# -- status ------------------------------------------------------------------
def test_status_table(ctl, ledd):
    result = ctl("status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["#", "LED", "STATE", "BRIGHTNESS", "BLINK", "ON/OFF", "PWM", "GPIO"]
    assert lines[1].split() == ["0", "red", "off", "100%", "-", "200", "Hz", "17"]
    assert lines[2].split() == ["1", "green", "off", "100%", "-", "200", "Hz", "27"]
    assert ["0", "button", "released", "0", "never", "22"] in [line.split() for line in lines]
    assert "backend sim" in result.stdout


def test_status_json_is_the_daemons_state(ctl, ledd):
    assert ok_json(ctl("status", "--json")) == ledd.client().state()
    assert ok_json(ctl("--json", "status")) == ledd.client().state()  # option before the command too
    assert ok_json(ctl("state", "--json")) == ledd.client().state()  # the protocol's word works too


def test_runtime_dir_from_environment(ledd, run_ledctl):
    result = run_ledctl("status", "-j", env={"LEDD_RUNTIME_DIR": str(ledd.runtime_dir)})
    assert ok_json(result)["backend"] == "sim"


# -- LED commands ----------------------------------------------------------------
@pytest.mark.parametrize("ref", ["0", "red"])
def test_on_off_toggle_by_index_and_name(ctl, ledd, ref):
    client = ledd.client()
    assert ok_json(ctl("on", ref, "--json"))["leds"][0]["on"] is True
    led = client.state()["leds"][0]
    assert led["on"] is True and led["level"] == 1
    assert ok_json(ctl("off", ref, "--json"))["leds"][0]["on"] is False
    assert client.state()["leds"][0]["on"] is False
    assert ok_json(ctl("toggle", ref, "--json"))["leds"][0]["on"] is True
    assert client.state()["leds"][0]["on"] is True
    assert client.state()["leds"][1]["on"] is False  # the other LED is untouched


def test_blink(ctl, ledd):
    result = ctl("blink", "green", "100", "900")
    assert result.returncode == 0, result.stderr
    assert ["1", "green", "blinking", "100%", "100/900", "ms", "200", "Hz", "27"] in [line.split() for line in result.stdout.splitlines()]
    assert ledd.client().state()["leds"][1]["blink"] == {"on_ms": 100, "off_ms": 900}


def test_all_on_off(ctl, ledd):
    assert all(led["on"] for led in ok_json(ctl("all", "on", "-j"))["leds"])
    assert all(led["on"] for led in ledd.client().state()["leds"])
    result = ctl("all", "off", "--quiet")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not any(led["on"] for led in ledd.client().state()["leds"])


def test_press_release(ctl, ledd):
    state = ok_json(ctl("press", "button", "-j"))
    assert state["buttons"][0]["pressed"] is True and state["buttons"][0]["presses"] == 1
    assert ledd.client().state()["buttons"][0]["pressed"] is True
    state = ok_json(ctl("release", "0", "-j"))
    assert state["buttons"][0]["pressed"] is False and state["buttons"][0]["presses"] == 1
    assert isinstance(state["buttons"][0]["last_press_ms"], int)
    table = ctl("status").stdout
    assert time.strftime("%Y-%m-%d") in table  # last press shown as a local date and time


# -- brightness and PWM frequency (issue 23) -----------------------------------------
def test_brightness_dims_and_status_shows_it(ctl, ledd):
    state = ok_json(ctl("brightness", "red", "30", "--json"))
    assert (state["leds"][0]["on"], state["leds"][0]["brightness"]) == (True, 30)
    assert ledd.client().state()["leds"][0]["brightness"] == 30
    rows = [line.split() for line in ctl("status").stdout.splitlines()]
    assert ["0", "red", "on", "30%", "-", "200", "Hz", "17"] in rows
    state = ok_json(ctl("brightness", "0", "0", "-j"))  # 0 is off; the brightness is kept
    assert (state["leds"][0]["on"], state["leds"][0]["brightness"]) == (False, 30)
    assert ["0", "red", "off", "30%", "-", "200", "Hz", "17"] in [line.split() for line in ctl("status").stdout.splitlines()]


def test_all_brightness_and_frequency(ctl, ledd):
    state = ok_json(ctl("all-brightness", "45", "--json"))
    assert [(x["on"], x["brightness"]) for x in state["leds"]] == [(True, 45), (True, 45)]
    result = ctl("frequency", "green", "500")
    assert result.returncode == 0, result.stderr
    assert ["1", "green", "on", "45%", "-", "500", "Hz", "27"] in [line.split() for line in result.stdout.splitlines()]
    assert [x["pwm_hz"] for x in ledd.client().state()["leds"]] == [200, 500]


@pytest.mark.parametrize("args, limit", [
    (["brightness", "red", "101"], "100"), (["all-brightness", "1000"], "100"),
    (["frequency", "red", "9"], "10"), (["frequency", "red", "1001"], "1000"),
])
def test_out_of_range_brightness_and_frequency_are_refused(ctl, ledd, args, limit):
    message = one_line_error(ctl(*args), 1)
    assert limit in message and "badarg" in message
    assert ledd.client().state()["seq"] == 0  # nothing changed


def test_help_names_the_ranges(run_ledctl):
    result = run_ledctl("brightness", "--help")
    assert result.returncode == 0 and "0-100 %" in result.stdout
    assert "10-1000 Hz" in run_ledctl("frequency", "--help").stdout


# -- refusals, daemon down, bad usage -------------------------------------------
def test_unknown_led_is_refused_in_one_line(ctl, ledd):
    message = one_line_error(ctl("on", "blue"), 1)
    assert "blue" in message and "notfound" in message
    assert ledd.client().state()["seq"] == 0  # nothing changed


def test_out_of_range_blink_is_refused(ctl, ledd):
    message = one_line_error(ctl("blink", "red", "5", "500"), 1)
    assert "20" in message and "badarg" in message


def test_daemon_down(ctl, ledd):
    ledd.stop()
    message = one_line_error(ctl("status"), 3)
    assert "not running" in message
    assert ctl("on", "red", "--json").returncode == 3


def test_never_started(run_ledctl, tmp_path):
    message = one_line_error(run_ledctl("--runtime-dir", tmp_path / "nothing", "status"), 3)
    assert "not running" in message


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["on"],
    ["on", "red", "extra"],
    ["blink", "red", "100"],
    ["blink", "red", "100", "ten"],
    ["blink", "red", "-5", "100"],
    ["all", "maybe"],
    ["brightness", "red"],
    ["brightness", "red", "3.5"],
    ["brightness", "red", "-1"],
    ["brightness", "red", "50%"],
    ["all-brightness", "x"],
    ["frequency", "red"],
    ["--timeout", "0", "status"],
    ["--timeout", "nan", "status"],
    ["on", "re d"],
    ["watch", "--reconnect", "-1"],
])
def test_bad_arguments_exit_2_with_usage(run_ledctl, args):
    result = run_ledctl(*args)
    assert result.returncode == 2, result
    assert result.stderr.startswith("usage: ledctl"), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_help_and_version(run_ledctl):
    result = run_ledctl("--help")
    assert result.returncode == 0 and "watch" in result.stdout and "blink" in result.stdout
    result = run_ledctl("--version")
    assert result.returncode == 0 and result.stdout.startswith("ledctl ")


# -- watch ----------------------------------------------------------------------
@pytest.fixture
def watch_proc(ledd, ledctl_command):
    procs = []

    def start(*args):
        env = dict(os.environ)
        env.pop("LEDD_RUNTIME_DIR", None)
        proc = subprocess.Popen(ledctl_command("--runtime-dir", ledd.runtime_dir, "watch", *args), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def read_line(proc, timeout=10):
    """One stdout line, failing (not hanging) if none comes in time."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout), "no line from ledctl watch within %ss" % timeout
    return proc.stdout.readline()


def test_watch_prints_events_and_exits_130_on_ctrl_c(ledd, watch_proc):
    proc = watch_proc()
    first = read_line(proc)
    assert "seq=0" in first and "red=off" in first and "button=released(0)" in first
    ledd.client().press("button")
    second = read_line(proc)
    assert "seq=1" in second and "*button=pressed(1)" in second and "*red" not in second
    ledd.client().blink("red", 50, 50)
    assert "*red=blinking(50/50)" in read_line(proc)
    ledd.client().brightness("red", 30)  # dimmed: the brightness, and the frequency that matters then
    assert "*red=blinking(50/50)@30%/200Hz" in read_line(proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 130
    assert proc.stdout.read() == "" and proc.stderr.read() == ""


def test_watch_json_one_object_per_line(ledd, watch_proc):
    proc = watch_proc("--json")
    assert json.loads(read_line(proc)) == ledd.client().state()
    ledd.client().on("green")
    event = json.loads(read_line(proc))
    assert event["seq"] == 1 and event["leds"][1]["on"] is True
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 130 and proc.stderr.read() == ""


def test_watch_ends_with_a_message_when_ledd_stops(ledd, watch_proc):
    proc = watch_proc("--reconnect", "0")
    read_line(proc)
    ledd.stop()
    assert proc.wait(10) == 3
    message = proc.stderr.read()
    assert message.startswith("ledctl: ") and message.count("\n") == 1 and "Traceback" not in message


def test_watch_gives_up_after_the_reconnect_window(ledd, watch_proc):
    proc = watch_proc("--reconnect", "0.5")
    read_line(proc)
    ledd.stop()
    assert proc.wait(10) == 3
    lines = proc.stderr.read().splitlines()
    assert len(lines) == 2 and "waiting up to 0.5 s" in lines[0] and "did not come back" in lines[1]


def test_watch_survives_a_daemon_restart(ledd, watch_proc):
    proc = watch_proc()
    assert "seq=0" in read_line(proc)
    ledd.client().on("red")
    assert "*red=on" in read_line(proc)
    ledd.restart()
    ledd.client().press("button")
    line = read_line(proc)  # the restarted ledd's state, pressed button included, or the state then the press
    if "pressed" not in line:
        line = read_line(proc)
    assert "*button=pressed(1)" in line and "red=on" in line
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 130
    assert "waiting up to 10 s" in proc.stderr.read()


def test_watch_output_closed_early_is_quiet(ledd, ledctl_command):
    """``ledctl watch | head -1`` ends quietly once head has gone."""
    env = dict(os.environ)
    env.pop("LEDD_RUNTIME_DIR", None)
    pipeline = "%s | head -n 1" % " ".join("'%s'" % a for a in ledctl_command("-r", ledd.runtime_dir, "watch"))
    proc = subprocess.Popen(["sh", "-c", pipeline], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = read_line(proc)
    assert "seq=0" in first
    ledd.client().on("red")  # ledctl writes the next event into a pipe nobody reads
    ledd.client().off("red")
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and err == ""


def test_requests_is_imported_only_for_url(ledd):
    """ledctl on the Pi itself must not pay for (or need) requests."""
    code = ("import sys; sys.argv = ['ledctl', '-r', %r, '-q', 'status']; from ledd import cli; rc = cli.main(); "
            "print(rc, 'requests' in sys.modules)" % str(ledd.runtime_dir))
    result = subprocess.run(["/usr/bin/python3", "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=30)
    assert result.stdout.split() == ["0", "False"], result.stderr


# -- the verb table (issue 22) ----------------------------------------------------------

def test_a_new_verb_is_one_table_entry(monkeypatch):
    """An entry added to ledd.verbs.VERBS is a ledctl subcommand with its help, and a method of
    Client and RemoteClient sending its request: no second list anywhere to keep in step."""
    from ledd import cli, verbs
    from ledd.client import Client
    from ledd.remote import RemoteClient

    pulse = verbs.Verb("PULSE", [verbs.led(), verbs.Arg("depth", "uint", 0, 100, "%")], action=True,
                       method=verbs.Method("pulse", "Pulse LED ``led``."),
                       http=verbs.Http("leds/<led>", "pulse"), cli=verbs.Cli("pulse", "pulse LED N"))
    monkeypatch.setattr(verbs, "VERBS", verbs.VERBS + (pulse,))
    sent = []

    class Local(Client):
        def call(self, *words):
            sent.append(words)
            return {}

    class Remote(RemoteClient):
        def request_json(self, method, path, body=None):
            sent.append((method, path, body))
            return {}

    verbs.add_methods(Local)
    verbs.add_methods(Remote, usable=lambda verb: verb.http is not None)
    assert not hasattr(Client, "pulse")  # only the subclasses were given the new verb
    Local("/nonexistent").pulse("red", depth="30")
    Remote("http://127.0.0.1:9").pulse(0, 30)
    args = cli.build_parser().parse_args(["pulse", "red", "30"])
    cli._do_command(Local("/nonexistent"), args)
    assert sent == [("PULSE", "red", 30), ("POST", "/api/leds/0", {"pulse": {"depth": 30}}), ("PULSE", "red", 30)]
    assert "pulse LED N" in cli.build_parser().format_help()
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["pulse", "red", "deep"])


def test_docs_usage_lists_every_subcommand_of_the_table():
    """docs/cli.md's usage block names every ledctl subcommand the verb table gives, with its arguments."""
    from ledd import verbs

    usage = (ROOT / "docs" / "cli.md").read_text().split("## Usage", 1)[1].split("```")[1]
    lines = [line.split("ledctl [options] ", 1)[1] for line in usage.splitlines() if "ledctl [options] " in line]
    for verb in verbs.VERBS:
        if verb.cli:
            line = next((l for l in lines if l.split()[0] == verb.cli.command or " %s " % verb.cli.command in l), None)
            assert line, "docs/cli.md's usage has no %s" % verb.cli.command
            for arg in verb.args:
                if arg.kind == "uint":
                    assert arg.name.upper() in line, (verb.cli.command, arg.name)

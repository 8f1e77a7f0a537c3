"""RemoteClient and ``ledctl --url`` against the real stack: lighttpd + the CGIs + a sim ledd.

The fake dashboard (test_ledctl_remote.py) pins down the client; this checks
that the client and the real web layer (tests/web/webstack.py) agree.
"""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web"))

from webstack import LIGHTTPD, Lighttpd  # noqa: E402

from ledd.client import CommandError, DaemonDown  # noqa: E402
from ledd.remote import RemoteClient  # noqa: E402

pytestmark = pytest.mark.skipif(not Path(LIGHTTPD).exists(), reason="lighttpd is not installed (tests/run installs it)")


@pytest.fixture
def stack(ledd, tmp_path):
    server = Lighttpd(ledd.runtime_dir, tmp_path / "lighttpd").start()
    server.ledd = ledd
    yield server
    server.stop()


def test_remote_and_local_see_the_same_board(stack):
    remote, local = RemoteClient(stack.url), stack.ledd.client()
    assert remote.state() == local.state()
    remote.on("green")
    remote.blink(0, 40, 60)
    state = local.state()
    assert state["leds"][1]["on"] is True and state["leds"][0]["blink"] == {"on_ms": 40, "off_ms": 60}
    remote.toggle("green")
    remote.press("button")
    remote.release(0)
    state = local.state()
    assert state["leds"][1]["on"] is False and state["buttons"][0]["presses"] == 1
    assert all(led["on"] for led in remote.all(True)["leds"])
    assert remote.state() == local.state()


@pytest.mark.parametrize("call, code, status", [
    (lambda r: r.on("blue"), "notfound", None),  # name resolved by the client
    (lambda r: r.on(9), "notfound", 404),
    (lambda r: r.blink(0, 5, 5), "badarg", 400),
])
def test_errors_through_the_real_api(stack, call, code, status):
    with pytest.raises(CommandError) as err:
        call(RemoteClient(stack.url))
    assert err.value.code == code
    if status:
        assert err.value.http_status == status


def test_daemon_down_through_the_real_api(stack):
    stack.ledd.stop()
    with pytest.raises(DaemonDown):
        RemoteClient(stack.url).state()


def test_remote_watch_over_real_sse(stack):
    remote = RemoteClient(stack.url)
    with remote.watch() as events:
        first = json.loads(events.next_event(timeout=10))
        assert first == stack.ledd.client().state()
        stack.ledd.client().on("red")
        assert json.loads(events.next_event(timeout=10))["leds"][0]["on"] is True


def test_ledctl_url_watch_and_command(stack, run_ledctl, ledctl_command):
    result = run_ledctl("--url", stack.url, "on", "red", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["leds"][0]["on"] is True
    proc = subprocess.Popen(ledctl_command("--url", stack.url, "watch"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert "red=on" in proc.stdout.readline()
        stack.ledd.client().press("button")
        assert "*button=pressed(1)" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130 and proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ledctl_url_brightness_and_its_refusals(stack, run_ledctl):
    """Issue 23: ``ledctl --url`` sends the brightness through the real API; the API's range check is a refusal."""
    result = run_ledctl("--url", stack.url, "brightness", "green", "30", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["leds"][1]["brightness"] == 30
    assert stack.ledd.client().state()["leds"][1]["brightness"] == 30
    assert run_ledctl("--url", stack.url, "all-brightness", "60", "-q").returncode == 0
    assert run_ledctl("--url", stack.url, "frequency", "red", "400", "-q").returncode == 0
    state = stack.ledd.client().state()
    assert [(x["brightness"], x["pwm_hz"]) for x in state["leds"]] == [(60, 400), (60, 200)]
    refused = run_ledctl("--url", stack.url, "brightness", "green", "101")
    assert refused.returncode == 1 and "0 to 100" in refused.stderr and "badarg" in refused.stderr
    # Dimmed LEDs switch: their "level" (the line right now) may differ, nothing else may.
    assert without_levels(stack.ledd.client().state()) == without_levels(state)


def without_levels(state):
    return dict(state, leds=[{k: v for k, v in led.items() if k != "level"} for led in state["leds"]])

"""RemoteClient and ``ledctl --url`` against a fake dashboard (stdlib http.server on 127.0.0.1).

The fake (tests/cli/conftest.py) implements the API as the web layer
documents it and records every request, so these tests pin down exactly what
the client sends and how it maps every kind of answer to an exception.
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ledd.client import Client, CommandError, DaemonDown, DaemonTimeout
from ledd.remote import RemoteClient, RemoteError
from ledd import cli
from waiting import wait_for

LEDCTL_PATH = Path(__file__).resolve().parent.parent.parent / "bin" / "ledctl"


def posts(fake):
    return [(path, body) for method, path, body in fake.requests if method == "POST"]


# -- the API calls ----------------------------------------------------------------
def test_remote_client_has_the_local_clients_verbs():
    verbs = ["state", "on", "off", "toggle", "blink", "all", "press", "release", "watch"]
    for verb in verbs:
        assert callable(getattr(Client, verb)) and callable(getattr(RemoteClient, verb)), verb


def test_every_verb_sends_the_documented_request(fake_dashboard):
    board = RemoteClient(fake_dashboard.url)
    assert board.state()["leds"][0]["name"] == "red"
    assert board.on(0)["leds"][0]["on"] is True
    assert board.off("0")["leds"][0]["on"] is False
    assert board.toggle(1)["leds"][1]["on"] is True
    state = board.blink(0, 100, 900)
    assert state["leds"][0]["blink"] == {"on_ms": 100, "off_ms": 900}
    assert all(led["on"] is False for led in board.all(False)["leds"])
    assert board.press(0)["buttons"][0]["pressed"] is True
    assert board.release(0)["buttons"][0]["presses"] == 1
    assert posts(fake_dashboard) == [
        ("/api/leds/0", {"on": True}),
        ("/api/leds/0", {"on": False}),
        ("/api/leds/1", {"toggle": True}),
        ("/api/leds/0", {"blink": {"on_ms": 100, "off_ms": 900}}),
        ("/api/leds", {"on": False}),
        ("/api/buttons/0", {"pressed": True}),
        ("/api/buttons/0", {"pressed": False}),
    ]


def test_names_are_resolved_to_ids_through_the_state(fake_dashboard):
    board = RemoteClient(fake_dashboard.url + "/")  # a trailing slash is fine
    board.on("green")
    board.press("button")
    assert posts(fake_dashboard) == [("/api/leds/1", {"on": True}), ("/api/buttons/0", {"pressed": True})]


def test_unknown_name_is_notfound_and_sends_nothing(fake_dashboard):
    board = RemoteClient(fake_dashboard.url)
    with pytest.raises(CommandError) as err:
        board.on("blue")
    assert err.value.code == "notfound" and "blue" in str(err.value)
    assert posts(fake_dashboard) == []


def test_api_errors_keep_their_code_and_status(fake_dashboard):
    board = RemoteClient(fake_dashboard.url)
    # The API's codes (not_found, bad_value, ...) come back as the daemon's, like ledd.client raises them.
    with pytest.raises(CommandError) as err:
        board.on(7)
    assert (err.value.code, err.value.api_code, err.value.http_status) == ("notfound", "not_found", 404)
    with pytest.raises(CommandError) as err:
        board.blink(0, 5, 5)
    assert (err.value.code, err.value.api_code, err.value.http_status) == ("badarg", "bad_value", 400)
    fake_dashboard.fail = (409, "not_supported")
    with pytest.raises(CommandError) as err:
        board.press(0)
    assert (err.value.code, err.value.http_status) == ("notsupported", 409)
    fake_dashboard.fail = (415, "unsupported_media_type")
    with pytest.raises(CommandError) as err:
        board.on(0)
    assert (err.value.code, err.value.http_status) == ("unsupported_media_type", 415)
    fake_dashboard.fail = (503, "busy")
    with pytest.raises(CommandError) as err:
        board.watch()
    assert err.value.code == "busy"


@pytest.mark.parametrize("status, exc", [(503, DaemonDown), (504, DaemonTimeout)])
def test_daemon_down_and_timeout_map_to_the_local_exceptions(fake_dashboard, status, exc):
    fake_dashboard.fail = (status, "daemon_down" if status == 503 else "timeout")
    with pytest.raises(exc, match="injected failure"):
        RemoteClient(fake_dashboard.url).state()


def test_non_api_error_page_is_a_remote_error(fake_dashboard):
    fake_dashboard.fail = (502, None)
    with pytest.raises(RemoteError, match="HTTP 502"):
        RemoteClient(fake_dashboard.url).state()


def test_unreachable_dashboard_is_daemon_down():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nobody listens there
    with pytest.raises(DaemonDown, match="cannot reach http://127.0.0.1:%d" % port):
        RemoteClient("127.0.0.1:%d" % port).state()


def test_stuck_dashboard_times_out(fake_dashboard):
    fake_dashboard.hang.set()
    started = time.monotonic()
    with pytest.raises(DaemonTimeout):
        RemoteClient(fake_dashboard.url, timeout=0.5).state()
    assert time.monotonic() - started < 5


# -- authentication -----------------------------------------------------------------
def test_basic_auth(fake_dashboard):
    fake_dashboard.auth = ("admin", "s3cret")
    with pytest.raises(RemoteError, match="401") as err:
        RemoteClient(fake_dashboard.url).state()
    assert err.value.code == "unauthorized"
    with pytest.raises(RemoteError, match="401"):
        RemoteClient(fake_dashboard.url, auth=("admin", "wrong")).state()
    assert RemoteClient(fake_dashboard.url, auth=("admin", "s3cret")).on("red")["leds"][0]["on"]


def test_netrc_is_used_when_no_auth_is_given(fake_dashboard, tmp_path, monkeypatch):
    fake_dashboard.auth = ("pi", "raspberry")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login pi password raspberry\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert RemoteClient(fake_dashboard.url).state()["seq"] == 0


# -- events -------------------------------------------------------------------------
@pytest.mark.parametrize("chunked", [False, True], ids=["close-delimited", "chunked"])
def test_watch_gets_current_state_then_each_change(fake_dashboard, chunked):
    fake_dashboard.chunked = chunked
    board = RemoteClient(fake_dashboard.url)
    with board.watch() as events:
        first = json.loads(events.next_event(timeout=5))
        assert first["seq"] == 0
        assert events.next_event(timeout=0.5) is None  # pings are not events
        board.on("red")
        second = json.loads(events.next_event(timeout=5))
        assert second["seq"] == 1 and second["leds"][0]["on"] is True


def test_close_does_not_wait_for_the_next_ping(fake_dashboard):
    fake_dashboard.ping_interval = 60
    events = RemoteClient(fake_dashboard.url).watch()
    events.next_event(timeout=5)
    started = time.monotonic()
    events.close()
    events._thread.join(5)
    assert not events._thread.is_alive() and time.monotonic() - started < 2


def test_watch_reconnects_when_the_server_ends_the_stream(fake_dashboard):
    fake_dashboard.events_per_stream = 1
    board = RemoteClient(fake_dashboard.url)
    with board.watch() as events:
        assert json.loads(events.next_event(timeout=5))["seq"] == 0
        wait_for(lambda: fake_dashboard.streams >= 2, what="the client to reopen the stream the server ended")
        board.on("red")
        # The next stream starts with the current state (seq 1); seq 0 is not repeated.
        assert json.loads(events.next_event(timeout=5))["seq"] == 1
        assert events.next_event(timeout=1.5) is None
    assert fake_dashboard.streams >= 2


def test_watch_raises_daemon_down_when_reconnecting_fails(fake_dashboard):
    fake_dashboard.events_per_stream = 1
    board = RemoteClient(fake_dashboard.url)
    with board.watch() as events:
        events.reconnect_delay = 0.05
        events.next_event(timeout=5)
        fake_dashboard.fail = (503, "daemon_down")
        with pytest.raises(DaemonDown):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                events.next_event(timeout=1)


def test_watch_on_a_non_event_stream_is_refused(fake_dashboard):
    # /api/events answered with JSON (e.g. an old web layer): a clear error, not a hang.
    fake_dashboard.fail = (200, "x")
    with pytest.raises(RemoteError, match="not an event stream"):
        RemoteClient(fake_dashboard.url).watch()


# -- ledctl --url -------------------------------------------------------------------
def test_ledctl_url_commands(fake_dashboard, run_ledctl):
    result = run_ledctl("--url", fake_dashboard.url, "on", "green", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["leds"][1]["on"] is True
    result = run_ledctl("--url", fake_dashboard.url, "blink", "red", "50", "950")
    assert result.returncode == 0, result.stderr
    assert "50/950 ms" in result.stdout and "blinking" in result.stdout
    result = run_ledctl("-u", fake_dashboard.url, "all", "off", "-q")
    assert (result.returncode, result.stdout) == (0, "")
    assert posts(fake_dashboard)[-1] == ("/api/leds", {"on": False})


def test_ledctl_url_errors_are_one_line(fake_dashboard, run_ledctl):
    result = run_ledctl("--url", fake_dashboard.url, "on", "blue")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "blue" in result.stderr and "Traceback" not in result.stderr
    fake_dashboard.fail = (503, "daemon_down")
    result = run_ledctl("--url", fake_dashboard.url, "status")
    assert result.returncode == 3 and result.stderr.startswith("ledctl: ") and result.stderr.count("\n") == 1


def test_ledctl_on_a_state_it_cannot_read_is_one_line(fake_dashboard, run_ledctl):
    fake_dashboard.state = {"leds": [{"id": 0}], "seq": 1}  # no names: not what the API promises
    result = run_ledctl("--url", fake_dashboard.url, "status")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "unexpected error" in result.stderr and "LEDCTL_DEBUG" in result.stderr
    result = run_ledctl("--url", fake_dashboard.url, "status", env={"LEDCTL_DEBUG": "1"})
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_ledctl_user_with_password(fake_dashboard, run_ledctl):
    fake_dashboard.auth = ("admin", "pw:with:colons")
    result = run_ledctl("--url", fake_dashboard.url, "--user", "admin:pw:with:colons", "status")
    assert result.returncode == 0, result.stderr
    result = run_ledctl("--url", fake_dashboard.url, "status")
    assert result.returncode == 1 and "401" in result.stderr


def test_ledctl_user_without_password_prompts(fake_dashboard, monkeypatch, capsys):
    fake_dashboard.auth = ("admin", "typed")
    prompts = []

    def fake_getpass(prompt):
        prompts.append(prompt)
        return "typed"

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert cli.main(["--url", fake_dashboard.url, "--user", "admin", "--json", "status"]) == 0
    assert prompts == ["Password for admin: "]
    assert json.loads(capsys.readouterr().out)["backend"] == "sim"


def test_ledctl_user_without_url_is_a_usage_error(run_ledctl):
    result = run_ledctl("--user", "admin:x", "status")
    assert result.returncode == 2 and "--user only makes sense with --url" in result.stderr


@pytest.mark.parametrize("as_json", [False, True])
def test_ledctl_watch_over_http_until_ctrl_c(fake_dashboard, ledctl_command, as_json):
    args = ["--url", fake_dashboard.url, "watch"] + (["--json"] if as_json else [])
    proc = subprocess.Popen(ledctl_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        RemoteClient(fake_dashboard.url).press("button")
        second = proc.stdout.readline()
        if as_json:
            assert json.loads(first)["seq"] == 0
            assert json.loads(second)["buttons"][0]["pressed"] is True
        else:
            assert "seq=0" in first and "button=released(0)" in first
            assert "seq=1" in second and "*button=pressed(1)" in second
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("chunked", [False, True], ids=["close-delimited", "chunked"])
def test_installed_launcher_with_system_python(fake_dashboard, tmp_path, chunked):
    """deploy links /usr/local/bin/ledctl to bin/ledctl, run by Debian's /usr/bin/python3 (urllib3 1.26)."""
    fake_dashboard.chunked = chunked
    link = tmp_path / "ledctl"
    link.symlink_to(LEDCTL_PATH)
    env = dict(os.environ, PYTHONPATH="")
    proc = subprocess.Popen([str(link), "--url", fake_dashboard.url, "watch", "--json"], cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert json.loads(proc.stdout.readline())["seq"] == 0
        RemoteClient(fake_dashboard.url).toggle("green")
        assert json.loads(proc.stdout.readline())["leds"][1]["on"] is True
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_remote_client_does_not_import_the_web_server():
    """Issue 22: remote.py took its error table from the CGI module ledd.web (now ledd.web.api); both now share ledd.errors,
    a leaf that loads nothing, and the clients raise its very classes."""
    import sys
    from ledd import errors, remote

    probe = ("import sys; sys.path.insert(0, %r); before = set(sys.modules); import ledd.errors; "
             "leaf = sorted(set(sys.modules) - before - {'ledd', 'ledd.errors'}); import ledd.remote; "
             "print(leaf, 'ledd.web' in sys.modules or 'ledd.web.api' in sys.modules)" % str(Path(__file__).resolve().parents[2]))
    out = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["[]", "False"], out.stderr
    assert (remote.CommandError, remote.RemoteError, CommandError, DaemonDown) == (
        errors.CommandError, errors.RemoteError, errors.CommandError, errors.DaemonDown)

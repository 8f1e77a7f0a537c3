"""The CGI scripts run by hand, the way lighttpd runs them: start-up cost and robustness.

GET /api/state must not import json, re or urllib (start-up is most of a CGI's
cost); no input, however odd, may produce a traceback instead of JSON.
"""

import os
import subprocess

import pytest

from webstack import ROOT

PYTHON = "/usr/bin/python3"
API = ROOT / "cgi-bin" / "api.py"
EVENTS = ROOT / "cgi-bin" / "events.py"


def run_cgi(script, runtime_dir, method="GET", uri="/api/state", body=b"", extra=None, probe=False):
    env = {
        "REQUEST_METHOD": method,
        "REQUEST_URI": uri,
        "SCRIPT_NAME": "/api",
        "PATH_INFO": uri[4:],
        "HTTP_HOST": "127.0.0.1:8080",
        "REDIRECT_STATUS": "200",
        "LEDD_RUNTIME_DIR": str(runtime_dir),
    }
    if body:
        env.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)))
    env.update(extra or {})
    if probe:
        # Python reports every module the script imports on stderr.
        cmd = [PYTHON, "-I", "-S", "-X", "importtime", str(script)]
    else:
        cmd = [str(script)]
    return subprocess.run(cmd, input=body, env=env, capture_output=True, timeout=10)


def split(stdout):
    head, _, body = stdout.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
    return headers, body


def loaded_modules(result):
    lines = [line for line in result.stderr.decode().splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


def test_scripts_are_executable_with_isolated_python():
    for script in (API, EVENTS):
        assert os.access(script, os.X_OK), script
        assert script.read_text().splitlines()[0] == "#!/usr/bin/python3 -IS"


def test_get_state_imports_no_module_beyond_the_built_in_ones(ledd):
    result = run_cgi(API, ledd.runtime_dir, probe=True)
    headers, body = split(result.stdout)
    assert headers["Status"].startswith("200"), result
    assert body.startswith(b'{"leds":')
    modules = loaded_modules(result)
    assert modules, result.stderr
    for heavy in ("json", "re", "urllib", "urllib.parse", "cgi", "email", "site", "os", "posixpath"):
        assert heavy not in modules, heavy
    assert "ledd.client" in modules


def test_post_works_and_may_import_json(ledd):
    result = run_cgi(API, ledd.runtime_dir, method="POST", uri="/api/leds/0", body=b'{"on":true}')
    headers, body = split(result.stdout)
    assert headers["Status"].startswith("200"), result
    assert b'"on":true' in body
    assert ledd.client().state()["leds"][0]["on"] is True


@pytest.mark.parametrize("extra", [
    {"REQUEST_METHOD": ""},
    {"CONTENT_LENGTH": "abc", "CONTENT_TYPE": "application/json", "REQUEST_METHOD": "POST", "REQUEST_URI": "/api/leds/0"},
    {"CONTENT_LENGTH": "-5", "CONTENT_TYPE": "application/json", "REQUEST_METHOD": "POST", "REQUEST_URI": "/api/leds/0"},
    {"REQUEST_URI": "/api/leds/\u00e9", "REQUEST_METHOD": "POST"},
    {"REQUEST_URI": "/api/state?" + "x" * 5000},
    {"REDIRECT_STATUS": "bogus"},
    {"REQUEST_URI": "/api/leds/\udcff\udcfe", "REQUEST_METHOD": "POST"},
    {"HTTP_ORIGIN": "\u00ff\u0001", "REQUEST_METHOD": "POST", "REQUEST_URI": "/api/leds/0"},
])
def test_odd_environments_get_json_not_tracebacks(ledd, extra):
    result = run_cgi(API, ledd.runtime_dir, extra=extra)
    headers, body = split(result.stdout)
    assert headers["Content-Type"] == "application/json", result
    assert body.startswith(b"{"), result
    assert b"Traceback" not in result.stdout + result.stderr
    assert not headers["Status"].startswith("500"), result


def test_events_script_sends_first_state_and_503_when_down(ledd):
    proc = subprocess.Popen([str(EVENTS)], env={"REQUEST_METHOD": "GET", "REQUEST_URI": "/api/events", "HTTP_HOST": "localhost",
                                                "LEDD_RUNTIME_DIR": str(ledd.runtime_dir)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got = b""
        while b"event: state" not in got or not got.endswith(b"\n\n"):
            chunk = proc.stdout.read1(65536)
            assert chunk, proc.stderr.read()
            got += chunk
        headers, body = split(got)
        assert headers["Content-Type"].startswith("text/event-stream")
        assert b"retry: " in body and b'data: {"leds":' in body
    finally:
        proc.kill()
        proc.wait()
    ledd.stop()
    result = run_cgi(EVENTS, ledd.runtime_dir, uri="/api/events")
    headers, body = split(result.stdout)
    assert headers["Status"].startswith("503") and b'"daemon_down"' in body

"""Fixtures of the ledctl tests: run ``bin/ledctl`` as a user would, and a fake dashboard.

``run_ledctl(*args)`` runs bin/ledctl in a subprocess and returns the
CompletedProcess. ``fake_dashboard`` is a stdlib ``http.server`` on 127.0.0.1
that speaks the dashboard's HTTP API (``/api/state``, ``/api/leds``,
``/api/buttons``, ``/api/events``) over an in-memory state, records every
request, and can be told to fail; the real lighttpd stack is tested in
tests/web.
"""

import base64
import copy
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
LEDCTL = ROOT / "bin" / "ledctl"


def ledctl_command(*args):
    """The argv that runs bin/ledctl with this interpreter (the venv has requests)."""
    return [sys.executable, str(LEDCTL)] + [str(a) for a in args]


@pytest.fixture(name="ledctl_command")
def ledctl_command_fixture():
    """``ledctl_command(*args)``: the argv that runs bin/ledctl (for Popen)."""
    return ledctl_command


@pytest.fixture
def run_ledctl():
    def run(*args, env=None, input=None, timeout=20):
        full_env = dict(os.environ)
        full_env.pop("LEDD_RUNTIME_DIR", None)
        full_env.update(env or {})
        return subprocess.run(ledctl_command(*args), capture_output=True, text=True, env=full_env,
                              input=input, timeout=timeout)

    return run


INITIAL_STATE = {
    "leds": [
        {"id": 0, "name": "red", "gpio": 17, "on": False, "blink": None, "level": 0},
        {"id": 1, "name": "green", "gpio": 27, "on": False, "blink": None, "level": 0},
    ],
    "buttons": [{"id": 0, "name": "button", "gpio": 22, "pressed": False, "presses": 0, "last_press_ms": None}],
    "seq": 0,
    "backend": "sim",
    "protocol": 2,
}


class FakeDashboard:
    """The dashboard's API over an in-memory state, for testing clients of it.

    Attributes tests set: ``auth`` ((user, password) to require Basic auth),
    ``fail`` ((status, code) to answer every API request with that error, or
    (status, None) for a non-JSON error page), ``chunked`` (send /api/events
    with chunked transfer encoding, as lighttpd does, else close-delimited),
    ``events_per_stream`` (end each event stream after that many events, as a
    web server's time limit would), ``ping_interval`` (seconds between pings), ``hang`` (never answer: a stuck server).
    Attributes tests read: ``requests`` (method, path, decoded JSON body) and
    ``streams`` (how many event streams were opened).
    """

    def __init__(self):
        self.state = copy.deepcopy(INITIAL_STATE)
        self.requests = []
        self.auth = None
        self.fail = None
        self.chunked = False
        self.events_per_stream = None
        self.ping_interval = 0.2
        self.hang = threading.Event()
        self.streams = 0
        self.changed = threading.Condition()
        self.closing = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        with self.changed:
            self.closing = True
            self.changed.notify_all()
        self.hang.clear()
        self.server.shutdown()
        self.server.server_close()

    # -- the API's behaviour --------------------------------------------------
    def apply(self, method, path, body):
        """(status, answer dict) for one API request."""
        if path == "/api/state" and method == "GET":
            return 200, self.state
        match = re.fullmatch(r"/api/(leds|buttons)(?:/(\d+))?", path)
        if not match:
            return 404, {"error": "no such API path", "code": "not_found"}
        if method != "POST":
            return 405, {"error": "use POST", "code": "method"}
        if not isinstance(body, dict) or len(body) != 1:
            return 400, {"error": "body must be exactly one field", "code": "bad_value"}
        kind, ident = match.group(1), match.group(2)
        with self.changed:
            if kind == "leds" and ident is None:
                if not isinstance(body.get("on"), bool):
                    return 400, {"error": "want {\"on\": bool}", "code": "bad_value"}
                for led in self.state["leds"]:
                    led.update(on=body["on"], blink=None, level=int(body["on"]))
            else:
                items = self.state[kind]
                if ident is None or int(ident) >= len(items):
                    return 404, {"error": "no such %s" % kind[:-1], "code": "not_found"}
                item = items[int(ident)]
                key, value = next(iter(body.items()))
                if kind == "buttons":
                    if key != "pressed" or not isinstance(value, bool):
                        return 400, {"error": "want {\"pressed\": bool}", "code": "bad_value"}
                    if value and not item["pressed"]:
                        item["presses"] += 1
                        item["last_press_ms"] = 1763762400123
                    item["pressed"] = value
                elif key == "on" and isinstance(value, bool):
                    item.update(on=value, blink=None, level=int(value))
                elif key == "toggle" and value is True:
                    item.update(on=not item["on"], blink=None, level=int(not item["on"]))
                elif key == "blink" and isinstance(value, dict) and set(value) == {"on_ms", "off_ms"}:
                    if not all(isinstance(v, int) and 20 <= v <= 60000 for v in value.values()):
                        return 400, {"error": "blink periods are 20-60000 ms", "code": "bad_value"}
                    item.update(on=True, blink=dict(value))
                else:
                    return 400, {"error": "unknown LED command", "code": "bad_value"}
            self.state["seq"] += 1
            self.changed.notify_all()
        return 200, self.state

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _authorized(self):
                if fake.auth is None:
                    return True
                expected = "Basic " + base64.b64encode(("%s:%s" % fake.auth).encode()).decode()
                return self.headers.get("Authorization") == expected

            def _send_json(self, status, answer, extra_headers=()):
                data = json.dumps(answer).encode() if answer is not None else b"<html>error</html>"
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if answer is not None else "text/html")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra_headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = "<invalid json>"
                fake.requests.append((method, self.path, body))
                if fake.hang.is_set():
                    while fake.hang.is_set() and not fake.closing:
                        time.sleep(0.05)  # never answer while hang is set
                    return
                if not self._authorized():
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="ledd"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fake.fail is not None:
                    status, code = fake.fail
                    self._send_json(status, {"error": "injected failure", "code": code} if code else None)
                    return
                if self.path == "/api/events" and method == "GET":
                    self._events()
                    return
                self._send_json(*fake.apply(method, self.path, body))

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def _write(self, text):
                data = text.encode()
                if fake.chunked:
                    data = b"%x\r\n%s\r\n" % (len(data), data)
                self.wfile.write(data)
                self.wfile.flush()

            def _events(self):
                fake.streams += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                if fake.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                sent, seen = 0, None
                self._write(": hello\n\n")
                try:
                    with fake.changed:
                        while not fake.closing:
                            if fake.state["seq"] != seen:
                                seen = fake.state["seq"]
                                # Split the event over two writes: a client must not
                                # dispatch on a partial event.
                                self._write("event: state\n")
                                self._write("data: %s\n\n" % json.dumps(fake.state, separators=(",", ":")))
                                sent += 1
                                if fake.events_per_stream and sent >= fake.events_per_stream:
                                    break
                            if not fake.changed.wait(fake.ping_interval):
                                self._write(": ping\n\n")
                    if fake.chunked:
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        return Handler


@pytest.fixture
def fake_dashboard():
    fake = FakeDashboard()
    yield fake
    fake.close()

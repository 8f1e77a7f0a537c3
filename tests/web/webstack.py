"""The local web stack for tests and benchmarks: the real lighttpd with the project's lighttpd.conf.

``Lighttpd(runtime_dir, workdir).start()`` runs ``lighttpd -D -f lighttpd.conf``
on a free port of 127.0.0.1 with the environment deploy.sh gives it
(LEDD_HOME = this checkout), pointed at any ledd runtime directory.
"""

import os
import socket
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "lighttpd.conf"
EMPTY_AUTH = ROOT / "lighttpd.d" / "none.conf"
LIGHTTPD = "/usr/sbin/lighttpd"
START_TIMEOUT_S = 10.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lighttpd_env(port, runtime_dir, state_dir, auth_include=EMPTY_AUTH):
    """The environment contract of lighttpd.conf (documented at its top)."""
    return dict(
        os.environ,
        LEDD_HOME=str(ROOT),
        LEDD_HTTP_BIND="127.0.0.1",
        LEDD_HTTP_PORT=str(port),
        LEDD_RUNTIME_DIR=str(runtime_dir),
        LEDD_WEB_STATE_DIR=str(state_dir),
        LEDD_AUTH_INCLUDE=str(auth_include),
    )


class Lighttpd:
    """One lighttpd process serving the dashboard; ``url`` is its base URL."""

    def __init__(self, runtime_dir, workdir, include=EMPTY_AUTH):
        self.include = include  # the LEDD_AUTH_INCLUDE snippet (bench/web.py adds its reference CGIs there)
        self.runtime_dir = Path(runtime_dir)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "lighttpd.log"
        self.proc = None
        self.port = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        # A port found free may be taken before lighttpd binds it: retry a few times.
        for _ in range(5):
            self.port = free_port()
            env = lighttpd_env(self.port, self.runtime_dir, self.workdir, self.include)
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([LIGHTTPD, "-D", "-f", str(CONFIG)], env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
            if self._wait_listening():
                return self
            self.stop()
        raise AssertionError("lighttpd did not start:\n" + self.read_log())

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def read_log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def cgi_pids(self, script):
        """PIDs of this lighttpd's live CGI children whose command line contains ``script``.

        A CGI that has exited but is not reaped yet (a zombie) is not counted: it holds nothing.
        """
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
                    ppid = int(ppid)
                if state == "Z":
                    continue
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    cmdline = f.read()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.proc.pid and script.encode() in cmdline:
                pids.append(int(entry))
        return pids

    def cgi_pids_after(self, script, timeout):
        """cgi_pids(script) once it is empty, or when ``timeout`` seconds have passed (a CGI that
        has answered may take a moment to exit on a loaded machine)."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.cgi_pids(script)
            if not pids or time.monotonic() >= deadline:
                return pids
            time.sleep(0.05)

    # -- requests helpers --------------------------------------------------
    def get(self, path, **kw):
        kw.setdefault("timeout", 10)
        return requests.get(self.url + path, **kw)

    def post(self, path, json=None, **kw):
        kw.setdefault("timeout", 10)
        return requests.post(self.url + path, json=json, **kw)




class EventStream:
    """A minimal Server-Sent Events client over one HTTP connection (tests and bench).

    ``next(timeout)`` returns ``(event, data)`` of the next event, or
    ``("comment", text)`` for a keep-alive; raises ``EOFError`` when the stream ends.
    """

    def __init__(self, base_url, path="/api/events", headers=None, timeout=10, source=None):
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        # ``source``: a local address to connect from (127.0.0.N), as if from another client.
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout,
                                               source_address=(source, 0) if source else None)
        self.conn.request("GET", path, headers=dict({"Accept": "text/event-stream"}, **(headers or {})))
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}
        self.sock = self.conn.sock

    def next(self, timeout=5.0):
        self.sock.settimeout(timeout)
        event, data = "message", []
        while True:
            line = self.response.readline()
            if not line:
                raise EOFError("the event stream ended")
            line = line.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data:
                    return event, "\n".join(data)
                continue
            if line.startswith(":"):
                return "comment", line[1:].strip()
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)

    def next_event(self, kind="state", timeout=5.0):
        """The data of the next event of ``kind``, skipping comments and other kinds."""
        import json

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no %s event within %ss" % (kind, timeout))
            event, data = self.next(left)
            if event == kind:
                return json.loads(data) if kind == "state" else data

    def close(self):
        self.conn.close()

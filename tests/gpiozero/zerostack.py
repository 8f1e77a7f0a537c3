"""Helpers and fixtures for the gpiozero pin factory tests (conftest.py re-exports the fixtures;
test modules import helpers from here, since several test folders have a conftest module): interpreters, registration,
scripts run unchanged with GPIOZERO_PIN_FACTORY=ledd, and an event observer.

Two gpiozero releases are tested: 2.x from PyPI in the test venv
(``sys.executable``) and Debian's 1.6 under ``/usr/bin/python3``. The factory
is registered the way deploy.sh does it (``python3 -m ledd.gpiozero_factory
--register DIR``) into a private directory that the scripts get on PYTHONPATH.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "web"))  # webstack: lighttpd for the dashboard tests

from ledd.client import Client, LeddError  # noqa: E402
from waiting import wait_for  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"
DOC = ROOT / "docs" / "gpiozero.md"


def gpiozero_version(python):
    r = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('gpiozero'))"],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def interpreters():
    found = [pytest.param(sys.executable, id="gpiozero2-venv")]
    found.append(pytest.param(SYSTEM_PYTHON, id="gpiozero1.6-debian", marks=pytest.mark.skipif(
        not os.path.exists(SYSTEM_PYTHON) or not (gpiozero_version(SYSTEM_PYTHON) or "").startswith("1."),
        reason="no Debian python3-gpiozero 1.x under /usr/bin/python3")))
    return found


@pytest.fixture(params=interpreters())
def python(request):
    return request.param


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory):
    """A directory holding the factory's entry point, written by the registration step."""
    path = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "ledd.gpiozero_factory", "--register", str(path)],
                   cwd=ROOT, check=True, capture_output=True)
    return path


def examples():
    """{file name: code} of every ``<!-- example: NAME -->`` block in docs/gpiozero.md."""
    found = re.findall(r"<!-- example: (\S+) -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    return dict(found)


class Script:
    """A gpiozero script run as its own process, as a user would run it."""

    def __init__(self, python, path, ledd, site_dir, env=None):
        self.path = Path(path)
        self.ledd = ledd
        full_env = dict(os.environ, LEDD_RUNTIME_DIR=str(ledd.runtime_dir), GPIOZERO_PIN_FACTORY="ledd",
                        PYTHONPATH=os.pathsep.join([str(site_dir), str(ROOT)]), PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        self.log = open(self.path.with_suffix(".log"), "w+b")
        self.proc = subprocess.Popen([python, str(self.path)], stdin=subprocess.PIPE, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=full_env, cwd=self.path.parent)

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def output(self):
        self.log.flush()
        return self.path.with_suffix(".log").read_text(errors="replace")

    def wait_output(self, text, timeout=10):
        def printed():
            assert self.proc.poll() is None or text in self.output(), \
                "script ended (%s):\n%s" % (self.proc.returncode, self.output())
            return text in self.output()
        wait_for(printed, timeout, interval=0.01, what=lambda: "%r from the script:\n%s" % (text, self.output()))

    def alive(self):
        assert self.proc.poll() is None, "script ended (%s):\n%s" % (self.proc.returncode, self.output())

    def stop(self):
        self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def run_script(tmp_path, site_dir):
    """run_script(python, code, ledd, name=...) starts a script; all are stopped at teardown."""
    started = []

    def run(python, code, ledd, name="script.py", env=None):
        path = tmp_path / name
        path.write_text(code)
        script = Script(python, path, ledd, site_dir, env)
        started.append(script)
        return script

    yield run
    for script in started:
        script.stop()


class Observer:
    """Every state ledd announces, collected by a watcher thread of the test's own."""

    def __init__(self, runtime_dir):
        self.client = Client(str(runtime_dir))
        self.states = []            # (time.monotonic(), state)
        self.cond = threading.Condition()
        self.watcher = self.client.watch()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                data = self.watcher.next_event(0.1)
            except LeddError:
                return
            if data is not None:
                with self.cond:
                    self.states.append((time.monotonic(), json.loads(data)))
                    self.cond.notify_all()

    def wait_for(self, predicate, timeout=10, since=0):
        """The first state (index >= since) that satisfies predicate: (index, time, state)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(since, len(self.states)):
                    if predicate(self.states[i][1]):
                        return i, self.states[i][0], self.states[i][1]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def __len__(self):
        with self.cond:
            return len(self.states)

    def close(self):
        self.running = False
        self.thread.join(2)
        self.watcher.close()


@pytest.fixture
def observe():
    made = []

    def make(ledd):
        obs = Observer(ledd.runtime_dir)
        made.append(obs)
        return obs

    yield make
    for obs in made:
        obs.close()


@pytest.fixture
def factory(ledd):
    """ledd's pin factory on the test's ledd, as gpiozero's default for the test (gpiozero 2.x, in process)."""
    from gpiozero import Device

    from ledd.gpiozero_factory import LeddFactory

    made = LeddFactory(str(ledd.runtime_dir))
    Device.pin_factory = made
    yield made
    made.close()
    Device.pin_factory = None


def led(state, name):
    return next(l for l in state["leds"] if l["name"] == name)


#: The default wiring with a third LED: red, amber, green for TrafficLights.
TRAFFIC_CONFIG = (ROOT / "cdaemon" / "ledd.conf").read_text().replace(
    "\n[button button]", "\n[led amber]\ngpio = 23\n\n[button button]").replace("backend = chardev", "backend = sim")

#: The default wiring with a third LED: red, green and blue for an RGBLED.
RGB_CONFIG = TRAFFIC_CONFIG.replace("[led amber]", "[led blue]")


def record_refusals(factory):
    """An Event set whenever one of ``factory``'s requests meets ledd down (LeddDown, re-raised)."""
    from ledd.gpiozero_factory.errors import LeddDown

    refused, request = threading.Event(), factory.request

    def recording(*args):
        try:
            return request(*args)
        except LeddDown:
            refused.set()
            raise

    factory.request = recording
    return refused

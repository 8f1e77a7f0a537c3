"""./deploy.sh --local: the whole stack from the checkout on 127.0.0.1, stopped cleanly by Ctrl-C."""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deployutil import DEPLOY, ROOT
from waiting import WAIT_S, holds_for, wait_for

from ledd.client import Client

START_TIMEOUT_S = 60  # includes an incremental `make`


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stat_fields(pid):
    """/proc/PID/stat after the command name: [state, ppid, ...]."""
    return Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()


def children_of(pid):
    """PIDs of every live descendant of ``pid`` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(stat_fields(int(entry.name))[1])
            except OSError:
                continue
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not running
        return stat_fields(pid)[0] != "Z"
    except OSError:
        return False


class LocalRun:
    def __init__(self, port, runtime_dir, log, args=(), stdin=None):
        env = dict(os.environ, LEDD_RUNTIME_DIR=str(runtime_dir))
        self.log = log
        self.port = port
        self.proc = subprocess.Popen([str(DEPLOY), "--local", "--port", str(port), *args], cwd=ROOT, env=env,
                                     stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE)
        if stdin is not None:
            self.proc.stdin.write(stdin.encode())
            self.proc.stdin.close()

    def output(self):
        return Path(self.log).read_text(errors="replace")

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("deploy.sh --local exited %s:\n%s" % (self.proc.returncode, self.output()))
            return "Ctrl-C stops everything" in self.output()
        wait_for(ready, START_TIMEOUT_S, what=lambda: "deploy.sh --local to be ready:\n" + self.output(), interval=0.1)

    def get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path), timeout=5) as resp:
            return resp.status, json.loads(resp.read())

    def post(self, path, body):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())

    def kill(self):
        for pid in children_of(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def local_run(tmp_path, ledd_binary):
    runs = []

    def start(port=None, runtime_dir=None, args=(), stdin=None):
        run = LocalRun(port or free_port(), runtime_dir or tmp_path / "run", tmp_path / ("local%d.log" % len(runs)),
                       args, stdin)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill()
    # --local writes board.json into its runtime dir's web/ (lighttpd.conf serves it from there).
    assert not (ROOT / "www" / "board.json").exists()


def test_local_run_serves_the_api_and_stops_cleanly_on_ctrl_c(local_run, tmp_path):
    run = local_run()
    run.wait_ready()
    out = run.output()
    assert "http://127.0.0.1:%d/" % run.port in out
    assert str(tmp_path / "run") in out  # the runtime dir is printed for ledctl

    status, state = run.get("/api/state")
    assert status == 200 and state["backend"] == "sim"
    assert [led["name"] for led in state["leds"]] == ["red", "green"]
    status, state = run.post("/api/leds/0", {"on": True})
    assert status == 200 and state["leds"][0]["on"] is True
    # Another terminal (ledctl, any FIFO client) reaches the same daemon through the printed dir.
    assert json.loads(Client(str(tmp_path / "run")).request("STATE"))["leds"][0]["on"] is True

    children = children_of(run.proc.pid)
    assert len(children) >= 2  # ledd and lighttpd
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(15) == 130  # 128 + SIGINT, like any Ctrl-C-ed program
    wait_for(lambda: not [pid for pid in children if alive(pid)], WAIT_S,
             what=lambda: "every child to end (left behind: %s)" % [pid for pid in children if alive(pid)])
    leftovers = [p for p in (tmp_path / "run").rglob("*") if p.is_fifo()]
    assert leftovers == []
    assert "stopped" in run.output()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", run.port), timeout=1).close()


def test_local_run_keeps_led_state_across_runs(local_run, tmp_path):
    first = local_run()
    first.wait_ready()
    first.post("/api/leds/1", {"on": True})
    first.proc.send_signal(signal.SIGINT)
    first.proc.wait(15)
    second = local_run()
    second.wait_ready()
    assert second.get("/api/state")[1]["leds"][1]["on"] is True


def test_port_in_use_is_a_clear_error(local_run, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = local_run(port=port)
        assert run.proc.wait(START_TIMEOUT_S) == 1
    out = run.output()
    assert "port %d on 127.0.0.1 is already in use" % port in out
    assert "Traceback" not in out and "line " not in out
    assert not (tmp_path / "run" / "ledd.cmd").exists()  # nothing was started


def test_second_local_run_on_the_same_port_is_refused(local_run, tmp_path):
    first = local_run()
    first.wait_ready()
    second = local_run(port=first.port, runtime_dir=tmp_path / "run2")
    assert second.proc.wait(START_TIMEOUT_S) == 1
    assert "already in use" in second.output()
    assert first.get("/api/state")[0] == 200  # the first one is unharmed


def test_second_local_run_on_the_same_runtime_dir_is_refused(local_run, tmp_path):
    first = local_run()
    first.wait_ready()
    second = local_run(runtime_dir=tmp_path / "run")  # another port, same directory
    assert second.proc.wait(START_TIMEOUT_S) == 1
    owner = int((tmp_path / "run" / "ledd.pid").read_text())
    assert owner in children_of(first.proc.pid)
    assert "another ledd (pid %d) already runs on %s" % (owner, tmp_path / "run") in second.output()
    # The first one keeps its FIFOs and still answers.
    assert (tmp_path / "run" / "ledd.cmd").is_fifo()
    assert first.get("/api/state")[0] == 200


# -- supervision: ledd is restarted like systemd's Restart=on-failure ----------------------------

def ledd_pid(runtime_dir):
    return int((Path(runtime_dir) / "ledd.pid").read_text())


def get_status(run, path="/api/state"):
    try:
        return run.get(path)[0]
    except urllib.error.HTTPError as e:
        return e.code


def comm_of(pid):
    """The process's name, or None when it has gone (a CGI, a sleep) since it was listed."""
    try:
        return Path("/proc/%d/comm" % pid).read_text().strip()
    except OSError:
        return None


def parent_of(pid):
    return int(stat_fields(pid)[1])


def test_a_killed_ledd_is_restarted_while_lighttpd_serves_on(local_run, tmp_path):
    run = local_run()
    run.wait_ready()
    run.post("/api/leds/1", {"on": True})
    lighttpd = [pid for pid in children_of(run.proc.pid) if comm_of(pid) == "lighttpd"]
    assert len(lighttpd) == 1
    first = ledd_pid(tmp_path / "run")
    # The supervisor (ledd's parent) is held while ledd is down: ledd comes back a second later,
    # and on a loaded machine a CGI can take longer than that, so the down time must not be a race.
    supervisor = parent_of(first)
    os.kill(supervisor, signal.SIGSTOP)
    try:
        os.kill(first, signal.SIGKILL)
        # The page sees "daemon down" (503 from the API), not a dead web server ...
        assert wait_for(lambda: get_status(run) == 503, 30, "503 while ledd is down")
    finally:
        os.kill(supervisor, signal.SIGCONT)
    # ... then ledd is back, a second later, with the LED state it had.
    wait_for(lambda: get_status(run) == 200, 30, "ledd restarted")
    assert ledd_pid(tmp_path / "run") != first
    assert run.get("/api/state")[1]["leds"][1]["on"] is True
    assert alive(lighttpd[0])  # the same lighttpd served all along
    out = run.output()
    assert "ledd (pid %d) was killed by signal KILL" % first in out
    assert "restarting ledd in 1s" in out
    # Ctrl-C still stops everything, the restarted ledd included.
    children = children_of(run.proc.pid)
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(15) == 130
    wait_for(lambda: not [pid for pid in children if alive(pid)], 5, "every process gone")
    assert [p for p in (tmp_path / "run").rglob("*") if p.is_fifo()] == []


def test_a_ledd_that_exits_cleanly_is_not_restarted_and_the_page_says_daemon_down(local_run, tmp_path):
    run = local_run()
    run.wait_ready()
    pid = ledd_pid(tmp_path / "run")
    os.kill(pid, signal.SIGTERM)  # ledd saves its state and exits 0: systemd would not restart it either
    assert wait_for(lambda: "exited cleanly; not restarted" in run.output(), 10, "clean exit noticed")
    assert get_status(run) == 503
    # About time itself: for a while, ledd stays down and lighttpd serves on, alone.
    holds_for(lambda: get_status(run) == 503 and run.proc.poll() is None, 1.5, what="503 from a lighttpd serving on")
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(15) == 130


def test_the_local_run_serves_the_wiring_diagram(local_run):
    run = local_run()
    run.wait_ready()
    status, board = run.get("/board.json")
    assert status == 200
    assert len(board["pins"]) == 40 and board["model"]  # the header layout ledd.board wrote
    assert "board.json not generated" not in run.output()


def source_deploy(script, env_extra=None):
    """Run bash that sources deploy.sh (functions only) and then ``script``."""
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(["bash", "-c", '. "%s"\n%s' % (DEPLOY, script)], capture_output=True, text=True,
                          env=env, timeout=60)


FAKE_TOOLS = r'''
PYTHON=$FAKE_DIR/python3
printf '#!/bin/sh\n[ -f "%s/installed" ]\n' "$FAKE_DIR" >"$PYTHON" && chmod +x "$PYTHON"
apt-get() { echo "apt-get $*" >>"$FAKE_DIR/apt.log"; : >"$FAKE_DIR/installed"; }
'''


def test_local_installs_python3_gpiozero_like_lighttpd_and_says_so(tmp_path):
    proc = source_deploy(FAKE_TOOLS + "local_tools", {"FAKE_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "installing python3-gpiozero" in proc.stdout
    assert "wiring diagram" in proc.stdout
    calls = (tmp_path / "apt.log").read_text()
    assert "install" in calls and "python3-gpiozero" in calls


def test_local_without_root_prints_the_apt_command_for_gpiozero(tmp_path):
    proc = source_deploy(FAKE_TOOLS + "id() { echo 1000; }\nlocal_tools", {"FAKE_DIR": str(tmp_path)})
    assert proc.returncode == 1
    assert "sudo apt-get install -y python3-gpiozero" in proc.stderr
    assert not (tmp_path / "apt.log").exists()


# -- the clients beside the local run: gpiozero scripts and the MQTT bridge ----------------------

def test_the_local_run_says_how_a_gpiozero_script_reaches_its_pins(local_run, tmp_path):
    """GPIOZERO_PIN_FACTORY=ledd under /usr/bin/python3 (Debian's gpiozero), from another terminal."""
    run = local_run()
    run.wait_ready()
    hint = re.search(r"gpiozero scripts \(other terminal\): (.*)", run.output())
    assert hint, run.output()
    words = shlex.split(hint.group(1))
    assignments = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("/"))
    command = [w for w in words if w not in ["%s=%s" % kv for kv in assignments.items()]]
    assert assignments["GPIOZERO_PIN_FACTORY"] == "ledd" and command[-1] == "script.py"
    assert command[0] == "/usr/bin/python3"
    (tmp_path / "script.py").write_text(
        "from gpiozero import Device, LED\nLED(17).on()\nprint(type(Device.pin_factory).__name__)\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LEDD_RUNTIME_DIR", "GPIOZERO_PIN_FACTORY", "VIRTUAL_ENV")}
    env.update(assignments)
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "LeddFactory\n", ""), proc.stderr
    assert run.get("/api/state")[1]["leds"][0]["on"] is True
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(15) == 130
    assert not (tmp_path / "run" / "python").exists()  # the registration lives as long as the run


@pytest.fixture
def mqtt_broker(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "mqtt"))
    import mqttstack

    pki = tmp_path / "pki"
    pki.mkdir()
    (tmp_path / "broker").mkdir()
    broker = mqttstack.Broker(tmp_path / "broker", mqttstack.make_pki(pki)).start()
    probe = mqttstack.Probe(broker, subscribe=("ledd/#",))
    yield broker, probe, mqttstack.PASSWORD
    probe.close()
    broker.stop()


def bridge_pids(run):
    """The ledd-mqtt processes of a local run."""
    found = []
    for pid in children_of(run.proc.pid):
        try:
            argv = Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"bin/ledd-mqtt") for a in argv):
            found.append(pid)
    return found


def test_the_bridge_is_supervised_apart_and_its_end_leaves_the_stack_running(local_run, tmp_path, mqtt_broker):
    """Before: the bridge was one more child of the run, so its end stopped everything and blamed ledd."""
    broker, probe, password = mqtt_broker
    run = local_run(args=["--mqtt", broker.url(), "--mqtt-password-stdin"], stdin=password + "\n")
    run.wait_ready()
    online = lambda since: probe.wait(lambda m: m[1].endswith("-local/availability") and m[2] == b"online",
                                      since=since, what="the local bridge online")
    online(0)
    ledd_before = ledd_pid(tmp_path / "run")
    first = wait_for(lambda: bridge_pids(run), 10, "the bridge's process")[0]
    mark = probe.mark()
    os.kill(first, signal.SIGKILL)  # a crash: restarted, like ledd-mqtt.service's Restart=on-failure
    wait_for(lambda: "ledd-mqtt (pid %d) was killed by signal KILL" % first in run.output(), 10, "the crash noticed")
    online(mark)
    second = wait_for(lambda: [p for p in bridge_pids(run) if p != first], 10, "a new bridge")[0]
    assert "restarting ledd-mqtt in 2s" in run.output()
    os.kill(second, signal.SIGTERM)  # stopped on purpose: not restarted, and the rest runs on
    wait_for(lambda: "ledd-mqtt (pid %d) exited cleanly; not restarted" % second in run.output(), 15,
               "the clean stop noticed")
    assert run.proc.poll() is None, run.output()
    assert get_status(run) == 200 and ledd_pid(tmp_path / "run") == ledd_before
    assert "ledd is down" not in run.output() and "stopping" not in run.output()
    assert not bridge_pids(run)
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(15) == 130

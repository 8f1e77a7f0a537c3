#!/usr/bin/env python3
"""Benchmark ledd-mqtt: latency both ways, idle wake-ups and memory, under paho 2.x and 1.6.

    flock /tmp/ledd-heavy.lock .venv/bin/python bench/mqtt.py [--samples N] [--idle-seconds S]

Starts a sim ledd, Debian's mosquitto on a loopback port (tests/mqtt/mqttstack.py,
password file as in the tests) and the bridge, once under the venv's python
(paho 2.x) and once under /usr/bin/python3 (Debian's paho 1.6), and prints:

- button-to-broker: a PRESS sent to ledd until the probe (an MQTT client in
  this process) receives ``button/<name>/state ON``; next to the same PRESS
  until a bare WATCH client of ledd sees the event: the difference is what
  the bridge and the broker add;
- broker-to-LED: a command published by the probe until ledd's event (a
  WATCH client here) shows the LED changed;
- the full loop: command published until its state topic comes back;
- the bridge's wake-ups while idle over S seconds (context switches from
  /proc/PID/status; keepalive 60 s, so the target is 0), and its RSS.

Targets (printed, never asserted): p99 under 50 ms both ways, 0 idle
wake-ups apart from the keepalive. Figures vary between machines: compare
the ratios within one run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # waiting.py, which mqttstack imports
sys.path.insert(0, str(ROOT / "tests" / "mqtt"))

from ledd.client import Client  # noqa: E402
from mqttstack import SYSTEM_PYTHON, Broker, BridgeProcess, Probe, make_pki, system_paho_version, write_config  # noqa: E402

TARGET_MS = 50.0


def start_ledd(tmp):
    subprocess.run(["make", "-s", "-C", str(ROOT / "cdaemon")], check=True)
    run = tmp / "run"
    run.mkdir()
    log = open(tmp / "ledd.log", "ab")
    proc = subprocess.Popen([str(ROOT / "cdaemon" / "ledd"), "-c", str(ROOT / "cdaemon" / "ledd.conf"), "-b", "sim",
                             "-r", str(run), "-s", str(tmp / "state")], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            Client(str(run)).hello()
            return proc, run
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.02)
    raise SystemExit("ledd did not start")


def proc_status(pid, *keys):
    out = {}
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            out[key] = int(value.split()[0])
    return out


def switches(pid):
    s = proc_status(pid, "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
    return s["voluntary_ctxt_switches"] + s["nonvoluntary_ctxt_switches"]


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def fmt(name, ms):
    return "  %-34s p50 %6.2f ms   p99 %6.2f ms   max %6.2f ms   %s" % (
        name, statistics.median(ms), pct(ms, 99), max(ms), "ok" if pct(ms, 99) < TARGET_MS else "OVER %g ms" % TARGET_MS)


def wait_event(watcher, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        raw = watcher.next_event(max(0.0, deadline - time.monotonic()))
        if raw is None:
            raise SystemExit("no matching ledd event within %ss" % timeout)
        if predicate(json.loads(raw)):
            return time.monotonic()


def measure(python, broker, runtime_dir, tmp, samples, idle_s):
    client = Client(str(runtime_dir))
    # The rate limit (20 commands/s by default) would drop most of the back-to-back commands below.
    config = write_config(tmp / "mqtt.conf", broker, "ledd/bench", "bench", extra="rate_limit = 1000\nrate_burst = 10000\n")
    bridge = BridgeProcess(config, runtime_dir, python=python, log_path=tmp / ("bridge-%s.log" % Path(python).parent.name)).start()
    probe = Probe(broker, subscribe=("ledd/bench/#",))
    try:
        probe.wait_for("ledd/bench/availability", "online", timeout=15)
        probe.wait_for("ledd/bench/button/button/state")
        watcher = client.watch()
        watcher.next_event(1.0)  # the current state

        # Two passes, so that neither listener competes with the other for the CPU.
        bare, button = [], []
        for _ in range(samples):
            for verb, pressed in (("press", True), ("release", False)):
                t0 = time.monotonic()
                getattr(client, verb)("button")
                bare.append((wait_event(watcher, lambda s: s["buttons"][0]["pressed"] == pressed) - t0) * 1000)
        watcher.close()  # not read in the next pass: ledd would drop it when its pipe fills
        for _ in range(samples):
            for verb, payload in (("press", b"ON"), ("release", b"OFF")):
                mark = probe.mark()
                t0 = time.monotonic()
                getattr(client, verb)("button")
                button.append((probe.wait_for("ledd/bench/button/button/state", payload, since=mark)[0] - t0) * 1000)

        watcher = client.watch()
        watcher.next_event(1.0)
        to_led, loop = [], []
        for i in range(samples * 2):
            word = "ON" if i % 2 == 0 else "OFF"
            mark = probe.mark()
            t0 = time.monotonic()
            probe.client.publish("ledd/bench/led/red/set", word, qos=1)
            t_led = wait_event(watcher, lambda s: s["leds"][0]["on"] == (word == "ON"))
            m = probe.wait_for("ledd/bench/led/red/state", word, since=mark)
            to_led.append((t_led - t0) * 1000)
            loop.append((m[0] - t0) * 1000)
        # Home Assistant's slider: a JSON light command, until its JSON state topic shows the brightness.
        dim = []
        for i in range(samples * 2):
            percent = 30 if i % 2 == 0 else 60
            mark = probe.mark()
            t0 = time.monotonic()
            probe.client.publish("ledd/bench/led/red/set", '{"state":"ON","brightness":%d}' % percent, qos=1)
            m = probe.wait(lambda m: m[1] == "ledd/bench/led/red/json" and b'"brightness":%d,' % percent in m[2],
                           since=mark, what="brightness %d" % percent)
            dim.append((m[0] - t0) * 1000)
        client.off("red")  # as the on/off pass left it: the next pass starts with ON, which must be a change
        watcher.close()

        time.sleep(0.5)  # let the last publishes settle
        pid = bridge.proc.pid
        before = switches(pid)
        time.sleep(idle_s)
        idle = switches(pid) - before
        mem = proc_status(pid, "VmRSS", "VmHWM")
        return {"bare": bare, "button": button, "to_led": to_led, "loop": loop, "dim": dim, "idle": idle, "mem": mem}
    finally:
        probe.close()
        bridge.stop()
        bridge.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="samples per direction (default 200)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle wake-up window (default 10)")
    args = parser.parse_args()
    pythons = [(sys.executable, "paho " + __import__("paho.mqtt").mqtt.__version__)]
    if system_paho_version():
        pythons.append((SYSTEM_PYTHON, "paho %s (Debian)" % system_paho_version()))
    with tempfile.TemporaryDirectory(prefix="ledd-bench-mqtt.") as name:
        tmp = Path(name)
        (tmp / "broker").mkdir()
        broker = Broker(tmp / "broker", make_pki(tmp)).start()
        ledd, runtime_dir = start_ledd(tmp)
        try:
            print("ledd-mqtt benchmark: %d samples per direction, idle window %g s, %d CPUs, loopback broker (mosquitto)"
                  % (args.samples, args.idle_seconds, os.cpu_count()))
            for python, label in pythons:
                run_dir = tmp / label.split()[1]
                run_dir.mkdir()
                r = measure(python, broker, runtime_dir, run_dir, args.samples, args.idle_seconds)
                print("\n%s (%s)" % (label, python))
                print(fmt("ledd event, bare WATCH client", r["bare"]))
                print(fmt("button -> broker (state topic)", r["button"]))
                print(fmt("broker -> LED (ledd event)", r["to_led"]))
                print(fmt("command -> state topic (loop)", r["loop"]))
                print(fmt("HA brightness -> JSON state topic", r["dim"]))
                print("  button -> broker / bare watcher: p50 %.1fx; worst p99 %.1fx below the %g ms target"
                      % (statistics.median(r["button"]) / statistics.median(r["bare"]),
                         TARGET_MS / max(pct(r["button"], 99), pct(r["to_led"], 99)), TARGET_MS))
                print("  idle wake-ups over %g s: %d (%.2f/s; target 0, keepalive 60 s)   %s"
                      % (args.idle_seconds, r["idle"], r["idle"] / args.idle_seconds, "ok" if r["idle"] == 0 else "CHECK"))
                print("  RSS %.1f MB (peak %.1f MB)" % (r["mem"]["VmRSS"] / 1024, r["mem"]["VmHWM"] / 1024))
        finally:
            ledd.terminate()
            ledd.wait()
            broker.stop()


if __name__ == "__main__":
    main()

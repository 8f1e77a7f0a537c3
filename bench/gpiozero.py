#!/usr/bin/env python3
"""Benchmark ledd's gpiozero pin factory against ledd's raw protocol, in one run.

    bench/gpiozero.py [--toggles N] [--presses N] [--binary PATH]

Starts a sim ledd (the default wiring) on a private runtime directory, then,
under each interpreter that has gpiozero (the running one, e.g. the test venv
with gpiozero 2.x, and /usr/bin/python3 with Debian's 1.6), in a worker
process of its own:

- ``led.toggle()`` through the factory against ``Client.request("TOGGLE")``,
  the reference client's one exchange, interleaved in rounds so that both see
  the same machine load; p50/p99 and the ratio of the p50s
  (target <= 1.5x);
- the ``value`` round trip of a ``PWMLED``: ``led.value = 0.3`` and reading
  ``led.value`` back, against ``Client.request("BRIGHTNESS")``, the same way
  (target <= 1.5x);
- press-to-callback latency: from just before a ``PRESS`` through the protocol
  to ``when_pressed`` running in the script, p50/p99.

Targets are printed, never asserted. Run it under the heavy lock on a shared
machine (flock /tmp/ledd-heavy.lock ...); compare ratios within one run only.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file is named gpiozero.py: its own folder on sys.path would shadow the real gpiozero.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 1.5
SYSTEM_PYTHON = "/usr/bin/python3"
ROUNDS = 10


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def worker(runtime_dir, toggles, presses):
    """Measure in this interpreter; print one JSON line."""
    import gpiozero
    from gpiozero import LED, PWMLED, Button

    from ledd.client import Client
    from ledd.gpiozero_factory import LeddFactory

    factory = LeddFactory(runtime_dir)
    client = Client(runtime_dir)
    red = LED("red", pin_factory=factory)
    raw, via_factory = [], []
    per_round = max(1, toggles // ROUNDS)
    for _ in range(ROUNDS):
        for _ in range(per_round):
            t0 = time.perf_counter()
            client.request("TOGGLE", "red")
            raw.append((time.perf_counter() - t0) * 1e6)
        for _ in range(per_round):
            t0 = time.perf_counter()
            red.toggle()
            via_factory.append((time.perf_counter() - t0) * 1e6)

    # Alternating between two brightnesses, so that every request is a change in ledd.
    dim = PWMLED("green", pin_factory=factory)
    raw_dim, via_value = [], []
    for _ in range(ROUNDS):
        for i in range(per_round):
            t0 = time.perf_counter()
            client.request("BRIGHTNESS", "green", 30 if i % 2 else 70)
            raw_dim.append((time.perf_counter() - t0) * 1e6)
        for i in range(per_round):
            wanted = 0.3 if i % 2 else 0.7
            t0 = time.perf_counter()
            dim.value = wanted
            read = dim.value
            via_value.append((time.perf_counter() - t0) * 1e6)
            if read != wanted:
                raise SystemExit("PWMLED.value read back %r after setting %r" % (read, wanted))
    dim.off()  # ledd's PWM timer stops: the presses below are measured as before
    dim.close()

    button = Button("button", pin_factory=factory)
    fired = threading.Event()
    stamps = []
    button.when_pressed = lambda: (stamps.append(time.perf_counter()), fired.set())
    latency = []
    for _ in range(presses):
        fired.clear()
        stamps.clear()
        t0 = time.perf_counter()
        client.press("button")
        if not fired.wait(5):
            raise SystemExit("when_pressed did not run within 5 s")
        latency.append((stamps[0] - t0) * 1e6)
        client.release("button")
        button.wait_for_release(5)
    factory.close()
    version = getattr(gpiozero, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version
        version = dist_version("gpiozero")
    print(json.dumps({"gpiozero": version, "python": sys.version.split()[0],
                      "raw": raw, "factory": via_factory, "raw_dim": raw_dim, "value": via_value,
                      "press": latency}))


def has_gpiozero(python):
    return subprocess.run([python, "-c", "import gpiozero"], capture_output=True).returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toggles", type=int, default=3000,
                        help="requests per method, toggles and values each (default 3000)")
    parser.add_argument("--presses", type=int, default=300, help="presses for the latency (default 300)")
    parser.add_argument("--binary", help="ledd binary (default: build cdaemon/ledd)")
    parser.add_argument("--worker", metavar="RUNTIME_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.toggles, args.presses)

    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_daemon", ROOT / "bench" / "daemon.py")
    bench_daemon = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_daemon)
    start_ledd, stop = bench_daemon.start_ledd, bench_daemon.stop

    if args.binary:
        binary = Path(args.binary)
    else:
        subprocess.run(["make", "-s", "-C", str(ROOT / "cdaemon")], check=True)
        binary = ROOT / "cdaemon" / "ledd"
    # (A venv's python is a symlink to /usr/bin/python3, but sees other packages: compare paths as given.)
    pythons = [sys.executable] + ([SYSTEM_PYTHON] if os.path.exists(SYSTEM_PYTHON) and
                                  sys.executable != SYSTEM_PYTHON else [])
    with tempfile.TemporaryDirectory(prefix="ledd-bench-gpiozero-") as tmp:
        proc, run = start_ledd(binary, Path(tmp))
        try:
            print("ledd's gpiozero factory vs the raw protocol (sim backend, %d requests each, %d presses)"
                  % (args.toggles, args.presses))
            print("%-34s %-16s %9s %9s %9s %9s %7s" % ("interpreter", "what", "raw p50", "raw p99", "gz p50",
                                                      "gz p99", "ratio"))
            for python in pythons:
                if not has_gpiozero(python):
                    print("%-34s (no gpiozero: skipped)" % python)
                    continue
                out = subprocess.run([python, str(Path(__file__).resolve()), "--worker", str(run), "--toggles",
                                      str(args.toggles), "--presses", str(args.presses)],
                                     capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                     timeout=600)
                if out.returncode != 0:
                    print("%-34s worker failed:\n%s" % (python, out.stderr))
                    continue
                r = json.loads(out.stdout.splitlines()[-1])
                label = "%s (gpiozero %s)" % (Path(python).name if python == SYSTEM_PYTHON else "venv python",
                                              r["gpiozero"])
                for what, raw, via in (("led.toggle()", r["raw"], r["factory"]),
                                       ("pwmled.value", r["raw_dim"], r["value"])):
                    raw50, via50 = statistics.median(raw), statistics.median(via)
                    ratio = via50 / raw50
                    print("%-34s %-16s %7.0fus %7.0fus %7.0fus %7.0fus %6.2fx %s" % (
                        label, what, raw50, percentile(raw, 99), via50, percentile(via, 99), ratio,
                        "ok" if ratio <= TARGET_RATIO else "MISS"))
                print("%-34s %-16s p50 %.0f us, p99 %.0f us" % (label, "press->callback",
                                                                statistics.median(r["press"]),
                                                                percentile(r["press"], 99)))
            print("targets: led.toggle() and the PWMLED value round trip (set, read back) p50 <= %.1fx the "
                  "raw exchange (TOGGLE, BRIGHTNESS); press -> when_pressed well under 50 ms" % TARGET_RATIO)
        finally:
            stop(proc)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark ledd: round trip, memory and idle wake-ups, against a bare C FIFO echo.

    bench/daemon.py [--requests N] [--idle-seconds S] [--spawns K] [--binary PATH]

Starts a sim ledd (the default wiring) on a private runtime directory and
prints:

- round trip of a persistent client (bench/fifo_echo.c: its reply FIFO made
  and ledd.cmd opened once, then N exchanges) for STATE and for ON, next to the
  same client against ``fifo_echo serve``, a bare C echo server answering with
  a payload as long as ledd's state reply: the ratio is what ledd itself costs;
- ledd's CPU time per request (from /proc/PID/stat);
- one process per request: ``python3 -c 'Client().request("STATE")'`` (what a
  CGI does: the raw reply, no JSON decoding), ``Client().state()`` and
  ``ledctl status``, next to ``python3 -c pass``;
- ledd's RSS (VmRSS, VmHWM) at idle and after the load;
- wake-ups per second while idle (context switches over S seconds), with and
  without a watcher connected, and the watchdog figure with WATCHDOG_USEC set;
- the software PWM (issue 23): ledd's CPU share and wake-ups per second with
  none, 1 and 4 LEDs dimmed at the default 200 Hz (a 4-LED sim config, distinct
  brightnesses), and wake-ups per PWM period (target 1 + N).

Targets (printed, never asserted): idle wake-ups 0 (the watchdog aside, and
with nothing dimmed), 1 + N wake-ups per PWM period for N dimmed LEDs, RSS
under 2 MB, persistent round trip within 2x the bare echo, one process per
request within 1.1x of the interpreter floor (``python3 -c pass``). Runs well under a
minute. Figures vary between machines: compare the ratios within one run.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledd.client import Client  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"
TARGET_RSS_KB = 2048
TARGET_RTT_RATIO = 2.0
TARGET_SPAWN_RATIO = 1.1
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: The PWM figures' LEDs and their brightnesses (distinct: each falls at its own instant).
PWM_LEDS = (("red", 17), ("green", 27), ("blue", 5), ("white", 6))
PWM_PERCENTS = (15, 35, 55, 75)


def build(tmp):
    """Build ledd (unless given) and fifo_echo; return the echo binary's path."""
    echo = tmp / "fifo_echo"
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", str(echo),
                    str(ROOT / "bench" / "fifo_echo.c")], check=True)
    return echo


def start_ledd(binary, tmp, env=None, config=ROOT / "cdaemon" / "ledd.conf"):
    run = tmp / "run"
    run.mkdir(exist_ok=True)
    log = open(tmp / "ledd.log", "ab")
    proc = subprocess.Popen([str(binary), "-c", str(config), "-b", "sim", "-r", str(run),
                             "-s", str(tmp / "state")], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            env=dict(os.environ, **(env or {})))
    client = Client(str(run))
    deadline = time.monotonic() + 10
    while True:
        try:
            client.hello()
            return proc, run
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("ledd did not start; see %s" % (tmp / "ledd.log"))
            time.sleep(0.02)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proc_status(pid, *keys):
    values = {}
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            values[key] = int(value.split()[0])
    return values


def cpu_seconds(pid):
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def switches(pid):
    status = proc_status(pid, "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
    return status["voluntary_ctxt_switches"] + status["nonvoluntary_ctxt_switches"]


def cpu_ns(pid):
    """CPU time the scheduler gave the process, in ns (/proc/PID/schedstat; clock ticks if absent)."""
    try:
        return int(Path("/proc/%d/schedstat" % pid).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return int(cpu_seconds(pid) * 1e9)


def pwm_figures(binary, tmp, seconds):
    """[(dimmed, CPU %, wake-ups/s)] for 0, 1 and 4 LEDs dimmed at the default frequency."""
    config = tmp / "pwm.conf"
    config.write_text("[ledd]\nbackend = sim\n" + "".join(
        "\n[led %s]\ngpio = %d\n" % (name, gpio) for name, gpio in PWM_LEDS))
    proc, run = start_ledd(binary, tmp, config=config)
    client = Client(str(run))
    out = []
    try:
        for dimmed in (0, 1, 4):
            for i, ((name, _), percent) in enumerate(zip(PWM_LEDS, PWM_PERCENTS)):
                client.brightness(name, percent if i < dimmed else 100)   # lit: steady or dimmed
            time.sleep(1.5)  # past the deferred fsync of those changes
            cpu0, sw0, t0 = cpu_ns(proc.pid), switches(proc.pid), time.monotonic()
            time.sleep(seconds)
            cpu1, sw1, t1 = cpu_ns(proc.pid), switches(proc.pid), time.monotonic()
            out.append((dimmed, 100.0 * (cpu1 - cpu0) / ((t1 - t0) * 1e9), (sw1 - sw0) / (t1 - t0)))
        return out, client.state()["leds"][0]["pwm_hz"]
    finally:
        stop(proc)


def wakeups_per_second(pid, seconds):
    before = switches(pid)
    time.sleep(seconds)
    return (switches(pid) - before) / seconds


def persistent_rtt(echo, runtime_dir, count, line):
    out = subprocess.run([str(echo), "client", str(runtime_dir), str(count)] + line.split(),
                         capture_output=True, text=True, check=True, timeout=120).stdout.split()
    p50, p90, p99, mean = (int(v) / 1000.0 for v in out[1:5])
    return {"p50": p50, "p90": p90, "p99": p99, "mean": mean}


def spawn_rtts(argvs, count):
    """Median wall time of each command line, in ms. The commands take turns, so a load
    that comes and goes on a busy machine weighs on all of them alike."""
    times = [[] for _ in argvs]
    for _ in range(count):
        for i, argv in enumerate(argvs):
            started = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=30)
            times[i].append((time.perf_counter() - started) * 1000.0)
    return [statistics.median(t) for t in times]


def mark(ok):
    return "ok " if ok else "MISS"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000, help="exchanges per persistent run (default 20000)")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="idle wake-up window (default 5)")
    parser.add_argument("--spawns", type=int, default=40, help="process-per-request samples (default 40)")
    parser.add_argument("--pwm-seconds", type=float, default=5.0, help="window of each PWM figure (default 5)")
    parser.add_argument("--binary", help="ledd binary (default: build cdaemon/ledd)")
    args = parser.parse_args()

    if args.binary:
        binary = Path(args.binary)
    else:
        subprocess.run(["make", "-s", "-C", str(ROOT / "cdaemon")], check=True)
        binary = ROOT / "cdaemon" / "ledd"
    tmp = Path(tempfile.mkdtemp(prefix="ledd-bench-"))
    procs = []
    try:
        echo = build(tmp)
        (tmp / "ledd").mkdir()
        ledd, run = start_ledd(binary, tmp / "ledd")
        procs.append(ledd)
        state_len = len(Client(str(run)).request("STATE"))
        echo_dir = tmp / "echo"
        echo_dir.mkdir()
        server = subprocess.Popen([str(echo), "serve", str(echo_dir), str(state_len)])
        procs.append(server)
        while not (echo_dir / "reply").exists():
            time.sleep(0.01)

        print("ledd %s  (sim backend, default wiring; %d-byte state reply)" % (binary, state_len))
        print()
        idle_rss = proc_status(ledd.pid, "VmRSS", "VmHWM")
        idle = wakeups_per_second(ledd.pid, args.idle_seconds)
        with Client(str(run)).watch() as watcher:
            watcher.next_event(2)
            # ledd writes the first event before it finishes the WATCH request
            # (STATUS= to systemd, back to poll): let it get there first.
            time.sleep(0.2)
            idle_watched = wakeups_per_second(ledd.pid, min(args.idle_seconds, 3.0))

        print("Round trip, persistent client (C, own reply FIFO, ledd.cmd open), %d requests, microseconds:" % args.requests)
        print("  %-28s %8s %8s %8s %8s" % ("", "p50", "p90", "p99", "mean"))
        bare = persistent_rtt(echo, echo_dir, args.requests, "STATE")
        cpu0 = cpu_seconds(ledd.pid)
        state = persistent_rtt(echo, run, args.requests, "STATE")
        cpu_state = (cpu_seconds(ledd.pid) - cpu0) / (args.requests * 1.1) * 1e6
        cpu0 = cpu_seconds(ledd.pid)
        on = persistent_rtt(echo, run, args.requests, "TOGGLE red")
        cpu_on = (cpu_seconds(ledd.pid) - cpu0) / (args.requests * 1.1) * 1e6
        for name, r in (("bare C FIFO echo", bare), ("ledd STATE", state), ("ledd TOGGLE red (a change)", on)):
            print("  %-28s %8.1f %8.1f %8.1f %8.1f" % (name, r["p50"], r["p90"], r["p99"], r["mean"]))
        ratio = state["p50"] / bare["p50"]
        py_client = Client(str(run))
        samples = []
        for _ in range(min(args.requests, 2000)):
            started = time.perf_counter()
            py_client.request("STATE")
            samples.append((time.perf_counter() - started) * 1e6)
        samples.sort()
        print("  %-28s %8.1f %8.1f %8.1f %8.1f" % ("Python Client (per call)", samples[len(samples) // 2],
              samples[len(samples) * 9 // 10], samples[len(samples) * 99 // 100], statistics.mean(samples)))
        print("  ratio ledd STATE / bare echo (p50): %.2fx   [%s target <= %.1fx]"
              % (ratio, mark(ratio <= TARGET_RTT_RATIO), TARGET_RTT_RATIO))
        print("  ratio ledd TOGGLE / bare echo (p50): %.2fx" % (on["p50"] / bare["p50"]))
        print("  ledd CPU per request: STATE %.1f us, TOGGLE %.1f us" % (cpu_state, cpu_on))
        print()

        print("Round trip, one process per request (median of %d), milliseconds:" % args.spawns)
        prelude = "import sys; sys.path.insert(0, %r); from ledd.client import Client; " % str(ROOT)
        # As a CGI does: the raw reply bytes, relayed without decoding them.
        one_shot, decoded, ledctl, floor = spawn_rtts([
            [SYSTEM_PYTHON, "-c", prelude + "Client(%r).request('STATE')" % str(run)],
            [SYSTEM_PYTHON, "-c", prelude + "Client(%r).state()" % str(run)],
            [SYSTEM_PYTHON, str(ROOT / "bin" / "ledctl"), "-r", str(run), "status", "--json"],
            [SYSTEM_PYTHON, "-c", "pass"],
        ], args.spawns)
        print("  %-44s %8.1f" % ("/usr/bin/python3 -c 'Client().request(STATE)'", one_shot))
        print("  %-44s %8.1f" % ("/usr/bin/python3 -c 'Client().state()' (+json)", decoded))
        print("  %-44s %8.1f" % ("ledctl status --json", ledctl))
        print("  %-44s %8.1f" % ("/usr/bin/python3 -c pass (interpreter floor)", floor))
        spawn_ratio = one_shot / floor
        print("  ratio Client().request / interpreter floor: %.2fx   [%s target <= %.1fx]"
              % (spawn_ratio, mark(spawn_ratio <= TARGET_SPAWN_RATIO), TARGET_SPAWN_RATIO))
        print()

        loaded_rss = proc_status(ledd.pid, "VmRSS", "VmHWM")
        print("Memory (kB):")
        print("  idle   VmRSS %5d  VmHWM %5d   [%s target < %d]"
              % (idle_rss["VmRSS"], idle_rss["VmHWM"], mark(idle_rss["VmRSS"] < TARGET_RSS_KB), TARGET_RSS_KB))
        print("  loaded VmRSS %5d  VmHWM %5d   [%s]" % (loaded_rss["VmRSS"], loaded_rss["VmHWM"], mark(loaded_rss["VmHWM"] < TARGET_RSS_KB)))
        print()
        print("Wake-ups per second while idle (context switches):")
        print("  no client          %6.2f   [%s target 0]" % (idle, mark(idle == 0)))
        print("  one watcher open   %6.2f   [%s target 0]" % (idle_watched, mark(idle_watched == 0)))
        stop(ledd)
        wd_dir = tmp / "wd"
        wd_dir.mkdir()
        watchdog, _ = start_ledd(binary, wd_dir, env={"WATCHDOG_USEC": "2000000", "NOTIFY_SOCKET": "@ledd-bench-%d" % os.getpid()})
        procs.append(watchdog)
        print("  WATCHDOG_USEC=2s   %6.2f   (expected ~1/s: one WATCHDOG=1 per half period)"
              % wakeups_per_second(watchdog.pid, min(args.idle_seconds, 3.0)))
        stop(watchdog)
        print()
        pwm_dir = tmp / "pwm"
        pwm_dir.mkdir()
        figures, hz = pwm_figures(binary, pwm_dir, args.pwm_seconds)
        print("Software PWM at %d Hz (sim backend: no ioctl cost; 4 LEDs lit, the dimmed ones at %s, the"
              " others at 100 %%), over %.0f s each:" % (hz, "/".join("%d%%" % p for p in PWM_PERCENTS),
                                                         args.pwm_seconds))
        print("  %-16s %8s %12s %12s" % ("", "CPU %", "wake-ups/s", "per period"))
        for dimmed, cpu, rate in figures:
            per_period = rate / hz
            target = "[%s target %s]" % (mark(abs(per_period - (1 + dimmed)) < 0.25 if dimmed else rate == 0),
                                         "1+%d" % dimmed if dimmed else "0 wake-ups")
            print("  %-16s %8.2f %12.1f %12.2f   %s" % ("%d LED%s dimmed" % (dimmed, "" if dimmed == 1 else "s")
                                                      if dimmed else "none dimmed",
                                                      cpu, rate, per_period, target))
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""bench/web.py -- how fast is the web API, against the floor Python and lighttpd allow?

One command starts the whole local stack (a sim ledd and the real lighttpd with
lighttpd.conf, on a free port of 127.0.0.1) and measures, side by side in one run:

  * GET /api/state and POST /api/leds/0 latency, p50/p99, at 1, 8 and 64 concurrent
    clients, with error counts;
  * the same for two reference CGIs behind the same lighttpd (bench/cgi/): an empty
    ``python3 -I -S`` script (the floor) and one that only imports json;
  * a static file, and ledd's FIFO exchange alone (STATE vs TOGGLE: the state file save);
  * button -> browser latency with 20 open event streams (p50/p99);
  * brightness slider -> ledd -> the other browsers: POST {"brightness": N} paced as the
    dashboard's slider sends them, to the event on 20 open streams (p50/p99);
  * the CPU idle event streams use, and the memory (PSS, RSS) of each open stream's process;
  * the p99 ratios at 64 clients (GET /api/state vs the empty CGI, POST vs the json-only CGI).

It prints figures and the ratios the issue sets targets for; it asserts nothing
(figures depend on the machine: compare ratios within one run). Bounded: well
under 2 minutes. Usage: .venv/bin/python bench/web.py [--quick]
"""

import argparse
import http.client
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "web")]

from conftest import LeddProcess, build_ledd  # noqa: E402  (tests/conftest.py: starts ledd like systemd)
from webstack import EventStream, Lighttpd  # noqa: E402

CONCURRENCY = (1, 8, 64)
STREAMS = 20
IDLE_S = 3.0
PHASE_LIMIT_S = 8.0  # no single measurement runs longer than this

BENCH_INCLUDE = """# bench/web.py: its reference CGIs, behind the same lighttpd as the API
alias.url += ( "/bench/" => "{root}/bench/cgi/" )
$HTTP["url"] =~ "^/bench/" {{
	cgi.assign = ( ".py" => "" )
}}
"""

TARGETS = [
    # name, method, path, body
    ("empty CGI (floor)", "GET", "/bench/empty.py", None),
    ("json-only CGI", "GET", "/bench/json_only.py", None),
    ("GET /api/state", "GET", "/api/state", None),
    ("POST /api/leds/0", "POST", "/api/leds/0", b'{"toggle":true}'),
    ("static /app.css", "GET", "/app.css", None),
]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def measure(port, method, path, body, clients, per_client):
    """Latencies (s) and error count of ``clients`` keep-alive connections doing ``per_client`` requests."""
    headers = {"Content-Type": "application/json"} if body else {}
    stop_at = time.monotonic() + PHASE_LIMIT_S

    def one_client(_):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies, errors = [], 0
        for _ in range(per_client):
            if time.monotonic() > stop_at:
                break
            start = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            latencies.append(time.perf_counter() - start)
            errors += not ok
        conn.close()
        return latencies, errors

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one_client, range(clients)))
    return [x for lat, _ in results for x in lat], sum(e for _, e in results)


def interleaved(port, requests_each):
    """One client, the targets taken in turn: each sees the same machine load, so ratios are fair."""
    conns = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for name, *_ in TARGETS}
    latencies = {name: [] for name, *_ in TARGETS}
    errors = {name: 0 for name, *_ in TARGETS}
    for _ in range(requests_each):
        for name, method, path, body in TARGETS:
            headers = {"Content-Type": "application/json"} if body else {}
            start = time.perf_counter()
            try:
                conns[name].request(method, path, body=body, headers=headers)
                response = conns[name].getresponse()
                response.read()
                errors[name] += response.status != 200
            except (OSError, http.client.HTTPException):
                errors[name] += 1
                conns[name].close()
            latencies[name].append(time.perf_counter() - start)
    for conn in conns.values():
        conn.close()
    return latencies, errors


def bench_requests(server, quick):
    total = {1: 60, 8: 160, 64: 256} if quick else {1: 150, 8: 320, 64: 512}
    table = {}
    single = interleaved(server.port, total[1])
    print("\n== request latency (ms) — %s; 1 client takes the targets in turn" % ", ".join("%d clients: %d requests" % kv for kv in total.items()))
    print("%-20s" % "" + "".join("%24s" % ("%d client%s: p50/p99 err" % (c, "s" if c > 1 else "")) for c in CONCURRENCY))
    for name, method, path, body in TARGETS:
        row = []
        for clients in CONCURRENCY:
            if clients == 1:
                latencies, errors = single[0][name], single[1][name]
            else:
                latencies, errors = measure(server.port, method, path, body, clients, max(1, total[clients] // clients))
            table[name, clients] = (statistics.median(latencies), percentile(latencies, 0.99), errors, len(latencies))
            row.append("%8.1f/%6.1f %4d" % (table[name, clients][0] * 1e3, table[name, clients][1] * 1e3, errors))
        print("%-20s" % name + "".join("%24s" % cell for cell in row))
    return table


def bench_fifo(ledd, count):
    """ledd's own share: one FIFO exchange, no HTTP, no process start (STATE vs a state change)."""
    client = ledd.client()
    print("\n== ledd FIFO exchange alone (in-process client, %d each)" % count)
    for verb in (("STATE",), ("TOGGLE", "0")):
        latencies = []
        for _ in range(count):
            start = time.perf_counter()
            client.request(*verb)
            latencies.append(time.perf_counter() - start)
        print("%-20s p50 %.2f ms, p99 %.2f ms" % (" ".join(verb), statistics.median(latencies) * 1e3, percentile(latencies, 0.99) * 1e3))


def follow(streams, changes, change, pause_s):
    """Latencies (s) from each change to its state arriving on every stream, and the events missing.

    ``change(i)`` makes the i-th change and returns its seq; nothing else may change the state."""
    sent = {}
    got = []
    lock = threading.Lock()

    def reader(stream):
        while True:
            try:
                state = stream.next_event(timeout=10)
            except (EOFError, TimeoutError, OSError, http.client.HTTPException, AttributeError):
                return  # the stream ended, or was closed under the reader (AttributeError: http.client's fp is gone)
            now = time.perf_counter()
            with lock:
                if state["seq"] in sent:
                    got.append(now - sent[state["seq"]])

    threads = [threading.Thread(target=reader, args=(s,), daemon=True) for s in streams]
    for t in threads:
        t.start()
    seq = change(None)
    for i in range(changes):
        with lock:
            sent[seq + 1] = time.perf_counter()
        seq = change(i)
        time.sleep(pause_s)
    deadline = time.monotonic() + 5
    while len(got) < changes * len(streams) and time.monotonic() < deadline:
        time.sleep(0.05)
    return got, changes * len(streams) - len(got)


def open_streams(server):
    # Each from its own loopback address, as from STREAMS browsers (one address may hold only
    # WEB_SSE_PER_CLIENT streams).
    streams = [EventStream(server.url, source="127.0.0.%d" % (i + 2)) for i in range(STREAMS)]
    for s in streams:
        s.next_event()  # the current state
    return streams


def bench_events(server, ledd, presses):
    """Latency from ledd PRESS/RELEASE to the event arriving on each of STREAMS event streams."""
    streams = open_streams(server)
    client = ledd.client()

    def change(i):
        if i is None:
            return client.state()["seq"]
        return (client.press(0) if i % 2 == 0 else client.release(0))["seq"]

    got, missing = follow(streams, presses, change, 0.02)
    print("\n== button -> event stream, %d streams, %d changes" % (STREAMS, presses))
    print("latency p50 %.1f ms, p99 %.1f ms, max %.1f ms, events missing %d" % (
        statistics.median(got) * 1e3, percentile(got, 0.99) * 1e3, max(got) * 1e3, missing))
    idle = idle_cpu(server)
    memory = stream_memory(server)
    for s in streams:
        s.close()
    return percentile(got, 0.99), missing, idle, memory


#: A dragged slider's pace: one request at a time, at most one per SEND_INTERVAL_MS (www/brightness.js).
SLIDER_INTERVAL_S = int(re.search(r"\bSEND_INTERVAL_MS = (\d+);", (ROOT / "www" / "brightness.js").read_text()).group(1)) / 1000


def bench_slider(server, moves):
    """A dashboard's brightness slider dragged: POST /api/leds/0 {"brightness": N} as the page sends
    them, to the state arriving on each of STREAMS event streams (the other open dashboards)."""
    streams = open_streams(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    answers = []

    def post(body):
        start = time.perf_counter()
        conn.request("POST", "/api/leds/0", body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        state = json.loads(response.read())
        if response.status != 200:
            raise SystemExit("POST /api/leds/0 %s: %s" % (json.dumps(body), state))
        answers.append(time.perf_counter() - start)
        return state["seq"]

    def change(i):
        return post({"brightness": 50}) if i is None else post({"brightness": 30 + i % 2 * 40})

    got, missing = follow(streams, moves, change, SLIDER_INTERVAL_S)
    conn.close()
    for s in streams:
        s.close()
    print("\n== brightness slider -> ledd -> event stream, %d streams, %d moves %.0f ms apart" % (
        STREAMS, moves, SLIDER_INTERVAL_S * 1e3))
    print("POST answered p50 %.1f ms, p99 %.1f ms; other dashboards p50 %.1f ms, p99 %.1f ms, max %.1f ms, events missing %d" % (
        statistics.median(answers[1:]) * 1e3, percentile(answers[1:], 0.99) * 1e3,
        statistics.median(got) * 1e3, percentile(got, 0.99) * 1e3, max(got) * 1e3, missing))
    return percentile(got, 0.99), missing


def memory_kib(pid):
    """(PSS, RSS) of a process in KiB, from /proc/PID/smaps_rollup."""
    pss = rss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def stream_memory(server):
    """Mean PSS and RSS of the open event streams' processes (PSS shares the interpreter fairly)."""
    pids = server.cgi_pids("cgi-bin/events.py")
    sizes = [memory_kib(pid) for pid in pids]
    sizes = [s for s in sizes if s[0]]
    if not sizes:
        print("memory: no event-stream process found")
        return float("nan")
    pss = statistics.mean(s[0] for s in sizes)
    rss = statistics.mean(s[1] for s in sizes)
    print("memory: %d open streams, per stream PSS %.0f KiB, RSS %.0f KiB" % (len(sizes), pss, rss))
    return pss


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total


def idle_cpu(server):
    pids = server.cgi_pids("cgi-bin/events.py")
    before = cpu_ticks(pids)
    time.sleep(IDLE_S)
    ticks = cpu_ticks(pids) - before
    hz = os.sysconf("SC_CLK_TCK")
    percent = 100.0 * ticks / hz / IDLE_S
    print("idle: %d event-stream processes, %d CPU ticks in %.0f s = %.2f %% CPU" % (len(pids), ticks, IDLE_S, percent))
    return percent


def report(table, event_p99, missing, idle, pss, slider_p99, slider_missing):
    def p50(name):
        return table[name, 1][0]

    def p99(name, clients=64):
        return table[name, clients][1]

    print("\n== targets (1 client, p50 ratios; 64 clients, p99 ratios)")
    checks = [
        ("GET /api/state / empty CGI", p50("GET /api/state") / p50("empty CGI (floor)"), "<= 1.3"),
        ("POST /api/leds/0 / json-only CGI", p50("POST /api/leds/0") / p50("json-only CGI"), "<= 1.3"),
        ("p99@64 GET /api/state / empty CGI", p99("GET /api/state") / p99("empty CGI (floor)"), "<= 1.5"),
        ("p99@64 POST /api/leds/0 / json-only", p99("POST /api/leds/0") / p99("json-only CGI"), "<= 1.5"),
    ]
    for label, ratio, target in checks:
        print("%-34s %5.2fx  (target %s)" % (label, ratio, target))
    errors64 = {name: table[name, 64][2] for name, *_ in TARGETS}
    print("%-34s %s  (target 0)" % ("errors at 64 clients", ", ".join("%s: %d" % kv for kv in errors64.items())))
    print("%-34s %5.1f ms  (target < 50), missing %d" % ("event p99, %d streams" % STREAMS, event_p99 * 1e3, missing))
    print("%-34s %5.1f ms  (target < 50), missing %d" % ("slider move p99, %d streams" % STREAMS, slider_p99 * 1e3, slider_missing))
    print("%-34s %5.2f %%  (target 0 but the pings)" % ("idle event streams CPU", idle))
    print("%-34s %5.0f KiB  (must not rise)" % ("PSS per open event stream", pss))


def as_in_the_unit(pid):
    """Give ledd the priority systemd/ledd.service gives it (Nice=), where allowed; return it."""
    unit = (ROOT / "systemd" / "ledd.service").read_text()
    match = re.search(r"^Nice=(-?\d+)$", unit, re.M)
    if match:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, int(match.group(1)))
        except PermissionError:
            pass  # not root: measure at the default priority, and say so
    return os.getpriority(os.PRIO_PROCESS, pid)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ledd-bench-") as tmp:
        tmp = Path(tmp)
        include = tmp / "bench.conf"
        include.write_text(BENCH_INCLUDE.format(root=ROOT))
        ledd = LeddProcess(build_ledd(), tmp / "ledd").start()
        ledd_nice = as_in_the_unit(ledd.proc.pid)
        server = None
        try:
            server = Lighttpd(ledd.runtime_dir, tmp / "lighttpd", include=include).start()
            print("stack: ledd (sim, nice %d) + lighttpd on %s; load average %.1f; %d CPUs"
                  % (ledd_nice, server.url, os.getloadavg()[0], os.cpu_count()))
            # Warm up: bytecode caches, page cache.
            measure(server.port, "GET", "/api/state", None, 1, 10)
            measure(server.port, "POST", "/api/leds/0", b'{"toggle":true}', 1, 10)
            table = bench_requests(server, args.quick)
            bench_fifo(ledd, 100 if args.quick else 300)
            event_p99, missing, idle, pss = bench_events(server, ledd, 20 if args.quick else 50)
            slider_p99, slider_missing = bench_slider(server, 20 if args.quick else 50)
            report(table, event_p99, missing, idle, pss, slider_p99, slider_missing)
        finally:
            if server:
                server.stop()
            ledd.close()
    print("\n(run took %.0f s; load average now %.1f: other work on the machine skews every figure)" % (time.monotonic() - started, os.getloadavg()[0]))


if __name__ == "__main__":
    main()

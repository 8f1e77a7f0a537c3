"""64 client processes x 200 mixed requests against one ledd: every reply is the
answer to its own request, none is lost, and the final state is what the
operations imply.

How a mismatched reply would show:
- TOGGLE of LED i: sorted by seq, the replies for LED i must alternate on/off
  (each shows exactly one toggle more than the one before) and the seqs of all
  state changes are distinct;
- BLINK 15 with periods unique to (process, request): the reply must show those
  periods on LED 15;
- ON 99 must come back as notfound, HELLO as a hello, STATE as a state.

Meanwhile impatient clients time out (their late replies must go nowhere) and
short-lived ones are killed mid-exchange (their FIFOs are left behind).
"""

import multiprocessing
import os
import random
import signal
import sys
from pathlib import Path

from ledd import defaults
import rawfifo

PROCESSES = 64
REQUESTS = 200
TOGGLE_LEDS = defaults.MAX_LEDS - 1   # LEDs 0..14 are toggled; the last one is blinked


def worker(runtime_dir, p, out):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from ledd.client import Client, CommandError, DaemonTimeout

    c = Client(runtime_dir, timeout=30)
    impatient = Client(runtime_dir, timeout=0.0002)
    rng = random.Random(p)
    toggles, blinks, errors = [], [], []
    try:
        for i in range(REQUESTS):
            r = rng.random()
            if r < 0.30:
                led = rng.randrange(TOGGLE_LEDS)
                s = c.toggle(led)
                toggles.append((led, s["seq"], s["leds"][led]["on"]))
            elif r < 0.45:
                on_ms, off_ms = 20 + p * REQUESTS + i, 20 + i
                s = c.blink(TOGGLE_LEDS, on_ms, off_ms)
                if s["leds"][TOGGLE_LEDS]["blink"] != {"on_ms": on_ms, "off_ms": off_ms}:
                    errors.append("BLINK reply shows %r" % s["leds"][TOGGLE_LEDS]["blink"])
                blinks.append((s["seq"], on_ms, off_ms))
            elif r < 0.70:
                s = c.state()
                if len(s["leds"]) != defaults.MAX_LEDS:
                    errors.append("STATE reply is not a state")
            elif r < 0.85:
                h = c.hello()
                if h.get("protocol") != defaults.PROTOCOL or "leds" in h:
                    errors.append("HELLO reply is %r" % h)
            elif r < 0.87:
                try:
                    impatient.state()
                except DaemonTimeout:
                    pass
            else:
                try:
                    c.on(99)
                    errors.append("ON 99 succeeded")
                except CommandError as e:
                    if e.code != "notfound":
                        errors.append("ON 99 gave %s" % e.code)
    except Exception as e:  # noqa: BLE001 -- report, do not hang the parent
        errors.append("process %d: %r" % (p, e))
    out.put((p, toggles, blinks, errors))


def victim(runtime_dir, p):
    """A client killed mid-exchange, again and again (its FIFO stays behind)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from ledd.client import Client

    threading = __import__("threading")
    threading.Timer(0.001 * (p % 7 + 1), os.kill, (os.getpid(), signal.SIGKILL)).start()
    c = Client(runtime_dir, timeout=30)
    while True:
        c.state()


def test_64_processes_200_requests_each(ledd_factory, tmp_path):
    cfg = rawfifo.write_config(tmp_path / "16.conf", leds=[("l%d" % i, i) for i in range(defaults.MAX_LEDS)],
                               buttons=[("b0", 20)])
    d = ledd_factory(config=cfg).start()
    seq0 = d.client().state()["seq"]

    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(str(d.runtime_dir), p, out)) for p in range(PROCESSES)]
    for proc in procs:
        proc.start()
    killed = 0
    for wave in range(10):
        victims = [ctx.Process(target=victim, args=(str(d.runtime_dir), 40 * wave + v)) for v in range(40)]
        for v in victims:
            v.start()
        for v in victims:
            v.join(30)
            killed += v.exitcode == -signal.SIGKILL
    results = [out.get(timeout=240) for _ in procs]
    for proc in procs:
        proc.join(10)
    assert killed >= 300, "the victims were not killed mid-traffic"

    errors = [e for r in results for e in r[3]]
    assert not errors, errors[:10]
    toggles = [t for r in results for t in r[1]]
    blinks = [b for r in results for b in r[2]]

    # Every state change has its own seq: no reply was duplicated or crossed.
    seqs = [t[1] for t in toggles] + [b[0] for b in blinks]
    assert len(seqs) == len(set(seqs))
    final = d.client().state()
    assert final["seq"] == seq0 + len(seqs), "every change counted exactly once"

    for led in range(TOGGLE_LEDS):
        mine = sorted((seq, on) for l, seq, on in toggles if l == led)
        # The k-th toggle of an LED that starts off leaves it on iff k is odd.
        assert [on for _, on in mine] == [k % 2 == 0 for k in range(len(mine))], "LED %d" % led
        assert final["leds"][led]["on"] == (len(mine) % 2 == 1)
    last_blink = max(blinks)
    assert final["leds"][TOGGLE_LEDS]["blink"] == {"on_ms": last_blink[1], "off_ms": last_blink[2]}
    assert "internal" not in d.read_log()

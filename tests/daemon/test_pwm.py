"""The software PWM of dimmed LEDs (cdaemon/src/pwm.c), in sim: what the lines do.

The sim backend records every output change with its CLOCK_MONOTONIC time when
$LEDD_SIM_EDGE_LOG names a file ("<ns> <gpio> <level>" lines, written out when ledd
exits): the duty cycle and the period are measured from those edges, as a logic
analyser on the header would. Wake-ups are ledd's voluntary context switches.
The same duty is measured from the kernel's side of a gpio-sim line in
tests/kernel/test_gpio_sim.py.
"""

import statistics
import time

import pytest

from ledd import defaults
import rawfifo
from test_lifecycle import idle_switches, wait_until_quiet
from waiting import WAIT_S, wait_for

LEDS = [("red", 17), ("green", 27), ("blue", 5), ("white", 6)]
HZ = defaults.PWM_HZ_DEFAULT


def start(ledd_factory, tmp_path, section=""):
    cfg = rawfifo.write_config(tmp_path / "pwm.conf", leds=LEDS, ledd_section=section)
    log = tmp_path / "edges"
    d = ledd_factory(config=cfg, env={"LEDD_SIM_EDGE_LOG": str(log)}).start()
    d.edge_log = log
    return d


def run_periods(d, periods, hz=HZ, wakeups_per_period=2):
    """Let ledd run about ``periods`` PWM periods: wait for the wake-ups they take."""
    pid = d.proc.pid
    first = rawfifo.ctxt_switches(pid)[0]
    wait_for(lambda: rawfifo.ctxt_switches(pid)[0] - first >= periods * wakeups_per_period,
             10 + 3 * periods / hz, interval=0.05, what="%d PWM periods" % periods)


def edges(d):
    """{gpio: [(ns, level), ...]} from the edge log, once ledd has written it out (stopped)."""
    d.stop()
    out = {}
    for line in d.edge_log.read_text().splitlines():
        ns, gpio, level = map(int, line.split())
        out.setdefault(gpio, []).append((ns, level))
    return out


def high_share(gpio_edges, begin, end):
    """The share of [begin, end] the line was high, in %."""
    high, up = 0, None
    for t, level in gpio_edges:
        if t < begin or t > end:
            continue
        if level == 1:
            up = t
        elif up is not None:
            high += t - up
            up = None
    return 100.0 * high / (end - begin)


def duty(gpio_edges, since_ns, periods=40):
    """Measured duty in %: the median over stretches of ``periods`` whole periods (from one rising
    edge to another) after since_ns. A machine this busy stalls ledd now and then for tens of
    milliseconds; what such a stall takes or gives is made up only up to one period (pwm.c), so
    it would weigh on a plain average over a few seconds: the median leaves those stretches out."""
    rises = [t for t, level in gpio_edges if level == 1 and t >= since_ns]
    assert len(rises) > 3 * periods, "too few periods to measure: %s" % len(rises)
    shares = [high_share(gpio_edges, rises[i], rises[i + periods])
              for i in range(0, len(rises) - periods, periods)]
    return statistics.median(shares)


def mono_ns():
    return time.monotonic_ns()


def test_dimmed_led_goes_up_and_down_without_events(ledd_factory, tmp_path):
    d = start(ledd_factory, tmp_path)
    c = d.client()
    s = c.brightness("red", 50)
    with c.watch() as w:
        w.next_event(WAIT_S)
        levels = set()
        wait_for(lambda: levels.add(c.state()["leds"][0]["level"]) or levels == {0, 1},
                 what="red's line high and low (level: the line's output now)", interval=0.0007)
        assert c.state()["seq"] == s["seq"], "PWM edges are no state changes"
        assert w.next_event(0.2) is None


@pytest.mark.timing
@pytest.mark.parametrize("percent", [0, 100])
def test_zero_and_full_brightness_are_steady_lines_with_no_wake_up(ledd, percent):
    c = ledd.client()
    c.brightness("red", percent)
    wait_until_quiet(ledd.proc.pid)
    assert idle_switches(ledd.proc.pid, 0.5) == 0
    assert c.state()["leds"][0]["level"] == (1 if percent else 0)


@pytest.mark.timing
def test_no_wake_up_once_nothing_is_dimmed(ledd):
    c = ledd.client()
    c.brightness("red", 30)
    c.brightness("green", 60)
    assert idle_switches(ledd.proc.pid, 0.3) > 0, "the measurement can fail: dimmed LEDs wake ledd"
    c.off("red")
    c.brightness("green", 100)
    wait_until_quiet(ledd.proc.pid)
    assert idle_switches(ledd.proc.pid) == 0
    assert [l["level"] for l in c.state()["leds"]] == [0, 1]


@pytest.mark.timing
def test_duty_at_10_50_90_percent_from_edge_timestamps(ledd_factory, tmp_path):
    """Issue 23's target: within 2 percentage points at the default frequency."""
    d = start(ledd_factory, tmp_path)
    c = d.client()
    for (name, _), percent in zip(LEDS, (10, 50, 90)):
        c.brightness(name, percent)
    since = mono_ns()
    run_periods(d, 600, wakeups_per_period=4)   # 3 s: a stall of a loaded machine averages out
    got = edges(d)
    measured = {percent: duty(got[gpio], since) for (_, gpio), percent in zip(LEDS, (10, 50, 90))}
    for percent, value in measured.items():
        assert abs(value - percent) <= 2, measured
    rises = [t for t, level in got[LEDS[1][1]] if level == 1 and t >= since]
    period = statistics.median(b - a for a, b in zip(rises, rises[1:]))
    assert abs(period - 1e9 / HZ) < 0.02 * 1e9 / HZ, period


@pytest.mark.timing
def test_leds_of_one_frequency_rise_together(ledd_factory, tmp_path):
    """One period for the group: every rising edge of the dimmed LEDs is in one set-values call."""
    d = start(ledd_factory, tmp_path)
    c = d.client()
    c.brightness("red", 20)
    c.brightness("green", 70)
    since = mono_ns()
    run_periods(d, 50, wakeups_per_period=3)
    got = edges(d)
    red = [t for t, level in got[17] if level == 1 and t >= since]
    green = {t for t, level in got[27] if level == 1 and t >= since}

    def green_at(t):
        return [level for u, level in got[27] if u <= t][-1]
    assert len(red) > 30
    assert all(green_at(t) == 1 for t in red), "red rose while green stayed low"
    # Same stamp: one call. Green misses a rise only when a late wake-up caught it still high (at
    # 70 % with the high time owed made up), which a loaded machine does often: 39 of 51 once, in a
    # whole run. Two separate calls would share no stamp at all.
    assert sum(t in green for t in red) >= 0.5 * len(red), "rising edges not in one call"


@pytest.mark.timing
def test_each_frequency_has_its_own_period(ledd_factory, tmp_path):
    d = start(ledd_factory, tmp_path, section="pwm_hz = 100\n")
    c = d.client()
    c.brightness("red", 40)
    c.frequency("green", 250)
    c.brightness("green", 40)
    since = mono_ns()
    run_periods(d, 300, hz=100, wakeups_per_period=2 + 2 * 250 // 100)   # 3 s
    got = edges(d)
    for gpio, hz in ((17, 100), (27, 250)):
        rises = [t for t, level in got[gpio] if level == 1 and t >= since]
        period = statistics.median(b - a for a, b in zip(rises, rises[1:]))
        assert abs(period - 1e9 / hz) < 0.02 * 1e9 / hz, (gpio, period)
        assert abs(duty(got[gpio], since) - 40) <= 2


@pytest.mark.timing
def test_frequency_moves_a_dimmed_led_at_once(ledd_factory, tmp_path):
    d = start(ledd_factory, tmp_path)
    c = d.client()
    c.brightness("red", 50)
    run_periods(d, 20)
    c.frequency("red", 50)
    since = mono_ns()
    run_periods(d, 20, hz=50)
    rises = [t for t, level in edges(d)[17] if level == 1 and t >= since]
    period = statistics.median(b - a for a, b in zip(rises, rises[1:]))
    assert abs(period - 1e9 / 50) < 0.02 * 1e9 / 50, period


@pytest.mark.timing
def test_blink_on_phase_is_pwm_at_the_brightness(ledd_factory, tmp_path):
    d = start(ledd_factory, tmp_path)
    c = d.client()
    c.brightness("red", 30)
    c.blink("red", 200, 200)
    since = mono_ns()
    pid = d.proc.pid
    first = rawfifo.ctxt_switches(pid)[0]
    wait_for(lambda: rawfifo.ctxt_switches(pid)[0] - first >= 6 * 0.2 * HZ * 2, 20, interval=0.05,
             what="three blink periods of PWM")
    red = [(t, level) for t, level in edges(d)[17] if t >= since]
    gaps = [b[0] - a[0] for a, b in zip(red, red[1:])]
    # Off phases: nothing for 200 ms. On phases: edges every few ms.
    assert sum(1 for g in gaps if g > 150e6) >= 1, "no dark phase"
    pwm = [g for g in gaps if g < 10e6]
    assert len(pwm) > 2 * 0.15 * HZ, "no PWM in the lit phase"
    rises = [t for t, level in red if level == 1]
    assert abs(high_share(red, rises[0], rises[-1]) - 15) <= 3, "lit half the time at 30 %"


def switches_per_second(pid, seconds):
    """ledd's wake-ups per second over about ``seconds``, by the time that really passed (a loaded
    machine sleeps this process longer than it asked)."""
    before, start = rawfifo.ctxt_switches(pid)[0], time.monotonic()
    time.sleep(seconds)   # about time itself: wake-ups in a window
    after, end = rawfifo.ctxt_switches(pid)[0], time.monotonic()
    return (after - before) / (end - start)


@pytest.mark.timing
@pytest.mark.parametrize("dimmed", [1, 4])
def test_n_dimmed_leds_cost_one_plus_n_wake_ups_per_period(ledd_factory, tmp_path, dimmed):
    d = start(ledd_factory, tmp_path)
    c = d.client()
    for (name, _), percent in list(zip(LEDS, (15, 35, 55, 75)))[:dimmed]:
        c.brightness(name, percent)
    wait_for(lambda: c.state()["seq"] >= dimmed, what="the LEDs dimmed")
    per_second = switches_per_second(d.proc.pid, 1.0)
    expected = (1 + dimmed) * HZ
    # The cost is the bound: never more than 1 + N. Fewer on a loaded machine (a late wake-up
    # handles every switch that fell due meanwhile: 611 of 1000 once in a whole run), but the
    # periods go on: at least one wake-up each.
    assert HZ * 0.9 <= per_second <= 1.05 * expected, (per_second, expected)


@pytest.mark.timing
def test_equal_brightness_falls_together(ledd_factory, tmp_path):
    d = start(ledd_factory, tmp_path)
    c = d.client()
    c.all_brightness(40)
    per_second = switches_per_second(d.proc.pid, 1.0)
    assert HZ * 0.9 <= per_second <= 1.05 * 2 * HZ, per_second  # the bound: 2 per period (see above)


@pytest.mark.timing
def test_restart_resumes_the_pwm(ledd_factory, tmp_path):
    d = start(ledd_factory, tmp_path)
    d.client().brightness("green", 25)
    d.restart()
    since = mono_ns()
    run_periods(d, 400)
    assert abs(duty(edges(d)[27], since) - 25) <= 2

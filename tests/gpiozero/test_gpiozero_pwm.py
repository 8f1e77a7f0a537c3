"""PWM through ledd's gpiozero factory: PWMLED and RGBLED as gpiozero's tutorials write
them, value as ledd's brightness (and read back from its state), frequency within ledd's
range, blink and pulse. In-process tests use gpiozero 2.x (the venv); PWM_CHECKS runs
under both 2.x and Debian's 1.6."""

import json
import os
import subprocess

import pytest

from waiting import holds_for, wait_for
from zerostack import RGB_CONFIG, ROOT, examples, led, record_refusals

gpiozero = pytest.importorskip("gpiozero")
from gpiozero import LED, PWMLED, RGBLED  # noqa: E402
from gpiozero.exc import PinPWMError  # noqa: E402

from ledd.gpiozero_factory import LeddFactory, PinFrequencyOutOfRange  # noqa: E402


def red(client):
    return led(client.state(), "red")


@pytest.fixture
def rgb_ledd(ledd_factory, tmp_path):
    conf = tmp_path / "rgb.conf"
    conf.write_text(RGB_CONFIG)
    return ledd_factory(config=conf).start()


def brightness_runs(states, name):
    """The LED's brightness in each announced state while it is lit, repeats removed."""
    runs = []
    for state in states:
        light = led(state, name)
        value = light["brightness"] if light["on"] else 0
        if not runs or runs[-1] != value:
            runs.append(value)
    return runs


# -- PWMLED -------------------------------------------------------------------

def test_pwmled_value_is_ledds_brightness(factory, ledd):
    c = ledd.client()
    light = PWMLED(17)           # gpiozero's default: 100 Hz, initial_value=0
    assert light.frequency == 100 and red(c)["pwm_hz"] == 100
    assert light.value == 0 and red(c)["on"] is False
    light.value = 0.3
    assert (red(c)["on"], red(c)["brightness"]) == (True, 30)
    assert light.value == 0.3 and light.is_lit
    light.value = 0              # off, as OFF: ledd keeps the brightness
    assert (red(c)["on"], red(c)["brightness"]) == (False, 30)
    assert light.value == 0
    light.value = 0.004          # rounds to 0 %: off
    assert red(c)["on"] is False
    light.on()                   # gpiozero's on() is full
    assert (red(c)["on"], red(c)["brightness"]) == (True, 100) and light.value == 1
    light.toggle()
    assert red(c)["on"] is False
    # Another client (the dashboard) dims it: the script reads ledd's brightness back.
    c.brightness("red", 55)
    wait_for(lambda: light.value == 0.55, what="the script's view of red at 55 %", interval=0.005)
    c.off("red")
    wait_for(lambda: light.value == 0, what="the script's view of red off", interval=0.005)


def test_active_low_pwmled_inverts_as_gpiozero_does(factory, ledd):
    light = PWMLED(17, active_high=False)
    light.value = 0.3            # the line's duty is 70 %
    assert (red(ledd.client())["on"], red(ledd.client())["brightness"]) == (True, 70)
    assert light.value == pytest.approx(0.3)


def test_led_after_pwmled_is_digital_again(factory, ledd):
    c = ledd.client()
    light = PWMLED(17, initial_value=0.25)
    assert red(c)["brightness"] == 25
    light.close()
    plain = LED(17, initial_value=None)
    assert plain.value == 1 and plain.pin.frequency is None
    plain.off()
    plain.on()                   # ledd's ON: lit at the LED's kept brightness
    assert (red(c)["on"], red(c)["brightness"]) == (True, 25)


def test_frequency_is_ledds_within_its_range(factory, ledd):
    c = ledd.client()
    green_hz = led(c.state(), "green")["pwm_hz"]
    light = PWMLED(17, frequency=1000)
    assert light.frequency == 1000 and red(c)["pwm_hz"] == 1000
    light.frequency = 10
    assert red(c)["pwm_hz"] == 10
    light.frequency = 250.4      # whole hertz, as ledd takes them
    assert light.frequency == 250 and red(c)["pwm_hz"] == 250
    for wrong in (5, 9.9, 1000.5, 20000):
        with pytest.raises(PinFrequencyOutOfRange, match=r"GPIO17 is LED 'red'.*ledd's PWM runs at 10-1000 Hz"):
            light.frequency = wrong
    assert red(c)["pwm_hz"] == 250
    with pytest.raises(PinPWMError, match="10-1000 Hz, not 2000"):
        PWMLED(27, frequency=2000)
    assert led(c.state(), "green")["pwm_hz"] == green_hz
    # Another client's frequency shows in the script.
    c.frequency("red", 400)
    wait_for(lambda: light.frequency == 400, what="the script's view of red at 400 Hz", interval=0.005)


def test_pwmled_blink_forever_is_ledds_blink_at_full_brightness(factory, ledd):
    c = ledd.client()
    c.brightness("red", 30)
    light = PWMLED(17)
    light.blink(on_time=0.2, off_time=0.3)
    wait_for(lambda: red(c)["blink"] == {"on_ms": 200, "off_ms": 300}, what="ledd's blink 200/300", interval=0.005)
    assert red(c)["brightness"] == 100   # gpiozero's blink is lit at full
    seq = c.state()["seq"]
    # About time itself: the software thread runs on, but sends nothing more.
    holds_for(lambda: c.state()["seq"] == seq, 0.6, what="no change after the blink")
    assert light.value == 1
    light.off()
    assert (red(c)["on"], red(c)["blink"]) == (False, None)


def test_pulse_fades_in_software(factory, ledd, observe):
    c = ledd.client()
    obs = observe(ledd)
    light = PWMLED(17)
    since = len(obs)
    light.pulse(fade_in_time=0.4, fade_out_time=0.4)
    runs = []

    def faded_in_and_out():
        nonlocal runs
        runs = brightness_runs([s for _, s in obs.states[since:]], "red")
        top = runs.index(100) if 100 in runs else -1
        rising, falling = runs[:top], runs[top + 1:]
        return top > 0 and len([v for v in rising if 0 < v < 100]) >= 5 and len(falling) >= 5
    wait_for(faded_in_and_out, 10, what=lambda: "a fade in and out, got %s" % runs, interval=0.02)
    top = runs.index(100)
    rising = [v for v in runs[:top] if v > 0]
    assert rising == sorted(rising)      # 4 %, 8 %, ... as gpiozero's 25 steps a second
    assert all(led(s, "red")["blink"] is None for _, s in obs.states[since:])  # gpiozero times it
    light.off()
    seq = c.state()["seq"]
    assert (red(c)["on"], red(c)["blink"]) == (False, None)
    holds_for(lambda: c.state()["seq"] == seq, 0.2, what="the pulse stopped")


def test_blink_with_fades_and_a_count_ends_off(factory, ledd, observe):
    obs = observe(ledd)
    light = PWMLED(17)
    since = len(obs)
    light.blink(on_time=0.1, off_time=0.1, fade_in_time=0.2, fade_out_time=0.2, n=2, background=False)
    runs = brightness_runs([s for _, s in obs.states[since:]], "red")
    assert runs.count(100) == 2 and len([v for v in runs if 0 < v < 100]) >= 10, runs
    assert red(ledd.client())["on"] is False


# -- RGBLED -------------------------------------------------------------------

def test_rgbled_is_three_leds(rgb_ledd, observe):
    c = rgb_ledd.client()
    factory = LeddFactory(str(rgb_ledd.runtime_dir))
    try:
        rgb = RGBLED("red", "green", "blue", pin_factory=factory)
        rgb.value = (1, 0.5, 0)          # orange
        state = c.state()
        assert (led(state, "red")["on"], led(state, "red")["brightness"]) == (True, 100)
        assert (led(state, "green")["on"], led(state, "green")["brightness"]) == (True, 50)
        assert led(state, "blue")["on"] is False
        assert rgb.value == (1, 0.5, 0)
        rgb.color = (0, 0.2, 0.8)
        state = c.state()
        assert [led(state, n)["brightness"] for n in ("green", "blue")] == [20, 80]
        assert led(state, "red")["on"] is False
        rgb.off()
        obs = observe(rgb_ledd)             # from a dark LED: its first event has green off
        since = len(obs)
        rgb.pulse(fade_in_time=0.3, fade_out_time=0.3, on_color=(1, 0, 1))
        runs = {}

        def faded():
            states = [s for _, s in obs.states[since:]]
            runs.update((n, brightness_runs(states, n)) for n in ("red", "green", "blue"))
            return all(len([v for v in runs[n] if 0 < v < 100]) >= 4 for n in ("red", "blue"))
        wait_for(faded, 10, what=lambda: "red and blue fading, got %s" % runs, interval=0.02)
        assert set(runs["green"]) <= {0}   # on_color's green is 0: never lit
        rgb.off()
        state = c.state()
        assert not any(light["on"] for light in state["leds"])
        rgb.close()
    finally:
        factory.close()


@pytest.mark.parametrize("device", ["PWMLED", "RGBLED"])
def test_a_pulse_waits_while_ledd_is_down_and_goes_on(rgb_ledd, observe, device):
    """gpiozero's pulse thread meets LeddDown while ledd restarts: it waits, then pulses on."""
    factory = LeddFactory(str(rgb_ledd.runtime_dir))
    refused = record_refusals(factory)
    try:
        light = PWMLED(17, pin_factory=factory) if device == "PWMLED" else \
            RGBLED(17, 27, 23, pin_factory=factory)
        light.pulse(fade_in_time=0.2, fade_out_time=0.2)
        obs = observe(rgb_ledd)
        assert obs.wait_for(lambda s: 0 < led(s, "red")["brightness"] < 100 and led(s, "red")["on"], 5)
        obs.close()
        rgb_ledd.stop()
        assert refused.wait(5), "the pulse never tried ledd while it was down"
        rgb_ledd.close_notify()
        rgb_ledd.notifications = []
        rgb_ledd.start()
        obs = observe(rgb_ledd)
        # Before the fix an RGBLED's pulse thread died with LeddDown: red stayed as it was.
        since = 0
        for full in (False, True, False, True):     # fading, full, fading, full: pulsing on
            found = obs.wait_for(lambda s: led(s, "red")["on"] and (led(s, "red")["brightness"] == 100) == full,
                                 5, since)
            assert found, "red stopped pulsing after the restart"
            since = found[0] + 1
        assert light._blink_thread is not None and light._blink_thread.is_alive()
        light.off()
        light.close()
    finally:
        factory.close()


# -- under both gpiozero releases ---------------------------------------------------

PWM_CHECKS = r"""
import json, time
from gpiozero import PWMLED, RGBLED
from gpiozero.exc import PinPWMError
from ledd.client import Client

def red():
    return Client().state()["leds"][0]

results = {}
light = PWMLED(17)
results["frequency"] = light.frequency
light.value = 0.3
results["set"] = [red()["on"], red()["brightness"], light.value]
light.pulse(fade_in_time=0.2, fade_out_time=0.2)
seen = set()
deadline = time.monotonic() + 5
while len(seen) < 5 and time.monotonic() < deadline:
    seen.add(red()["brightness"])
results["pulse_levels"] = len(seen)
light.off()
results["off"] = red()["on"]
try:
    light.frequency = 5
except PinPWMError as err:
    results["range"] = [type(err).__name__, str(err)]
light.close()
rgb = RGBLED(17, 27, 23)
rgb.value = (0.2, 0.4, 0.6)
results["rgb"] = [[l["on"], l["brightness"]] for l in Client().state()["leds"]]
results["rgb_value"] = rgb.value
print(json.dumps(results))
"""


def test_pwm_under_both_gpiozero_releases(python, rgb_ledd, site_dir):
    env = dict(os.environ, LEDD_RUNTIME_DIR=str(rgb_ledd.runtime_dir), GPIOZERO_PIN_FACTORY="ledd",
               PYTHONPATH=os.pathsep.join([str(site_dir), str(ROOT)]))
    r = subprocess.run([python, "-c", PWM_CHECKS], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[-1])
    assert got["frequency"] == 100
    assert got["set"] == [True, 30, 0.3]
    assert got["pulse_levels"] >= 5
    assert got["off"] is False
    assert got["range"][0] == "PinFrequencyOutOfRange" and "10-1000 Hz, not 5" in got["range"][1]
    order = [light["name"] for light in rgb_ledd.client().state()["leds"]]
    assert dict(zip(order, got["rgb"])) == {"red": [True, 20], "green": [True, 40], "blue": [True, 60]}
    assert got["rgb_value"] == [0.2, 0.4, 0.6]


# -- the docs' examples ----------------------------------------------------------------

def test_pulse_example(python, ledd, run_script, observe):
    obs = observe(ledd)
    script = run_script(python, examples()["pulse.py"], ledd)
    runs = []

    def pulsing():
        nonlocal runs
        script.alive()
        runs = brightness_runs([s for _, s in obs.states], "red")
        return runs.count(100) >= 2 and len([v for v in runs if 0 < v < 100]) >= 20
    wait_for(pulsing, 15, what=lambda: "red pulsing twice, got %s\n%s" % (runs, script.output()), interval=0.05)


def test_rgb_example(python, rgb_ledd, run_script, observe):
    obs = observe(rgb_ledd)
    script = run_script(python, examples()["rgb_led.py"], rgb_ledd)
    colours = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0.5, 0)]
    names = ("red", "green", "blue")

    def colour(state):
        return tuple(led(state, n)["brightness"] / 100 if led(state, n)["on"] else 0 for n in names)
    since = 0
    for wanted in colours:
        found = obs.wait_for(lambda s: colour(s) == wanted, 15, since)
        assert found, "colour %s never shown:\n%s" % (wanted, script.output())
        since = found[0]
    script.alive()

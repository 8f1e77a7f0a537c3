"""The examples of docs/gpiozero.md, run unchanged with GPIOZERO_PIN_FACTORY=ledd
against a sim ledd, with gpiozero 2.x (venv) and Debian's 1.6 (/usr/bin/python3);
and a script living through a restart of ledd."""

import time

from waiting import WaitTimeout, holds_for, wait_for
from zerostack import TRAFFIC_CONFIG, examples, led


def press_until(client, obs, script, predicate, hold=0.0, timeout=15, wait=1.0):
    """Press (and release) the button until the running script reacts, as a user
    would: a press before the script has set its callbacks is lost."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        script.alive()
        since = len(obs)
        client.press("button")
        found = obs.wait_for(predicate, timeout=max(wait, hold), since=since)
        if hold and found:
            time.sleep(max(0.0, hold - (time.monotonic() - found[1])))  # about time itself: hold the button
        client.release("button")
        if found:
            return found
    raise AssertionError("the script never reacted to the button:\n" + script.output())


def test_button_toggles_led(python, ledd, run_script, observe):
    obs = observe(ledd)
    c = ledd.client()
    script = run_script(python, examples()["button_toggles_led.py"], ledd)
    press_until(c, obs, script, lambda s: led(s, "red")["on"])
    for expected in (False, True, False, True):
        since = len(obs)
        c.press("button")
        assert obs.wait_for(lambda s: led(s, "red")["on"] is expected, 5, since), script.output()
        c.release("button")
        assert obs.wait_for(lambda s: not s["buttons"][0]["pressed"], 5, since)
    # About time itself: nothing more may follow, one toggle per press.
    holds_for(lambda: led(c.state(), "red")["on"] is True, 0.2, what="red staying on")
    script.alive()


def test_button_toggles_led_across_a_restart_of_ledd(python, ledd, run_script, observe):
    obs = observe(ledd)
    c = ledd.client()
    script = run_script(python, examples()["button_toggles_led.py"], ledd)
    press_until(c, obs, script, lambda s: led(s, "red")["on"])
    ledd.restart()
    obs = observe(ledd)
    script.alive()
    # The script's factory subscribes again on its own: a press toggles once more.
    press_until(c, obs, script, lambda s: not led(s, "red")["on"])
    script.alive()


def test_traffic_lights(python, ledd_factory, tmp_path, run_script, observe):
    conf = tmp_path / "traffic.conf"
    conf.write_text(TRAFFIC_CONFIG)
    d = ledd_factory(config=conf).start()
    obs = observe(d)
    script = run_script(python, examples()["traffic_lights.py"], d)
    names = {(False, False, True): "green", (False, True, False): "amber",
             (True, False, False): "red", (True, True, False): "red+amber"}
    wanted = ["green", "amber", "red", "red+amber", "green"]
    seen = []

    def sequence_seen():
        nonlocal seen
        script.alive()
        # Setting lights.value is three requests: keep only the states that last
        # (the script sleeps a second or more in each), not the steps between.
        states = list(obs.states) + [(time.monotonic(), None)]
        seen = []
        for (t, state), (t_next, _) in zip(states, states[1:]):
            lights = tuple(led(state, n)["on"] for n in ("red", "amber", "green"))
            if t_next - t > 0.5 and lights in names and (not seen or seen[-1] != names[lights]):
                seen.append(names[lights])
        while seen and seen[0] != "green":
            seen.pop(0)
        return seen[:5] == wanted
    wait_for(sequence_seen, 30, what=lambda: "the lights' sequence %s\n%s" % (seen, script.output()), interval=0.2)


def test_when_held_blinks_in_ledd_and_release_stops(python, ledd, run_script, observe):
    obs = observe(ledd)
    c = ledd.client()
    script = run_script(python, examples()["when_held.py"], ledd)
    # Held for more than hold_time: ledd itself blinks green (kernel-timed BLINK, 1 s / 1 s).
    index, _, state = press_until(c, obs, script, lambda s: led(s, "green")["blink"] is not None,
                                  hold=1.3, wait=3.0)
    assert led(state, "green")["blink"] == {"on_ms": 1000, "off_ms": 1000}
    assert obs.wait_for(lambda s: not led(s, "green")["on"], 5, index), script.output()
    # A short press is no hold: nothing blinks.
    since = len(obs)
    c.press("button")
    time.sleep(0.3)  # about time itself: a press shorter than hold_time
    c.release("button")
    assert obs.wait_for(lambda s: led(s, "green")["on"], 1.5, since) is None
    script.alive()


RESTART_SCRIPT = """
import time
from gpiozero import LED, Button
from ledd.gpiozero_factory import LeddDown

led = LED("red")
button = Button("button")
button.when_pressed = lambda: print("pressed", flush=True)
print("ready", flush=True)
down = 0
while True:
    try:
        led.toggle()
        if down:
            print("back after %d refusals" % down, flush=True)
            down = 0
    except LeddDown as err:
        if not down:
            print("down: %s: %s" % (type(err).__name__, err), flush=True)
        down += 1
    time.sleep(0.02)
"""


def test_script_gets_a_clear_error_while_ledd_is_down_and_carries_on(python, ledd, run_script, observe):
    c = ledd.client()
    script = run_script(python, RESTART_SCRIPT, ledd)
    script.wait_output("ready")
    c.press("button")
    script.wait_output("pressed")
    c.release("button")
    ledd.stop()
    script.wait_output("down: LeddDown: ledd ")  # "is not running", or "stopped while answering" mid-toggle
    assert "unreachable until ledd is back" in script.output()
    ledd.close_notify()
    ledd.notifications = []
    ledd.start()
    script.wait_output("back after")
    obs = observe(ledd)
    seq = c.state()["seq"]
    assert obs.wait_for(lambda s: s["seq"] > seq + 3, 5), script.output()  # toggling again
    before = script.output().count("pressed")

    def press_is_seen():
        c.press("button")
        try:
            return wait_for(lambda: script.output().count("pressed") > before, 1, what="the press")
        except WaitTimeout:
            return False   # pressed before the factory subscribed again: press once more
        finally:
            c.release("button")
    wait_for(press_is_seen, what=lambda: "the script to see a press again:\n" + script.output())
    script.alive()

"""Brightness (issue 23), what a client sees of it: BRIGHTNESS, ALL_BRIGHTNESS and FREQUENCY,
the state JSON's ``brightness`` and ``pwm_hz``, the state file, the config's ``pwm_hz`` and
the button actions that set a brightness. How the line is driven (the PWM itself) is
test_pwm.py."""

import json
import signal
import subprocess

import pytest

from ledd import defaults
from ledd.client import CommandError
import rawfifo
from waiting import WAIT_S, wait_for


def led(state, name):
    return next(l for l in state["leds"] if l["name"] == name)


def without_levels(state):
    """``state`` without the LEDs' ``level``: a dimmed LED's line goes up and down all the time."""
    return dict(state, leds=[dict(l, level=None) for l in state["leds"]])


def test_leds_start_at_full_brightness_and_the_default_frequency(ledd):
    for l in ledd.client().state()["leds"]:
        assert (l["brightness"], l["pwm_hz"]) == (defaults.BRIGHTNESS_DEFAULT, defaults.PWM_HZ_DEFAULT)


def test_brightness_lights_an_led_that_is_off(ledd):
    c = ledd.client()
    seq = c.state()["seq"]
    s = c.brightness("red", 30)
    assert (led(s, "red")["on"], led(s, "red")["blink"], led(s, "red")["brightness"]) == (True, None, 30)
    assert s["seq"] == seq + 1
    assert led(s, "green")["on"] is False and led(s, "green")["brightness"] == 100


def test_brightness_zero_is_off_and_keeps_the_brightness(ledd):
    c = ledd.client()
    c.brightness("red", 30)
    s = c.brightness("red", 0)
    assert (led(s, "red")["on"], led(s, "red")["level"], led(s, "red")["brightness"]) == (False, 0, 30)
    s = c.on("red")
    assert led(s, "red")["on"] is True and led(s, "red")["brightness"] == 30, "ON lights it at its brightness"
    c.blink("red", 100, 100)
    s = c.brightness("red", 0)
    assert (led(s, "red")["on"], led(s, "red")["blink"], led(s, "red")["brightness"]) == (False, None, 30), \
        "0 stops a blink as OFF does"


def test_no_change_means_no_seq_and_no_event(ledd):
    c = ledd.client()
    c.brightness("red", 40)
    c.brightness("green", 40)
    c.off("green")
    with c.watch() as w:
        seq = json.loads(w.next_event(WAIT_S))["seq"]
        for words in (("BRIGHTNESS", "red", "40"), ("BRIGHTNESS", "green", "0"),
                      ("FREQUENCY", "red", str(defaults.PWM_HZ_DEFAULT))):
            assert c.call(*words)["seq"] == seq, words
        assert w.next_event(0.3) is None, "a request that changed nothing sent an event"
        assert c.all_brightness(40)["seq"] == seq + 1   # green goes on
        assert json.loads(w.next_event(WAIT_S))["seq"] == seq + 1
        assert c.all_brightness(40)["seq"] == seq + 1
        assert w.next_event(0.3) is None


def test_steady_led_stays_lit_at_the_new_brightness(ledd):
    c = ledd.client()
    c.on("green")
    seq = c.state()["seq"]
    s = c.brightness("green", 70)
    assert (led(s, "green")["on"], led(s, "green")["blink"], led(s, "green")["brightness"]) == (True, None, 70)
    assert s["seq"] == seq + 1
    s = c.brightness("green", 100)
    assert led(s, "green")["brightness"] == 100 and led(s, "green")["level"] == 1


def test_blinking_led_keeps_blinking_at_the_new_brightness(ledd):
    c = ledd.client()
    c.blink("green", 60, 60)
    s = c.brightness("green", 50)
    assert led(s, "green")["blink"] == {"on_ms": 60, "off_ms": 60} and led(s, "green")["brightness"] == 50
    s = c.brightness("green", 100)
    assert led(s, "green")["blink"] == {"on_ms": 60, "off_ms": 60}
    levels = set()
    wait_for(lambda: levels.add(led(c.state(), "green")["level"]) or levels == {0, 1},
             what="green's blink phases after BRIGHTNESS", interval=0.011)


def test_blink_keeps_its_phase_when_the_brightness_changes(ledd):
    """Phase kept: a change of brightness in the long off phase leaves the LED in it."""
    c = ledd.client()
    c.blink("green", 20, 5000)
    wait_for(lambda: led(c.state(), "green")["level"] == 0, what="green's 5 s off phase")
    s = c.brightness("green", 100)
    s = c.brightness("green", 60)
    assert led(s, "green")["level"] == 0, "the blink was restarted in its on phase"


def test_all_brightness_sets_every_led(ledd):
    c = ledd.client()
    c.blink("green", 100, 100)
    s = c.all_brightness(25)
    assert [(l["on"], l["brightness"]) for l in s["leds"]] == [(True, 25), (True, 25)]
    assert led(s, "green")["blink"] == {"on_ms": 100, "off_ms": 100}
    s = c.all_brightness(0)
    assert [(l["on"], l["blink"], l["brightness"]) for l in s["leds"]] == [(False, None, 25)] * 2


def test_all_brightness_is_all_or_nothing(ledd_factory, tmp_path):
    """A line the kernel refuses (sim: $LEDD_SIM_REFUSE_GPIO) leaves every LED as it was."""
    cfg = rawfifo.write_config(tmp_path / "c.conf")
    d = ledd_factory(config=cfg, env={"LEDD_SIM_REFUSE_GPIO": "27"}).start()
    c = d.client()
    c.brightness("red", 40)
    before = c.state()
    with pytest.raises(CommandError) as err:
        c.all_brightness(80)
    assert err.value.code == "gpio" and "GPIO27" in str(err.value)
    assert without_levels(c.state()) == without_levels(before), "the model was rolled back"
    assert "brightness 40" in d.state_file.read_text() and "brightness 80" not in d.state_file.read_text()


def test_frequency_sets_one_led(ledd):
    c = ledd.client()
    seq = c.state()["seq"]
    s = c.frequency("red", 50)
    assert (led(s, "red")["pwm_hz"], led(s, "green")["pwm_hz"]) == (50, defaults.PWM_HZ_DEFAULT)
    assert s["seq"] == seq + 1 and led(s, "red")["on"] is False, "FREQUENCY lights nothing"


@pytest.mark.parametrize("words", [
    ("BRIGHTNESS", "red", str(defaults.BRIGHTNESS_MAX + 1)), ("BRIGHTNESS", "red", "-1"),
    ("BRIGHTNESS", "red", "3.5"), ("BRIGHTNESS", "red"), ("ALL_BRIGHTNESS", "101"), ("ALL_BRIGHTNESS", "on"),
    ("FREQUENCY", "red", str(defaults.PWM_HZ_MIN - 1)), ("FREQUENCY", "red", str(defaults.PWM_HZ_MAX + 1)),
    ("FREQUENCY", "red", "0"),
])
def test_out_of_range_is_badarg_and_changes_nothing(ledd, words):
    c = ledd.client()
    before = c.state()
    with pytest.raises(CommandError) as err:
        c.call(*words)
    assert err.value.code == "badarg"
    assert c.state() == before


def test_range_errors_name_the_range(ledd):
    with pytest.raises(CommandError) as err:
        ledd.client().call("BRIGHTNESS", "red", "101")
    assert "0-100" in str(err.value)
    with pytest.raises(CommandError) as err:
        ledd.client().call("FREQUENCY", "red", "5")
    assert "%d-%d Hz" % (defaults.PWM_HZ_MIN, defaults.PWM_HZ_MAX) in str(err.value)


def test_unknown_led_is_notfound(ledd):
    with pytest.raises(CommandError) as err:
        ledd.client().brightness("blue", 50)
    assert err.value.code == "notfound"


def test_restart_keeps_brightness_and_frequency(ledd):
    c = ledd.client()
    c.brightness("red", 30)
    c.frequency("red", 120)
    c.brightness("green", 70)
    c.off("green")
    before = c.state()
    after = ledd.restart().client().state()
    assert without_levels(after) == without_levels(before)
    assert (led(after, "red")["brightness"], led(after, "red")["pwm_hz"]) == (30, 120)
    assert (led(after, "green")["on"], led(after, "green")["brightness"]) == (False, 70)


def test_acknowledged_brightness_survives_kill9(ledd):
    s = ledd.client().brightness("green", 15)
    ledd.kill9()
    ledd.close_notify()
    ledd.notifications = []
    after = ledd.start().client().state()
    assert without_levels(after) == without_levels(s)


def test_a_state_file_of_an_older_ledd_still_loads(ledd_factory):
    d = ledd_factory()
    d.state_file.parent.mkdir(parents=True, exist_ok=True)
    d.state_file.write_text("ledd-state 1\nseq 7\nled red on 1 blink 0 0\nled green on 1 blink 100 200\n")
    s = d.start().client().state()
    assert s["seq"] == 7, d.read_log()
    assert [(l["on"], l["brightness"], l["pwm_hz"]) for l in s["leds"]] == [
        (True, defaults.BRIGHTNESS_DEFAULT, defaults.PWM_HZ_DEFAULT)] * 2
    assert led(s, "green")["blink"] == {"on_ms": 100, "off_ms": 200}


@pytest.mark.parametrize("line", [
    "led red on 1 blink 0 0 brightness 0 pwm_hz -", "led red on 1 blink 0 0 brightness 101 pwm_hz -",
    "led red on 1 blink 0 0 brightness 50 pwm_hz 9", "led red on 1 blink 0 0 brightness 50 pwm_hz 1001",
    "led red on 1 blink 0 0 brightness 50", "led red on 1 blink 0 0 pwm_hz 50 brightness 50",
])
def test_a_state_file_with_bad_brightness_is_refused_whole(ledd_factory, line):
    d = ledd_factory()
    d.state_file.parent.mkdir(parents=True, exist_ok=True)
    d.state_file.write_text("ledd-state 1\nseq 7\n%s\n" % line)
    s = d.start().client().state()
    assert s["seq"] == 0 and "ignoring the state file" in d.read_log()


def config_with(tmp_path, pwm_hz=None, actions=""):
    section = "pwm_hz = %d\n" % pwm_hz if pwm_hz else ""
    path = rawfifo.write_config(tmp_path / "b.conf", ledd_section=section)
    if actions:
        path.write_text(path.read_text().replace("active_low = true\n", "active_low = true\n" + actions))
    return path


def test_config_pwm_hz_is_every_leds_default(ledd_factory, tmp_path):
    d = ledd_factory(config=config_with(tmp_path, 500)).start()
    assert [l["pwm_hz"] for l in d.client().state()["leds"]] == [500, 500]


def test_a_new_config_pwm_hz_moves_the_leds_no_frequency_set(ledd_factory, tmp_path):
    """An LED follows the config's pwm_hz (across restarts and reloads) until FREQUENCY gives it its own."""
    path = config_with(tmp_path, 300)
    d = ledd_factory(config=path).start()
    c = d.client()
    c.frequency("red", 75)
    c.brightness("green", 40)
    seq = c.state()["seq"]
    config_with(tmp_path, 400)
    d.signal(signal.SIGHUP)
    wait_for(lambda: led(c.state(), "green")["pwm_hz"] == 400, what="green at the reloaded pwm_hz")
    s = c.state()
    assert led(s, "red")["pwm_hz"] == 75 and s["seq"] == seq + 1
    config_with(tmp_path, 600)
    s = d.restart().client().state()
    assert [l["pwm_hz"] for l in s["leds"]] == [75, 600]
    assert led(s, "green")["brightness"] == 40


def test_brightness_button_actions(ledd_factory, tmp_path):
    path = config_with(tmp_path, actions="on_press = BRIGHTNESS red 20\non_release = all_brightness 0\n")
    d = ledd_factory(config=path).start()
    c = d.client()
    s = c.state()
    assert s["buttons"][0]["on_press"] == "brightness red 20"
    assert s["buttons"][0]["on_release"] == "all_brightness 0"
    s = c.press("button")
    assert (led(s, "red")["on"], led(s, "red")["brightness"]) == (True, 20)
    s = c.release("button")
    assert [(l["on"], l["brightness"]) for l in s["leds"]] == [(False, 20), (False, 100)]


@pytest.mark.parametrize("action,fragment", [
    ("brightness red 101", "brightness '101' is not 0-100 %"),
    ("brightness blue 50", "names no [led blue]"),
    ("all_brightness", "expected "),
    ("frequency red 100", "expected "),       # not an action
])
def test_bad_brightness_actions_are_config_errors(ledd_binary, tmp_path, action, fragment):
    path = config_with(tmp_path, actions="on_press = %s\n" % action)
    r = subprocess.run(rawfifo.ledd_argv(ledd_binary, "--check-config", "-c", path), capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 1 and fragment in r.stderr, r.stderr


@pytest.mark.parametrize("value", ["9", "1001", "0", "fast", "200Hz", ""])
def test_bad_pwm_hz_is_a_clear_config_error(ledd_binary, tmp_path, value):
    path = rawfifo.write_config(tmp_path / "p.conf", ledd_section="pwm_hz = %s\n" % value)
    r = subprocess.run(rawfifo.ledd_argv(ledd_binary, "--check-config", "-c", path), capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 1 and r.stderr.startswith("%s:3: pwm_hz: " % path), r.stderr
    if value:
        assert "is not a PWM frequency in Hz (%d-%d)" % (defaults.PWM_HZ_MIN, defaults.PWM_HZ_MAX) in r.stderr

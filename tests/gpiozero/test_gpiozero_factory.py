"""ledd's gpiozero pin factory: pin names, what each pin allows, errors that
name the config, blink mapping, events, close(), a stopped ledd, registration
(PWM: test_gpiozero_pwm.py).
In-process tests use gpiozero 2.x (the venv); CHECKS runs under both 2.x and
Debian's 1.6."""

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import tomllib

import pytest

from waiting import holds_for, wait_for
from zerostack import ROOT, led, record_refusals

gpiozero = pytest.importorskip("gpiozero")
from gpiozero import LED, Button, PWMLED  # noqa: E402
from gpiozero.exc import PinError, PinFixedPull, PinInvalidFunction, PinInvalidPin, PinPWMError  # noqa: E402

from ledd import defaults  # noqa: E402
from ledd.client import DaemonDown  # noqa: E402
from ledd.gpiozero_factory import (LeddDown, LeddFactory, PinFixedBounce, PinFixedFunction,  # noqa: E402
                                   PinNotConfigured, running_config)


# -- pins ---------------------------------------------------------------------

@pytest.mark.parametrize("spec", [17, "GPIO17", "BCM17", "BOARD11", "J8:11", "red"])
def test_every_pin_name_reaches_the_same_led(factory, ledd, spec):
    light = LED(spec)
    assert light.pin is factory.pin(17)
    light.on()
    assert led(ledd.client().state(), "red")["on"] is True
    light.close()


def test_led_on_off_toggle_value_go_through_ledd(factory, ledd):
    c = ledd.client()
    red = LED("red")
    assert red.value == 0  # gpiozero switches a new LED off (initial_value=False)
    red.on()
    assert led(c.state(), "red")["on"] and red.is_lit
    red.toggle()
    assert not led(c.state(), "red")["on"] and not red.is_lit
    red.value = 1
    assert led(c.state(), "red")["on"]
    # A change by another client (the dashboard) shows in the script's view.
    c.off("red")
    wait_for(lambda: red.value == 0, what="the script's view of red to turn off", interval=0.005)


def test_initial_value_none_keeps_the_state(factory, ledd):
    ledd.client().on("green")
    assert LED("green", initial_value=None).is_lit


def test_blink_forever_is_ledds_blink(factory, ledd):
    c = ledd.client()
    green = LED(27)
    green.blink(on_time=0.2, off_time=0.3)
    wait_for(lambda: led(c.state(), "green")["blink"] == {"on_ms": 200, "off_ms": 300}, what="ledd's BLINK 200 300",
             interval=0.005)
    seq = c.state()["seq"]
    # About time itself: the software thread runs on, but sends nothing more.
    holds_for(lambda: c.state()["seq"] == seq, 0.6, what="no change after the BLINK")
    assert green.is_lit
    green.off()
    state = c.state()
    assert led(state, "green")["on"] is False and led(state, "green")["blink"] is None


def test_blink_with_a_count_stays_software(factory, ledd, observe):
    obs = observe(ledd)
    green = LED(27)
    green.blink(on_time=0.05, off_time=0.05, n=2, background=False)
    ons = [s for _, s in obs.states if led(s, "green")["on"]]
    assert len(ons) >= 2 and all(led(s, "green")["blink"] is None for s in ons)
    assert led(ledd.client().state(), "green")["on"] is False


def test_blink_too_fast_for_ledd_stays_software(factory, ledd):
    green = LED(27)
    green.blink(on_time=0.01, off_time=0.01)
    # About time itself: while the software blink runs, ledd is never asked to blink.
    holds_for(lambda: led(ledd.client().state(), "green")["blink"] is None, 0.1, what="no BLINK in ledd")
    green.off()


@pytest.mark.parametrize("kind", ["counted", "too-fast"])
def test_software_blink_survives_a_restart_of_ledd(factory, ledd, observe, kind):
    """A blink gpiozero times itself waits while ledd is down and goes on after it is back."""
    refused = record_refusals(factory)
    green = LED(27)
    if kind == "counted":
        green.blink(on_time=0.05, off_time=0.05, n=100000)
    else:
        green.blink(on_time=0.01, off_time=0.01)
    obs = observe(ledd)
    assert obs.wait_for(lambda s: led(s, "green")["on"], 5) and obs.wait_for(lambda s: not led(s, "green")["on"], 5)
    obs.close()
    ledd.stop()
    assert refused.wait(5), "the blink never tried ledd while it was down"
    ledd.close_notify()
    ledd.notifications = []
    ledd.start()
    obs = observe(ledd)
    # Before the fix the blink thread had died with LeddDown: green stayed as it was.
    assert obs.wait_for(lambda s: led(s, "green")["on"], 5) and obs.wait_for(lambda s: not led(s, "green")["on"], 5)
    assert green._blink_thread is not None and green._blink_thread.is_alive()
    green.off()
    assert led(ledd.client().state(), "green")["blink"] is None


def test_active_low_led_blinks_the_right_way(factory, ledd):
    green = LED(27, active_high=False)  # value 1 = ledd's off
    green.blink(on_time=0.1, off_time=0.4)
    wait_for(lambda: led(ledd.client().state(), "green")["blink"] == {"on_ms": 400, "off_ms": 100},
             what="ledd's BLINK 400 100 (active low)", interval=0.005)
    green.close()


def test_a_second_script_shares_the_pin_as_the_docs_say(factory, ledd):
    """Two factories stand for two scripts: no 'GPIO busy', the last command wins, both read it."""
    from zerostack import DOC

    assert "a second script opening the same pin gets it" in " ".join(DOC.read_text().split())
    first = LED(17)
    first.on()
    other = LeddFactory(str(ledd.runtime_dir))
    try:
        second = LED(17, pin_factory=other, initial_value=None)  # no error, and the LED stays on
        assert second.value == 1 and led(ledd.client().state(), "red")["on"] is True
        second.off()
        assert wait_for(lambda: first.value == 0, what="the first script's LED to read 0")
        with pytest.raises(gpiozero.GPIOPinInUse):  # within one script, gpiozero's own rule holds
            LED(17)
    finally:
        other.close()


def test_close_releases_nothing_and_keeps_the_state(factory, ledd):
    red = LED("red")
    red.on()
    red.close()
    assert led(ledd.client().state(), "red")["on"] is True
    red = LED("red", initial_value=None)  # the pin can be taken again
    assert red.is_lit
    factory.close()
    assert led(ledd.client().state(), "red")["on"] is True


# -- buttons -----------------------------------------------------------------

def test_button_state_and_callbacks_from_events(factory, ledd):
    c = ledd.client()
    button = Button(22)
    pressed, released = threading.Event(), threading.Event()
    threads = []
    button.when_pressed = lambda: (threads.append(threading.current_thread().name), pressed.set())
    button.when_released = released.set
    assert not button.is_pressed
    c.press("button")
    assert button.wait_for_press(5) and pressed.wait(5)
    assert button.is_pressed
    c.release("button")
    assert button.wait_for_release(5) and released.wait(5)
    assert threads == ["ledd-events"]  # the factory's GPIOThread


def test_when_held_and_hold_repeat(factory, ledd):
    c = ledd.client()
    button = Button("button", hold_time=0.2, hold_repeat=True)
    held = []
    button.when_held = lambda: held.append(time.monotonic())
    c.press("button")
    wait_for(lambda: len(held) >= 2, what="when_held twice (hold_repeat)")
    c.release("button")
    assert held[1] - held[0] >= 0.15, held   # repeated every hold_time (0.2 s), not at once
    assert button.held_time is None or button.held_time >= 0


def test_press_reaches_when_pressed_within_50ms(factory, ledd, record_property):
    """A press through the protocol to the script's callback. The median of 30
    is asserted (a loaded 2-core machine can stall any single one); the figures
    are recorded. bench/gpiozero.py measures p50/p99 properly."""
    c = ledd.client()
    button = Button(22)
    got = threading.Event()
    stamp = []
    button.when_pressed = lambda: (stamp.append(time.perf_counter()), got.set())
    delays = []
    for _ in range(30):
        got.clear()
        stamp.clear()
        t0 = time.perf_counter()
        c.press("button")
        assert got.wait(5)
        delays.append((stamp[0] - t0) * 1000)
        c.release("button")
        assert button.wait_for_release(5)
    median = statistics.median(delays)
    record_property("press_to_callback_ms_median", round(median, 3))
    record_property("press_to_callback_ms_max", round(max(delays), 3))
    print("press -> when_pressed: median %.2f ms, max %.2f ms" % (median, max(delays)))
    assert median < 50, delays


# -- what ledd's config fixes --------------------------------------------------

def test_errors_name_the_config(factory, ledd):
    # The file this ledd runs (cdaemon/ledd.conf here, as in the local run), not ledd's default.
    with pytest.raises(PinNotConfigured, match=r"GPIO5 is not a line in ledd's config \(%s\).*GPIO17 \(LED red\)"
                       % re.escape(str(ledd.config))):
        LED(5)
    with pytest.raises(PinInvalidPin, match="'blue' is neither a GPIO pin nor a name in ledd's config"):
        LED("blue")
    with pytest.raises(PinFixedFunction, match="GPIO17 is LED 'red' in ledd's config .*cannot be an input"):
        Button(17)
    with pytest.raises(PinInvalidFunction, match="GPIO22 is button 'button'.*cannot be an output"):
        LED(22)
    with pytest.raises(PinPWMError, match=r"GPIO27 is LED 'green' in ledd's config .*: ledd's PWM runs at "
                                          r"10-1000 Hz, not 5"):
        PWMLED(27, frequency=5)
    with pytest.raises(PinInvalidFunction, match="GPIO22 is button 'button'.*cannot be an output"):
        PWMLED(22)
    with pytest.raises(PinFixedPull, match="with pull up; ask for the same \\(pull_up=True\\)"):
        Button(22, pull_up=False)
    with pytest.raises(PinFixedPull):
        Button(22, pull_up=None, active_state=False)
    with pytest.raises(PinFixedBounce, match="debounce_ms = 30"):
        Button(22, bounce_time=0.2)
    button = Button(22, bounce_time=0.03)  # the same as ledd's: fine
    assert button.pin.bounce == 0.03 and button.pin.pull == "up"


@pytest.mark.parametrize("argv, path", [
    (["-c", "/x/a.conf"], "/x/a.conf"), (["-c/x/a.conf"], "/x/a.conf"), (["--config", "/x/a.conf"], "/x/a.conf"),
    (["--config=/x/a.conf"], "/x/a.conf"), (["-b", "sim", "-c", "/x/a.conf", "-r", "/run"], "/x/a.conf"),
    (["-b", "sim"], defaults.CONFIG_PATH)])
def test_running_config_reads_ledds_command_line(tmp_path, argv, path):
    """Every getopt spelling of ledd's -c; a ledd without one (or none at all) runs the default."""
    program = tmp_path / "ledd"  # stands for ledd: waits, with argv as given
    program.write_text("import sys\nprint('ready', flush=True)\nsys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, str(program)] + argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"  # its exec is over: /proc shows the new argv
        (tmp_path / defaults.PID_FILE).write_text("%d\n" % proc.pid)
        assert running_config(str(tmp_path)) == path
    finally:
        proc.communicate()
    (tmp_path / defaults.PID_FILE).unlink()
    assert running_config(str(tmp_path)) == defaults.CONFIG_PATH


def test_pull_down_button_in_config(ledd_factory, tmp_path):
    conf = tmp_path / "down.conf"
    conf.write_text("[ledd]\nbackend = sim\n[led red]\ngpio = 17\n"
                    "[button b]\ngpio = 22\npull = down\nactive_low = false\ndebounce_ms = 0\n")
    d = ledd_factory(config=conf).start()
    f = LeddFactory(str(d.runtime_dir))
    try:
        with pytest.raises(PinFixedPull, match="pull down; ask for the same \\(pull_up=False\\)"):
            Button(22, pin_factory=f)
        with pytest.raises(PinNotConfigured, match=r"GPIO27 is not a line in ledd's config \(%s\)" % re.escape(str(conf))):
            LED(27, pin_factory=f)
        button = Button(22, pull_up=False, pin_factory=f)
        assert button.pin.bounce is None
        d.client().press("b")
        assert button.wait_for_press(5) and button.is_pressed
    finally:
        f.close()


# -- ledd going away -----------------------------------------------------------

def test_no_ledd_is_a_clear_error(tmp_path):
    with pytest.raises(LeddDown, match="ledd is not running") as info:
        LeddFactory(str(tmp_path))
    assert isinstance(info.value, PinError) and isinstance(info.value, DaemonDown)


def test_ledd_restart_under_a_factory(factory, ledd):
    red = LED("red")
    button = Button("button")
    pressed = threading.Event()
    button.when_pressed = pressed.set
    ledd.stop()
    with pytest.raises(LeddDown, match="unreachable until ledd is back"):
        red.on()
    with pytest.raises(LeddDown):
        button.is_pressed
    ledd.close_notify()
    ledd.notifications = []
    ledd.start()
    red.on()  # commands work again at once
    assert led(ledd.client().state(), "red")["on"]
    deadline = time.monotonic() + 10
    while not pressed.is_set() and time.monotonic() < deadline:  # the watcher subscribes again
        ledd.client().press("button")
        pressed.wait(0.2)
        ledd.client().release("button")
    assert pressed.is_set()


# -- the same checks under both gpiozero releases ---------------------------------

CHECKS = r"""
import json, threading
from gpiozero import LED, Button, PWMLED, Device
from gpiozero.exc import PinError
from ledd.client import Client

results = {"factory": type(Device._default_pin_factory()).__name__}
for spec in (17, "GPIO17", "BOARD11", "J8:11", "red"):
    light = LED(spec)
    light.toggle()
    results[str(spec)] = Client().state()["leds"][0]["on"]
    light.close()
for name, make in [("gpio5", lambda: LED(5)), ("input_on_led", lambda: Button(17)),
                   ("pwm", lambda: PWMLED(27, frequency=2000)), ("pull", lambda: Button(22, pull_up=False)),
                   ("bounce", lambda: Button(22, bounce_time=0.5))]:
    try:
        make().close()
        results[name] = None
    except PinError as err:
        results[name] = [type(err).__name__, str(err)]
green = LED("green")
green.blink(0.1, 0.2)
button = Button(22)
done = threading.Event()
button.when_pressed = done.set
Client().press("button")
results["pressed"] = done.wait(5)
results["blink"] = Client().state()["leds"][1]["blink"]
print(json.dumps(results))
"""


def test_checks_under_both_gpiozero_releases(python, ledd, site_dir):
    env = dict(os.environ, LEDD_RUNTIME_DIR=str(ledd.runtime_dir), GPIOZERO_PIN_FACTORY="ledd",
               PYTHONPATH=os.pathsep.join([str(site_dir), str(ROOT)]))
    r = subprocess.run([python, "-c", CHECKS], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[-1])
    assert got["factory"] == "LeddFactory"
    # LED() switches red off, toggle() on: every name reached red.
    assert [got[k] for k in ("17", "GPIO17", "BOARD11", "J8:11", "red")] == [True] * 5
    assert got["gpio5"][0] == "PinNotConfigured" and "(%s)" % ledd.config in got["gpio5"][1]
    assert got["input_on_led"][0] == "PinFixedFunction"
    assert got["pwm"][0] == "PinFrequencyOutOfRange" and "10-1000 Hz, not 2000" in got["pwm"][1]
    assert got["pull"][0] == "PinFixedPull"
    assert got["bounce"][0] == "PinFixedBounce"
    assert got["pressed"] is True
    assert got["blink"] == {"on_ms": 100, "off_ms": 200}


# -- registration --------------------------------------------------------------

FIND = ("import site, sys; site.addsitedir(sys.argv[1]); from gpiozero import Device; "
        "print(type(Device._default_pin_factory()).__module__)")


def test_register_and_unregister_for_an_interpreter(python, ledd, tmp_path):
    """What deploy.sh runs: the dist-info and the .pth make GPIOZERO_PIN_FACTORY=ledd work."""
    site = tmp_path / "site-packages"
    site.mkdir()
    r = subprocess.run([python, "-m", "ledd.gpiozero_factory", "--register", str(site)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (site / "ledd_gpiozero.pth").read_text().strip() == str(ROOT)
    env = dict(os.environ, GPIOZERO_PIN_FACTORY="ledd", LEDD_RUNTIME_DIR=str(ledd.runtime_dir))
    env.pop("PYTHONPATH", None)
    # Run from elsewhere: ledd is found through the .pth, the factory through the entry point.
    r = subprocess.run([python, "-c", FIND, str(site)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ledd.gpiozero_factory.factory"
    r = subprocess.run([python, "-m", "ledd.gpiozero_factory", "--unregister", str(site)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0 and os.listdir(site) == [], (r.stderr, os.listdir(site))
    r = subprocess.run([python, "-c", FIND, str(site)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode != 0 and "ledd" in r.stderr


def test_pyproject_declares_the_entry_point():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    group = project["entry-points"][defaults.GPIOZERO_ENTRY_GROUP]
    assert group[defaults.GPIOZERO_FACTORY_NAME] == "ledd.gpiozero_factory:LeddFactory"


def test_no_press_is_lost_while_the_script_sends_commands(factory, ledd):
    """A command's reply (newer seq) may overtake the event of a press: the
    press must still reach when_pressed."""
    c = ledd.client()
    red = LED("red")
    button = Button("button")
    presses = []
    button.when_pressed = lambda: presses.append(1)
    stop = threading.Event()

    def toggling():
        while not stop.is_set():
            red.toggle()

    workers = [threading.Thread(target=toggling) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(100):
            c.press("button")
            c.release("button")
    finally:
        stop.set()
        for worker in workers:
            worker.join(10)
    wait_for(lambda: len(presses) == 100, what=lambda: "100 presses (got %d)" % len(presses), interval=0.005)


def test_an_event_older_than_a_reply_still_fires_its_edge(factory, ledd):
    """The race above, made deterministic: the reply of a later command is
    applied before the event of a press; the press must fire all the same."""
    button = Button("button")
    fired = []
    button.when_pressed = lambda: fired.append(1)
    state = ledd.client().state()
    reply = dict(state, seq=state["seq"] + 2)
    event = dict(state, seq=state["seq"] + 1, buttons=[dict(state["buttons"][0], pressed=True)])
    factory._apply(reply)
    factory.dispatch(event)
    assert fired == [1]
    assert factory._seq == state["seq"] + 2  # the LEDs did not go back to the older state

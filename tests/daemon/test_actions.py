"""Button actions (on_press / on_release in ledd.conf): run by ledd itself on the
debounced edge, as ordinary state changes (seq, events, state file), validated
with file:line errors, shown in the state JSON."""

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

import rawfifo
from waiting import WAIT_S, wait_for

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "cdaemon" / "ledd.conf"

BASE = """[ledd]
backend = sim

[button button]
gpio = 22
{actions}
[led red]
gpio = 17

[led green]
gpio = 27
"""


def config(tmp_path, actions, name="actions.conf"):
    path = tmp_path / name
    path.write_text(BASE.format(actions=actions))
    return path


def check(binary, path):
    return subprocess.run(rawfifo.ledd_argv(binary, "--check-config", "-c", path), capture_output=True,
                          text=True, timeout=20)


def start(ledd_factory, tmp_path, actions):
    return ledd_factory(config=config(tmp_path, actions)).start()


def test_press_toggles_and_release_switches_off(ledd_factory, tmp_path):
    # The LED sections come after the button: names resolve once the file is read.
    d = start(ledd_factory, tmp_path, "on_press = toggle red\non_release = off green\n")
    c = d.client()
    c.on("green")
    seq = c.state()["seq"]
    s = c.press("button")
    assert s["leds"][0]["on"] is True and s["buttons"][0]["pressed"] is True
    assert s["seq"] == seq + 2  # the edge, then the action: two state changes
    s = c.release("button")
    assert s["leds"][0]["on"] is True and s["leds"][1]["on"] is False
    assert s["seq"] == seq + 4
    s = c.press("button")
    assert s["leds"][0]["on"] is False


@pytest.mark.parametrize("action, check_state", [
    ("on green", lambda s: s["leds"][1]["on"] and s["leds"][1]["blink"] is None),
    ("off red", lambda s: not s["leds"][0]["on"]),
    ("blink green 100 250", lambda s: s["leds"][1]["blink"] == {"on_ms": 100, "off_ms": 250}),
    ("all on", lambda s: all(led["on"] for led in s["leds"])),
    ("ALL OFF", lambda s: not any(led["on"] for led in s["leds"])),
    ("Toggle green", lambda s: s["leds"][1]["on"]),
])
def test_every_action_kind(ledd_factory, tmp_path, action, check_state):
    d = start(ledd_factory, tmp_path, "on_press = %s\n" % action)
    c = d.client()
    c.on("red")
    assert check_state(c.press("button")), action


def test_an_action_that_changes_nothing_is_no_state_change(ledd_factory, tmp_path):
    d = start(ledd_factory, tmp_path, "on_press = on red\n")
    c = d.client()
    c.on("red")
    seq = c.state()["seq"]
    assert c.press("button")["seq"] == seq + 1  # the edge only


def test_action_reaches_watchers_and_the_state_file(ledd_factory, tmp_path):
    d = start(ledd_factory, tmp_path, "on_press = blink red 200 300\n")
    c = d.client()
    with c.watch() as w:
        first = json.loads(w.next_event(WAIT_S))
        c.press("button")
        edge = json.loads(w.next_event(WAIT_S))
        action = json.loads(w.next_event(WAIT_S))
    assert edge["buttons"][0]["pressed"] is True and edge["leds"][0]["on"] is False
    assert action["leds"][0]["blink"] == {"on_ms": 200, "off_ms": 300}
    assert action["seq"] == edge["seq"] + 1 == first["seq"] + 2
    assert "led red on 1 blink 200 300" in d.state_file.read_text()
    d.restart()
    assert d.client().state()["leds"][0]["blink"] == {"on_ms": 200, "off_ms": 300}


def test_state_shows_actions_and_hello_button_settings(ledd_factory, tmp_path):
    path = tmp_path / "two.conf"
    path.write_text(BASE.format(actions="on_press = toggle red\npull = down\nactive_low = false\ndebounce_ms = 7\n")
                    + "\n[button other]\ngpio = 23\non_release = all off\n")
    d = ledd_factory(config=path).start()
    c = d.client()
    buttons = c.state()["buttons"]
    assert buttons[0] == dict(buttons[0], on_press="toggle red", on_release=None)
    assert buttons[1] == dict(buttons[1], on_press=None, on_release="all off")
    assert c.hello()["buttons"] == [
        {"name": "button", "gpio": 22, "pull": "down", "active_low": False, "debounce_ms": 7},
        {"name": "other", "gpio": 23, "pull": "up", "active_low": True, "debounce_ms": 30},
    ]


def test_default_wiring_has_no_actions(ledd):
    button = ledd.client().state()["buttons"][0]
    assert button["on_press"] is None and button["on_release"] is None


@pytest.mark.parametrize("actions, line, message", [
    ("on_press = toggle blue\n", 6, "on_press: [button button] names no [led blue] of this file"),
    ("on_press = flash red\n", 6, "on_press: 'flash red': expected on|off|toggle LED"),
    ("on_press = toggle  red\n", 6, "expected on|off|toggle LED"),
    ("on_press = toggle red green\n", 6, "expected on|off|toggle LED"),
    ("on_press = toggle\n", 6, "expected on|off|toggle LED"),
    ("on_release = blink red 10 200\n", 6, "on_release: blink period '10' is not 20-60000 ms"),
    ("on_release = blink red 100 60001\n", 6, "blink period '60001' is not 20-60000 ms"),
    ("on_release = blink red 100\n", 6, "expected on|off|toggle LED"),
    ("on_release = blink red 1e3 200\n", 6, "blink period '1e3'"),
    ("on_press = all of\n", 6, "on_press: 'all of': all takes on or off"),
    ("on_press = on %s\n" % ("x" * 25), 6, "longer than 24 characters"),
    ("on_press = on red\non_press = off red\n", 7, "on_press: set twice"),
])
def test_check_config_names_file_and_line(ledd_binary, tmp_path, actions, line, message):
    path = config(tmp_path, actions)
    r = check(ledd_binary, path)
    assert r.returncode == 1, r.stdout
    assert r.stderr.startswith("%s:%d: " % (path, line)), r.stderr
    assert message in r.stderr


def test_action_in_ledd_section_is_an_unknown_key(ledd_binary, tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("[ledd]\non_press = toggle red\n[led red]\ngpio = 17\n")
    r = check(ledd_binary, path)
    assert r.returncode == 1 and "%s:2: unknown key 'on_press'" % path in r.stderr


def test_shipped_config_has_a_commented_example_that_works(ledd_binary, tmp_path):
    text = SHIPPED.read_text()
    assert "\n#on_press = toggle red\n" in text and "\n#on_release = off green\n" in text
    enabled = tmp_path / "enabled.conf"
    enabled.write_text(text.replace("#on_press", "on_press").replace("#on_release", "on_release"))
    r = check(ledd_binary, enabled)
    assert r.returncode == 0, r.stderr


def test_reload_changes_actions(ledd_factory, tmp_path):
    path = config(tmp_path, "on_press = on red\n")
    d = ledd_factory(config=path).start()
    c = d.client()
    path.write_text(BASE.format(actions="on_press = on green\n"))
    d.signal(signal.SIGHUP)
    d.wait_for("RELOADING=1")
    wait_for(lambda: c.state()["buttons"][0]["on_press"] == "on green", what="the reloaded on_press")
    s = c.press("button")
    assert s["leds"][1]["on"] is True and s["leds"][0]["on"] is False


def max_config_text(leds, buttons, actions):
    """16 LEDs and 8 buttons of the longest names, and ``actions`` of the longest actions
    (blink, the longest name, the longest periods): on_press, on_release of button 0, 1, ..."""
    text = "[ledd]\nbackend = sim\n"
    for i, name in enumerate(leds):
        text += "\n[led %s]\ngpio = %d\n" % (name, i)
    for i, name in enumerate(buttons):
        text += "\n[button %s]\ngpio = %d\npull = none\nactive_low = false\ndebounce_ms = 1000\n" % (name, 20 + i)
        for j, key in enumerate(("on_press", "on_release")):
            if 2 * i + j < actions:
                text += "%s = blink %s 60000 60000\n" % (key, leds[i + 8 * j])
    return text


def test_state_with_every_action_fits_in_one_pipe_write_or_the_config_is_refused(ledd_binary, ledd_factory,
                                                                                   tmp_path):
    """The longest state JSON (16 LEDs, 8 buttons, longest names, counters, blinks, brightness,
    frequencies and actions) must stay one atomic write under PIPE_BUF with the longest id.
    Every limit alone allows that, not all at once (issue 23 added brightness and pwm_hz to
    every LED): a config whose state could not fit is refused, naming why, and the largest
    config that is accepted fits."""
    leds = ["L%023d" % i for i in range(16)]
    buttons = ["B%023d" % i for i in range(8)]
    path = tmp_path / "max.conf"
    actions = 2 * len(buttons)
    path.write_text(max_config_text(leds, buttons, actions))
    r = check(ledd_binary, path)
    assert r.returncode == 1 and "more than one pipe write (4096): shorten" in r.stderr, r.stderr
    while r.returncode and actions > 0:
        actions -= 1
        path.write_text(max_config_text(leds, buttons, actions))
        r = check(ledd_binary, path)
    assert r.returncode == 0 and actions >= 4, (actions, r.stderr)
    workdir = tmp_path / "max"
    workdir.mkdir()
    state = "ledd-state 1\nseq 18446744073709551615\n" + "".join(
        "button %s presses 18446744073709551615 last_press_ms 9223372036854775807\n" % b for b in buttons)
    (workdir / "state").write_text(state)
    d = ledd_factory(config=path, workdir=workdir).start()
    c = d.client()
    for i in range(16):
        c.blink(i, 60000, 60000)
        c.frequency(i, 1000)
    rid = b"i" * 64
    lines = rawfifo.exchange(d.runtime_dir, rid + b" STATE\n")
    assert lines[0].startswith(rid + b" OK "), lines
    assert len(lines[0]) + 1 < os.sysconf("SC_PAGESIZE"), len(lines[0])
    assert len(lines[0]) + 1 > 4096 - 300, "the check refused a config with room to spare: %d" % len(lines[0])
    got = json.loads(lines[0].split(b" ", 2)[2])
    assert got["buttons"][1]["on_release"] == "blink %s 60000 60000" % leds[9]
    assert got["buttons"][7]["presses"] == 18446744073709551615, "the state file was not taken: %s" % d.read_log()
    assert [(l["brightness"], l["pwm_hz"]) for l in got["leds"]] == [(100, 1000)] * 16

"""Command payloads and state messages, without a broker (the live hostile test is in test_bridge.py)."""

import pytest

from ledd import defaults
from ledd.mqtt.topics import BadCommand, Topics, all_command, led_command, state_messages

BLINK = ("BLINK",) + defaults.MQTT_BLINK_MS


def parse_led_command(payload):
    """The one request of a one-verb command on LED red's topic, without the LED: ("BLINK", 500, 500)."""
    (request,) = led_command("red", payload).requests
    assert request[1] == "red"
    return (request[0],) + request[2:]


def parse_all_command(payload):
    return all_command(payload).requests


@pytest.mark.parametrize("payload,command", [
    (b"ON", ("ON",)), (b"on", ("ON",)), (b" OFF \n", ("OFF",)), (b"Toggle", ("TOGGLE",)),
    (b"BLINK", BLINK), (b"blink", BLINK), (b"solid", ("ON",)),
    (b'{"state": "off"}', ("OFF",)), (b'{"state":"TOGGLE"}', ("TOGGLE",)), (b'{"blink": true}', BLINK),
    (b'{"blink": {"on_ms": 20, "off_ms": 60000}}', ("BLINK", 20, 60000)),
    # Home Assistant's JSON light: "state": "ON" beside a key that lights the LED anyway.
    (b'{"state": "ON", "blink": true}', BLINK), (b'{"state":"ON","effect":"blink"}', BLINK),
    (b'{"effect": "Solid"}', ("ON",)), (b'{"state": "ON", "effect": "solid"}', ("ON",)),
])
def test_led_commands(payload, command):
    assert parse_led_command(payload) == command


@pytest.mark.parametrize("payload", [
    b"", b"ONN", b"\xc3\x28", b"ON\x07", b"x" * (defaults.MQTT_MAX_PAYLOAD + 1), b"{", b"[]", b"{}",
    b'{"state": "OFF", "blink": true}', b'{"state": "TOGGLE", "effect": "blink"}', b'{"effect": "strobe"}',
    b'{"effect": "blink", "blink": true}', b'{"state": "ON", "colour": "red"}', b'{"blink": {"on_ms": 19, "off_ms": 20}}', b'{"blink": {"on_ms": 20.0, "off_ms": 20}}',
    b'{"blink": {"on_ms": Infinity, "off_ms": 20}}', b'{"a": 1, "a": 2}', b'{"blink": "fast"}',
])
def test_bad_led_commands_say_why(payload):
    with pytest.raises(BadCommand) as info:
        parse_led_command(payload)
    assert str(info.value)


def test_all_commands():
    assert parse_all_command(b"on") == (("ALL", "ON"),)
    assert parse_all_command(b'{"state": "OFF"}') == (("ALL", "OFF"),)
    for bad in (b"TOGGLE", b'{"state": 1}', b"{}", b""):
        with pytest.raises(BadCommand):
            parse_all_command(bad)


def test_topic_layout():
    t = Topics("ledd/pi1")
    assert t.led_of_set_topic("ledd/pi1/led/red/set") == "red"
    assert t.led_of_set_topic("ledd/pi1/led//set") is None
    assert t.led_of_set_topic("ledd/pi2/led/red/set") is None
    state = {"leds": [{"id": 0, "name": "red", "gpio": 17, "on": True, "blink": {"on_ms": 20, "off_ms": 30}}],
             "buttons": [{"id": 0, "name": "b", "gpio": 22, "pressed": True, "presses": 7, "last_press_ms": 5}]}
    assert state_messages(t, state) == {
        "ledd/pi1/led/red/state": "ON", "ledd/pi1/led/red/effect": "blink",
        "ledd/pi1/led/red/json": '{"effect":"blink","state":"ON"}',  # a ledd without brightness: none
        "ledd/pi1/led/red/attributes": '{"blink":{"off_ms":30,"on_ms":20},"gpio":17,"id":0}',
        "ledd/pi1/button/b/state": "ON", "ledd/pi1/button/b/presses": "7",
        "ledd/pi1/button/b/attributes": '{"gpio":22,"id":0,"last_press_ms":5}',
    }


def test_state_topics_are_told_from_command_topics():
    t = Topics("ledd/pi1")
    assert all(t.is_state_topic(x) for x in ("ledd/pi1/led/red/state", "ledd/pi1/led/ALL/effect",
                                             "ledd/pi1/button/b/presses", "ledd/pi1/button/b/attributes"))
    assert not any(t.is_state_topic(x) for x in ("ledd/pi1/led/red/set", "ledd/pi1/all/set", "ledd/pi1/availability",
                                                 "ledd/pi1/led//state", "ledd/pi1/button/b/effect",
                                                 "ledd/pi2/led/red/state", "ledd/pi1/led/a/b/state"))
    assert "ledd/pi1/led/+/state" in t.state_filters() and "ledd/pi1/led/+/set" not in t.state_filters()


def test_a_new_verb_is_a_command_from_its_table_entry(monkeypatch):
    """An entry added to ledd.verbs.VERBS with an MQTT form is a command of the LED topics: its
    word, its JSON key with its numbers checked by their range, and no parser code of its own."""
    from ledd import verbs

    pulse = verbs.Verb("PULSE", [verbs.led(), verbs.Arg("depth", "uint", 0, 100, "%")],
                       mqtt=verbs.Mqtt("led", words=["PULSE"], field="pulse", default=[50]))
    monkeypatch.setattr(verbs, "VERBS", verbs.VERBS + (pulse,))
    assert parse_led_command(b"Pulse") == ("PULSE", 50)
    assert parse_led_command(b'{"pulse": true}') == ("PULSE", 50)
    assert parse_led_command(b'{"pulse": 30}') == ("PULSE", 30)
    assert parse_led_command(b'{"pulse": {"depth": 0}}') == ("PULSE", 0)
    assert parse_led_command(b"toggle") == ("TOGGLE",)
    for bad in (b'{"pulse": 101}', b'{"pulse": {"depth": 1, "x": 1}}', b'{"pulse": "deep"}', b'{"state": "PULSE"}'):
        with pytest.raises(BadCommand):
            parse_led_command(bad)
    with pytest.raises(BadCommand):
        parse_all_command(b"PULSE")


def test_a_verb_that_lights_the_led_takes_home_assistants_state_on_and_an_effect(monkeypatch):
    """Issue 23: HA's JSON light sends "state": "ON" beside its other keys, and effects by name. A table
    entry with ``lights`` and ``effect`` gets both; each key of a message runs its verb, in order."""
    from ledd import verbs

    pulse = verbs.Verb("PULSE", [verbs.led(), verbs.Arg("depth", "uint", 0, 100, "%")],
                       mqtt=verbs.Mqtt("led", field="depth", effect="pulse", default=[50], lights=True))
    monkeypatch.setattr(verbs, "VERBS", verbs.VERBS + (pulse,))
    assert led_command("red", b'{"state": "ON", "depth": 30}').requests == (("PULSE", "red", 30),)
    assert led_command("red", b'{"effect": "PULSE"}').requests == (("PULSE", "red", 50),)
    assert led_command("red", b'{"depth": 30, "effect": "blink"}').requests == (
        ("PULSE", "red", 30), ("BLINK", "red") + defaults.MQTT_BLINK_MS)
    assert str(led_command("red", b'{"effect": "blink", "depth": 1}')) == "BLINK red 500 500; PULSE red 1"
    for bad in (b'{"state": "OFF", "depth": 30}', b'{"state": "on", "depth": 30, "x": 1}',
                b'{"effect": "pulse", "depth": 3}', b'{"depth": 30.0}', b'{"state": "ON", "effect": "glow"}'):
        with pytest.raises(BadCommand) as info:
            led_command("red", bad)
        assert str(info.value)


class FakeLedd:
    def __init__(self, refuse=None):
        self.sent, self.refuse = [], refuse

    def request(self, *words):
        from ledd.errors import CommandError

        if words[0] == self.refuse:
            raise CommandError("refused", "badarg")
        self.sent.append(words)


def test_a_command_runs_its_requests_in_order_and_stops_at_a_refusal():
    from ledd.errors import CommandError

    two = led_command("red", b'{"effect": "solid", "blink": {"on_ms": 30, "off_ms": 40}}')
    ledd = FakeLedd()
    two.send(ledd)
    assert ledd.sent == [("ON", "red"), ("BLINK", "red", 30, 40)]
    ledd = FakeLedd(refuse="ON")
    with pytest.raises(CommandError):
        two.send(ledd)
    assert ledd.sent == []  # BLINK, after the refused ON, was not sent


@pytest.mark.parametrize("payload, requests", [
    (b'{"brightness": 30}', (("BRIGHTNESS", "red", 30),)),
    (b'{"state": "ON", "brightness": 1}', (("BRIGHTNESS", "red", 1),)),  # HA's slider at its lowest
    (b'{"state": "ON", "brightness": 0}', (("BRIGHTNESS", "red", 0),)),  # 0 is off, as everywhere
    (b'{"state": "ON", "brightness": 60, "effect": "blink"}', (("BRIGHTNESS", "red", 60), ("BLINK", "red", 500, 500))),
    (b'{"state": "OFF"}', (("OFF", "red"),)),
])
def test_home_assistant_json_light_commands(payload, requests):
    assert led_command("red", payload).requests == requests


@pytest.mark.parametrize("payload", [
    b'{"brightness": 30.0}', b'{"brightness": 30.5}', b'{"brightness": true}', b'{"brightness": "30"}',
    b'{"brightness": null}', b'{"brightness": 101}', b'{"brightness": -1}', b'{"brightness": {"percent": 300}}',
    b'{"state": "OFF", "brightness": 30}', b'{"state": "TOGGLE", "brightness": 30}', b'{"state": true, "brightness": 3}',
    b'{"state": "ON", "brightness": 30, "transition": 2}', b'{"state": "ON", "flash": 2}', b'{"pwm_hz": 300}',
])
def test_bad_brightness_commands_say_why(payload):
    with pytest.raises(BadCommand) as info:
        led_command("red", payload)
    assert str(info.value)


def test_all_brightness():
    assert all_command(b'{"brightness": 20}').requests == (("ALL_BRIGHTNESS", 20),)
    assert all_command(b'{"state": "ON", "brightness": 0}').requests == (("ALL_BRIGHTNESS", 0),)
    for bad in (b'{"brightness": 1.5}', b'{"state": "OFF", "brightness": 20}', b'{"effect": "blink"}'):
        with pytest.raises(BadCommand):
            all_command(bad)


def test_state_messages_carry_brightness_for_home_assistant():
    t = Topics("ledd/pi1")
    state = {"leds": [{"id": 0, "name": "red", "gpio": 17, "on": False, "blink": None, "level": 0,
                       "brightness": 30, "pwm_hz": 200}], "buttons": []}
    out = state_messages(t, state)
    assert out["ledd/pi1/led/red/json"] == '{"brightness":30,"effect":"solid","state":"OFF"}'  # kept while off
    assert out["ledd/pi1/led/red/brightness"] == "30"
    assert out["ledd/pi1/led/red/attributes"] == '{"blink":null,"gpio":17,"id":0,"pwm_hz":200}'
    assert {t.is_state_topic(topic) for topic in out} == {True}  # so a removed LED's are cleared too


def test_docs_command_table_lists_every_mqtt_form_of_the_table():
    """docs/mqtt.md's command table: every word, JSON key and effect the verb table gives the LED topics."""
    from pathlib import Path
    from ledd import verbs

    doc = (Path(__file__).resolve().parents[2] / "docs" / "mqtt.md").read_text()
    table = doc.split("Commands on `…/led/<led>/set`", 1)[1].split("\n\n", 2)[1]
    for verb in verbs.VERBS:
        form = verb.mqtt
        if form and form.topic == "led":
            for word in form.words:
                assert "`%s`" % word in table, word
            if form.field:
                assert '{"%s": ' % form.field in table, form.field
            if form.effect:
                assert '"%s"' % form.effect in table, form.effect

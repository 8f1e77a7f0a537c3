"""Command payloads and state messages, without a broker (the live hostile test is in test_bridge.py)."""

import pytest

from ledd import defaults
from ledd.mqtt.topics import AllCommand, BadCommand, Topics, parse_all_command, parse_led_command, state_messages

BLINK = ("BLINK",) + defaults.MQTT_BLINK_MS


@pytest.mark.parametrize("payload,command", [
    (b"ON", ("ON",)), (b"on", ("ON",)), (b" OFF \n", ("OFF",)), (b"Toggle", ("TOGGLE",)),
    (b"BLINK", BLINK), (b"blink", BLINK), (b"solid", ("ON",)),
    (b'{"state": "off"}', ("OFF",)), (b'{"state":"TOGGLE"}', ("TOGGLE",)), (b'{"blink": true}', BLINK),
    (b'{"blink": {"on_ms": 20, "off_ms": 60000}}', ("BLINK", 20, 60000)),
])
def test_led_commands(payload, command):
    assert parse_led_command(payload) == command


@pytest.mark.parametrize("payload", [
    b"", b"ONN", b"\xc3\x28", b"ON\x07", b"x" * (defaults.MQTT_MAX_PAYLOAD + 1), b"{", b"[]", b"{}",
    b'{"state": "ON", "blink": true}', b'{"blink": {"on_ms": 19, "off_ms": 20}}', b'{"blink": {"on_ms": 20.0, "off_ms": 20}}',
    b'{"blink": {"on_ms": Infinity, "off_ms": 20}}', b'{"a": 1, "a": 2}', b'{"blink": "fast"}',
])
def test_bad_led_commands_say_why(payload):
    with pytest.raises(BadCommand) as info:
        parse_led_command(payload)
    assert str(info.value)


def test_all_commands():
    assert parse_all_command(b"on") == AllCommand(True)
    assert parse_all_command(b'{"state": "OFF"}') == AllCommand(False)
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

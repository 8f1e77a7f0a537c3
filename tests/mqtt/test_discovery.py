"""Home Assistant discovery: payloads against HA's documented schema, stable ids, re-announce, removal."""

import json

import pytest

import ha_schema
from ledd.mqtt import config as mqtt_config
from ledd.mqtt import discovery
from ledd.mqtt.topics import LED_LEAVES, Topics
from mqttstack import retained
from waiting import wait_for

STATE = {
    "leds": [{"id": 0, "name": "red", "gpio": 17, "on": True, "blink": None, "level": 1},
             {"id": 1, "name": "green", "gpio": 27, "on": True, "blink": {"on_ms": 500, "off_ms": 500}, "level": 0}],
    "buttons": [{"id": 0, "name": "button", "gpio": 22, "pressed": False, "presses": 3, "last_press_ms": 1}],
    "seq": 17, "backend": "sim", "protocol": 2,
}


def make_configs(component="light", base="ledd/pi1", device_name="pi1", state=STATE):
    cfg = mqtt_config.parse("[broker]\nurl = mqtt://b\n[bridge]\ndevice_id = 0123abcd\ndevice_name = %s\n"
                            "[homeassistant]\nled_component = %s\n" % (device_name, component))
    dev = discovery.device(cfg, "Raspberry Pi 4B", "c03111", "ledd 0.1.0")
    return cfg, discovery.configs(cfg, Topics(base), state, dev, {"name": "ledd-mqtt", "sw_version": "0.1.0"})


@pytest.mark.parametrize("component", ["light", "switch"])
def test_every_payload_matches_home_assistants_schema(component):
    _, configs = make_configs(component)
    assert sorted(t.split("/")[1] for t in configs) == sorted([component, component, "binary_sensor", "sensor"])
    for topic, payload in configs.items():
        assert ha_schema.check(topic, json.loads(payload)) == []
    unique_ids = [json.loads(p)["unique_id"] for p in configs.values()]
    assert len(set(unique_ids)) == len(unique_ids)


def test_light_is_a_json_light_with_brightness_in_percent_and_blink_as_an_effect():
    _, configs = make_configs()
    light = json.loads(configs["homeassistant/light/ledd_0123abcd/gpio27/config"])
    assert light["schema"] == "json"
    assert light["command_topic"] == "ledd/pi1/led/green/set"
    assert light["state_topic"] == "ledd/pi1/led/green/json"
    assert (light["brightness"], light["brightness_scale"], light["supported_color_modes"]) == (True, 100, ["brightness"])
    assert light["effect"] is True and light["effect_list"] == ["solid", "blink"]
    assert light["flash"] is False and light["transition"] is False  # so HA never sends those keys
    assert light["device"]["model"] == "Raspberry Pi 4B" and light["device"]["sw_version"] == "ledd 0.1.0"


def test_schema_checker_catches_what_home_assistant_refuses():
    """The checker is not a rubber stamp: each of these is refused."""
    good = json.loads(make_configs()[1]["homeassistant/light/ledd_0123abcd/gpio17/config"])
    bad = [
        ("homeassistant/light/ledd_0123abcd/gpio17/config", dict(good, colour="red")),
        ("homeassistant/light/ledd_0123abcd/gpio17/config", dict(good, qos=3)),
        ("homeassistant/light/ledd_0123abcd/gpio17/config", {k: v for k, v in good.items() if k != "command_topic"}),
        ("homeassistant/light/ledd_0123abcd/gpio17/config", dict(good, state_topic="ledd/+/x")),
        ("homeassistant/light/ledd_0123abcd/gpio17/config", dict(good, brightness_scale=0)),
        ("homeassistant/light/ledd_0123abcd/gpio17/config", dict(good, supported_color_modes=["brightness", "rgb"])),
        ("homeassistant/light/ledd_0123abcd/gpio17/config", dict(good, effect=False)),
        ("homeassistant/light/ledd_0123abcd/gpio17/config", dict(good, payload_on="ON")),  # a key of the default schema
        ("homeassistant/light/ledd_0123abcd/gpio17/config", dict(good, schema="default", on_command_type="sometimes")),
        ("homeassistant/light/ledd_0123abcd/gpio17/config", dict(good, device={"name": "x"})),
        ("homeassistant/light/ledd 0123abcd/gpio17/config", good),
        ("homeassistant/sensor/x/y/config", {"name": "n", "state_class": "sum", "state_topic": "a"}),
    ]
    for topic, payload in bad:
        assert ha_schema.check(topic, payload), (topic, payload)


def test_ids_are_stable_across_renames_and_follow_the_gpio_line():
    """Renaming the LED, the Pi (base topic, device name) keeps discovery topics and unique ids."""
    _, before = make_configs()
    renamed_state = json.loads(json.dumps(STATE).replace('"red"', '"ruby"'))
    _, after = make_configs(base="ledd/kitchen", device_name="kitchen", state=renamed_state)
    assert set(before) == set(after)
    for topic in before:
        assert json.loads(before[topic])["unique_id"] == json.loads(after[topic])["unique_id"]
    light = json.loads(after["homeassistant/light/ledd_0123abcd/gpio17/config"])
    assert light["name"] == "ruby" and light["command_topic"] == "ledd/kitchen/led/ruby/set"


def test_device_id_defaults_to_the_machine_id(tmp_path, monkeypatch):
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setattr(mqtt_config.defaults, "MQTT_MACHINE_ID", str(machine_id))
    assert mqtt_config.parse("[broker]\nurl = mqtt://b\n").device_id == "0123456789abcdef"
    machine_id.write_text("not a machine id\n")  # then the host name
    assert mqtt_config.parse("[broker]\nurl = mqtt://b\n").device_id == mqtt_config.hostname()


def test_board_model_from_the_device_tree_and_revision(tmp_path):
    dt = tmp_path / "model"
    dt.write_bytes(b"Raspberry Pi Zero 2 W Rev 1.0\0")
    revision = tmp_path / "linux,revision"
    revision.write_bytes(bytes.fromhex("00902120"))
    none = str(tmp_path / "none")
    assert discovery.board_model("chardev", dt_model=str(dt), revision_paths=(str(revision), none)) \
        == ("Raspberry Pi Zero 2 W Rev 1.0", "902120")
    assert discovery.board_model("chardev", dt_model=none, revision_paths=(none, none)) == ("Raspberry Pi", None)
    assert discovery.board_model("sim")[0] == "simulated Pi (ledd sim backend)"


# -- live: the bridge and a broker ------------------------------------------------
def announced(broker, device_id="pi1"):
    return {t: json.loads(p) for t, p in retained(broker, "homeassistant/+/ledd_%s/+/config" % device_id).items() if p}


def test_published_configs_match_the_schema_and_reannounce_on_ha_birth(make_pi, probe, python):
    p = probe("homeassistant/#")
    pi = make_pi("pi1", python=python)
    wait_for(lambda: len(announced(pi.broker)) == 4, what="4 discovery configs")
    for topic, payload in announced(pi.broker).items():
        assert ha_schema.check(topic, payload) == []
        assert payload["availability_topic"] == pi.topic("availability")
    mark = p.mark()
    p.publish("homeassistant/status", "online")  # Home Assistant (re)started
    p.wait(lambda m: m[1].endswith("/gpio22_presses/config") and m[2], since=mark, what="re-announce")
    wait_for(lambda: len([m for m in p.messages[mark:] if m[1].endswith("/config") and m[2]]) == 4,
               what="all 4 configs again")
    pi.bridge.wait_log("Home Assistant is online")


def test_removing_an_led_from_ledds_config_removes_its_entity(make_pi, probe, tmp_path):
    three = tmp_path / "three.conf"
    three.write_text("[ledd]\nbackend = sim\n[led red]\ngpio = 17\n[led green]\ngpio = 27\n[led blue]\ngpio = 5\n"
                     "[button button]\ngpio = 22\n")
    pi = make_pi("pi1", ledd_config=three)
    wait_for(lambda: len(announced(pi.broker)) == 5, what="5 discovery configs")
    assert "homeassistant/light/ledd_pi1/gpio5/config" in announced(pi.broker)
    p = probe("homeassistant/#", "ledd/pi1/led/blue/#")
    # At run time: ledd reloads a config without blue.
    three.write_text(three.read_text().replace("[led blue]\ngpio = 5\n", ""))
    mark = p.mark()
    pi.ledd.signal(__import__("signal").SIGHUP)
    p.wait_for("homeassistant/light/ledd_pi1/gpio5/config", b"", since=mark)
    p.wait_for("ledd/pi1/led/blue/state", b"", since=mark)
    assert "homeassistant/light/ledd_pi1/gpio5/config" not in announced(pi.broker)
    assert not retained(pi.broker, "ledd/pi1/led/blue/#")
    # While the bridge is stopped: green goes too; the restarted bridge finds its retained config and clears it.
    pi.bridge.stop()
    three.write_text(three.read_text().replace("[led green]\ngpio = 27\n", ""))
    pi.ledd.signal(__import__("signal").SIGHUP)
    wait_for(lambda: [x["name"] for x in pi.state()["leds"]] == ["red"], what="ledd reloaded")
    pi.bridge.start()
    wait_for(lambda: set(announced(pi.broker)) == {"homeassistant/light/ledd_pi1/gpio17/config",
                                                     "homeassistant/binary_sensor/ledd_pi1/gpio22/config",
                                                     "homeassistant/sensor/ledd_pi1/gpio22_presses/config"},
               what="green's entity removed after a restart")
    # And its retained state, effect and attributes topics (docs/mqtt.md says they are cleared).
    wait_for(lambda: not retained(pi.broker, "ledd/pi1/led/green/#"), what="green's retained topics cleared")
    assert set(retained(pi.broker, "ledd/pi1/led/#")) == {"ledd/pi1/led/red/" + leaf for leaf in LED_LEAVES}


def test_switch_component_and_discovery_off(make_pi, broker, tmp_path):
    pi = make_pi("pi1")
    wait_for(lambda: len(announced(broker)) == 4, what="4 configs")
    pi.bridge.stop()
    text = pi.config.read_text()
    pi.config.write_text(text + "[homeassistant]\nled_component = switch\n")
    pi.bridge.start()
    wait_for(lambda: sorted(t.split("/")[1] for t in announced(broker)) == ["binary_sensor", "sensor", "switch", "switch"],
               what="lights replaced by switches")
    for topic, payload in announced(broker).items():
        assert ha_schema.check(topic, payload) == []
    pi.bridge.stop()
    pi.config.write_text(text + "[homeassistant]\ndiscovery = false\n")
    pi.bridge.start()
    wait_for(lambda: announced(broker) == {}, what="every entity removed with discovery off")
    assert retained(broker, "ledd/pi1/availability") == {"ledd/pi1/availability": b"online"}


def doc_automation_trigger():
    """The state trigger of docs/mqtt.md's Home Assistant automation: {key: value or list}."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "mqtt.md").read_text()
    block = re.search(r"```yaml\nautomation:\n(.*?)```", doc, re.S).group(1)
    trigger = re.search(r"triggers:\n(.*?)\n    actions:", block, re.S).group(1)
    found = {}
    for line in trigger.splitlines():
        key, _, value = line.strip().lstrip("- ").partition(":")
        value = value.strip()
        found[key] = [v.strip() for v in value[1:-1].split(",")] if value.startswith("[") else value
    return found


def fires(trigger, old, new):
    """Home Assistant's state trigger: fires on a state change, unless from/to an excluded state."""
    return old != new and old not in trigger.get("not_from", []) and new not in trigger.get("not_to", [])


def test_the_docs_automation_fires_on_presses_only():
    """Not when the sensor turns unavailable (Pi, ledd or bridge down) or comes back."""
    trigger = doc_automation_trigger()
    assert trigger["trigger"] == "state" and trigger["entity_id"].endswith("_button_presses")
    assert fires(trigger, "12", "13")
    for old, new in [("12", "unavailable"), ("unavailable", "12"), ("unknown", "0"), ("12", "unknown")]:
        assert not fires(trigger, old, new), (old, new)


def test_a_light_announced_by_an_older_bridge_gets_a_reload_hint(make_pi, probe):
    """Issue 23 changes the lights' schema; Home Assistant keeps the old entity's class until it reloads
    MQTT, so the bridge says so when it finds such a config of its own retained on the broker."""
    p = probe("homeassistant/#")
    old = {"name": "red", "unique_id": "ledd_pi1_gpio17", "command_topic": "ledd/pi1/led/red/set",
           "state_topic": "ledd/pi1/led/red/state", "payload_on": "ON", "payload_off": "OFF"}
    p.publish("homeassistant/light/ledd_pi1/gpio17/config", json.dumps(old), retain=True)
    pi = make_pi("pi1")
    pi.bridge.wait_log("homeassistant/light/ledd_pi1/gpio17/config was announced with the default light schema")
    wait_for(lambda: announced(pi.broker).get("homeassistant/light/ledd_pi1/gpio17/config", {}).get("schema") == "json",
             what="the JSON light announced over it")
    assert pi.bridge.read_log().count("light schema") == 1  # once: not for the bridge's own config, nor green's

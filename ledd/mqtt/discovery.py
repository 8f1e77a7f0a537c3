"""Home Assistant MQTT discovery: the config messages that make a Pi's LEDs and buttons appear.

One HA *device* per Pi (identifier ``ledd_<device_id>``, the machine id by
default), holding per LED a ``light`` (Home Assistant's JSON schema: on/off,
brightness in percent, blink as an effect) or a ``switch``, and per button a
``binary_sensor`` (pressed) and a ``sensor`` (press count). Discovery topics
and unique ids are built from the device id and the GPIO line, not from
names or the host name: renaming an LED, the Pi or the base topic keeps the
entity (and its history) in Home Assistant; moving an LED to another GPIO
makes it a new one.

    <prefix>/light/ledd_<device_id>/gpio17/config
    <prefix>/binary_sensor/ledd_<device_id>/gpio22/config
    <prefix>/sensor/ledd_<device_id>/gpio22_presses/config

Removing an entity is an empty retained config on its topic; the bridge does
that for every ``<prefix>/+/ledd_<device_id>/+/config`` it finds retained on
the broker and no longer announces (see :mod:`ledd.mqtt.bridge`).
"""

import json
import os

from ledd import board, defaults, verbs
from ledd.mqtt.topics import OFF, ON

#: The effects a light offers, from the verb table ("solid" is plain on, "blink" blinks).
EFFECTS = [verb.mqtt.effect for verb in verbs.VERBS if verb.mqtt and verb.mqtt.effect]
#: Home Assistant's light schema for ledd's lights: one JSON state and one JSON command (brightness, effect).
LIGHT_SCHEMA = "json"
#: Home Assistant's brightness_scale: ledd's brightness is a percentage, so HA's 0-255 maps onto 1-100.
BRIGHTNESS_SCALE = 100


def node_id(device_id):
    return "ledd_" + device_id


def config_filter(prefix, device_id):
    """Subscription that returns every discovery config this Pi ever announced."""
    return "%s/+/%s/+/config" % (prefix, node_id(device_id))


def board_model(backend, dt_model=defaults.MQTT_DT_MODEL, revision_paths=()):
    """(model, hw_version or None) of this Pi, for the HA device card.

    The model is the device tree's own string ("Raspberry Pi 3 Model B Rev 1.2");
    the hardware version is the board revision code the kernel reports (the
    same source ``ledd.board`` uses; no gpiozero needed). The sim backend says so.
    """
    if backend == "sim":
        return "simulated Pi (ledd sim backend)", None
    revision = board.read_revision(*revision_paths)
    try:
        with open(dt_model, "rb") as f:
            text = f.read().rstrip(b"\0\n").decode("utf-8", "replace")
        if text:
            return text, revision
    except OSError:
        pass
    return "Raspberry Pi", revision


def device(cfg, model, hw_version, sw_version):
    out = {
        "identifiers": [node_id(cfg.device_id)],
        "name": cfg.device_name,
        "manufacturer": "ledd",
        "model": model,
        "sw_version": sw_version,
    }
    if hw_version:
        out["hw_version"] = hw_version
    return out


def configs(cfg, topics, state, dev, origin):
    """{discovery topic: config JSON text} for every LED and button of ``state``."""
    prefix, node = cfg.discovery_prefix, node_id(cfg.device_id)
    common = {"availability_topic": topics.availability, "device": dev, "origin": origin, "qos": cfg.qos}
    out = {}
    for led in state.get("leds", []):
        name, gpio = led["name"], led["gpio"]
        entity = dict(common, name=name, unique_id="%s_gpio%d" % (node, gpio), command_topic=topics.led(name, "set"),
                      json_attributes_topic=topics.led(name, "attributes"), retain=False, optimistic=False)
        if cfg.led_component == "light":
            # The JSON schema: one state message with the brightness and the effect, and one command
            # ({"state": "ON", "brightness": 30, "effect": "blink"}) that sets them together.
            # No flash or transition: Home Assistant then never sends those keys.
            entity.update(schema=LIGHT_SCHEMA, state_topic=topics.led(name, "json"), brightness=True,
                          brightness_scale=BRIGHTNESS_SCALE, supported_color_modes=["brightness"],
                          effect=True, effect_list=EFFECTS, flash=False, transition=False)
        else:
            entity.update(state_topic=topics.led(name, "state"), payload_on=ON, payload_off=OFF,
                          state_on=ON, state_off=OFF, icon="mdi:led-on")
        out["%s/%s/%s/gpio%d/config" % (prefix, cfg.led_component, node, gpio)] = entity
    for button in state.get("buttons", []):
        name, gpio = button["name"], button["gpio"]
        out["%s/binary_sensor/%s/gpio%d/config" % (prefix, node, gpio)] = dict(
            common, name=name, unique_id="%s_gpio%d" % (node, gpio), state_topic=topics.button(name, "state"),
            json_attributes_topic=topics.button(name, "attributes"), payload_on=ON, payload_off=OFF)
        out["%s/sensor/%s/gpio%d_presses/config" % (prefix, node, gpio)] = dict(
            common, name="%s presses" % name, unique_id="%s_gpio%d_presses" % (node, gpio),
            state_topic=topics.button(name, "presses"), state_class="total_increasing", icon="mdi:counter")
    return {topic: json.dumps(payload, separators=(",", ":"), sort_keys=True) for topic, payload in out.items()}

"""Home Assistant's MQTT discovery schema, written down from its documentation, for the tests.

Sources (home-assistant.io): "MQTT" (discovery: topic format, the ``device``
and ``origin`` maps), "MQTT Light" (default and JSON schemas), "MQTT Switch", "MQTT
Binary sensor", "MQTT Sensor". Each component lists the configuration
variables it accepts, their types, the required ones and the allowed values
of the enumerations; Home Assistant rejects a discovery payload with an
unknown key or a wrong type (voluptuous, extra keys forbidden).

:func:`check` returns a list of problems (empty when the payload is valid).
"""

import re

DISCOVERY_TOPIC = re.compile(r"^(?P<prefix>.+)/(?P<component>[a-z_]+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?"
                             r"(?P<object_id>[a-zA-Z0-9_-]+)/config$")

STR, BOOL, INT, LIST, DICT = str, bool, int, list, dict


def _topic(value):
    return isinstance(value, str) and value != "" and "+" not in value and "#" not in value


def _qos(value):
    return type(value) is int and value in (0, 1, 2)


def _string_list(value):
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def _one_of(*allowed):
    return lambda value: value in allowed


def _positive_int(value):
    return type(value) is int and value >= 1


COLOR_MODES = ("onoff", "brightness", "color_temp", "hs", "xy", "rgb", "rgbw", "rgbww", "white")


def _color_modes(value):
    """A list of distinct color modes; ``onoff`` and ``brightness`` only alone (HA's valid_supported_color_modes)."""
    return (_string_list(value) and bool(value) and all(m in COLOR_MODES for m in value)
            and len(set(value)) == len(value) and (len(value) == 1 or not {"onoff", "brightness"} & set(value)))


#: Keys every MQTT entity platform accepts.
COMMON = {
    "availability": LIST, "availability_mode": _one_of("all", "any", "latest"), "availability_template": STR,
    "availability_topic": _topic, "device": DICT, "enabled_by_default": BOOL, "encoding": STR,
    "entity_category": _one_of("config", "diagnostic"), "entity_picture": STR, "icon": STR,
    "json_attributes_template": STR, "json_attributes_topic": _topic, "name": (STR, type(None)), "object_id": STR,
    "default_entity_id": STR, "payload_available": STR, "payload_not_available": STR, "qos": _qos, "unique_id": STR,
    "platform": _one_of("mqtt"),
    "origin": DICT,  # discovery only
}

COMPONENTS = {
    "light_json": {  # "MQTT Light", JSON schema: one JSON state message and one JSON command
        "required": ["command_topic"],
        "keys": {
            "schema": _one_of("json"), "command_topic": _topic, "state_topic": _topic, "optimistic": BOOL,
            "retain": BOOL, "brightness": BOOL, "brightness_scale": _positive_int, "color_temp_kelvin": BOOL,
            "effect": BOOL, "effect_list": _string_list, "flash": BOOL, "flash_time_long": _positive_int,
            "flash_time_short": _positive_int, "max_mireds": _positive_int, "min_mireds": _positive_int,
            "max_kelvin": _positive_int, "min_kelvin": _positive_int, "supported_color_modes": _color_modes,
            "transition": BOOL, "white_scale": _positive_int,
        },
    },
    "light": {
        "required": ["command_topic"],
        "keys": {
            "command_topic": _topic, "state_topic": _topic, "state_value_template": STR,
            "payload_on": STR, "payload_off": STR, "optimistic": BOOL, "retain": BOOL,
            "on_command_type": _one_of("first", "last", "brightness"), "schema": _one_of("basic", "default"),
            "effect_command_topic": _topic, "effect_command_template": STR, "effect_list": _string_list,
            "effect_state_topic": _topic, "effect_value_template": STR,
            "brightness_command_topic": _topic, "brightness_state_topic": _topic, "brightness_scale": INT,
            "supported_color_modes": _string_list,
        },
    },
    "switch": {
        "required": [],
        "keys": {
            "command_topic": _topic, "command_template": STR, "state_topic": _topic, "value_template": STR,
            "payload_on": STR, "payload_off": STR, "state_on": STR, "state_off": STR, "optimistic": BOOL,
            "retain": BOOL, "device_class": _one_of("outlet", "switch"),
        },
    },
    "binary_sensor": {
        "required": ["state_topic"],
        "keys": {
            "state_topic": _topic, "value_template": STR, "payload_on": STR, "payload_off": STR,
            "device_class": STR, "expire_after": INT, "force_update": BOOL, "off_delay": INT,
        },
    },
    "sensor": {
        "required": ["state_topic"],
        "keys": {
            "state_topic": _topic, "value_template": STR, "device_class": STR, "expire_after": INT,
            "force_update": BOOL, "last_reset_value_template": STR,
            "state_class": _one_of("measurement", "measurement_angle", "total", "total_increasing"),
            "suggested_display_precision": INT, "unit_of_measurement": STR, "options": _string_list,
        },
    },
}

DEVICE_KEYS = {
    "configuration_url": STR, "connections": LIST, "hw_version": STR, "identifiers": (STR, list),
    "manufacturer": STR, "model": STR, "model_id": STR, "name": STR, "serial_number": STR,
    "suggested_area": STR, "sw_version": STR, "via_device": STR,
}
ORIGIN_KEYS = {"name": STR, "sw_version": STR, "support_url": STR}


def _check_value(where, key, value, rule, problems):
    if isinstance(rule, type) or isinstance(rule, tuple):
        ok = isinstance(value, rule) and not (rule is INT and isinstance(value, bool))
    else:
        ok = rule(value)
    if not ok:
        problems.append("%s: %s has an invalid value %r" % (where, key, value))


def _check_map(where, mapping, schema, problems):
    for key, value in mapping.items():
        if key not in schema:
            problems.append("%s: unknown key %r" % (where, key))
        else:
            _check_value(where, key, value, schema[key], problems)


def check(topic, payload):
    """Problems of one discovery message (topic, decoded JSON payload); [] when Home Assistant accepts it."""
    problems = []
    m = DISCOVERY_TOPIC.match(topic)
    if not m:
        return ["%s: not <prefix>/<component>/[<node_id>/]<object_id>/config" % topic]
    component = m.group("component")
    if component not in COMPONENTS:
        return ["%s: component %r is not checked here" % (topic, component)]
    if component == "light" and payload.get("schema") == "json":
        component = "light_json"
    spec = COMPONENTS[component]
    schema = dict(COMMON, **spec["keys"])
    _check_map(topic, payload, schema, problems)
    for key in spec["required"]:
        if key not in payload:
            problems.append("%s: required key %r missing" % (topic, key))
    if "availability" in payload and "availability_topic" in payload:
        problems.append("%s: availability and availability_topic are mutually exclusive" % topic)
    device = payload.get("device")
    if isinstance(device, dict):
        _check_map(topic + " device", device, DEVICE_KEYS, problems)
        if not device.get("identifiers") and not device.get("connections"):
            problems.append("%s: device needs identifiers or connections" % topic)
        if "unique_id" not in payload:
            problems.append("%s: a device needs the entity's unique_id" % topic)
    origin = payload.get("origin")
    if isinstance(origin, dict):
        _check_map(topic + " origin", origin, ORIGIN_KEYS, problems)
        if "name" not in origin:
            problems.append("%s: origin needs a name" % topic)
    if component == "light" and "effect_list" in payload and "effect_command_topic" not in payload:
        problems.append("%s: effect_list without effect_command_topic" % topic)
    if component == "light_json" and "effect_list" in payload and payload.get("effect") is not True:
        problems.append("%s: effect_list without effect: true (the JSON schema offers no effect then)" % topic)
    if component == "light_json" and "brightness_scale" in payload and not (
            payload.get("brightness") is True or "brightness" in payload.get("supported_color_modes", [])):
        problems.append("%s: brightness_scale for a light without brightness" % topic)
    return problems

"""The bridge's topic layout, the state messages it publishes and the commands it accepts.

Everything lives under one base topic (``ledd/<hostname>`` by default), one per Pi::

    <base>/availability              online | offline            retained (offline is the will)
    <base>/led/<name>/state          ON | OFF                    retained
    <base>/led/<name>/effect         solid | blink               retained
    <base>/led/<name>/brightness     1-100 (percent, kept while off)  retained
    <base>/led/<name>/json           {"brightness":30,"effect":"solid","state":"ON"}  retained (HA's JSON light)
    <base>/led/<name>/attributes     {"id":0,"gpio":17,"blink":null|{"on_ms":..,"off_ms":..},"pwm_hz":200}
    <base>/button/<name>/state       ON | OFF (pressed)          retained
    <base>/button/<name>/presses     press count (integer)       retained
    <base>/button/<name>/attributes  {"id":0,"gpio":22,"last_press_ms":...}
    <base>/led/<name>/set            command: ON OFF TOGGLE BLINK SOLID, or JSON
    <base>/all/set                   command: ON OFF, or JSON

The commands are the MQTT forms of :mod:`ledd.verbs` (:func:`parse_command`).
Pure functions, no I/O: the bridge and the tests share them.
"""

import json

from ledd import defaults, verbs

ON, OFF = "ON", "OFF"
#: The retained topics of each LED and each button, under ``<base>/led/<name>/`` and ``<base>/button/<name>/``.
LED_LEAVES = ("state", "effect", "brightness", "json", "attributes")
BUTTON_LEAVES = ("state", "presses", "attributes")


class Topics:
    """Topic names under one base."""

    def __init__(self, base):
        self.base = base
        self.availability = base + "/availability"
        self.all_set = base + "/all/set"
        self.led_set_filter = base + "/led/+/set"

    def led(self, name, leaf):
        return "%s/led/%s/%s" % (self.base, name, leaf)

    def button(self, name, leaf):
        return "%s/button/%s/%s" % (self.base, name, leaf)

    def state_filters(self):
        """Filters matching every retained state topic of any LED or button (not the command topics)."""
        return [self.led("+", leaf) for leaf in LED_LEAVES] + [self.button("+", leaf) for leaf in BUTTON_LEAVES]

    def is_state_topic(self, topic):
        """Whether ``topic`` is one of an LED's or a button's retained state topics."""
        if not topic.startswith(self.base + "/"):
            return False
        parts = topic[len(self.base) + 1:].split("/")
        leaves = {"led": LED_LEAVES, "button": BUTTON_LEAVES}.get(parts[0], ())
        return len(parts) == 3 and bool(parts[1]) and parts[2] in leaves

    def led_of_set_topic(self, topic):
        """The LED name of ``<base>/led/<name>/set``, or None."""
        prefix = self.base + "/led/"
        if topic.startswith(prefix) and topic.endswith("/set"):
            name = topic[len(prefix):-len("/set")]
            if name and "/" not in name:
                return name
        return None


def _compact(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def light_state(led):
    """The LED as Home Assistant's JSON light reads it: ``{"brightness":30,"effect":"solid","state":"ON"}``.

    ``brightness`` is the LED's brightness in percent (discovery announces
    ``brightness_scale`` 100), kept while it is off; a ledd without brightness
    leaves it out.
    """
    out = {"state": ON if led.get("on") else OFF, "effect": "blink" if led.get("blink") else "solid"}
    if led.get("brightness") is not None:
        out["brightness"] = led["brightness"]
    return out


def state_messages(topics, state):
    """{topic: payload} of every retained state topic for one ledd state (a dict)."""
    out = {}
    for led in state.get("leds", []):
        name = led["name"]
        light = light_state(led)
        out[topics.led(name, "state")] = light["state"]
        out[topics.led(name, "effect")] = light["effect"]
        if "brightness" in light:
            out[topics.led(name, "brightness")] = str(light["brightness"])
        out[topics.led(name, "json")] = _compact(light)
        attributes = {"id": led.get("id"), "gpio": led.get("gpio"), "blink": led.get("blink")}
        if led.get("pwm_hz") is not None:
            attributes["pwm_hz"] = led["pwm_hz"]
        out[topics.led(name, "attributes")] = _compact(attributes)
    for button in state.get("buttons", []):
        name = button["name"]
        out[topics.button(name, "state")] = ON if button.get("pressed") else OFF
        out[topics.button(name, "presses")] = str(int(button.get("presses", 0)))
        out[topics.button(name, "attributes")] = _compact({"id": button.get("id"), "gpio": button.get("gpio"),
                                                           "last_press_ms": button.get("last_press_ms")})
    return out


# -- commands -------------------------------------------------------------------
class BadCommand(ValueError):
    """A command payload the bridge refuses; the message says why (it is logged)."""


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise BadCommand("a JSON key is given twice")
    return dict(pairs)


def _refuse_constant(name):
    raise BadCommand("%s is not JSON" % name)


def _decode(payload):
    if len(payload) > defaults.MQTT_MAX_PAYLOAD:
        raise BadCommand("payload longer than %d bytes" % defaults.MQTT_MAX_PAYLOAD)
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadCommand("payload is not UTF-8") from None
    if not text:
        raise BadCommand("empty payload")
    if any(ord(ch) < 32 for ch in text):
        raise BadCommand("payload contains control characters")
    return text


def _load_json(text):
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except BadCommand:
        raise
    except (ValueError, RecursionError) as err:
        raise BadCommand("invalid JSON: %s" % err) from None
    if not isinstance(value, dict) or not value:
        raise BadCommand('JSON must be an object with at least one key, e.g. {"state": "ON", "brightness": 30}')
    return value


def _or(items):
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _numbers(verb):
    return [arg for arg in verb.args if arg.kind == "uint"]


def _word_args(verb, word):
    """The arguments after the LED of a verb run by a plain word (or a JSON state or effect)."""
    default_numbers = iter(verb.mqtt.default)
    return tuple(word if arg.kind == "onoff" else next(default_numbers)
                 for arg in verb.args if arg.kind in ("onoff", "uint"))


def _field_args(verb, key, given):
    """The numbers of ``{key: true}`` (the defaults), ``{key: {name: N, ...}}`` or ``{key: N}``."""
    numbers = _numbers(verb)
    if given is True and verb.mqtt.default:
        return verb.mqtt.default
    if len(numbers) == 1 and not isinstance(given, dict):
        given = {numbers[0].name: given}
    names = [arg.name for arg in numbers]
    if not isinstance(given, dict) or set(given) != set(names):
        shape = "N" if len(names) == 1 else "{%s}" % ", ".join('"%s": N' % n for n in names)
        raise BadCommand('"%s" must be %s%s' % (key, "true or " if verb.mqtt.default else "", shape))
    for arg in numbers:
        value = given[arg.name]
        if type(value) is not int or not arg.min <= value <= arg.max:
            raise BadCommand("%s %s must be an integer from %d to %d" % (key, arg.name, arg.min, arg.max))
    return tuple(given[arg.name] for arg in numbers)


def _keyed_step(forms, key, given):
    """(verb, arguments) of one JSON key other than ``"state"``: an ``"effect"`` or a verb's field."""
    if key == "effect":
        effects = [verb.mqtt.effect for verb in forms if verb.mqtt.effect]
        for verb in forms:
            if effects and isinstance(given, str) and given.lower() == verb.mqtt.effect:
                return verb, _word_args(verb, verbs.ON)
        if effects:
            raise BadCommand('"effect" must be %s' % _or(['"%s"' % e for e in effects]))
    for verb in forms:
        if verb.mqtt.field == key:
            return verb, _field_args(verb, key, given)
    keys = ['"state"'] + ['"effect"'] * any(v.mqtt.effect for v in forms) + \
        ['"%s"' % v.mqtt.field for v in forms if v.mqtt.field]
    raise BadCommand("unknown JSON key %r (expected %s)" % (key[:40], _or(keys)))


def _state_step(forms, given):
    """(verb, arguments) of a JSON ``{"state": ...}`` alone."""
    for verb in forms:
        if isinstance(given, str) and given.upper() in verb.mqtt.state:
            return verb, _word_args(verb, given.upper())
    raise BadCommand('"state" must be %s' % _or(['"%s"' % w for v in forms for w in v.mqtt.state]))


def parse_command(topic, payload):
    """The steps, each (verb, its arguments after the LED), of a payload on ``<base>/<topic>/set``.

    The commands are the MQTT forms of ledd.verbs: plain words (any case), or a
    JSON object whose ``"state"``, ``"effect"`` and verb keys each run a verb, in
    the order given (``{"state": "ON", "brightness": 30, "effect": "blink"}``,
    Home Assistant's JSON light, is BRIGHTNESS then BLINK). Anything else
    raises :class:`BadCommand`, and nothing runs.
    """
    forms = [verb for verb in verbs.VERBS if verb.mqtt and verb.mqtt.topic == topic]
    text = _decode(payload)
    if not text.startswith("{"):
        word = text.upper()
        for verb in forms:
            if word in verb.mqtt.words:
                return [(verb, _word_args(verb, word))]
        raise BadCommand("unknown command %r (%s)" % (text[:40], _or([w for v in forms for w in v.mqtt.words] + ["JSON"])))
    obj = _load_json(text)
    steps = [_keyed_step(forms, key, given) for key, given in obj.items() if key != "state"]
    if not steps:
        return [_state_step(forms, obj["state"])]
    ran = [verb.name for verb, _ in steps]
    if len(set(ran)) != len(ran):
        raise BadCommand("two keys ask for %s" % _or(sorted(set(n for n in ran if ran.count(n) > 1))))
    if "state" in obj:
        # Home Assistant's JSON light: {"state": "ON", "brightness": 30}. "ON" is the lit state those
        # keys set anyway; any other state contradicts them.
        dark = [key for key, (verb, _) in zip([k for k in obj if k != "state"], steps) if not verb.mqtt.lights]
        state = obj["state"]
        if not isinstance(state, str) or state.upper() != verbs.ON or dark:
            raise BadCommand('"state" may only be "ON" beside %s' % _or(['"%s"' % k for k in obj if k != "state"]))
    return steps


class Command:
    """What one command message asks of ledd: requests run in order, each a verb and its words.

    ``led`` is the LED of ``<base>/led/<name>/set`` (even one named ``ALL``), or
    None on ``<base>/all/set``; it fills each verb's ``led`` argument.
    """

    __slots__ = ("requests",)

    def __init__(self, steps, led=None):
        self.requests = tuple(self._request(verb, args, led) for verb, args in steps)

    @staticmethod
    def _request(verb, args, led):
        """``("BLINK", "red", 500, 500)``: the verb, the LED where it takes one, then its other arguments."""
        rest = iter(args)
        return (verb.name,) + tuple(led if arg.kind == "led" else next(rest) for arg in verb.args)

    def send(self, client):
        """Run each request through a :class:`ledd.client.Client`, in order; a refusal stops the rest."""
        for request in self.requests:
            client.request(*request)

    def __str__(self):
        return "; ".join(" ".join(str(word) for word in request) for request in self.requests)

    def __eq__(self, other):
        return isinstance(other, Command) and other.requests == self.requests

    __hash__ = None


def led_command(led, payload):
    """The :class:`Command` of a payload on LED ``led``'s ``set`` topic.

    Plain words (any case): ON, OFF, TOGGLE, BLINK (default periods) and
    SOLID (= ON: Home Assistant's effect names arrive on the same topic).
    JSON: ``{"state": "ON"|"OFF"|"TOGGLE"}``, ``{"blink": {"on_ms": 200, "off_ms": 800}}``,
    ``{"blink": true}``, ``{"brightness": 30}``, ``{"effect": "blink"}``, and
    those with ``"state": "ON"`` beside them (Home Assistant's JSON light).
    Anything else raises :class:`BadCommand`.
    """
    return Command(parse_command("led", payload), led)


def all_command(payload):
    """The :class:`Command` of a payload on ``<base>/all/set``: ``ON``/``OFF``, ``{"state": ...}``, ``{"brightness": N}``."""
    return Command(parse_command("all", payload))

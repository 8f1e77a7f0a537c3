"""The bridge's topic layout, the state messages it publishes and the commands it accepts.

Everything lives under one base topic (``ledd/<hostname>`` by default), one per Pi::

    <base>/availability              online | offline            retained (offline is the will)
    <base>/led/<name>/state          ON | OFF                    retained
    <base>/led/<name>/effect         solid | blink               retained
    <base>/led/<name>/attributes     {"id":0,"gpio":17,"blink":null|{"on_ms":..,"off_ms":..}}
    <base>/button/<name>/state       ON | OFF (pressed)          retained
    <base>/button/<name>/presses     press count (integer)       retained
    <base>/button/<name>/attributes  {"id":0,"gpio":22,"last_press_ms":...}
    <base>/led/<name>/set            command: ON OFF TOGGLE BLINK SOLID, or JSON
    <base>/all/set                   command: ON OFF, or JSON

Pure functions, no I/O: the bridge and the tests share them.
"""

import json

from ledd import defaults, verbs

ON, OFF = "ON", "OFF"
#: The retained topics of each LED and each button, under ``<base>/led/<name>/`` and ``<base>/button/<name>/``.
LED_LEAVES = ("state", "effect", "attributes")
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


def state_messages(topics, state):
    """{topic: payload} of every retained state topic for one ledd state (a dict)."""
    out = {}
    for led in state.get("leds", []):
        name = led["name"]
        out[topics.led(name, "state")] = ON if led.get("on") else OFF
        out[topics.led(name, "effect")] = "blink" if led.get("blink") else "solid"
        out[topics.led(name, "attributes")] = _compact({"id": led.get("id"), "gpio": led.get("gpio"),
                                                        "blink": led.get("blink")})
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
    if not isinstance(value, dict) or len(value) != 1:
        raise BadCommand('JSON must be an object with one key: {"state": ...} or {"blink": ...}')
    return value


def _or(items):
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _numbers(verb):
    return [arg for arg in verb.args if arg.kind == "uint"]


def _word_args(verb, word):
    """The arguments after the LED of a verb run by a plain word (or a JSON state)."""
    default_numbers = iter(verb.mqtt.default)
    return tuple(word if arg.kind == "onoff" else next(default_numbers)
                 for arg in verb.args if arg.kind in ("onoff", "uint"))


def _field_args(verb, key, given):
    """The numbers of ``{key: true}`` (the defaults), ``{key: {name: N, ...}}`` or ``{key: N}``."""
    numbers = _numbers(verb)
    if given is True:
        return verb.mqtt.default
    if len(numbers) == 1 and not isinstance(given, dict):
        given = {numbers[0].name: given}
    names = [arg.name for arg in numbers]
    if not isinstance(given, dict) or set(given) != set(names):
        shape = "N" if len(names) == 1 else "{%s}" % ", ".join('"%s": N' % n for n in names)
        raise BadCommand('"%s" must be true or %s' % (key, shape))
    for arg in numbers:
        value = given[arg.name]
        if type(value) is not int or not arg.min <= value <= arg.max:
            raise BadCommand("%s %s must be an integer from %d to %d" % (key, arg.name, arg.min, arg.max))
    return tuple(given[arg.name] for arg in numbers)


def parse_command(topic, payload):
    """(verb, its arguments after the LED) for a payload on ``<base>/<topic>/set``.

    The commands are the MQTT forms of ledd.verbs: plain words (any case), a
    JSON ``{"state": ...}``, or a JSON key of a verb with numbers. Anything
    else raises :class:`BadCommand`.
    """
    forms = [verb for verb in verbs.VERBS if verb.mqtt and verb.mqtt.topic == topic]
    text = _decode(payload)
    if not text.startswith("{"):
        word = text.upper()
        for verb in forms:
            if word in verb.mqtt.words:
                return verb, _word_args(verb, word)
        raise BadCommand("unknown command %r (%s)" % (text[:40], _or([w for v in forms for w in v.mqtt.words] + ["JSON"])))
    (key, given), = _load_json(text).items()
    if key == "state":
        for verb in forms:
            if isinstance(given, str) and given.upper() in verb.mqtt.state:
                return verb, _word_args(verb, given.upper())
        raise BadCommand('"state" must be %s' % _or(['"%s"' % w for v in forms for w in v.mqtt.state]))
    for verb in forms:
        if verb.mqtt.field == key:
            return verb, _field_args(verb, key, given)
    fields = ['"state"'] + ['"%s"' % v.mqtt.field for v in forms if v.mqtt.field]
    raise BadCommand("unknown JSON key %r (expected %s)" % (key[:40], _or(fields)))


def parse_led_command(payload):
    """A command tuple for one LED from its ``set`` topic: ("ON",), ("TOGGLE",), ("BLINK", on_ms, off_ms)...

    Plain words (any case): ON, OFF, TOGGLE, BLINK (default periods) and
    SOLID (= ON: Home Assistant's effect names arrive on the same topic).
    JSON: ``{"state": "ON"|"OFF"|"TOGGLE"}``, ``{"blink": {"on_ms": 200, "off_ms": 800}}``
    or ``{"blink": true}``. Anything else raises :class:`BadCommand`.
    """
    verb, args = parse_command("led", payload)
    return (verb.name,) + args


class LedCommand:
    """A command for one LED, from its ``<base>/led/<name>/set`` topic (even an LED named ``ALL``)."""

    __slots__ = ("led", "verb", "args")

    def __init__(self, led, verb, *args):
        self.led, self.verb, self.args = led, verb, args

    def send(self, client):
        """Run it through a :class:`ledd.client.Client`; returns the reply payload."""
        return client.request(self.verb, self.led, *self.args)

    def __str__(self):
        return " ".join([self.verb, self.led] + [str(a) for a in self.args])


class AllCommand:
    """Every LED on or off, from ``<base>/all/set``."""

    __slots__ = ("on",)

    def __init__(self, on):
        self.on = bool(on)

    def send(self, client):
        return client.all(self.on)

    def __str__(self):
        return "ALL " + ("ON" if self.on else "OFF")

    def __eq__(self, other):
        return isinstance(other, AllCommand) and other.on == self.on

    __hash__ = None


def parse_all_command(payload):
    """An :class:`AllCommand` from ``ON``/``OFF`` or ``{"state": "ON"|"OFF"}``."""
    verb, args = parse_command("all", payload)
    return AllCommand(args == ("ON",))

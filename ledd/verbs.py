"""ledd's verbs, once for every Python layer: a new verb is one entry in :data:`VERBS`.

Each :class:`Verb` says what ledd takes, exactly as ledd's own table
(``verbs[]`` in cdaemon/src/protocol.c) reports it in ``HELLO``
(tests/daemon/test_verbs.py checks that :func:`report` equals it), and how each
layer spells it:

- ``method``: the method of :class:`ledd.client.Client` and
  :class:`ledd.remote.RemoteClient` (:class:`Method`), which both get it from
  here (:func:`add_methods`) with its docstring and signature;
- ``http``: the web API's request (:class:`Http`), docs/api.md;
- ``cli``: ledctl's subcommand (:class:`Cli`), docs/cli.md;
- ``mqtt``: the MQTT bridge's command payloads (:class:`Mqtt`), docs/mqtt.md.

A layer a verb has no form in leaves it out (``WATCH`` is a stream, not a call;
``HELLO`` is the FIFO protocol's own). Like :mod:`ledd.client`, which the CGI
scripts load on every request, this module imports nothing but
:mod:`ledd.defaults` and builds its table in microseconds.
"""

from ledd import defaults

__all__ = ["Arg", "Verb", "Method", "Http", "Cli", "Mqtt", "VERBS", "BY_NAME", "report", "parse_action",
           "add_methods"]

ON, OFF = "ON", "OFF"


class Arg:
    """One argument of a verb: its name and kind (``led``, ``button``, ``uint``, ``onoff``).

    A ``uint`` has a range and a unit; an ``onoff`` is ``ON`` or ``OFF`` on the
    wire and ``True`` or ``False`` in Python.
    """

    __slots__ = ("name", "kind", "min", "max", "unit")

    def __init__(self, name, kind, min=None, max=None, unit=None):
        self.name, self.kind, self.min, self.max, self.unit = name, kind, min, max, unit

    def report(self):
        """This argument as ledd's ``HELLO`` reports it."""
        out = {"name": self.name, "kind": self.kind}
        if self.kind == "uint":
            out.update(min=self.min, max=self.max, unit=self.unit)
        elif self.kind == "onoff":
            out["values"] = [ON, OFF]
        return out

    def word(self, value):
        """The request word for a Python value: a number as decimal, a truth value as ON/OFF."""
        if self.kind == "uint":
            return int(value)
        if self.kind == "onoff":
            return ON if value else OFF
        return value  # an index or a name: ledd checks it


def led():
    return Arg("led", "led")


def button():
    return Arg("button", "button")


def period(name):
    """A blink period in ms, the range ledd accepts."""
    return Arg(name, "uint", defaults.BLINK_MIN_MS, defaults.BLINK_MAX_MS, "ms")


def percent():
    """A brightness in percent: 0 is off, 1-100 how bright the LED is lit."""
    return Arg("percent", "uint", 0, defaults.BRIGHTNESS_MAX, "%")


def hertz():
    """A PWM frequency in Hz, the range ledd accepts."""
    return Arg("hz", "uint", defaults.PWM_HZ_MIN, defaults.PWM_HZ_MAX, "Hz")


class Method:
    """A client method: its name, its parameters (the verb's argument names unless given) and docstring."""

    __slots__ = ("name", "params", "doc")

    def __init__(self, name, doc, params=None):
        self.name, self.doc, self.params = name, doc, params


class Http:
    """The web API's request for a verb: ``POST /api/<path>`` with a one-field JSON body, or a GET.

    ``path`` may name the verb's LED or button as ``<led>`` or ``<button>`` (an
    id). The body is ``{field: value}``: ``value`` if given, else the verb's
    other arguments: an ``onoff`` as a JSON boolean, numbers as an object of
    them by name (``{"blink": {"on_ms": 100, "off_ms": 900}}``), or, with
    ``scalar``, the verb's one other argument as the value itself
    (``{"brightness": 30}``). No ``field`` means a GET.
    """

    __slots__ = ("path", "field", "value", "scalar")

    def __init__(self, path, field=None, value=None, scalar=False):
        self.path, self.field, self.value, self.scalar = path, field, value, scalar

    @property
    def method(self):
        return "POST" if self.field else "GET"

    def target(self, verb):
        """The argument named in the path (``<led>``), or None."""
        for arg in verb.args:
            if "<%s>" % arg.name in self.path:
                return arg
        return None

    def rest(self, verb):
        """The verb's arguments the body carries: all but the one the path names."""
        target = self.target(verb)
        return [a for a in verb.args if a is not target]

    def body(self, verb, values):
        """The JSON body (a dict, or None for a GET) for ``values``, the verb's arguments by name."""
        if not self.field:
            return None
        if self.value is not None:
            return {self.field: self.value}
        rest = self.rest(verb)
        if len(rest) == 1 and rest[0].kind == "onoff":
            return {self.field: bool(values[rest[0].name])}
        if self.scalar:
            return {self.field: int(values[rest[0].name])}
        return {self.field: {a.name: int(values[a.name]) for a in rest}}


class Cli:
    """ledctl's subcommand for a verb: its name, help line and aliases."""

    __slots__ = ("command", "help", "aliases")

    def __init__(self, command, help, aliases=()):
        self.command, self.help, self.aliases = command, help, tuple(aliases)


class Mqtt:
    """The MQTT bridge's command for a verb (docs/mqtt.md), on ``<base>/<topic>/set``.

    ``topic`` is ``led`` (``<base>/led/<name>/set``: that LED is the verb's LED)
    or ``all``. A plain payload (any case) runs the verb when it is one of its
    ``words``; for an on/off argument the word is its value. A JSON object runs
    one verb per key, in the order given:

    - ``"state"``: its value is one of the verb's ``state`` values;
    - ``"effect"``: its value is the verb's ``effect`` (Home Assistant's effect
      names, any case);
    - ``field``: its value is ``true`` (the ``default`` numbers) or the verb's
      numbers: an object of them by name, or the number itself when there is one.

    Home Assistant's JSON light sends ``"state": "ON"`` beside the other keys
    (``{"state": "ON", "brightness": 30}``): a verb that ``lights`` the LED
    (leaves it on, or sets how it is lit) takes that ``"state"`` as part of its
    own key, and it runs nothing of its own.
    """

    __slots__ = ("topic", "words", "state", "field", "default", "effect", "lights")

    def __init__(self, topic, words=(), state=(), field=None, default=(), effect=None, lights=False):
        self.topic, self.words, self.state = topic, tuple(words), tuple(state)
        self.field, self.default, self.effect, self.lights = field, tuple(default), effect, lights


class Verb:
    """One verb: ledd's name for it, its arguments, whether a button action may run it, and its forms."""

    __slots__ = ("name", "args", "action", "method", "http", "cli", "mqtt")

    def __init__(self, name, args=(), action=False, method=None, http=None, cli=None, mqtt=None):
        self.name, self.args, self.action = name, tuple(args), action
        self.method, self.http, self.cli, self.mqtt = method, http, cli, mqtt

    def report(self):
        """This verb as ledd's ``HELLO`` reports it."""
        return {"name": self.name, "args": [a.report() for a in self.args], "action": self.action}

    def params(self):
        """The Python parameter names of its client method."""
        return tuple(self.method.params or (a.name for a in self.args))

    def words(self, values):
        """The request's words after the verb, for Python values given by parameter order."""
        return [arg.word(value) for arg, value in zip(self.args, values)]


#: ledd's verbs, in the order of its own table (and HELLO's report).
VERBS = (
    Verb("HELLO", method=Method("hello", "Protocol version, daemon version, backend, buttons and verb table.")),
    Verb("STATE",
         method=Method("state", "The whole state: LEDs, buttons, seq, backend."),
         http=Http("state"),
         cli=Cli("status", "show every LED and button", aliases=["state"])),
    Verb("ON", [led()], action=True,
         method=Method("on", "Switch LED ``led`` (index or name) on; returns the new state."),
         http=Http("leds/<led>", "on", True),
         cli=Cli("on", "switch LED N on"),
         mqtt=Mqtt("led", words=["ON", "SOLID"], state=["ON"], effect="solid", lights=True)),  # SOLID: HA's effect
    Verb("OFF", [led()], action=True,
         method=Method("off", "Switch LED ``led`` (index or name) off; returns the new state."),
         http=Http("leds/<led>", "on", False),
         cli=Cli("off", "switch LED N off"),
         mqtt=Mqtt("led", words=["OFF"], state=["OFF"])),
    Verb("TOGGLE", [led()], action=True,
         method=Method("toggle", "Toggle LED ``led`` (index or name); returns the new state."),
         http=Http("leds/<led>", "toggle", True),
         cli=Cli("toggle", "toggle LED N"),
         mqtt=Mqtt("led", words=["TOGGLE"], state=["TOGGLE"])),
    Verb("BLINK", [led(), period("on_ms"), period("off_ms")], action=True,
         method=Method("blink", "Blink LED ``led``: ``on_ms`` lit, ``off_ms`` dark (%d-%d ms each); "
                                "returns the new state." % (defaults.BLINK_MIN_MS, defaults.BLINK_MAX_MS)),
         http=Http("leds/<led>", "blink"),
         cli=Cli("blink", "blink LED N: ON_MS lit, OFF_MS dark (each %d-%d)"
                 % (defaults.BLINK_MIN_MS, defaults.BLINK_MAX_MS)),
         mqtt=Mqtt("led", words=["BLINK"], field="blink", default=defaults.MQTT_BLINK_MS, effect="blink",
                   lights=True)),
    Verb("ALL", [Arg("state", "onoff")], action=True,
         method=Method("all", "Switch every LED on (``True``) or off; returns the new state.", params=["on"]),
         http=Http("leds", "on"),
         cli=Cli("all", "switch every LED on or off"),
         mqtt=Mqtt("all", words=[ON, OFF], state=[ON, OFF])),
    Verb("BRIGHTNESS", [led(), percent()], action=True,
         method=Method("brightness", "Set LED ``led``'s brightness to ``percent`` (1-%d) and light it if it is "
                                     "off; a blinking LED blinks on at it. 0 switches it off and keeps its "
                                     "brightness. Returns the new state." % defaults.BRIGHTNESS_MAX),
         http=Http("leds/<led>", "brightness", scalar=True),
         cli=Cli("brightness", "dim LED N: PERCENT 1-100 lights it at that brightness, 0 switches it off"),
         mqtt=Mqtt("led", field="brightness", lights=True)),
    Verb("ALL_BRIGHTNESS", [percent()], action=True,
         method=Method("all_brightness", "``brightness(led, percent)`` for every LED, all or none; "
                                         "returns the new state."),
         http=Http("leds", "brightness", scalar=True),
         cli=Cli("all-brightness", "dim every LED (all or none): PERCENT 1-100, 0 switches them off"),
         mqtt=Mqtt("all", field="brightness", lights=True)),
    Verb("FREQUENCY", [led(), hertz()],
         method=Method("frequency", "Set LED ``led``'s PWM frequency while dimmed to ``hz`` (%d-%d Hz); "
                                    "returns the new state." % (defaults.PWM_HZ_MIN, defaults.PWM_HZ_MAX)),
         http=Http("leds/<led>", "pwm_hz", scalar=True),
         cli=Cli("frequency", "set LED N's PWM frequency while it is dimmed")),
    Verb("PRESS", [button()],
         method=Method("press", "Press simulated button ``button`` (sim backend only, else "
                                "CommandError 'notsupported'); returns the new state."),
         http=Http("buttons/<button>", "pressed", True),
         cli=Cli("press", "press simulated button N (sim backend only)")),
    Verb("RELEASE", [button()],
         method=Method("release", "Release simulated button ``button`` (sim backend only); returns the new state."),
         http=Http("buttons/<button>", "pressed", False),
         cli=Cli("release", "release simulated button N (sim backend only)")),
    Verb("WATCH"),  # a stream: Client.watch() and ``ledctl watch`` are written by hand
)


def report():
    """The whole table as ledd's ``HELLO`` reports its own (``"verbs"``)."""
    return [verb.report() for verb in VERBS]


#: The verbs by ledd's name for them.
BY_NAME = {verb.name: verb for verb in VERBS}


def parse_action(text):
    """A button action (``"blink red 100 250"``, as ledd reports it) as data: ``{"text": text,
    "verb": "BLINK", "args": {"led": "red", "on_ms": 100, "off_ms": 250}}``, the arguments by their
    names in this table (numbers as numbers, an on/off as a boolean, an LED as ledd wrote it).

    An action is a request without its id, in ledd's own grammar (docs/config.md). Text this table
    cannot read (a newer ledd's verb) gives ``verb`` None and no ``args``: show ``text`` instead.
    None for no action.
    """
    if text is None:
        return None
    words = text.split()
    verb = BY_NAME.get(words[0].upper()) if words else None
    if verb is None or not verb.action or len(words) - 1 != len(verb.args):
        return {"text": text, "verb": None, "args": None}
    args = {}
    for arg, word in zip(verb.args, words[1:]):
        if arg.kind == "uint":
            if not word.isdigit():
                return {"text": text, "verb": None, "args": None}
            args[arg.name] = int(word)
        elif arg.kind == "onoff":
            args[arg.name] = word.upper() == ON
        else:
            args[arg.name] = word
    return {"text": text, "verb": verb.name, "args": args}


# -- client methods from the table ---------------------------------------------------

_BoundMethod = type(Arg("probe", "led").report)  # types.MethodType, without importing types


class VerbMethod:
    """A client method made from a verb's entry: ``client.blink(led, on_ms, off_ms)``.

    Calling it checks the arguments as Python would for a written-out method
    (by position or by name, the count exact), then hands the verb and the
    values, in order, to the client's ``_run_verb``.
    """

    def __init__(self, verb):
        self.verb = verb
        self.params = verb.params()
        self.__name__ = self.__qualname__ = verb.method.name
        self.__doc__ = verb.method.doc

    def __set_name__(self, owner, name):
        self.__qualname__ = "%s.%s" % (owner.__qualname__, name)

    def __get__(self, client, owner=None):
        return self if client is None else _BoundMethod(self, client)

    def __call__(self, client, *args, **kwargs):
        return client._run_verb(self.verb, self._bind(args, kwargs))

    def _bind(self, args, kwargs):
        name, params = self.__name__, self.params
        if len(args) > len(params):
            raise TypeError("%s() takes %d arguments but %d were given" % (name, len(params), len(args)))
        values = list(args)
        for param in params[len(args):]:
            if param not in kwargs:
                raise TypeError("%s() missing required argument: %r" % (name, param))
            values.append(kwargs.pop(param))
        if kwargs:
            raise TypeError("%s() got an unexpected keyword argument %r" % (name, next(iter(kwargs))))
        return values

    @property
    def __signature__(self):
        """``(self, led, on_ms, off_ms)`` for help() and inspect (inspect is loaded only then)."""
        import inspect

        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Signature([inspect.Parameter(p, kind) for p in ("self",) + self.params])


def add_methods(cls, usable=lambda verb: True):
    """Give ``cls`` a method for every verb that has one and that ``usable(verb)`` accepts.

    The class runs a verb in ``_run_verb(verb, values)``.
    """
    for verb in VERBS:
        if verb.method and usable(verb):
            method = VerbMethod(verb)
            setattr(cls, verb.method.name, method)
            method.__set_name__(cls, verb.method.name)
    return cls

""":class:`LeddPin`: one of ledd's lines as gpiozero sees a pin, and how gpiozero's blinks map onto ledd's.

Writes are ledd's verbs, called through the factory (``factory.ledd.on(name)``);
reads come from the factory's cache. A pin is digital (``LED``: ledd's on and
off) until a device gives it a PWM frequency (``PWMLED``, ``RGBLED``): then its
state is a duty cycle 0.0-1.0, which is ledd's brightness in percent, and its
frequency is ledd's PWM frequency for that LED.

gpiozero blinks in a thread of its own (a ``GPIOThread`` running the device's
``_blink_device``): the first write of a blink that ledd can time (one LED,
forever, no fades, periods in ledd's range) becomes ledd's blink and the
thread's later writes are dropped; any other blink (a count, fades,
``pulse()``, an ``RGBLED``'s colours) stays gpiozero's, one write per step.
"""

import threading

from gpiozero.exc import PinFixedPull, PinInvalidState
from gpiozero.pins.pi import PiPin

from ledd import defaults
from ledd.gpiozero_factory.commands import LeddVerbs
from ledd.gpiozero_factory.errors import LeddDown, PinFixedBounce, PinFixedFunction, PinFrequencyOutOfRange

__all__ = ["LeddPin", "button_level"]

#: ledd's numbers for PWM, from its verb table: brightness in percent (its
#: maximum is full on), frequency in Hz within ledd's range.
PERCENT = LeddVerbs.brightness.verb.args[-1]
HZ = LeddVerbs.frequency.verb.args[-1]


def button_level(button, settings):
    """The electrical level of a button line: low when pressed, unless it is active high."""
    active_low = True if settings is None else settings["active_low"]
    return int(button["pressed"] != active_low)


class LeddPin(PiPin):
    """One of ledd's lines, seen as a gpiozero pin.

    An LED's state is ledd's ``on`` (true while blinking too), or with PWM
    its brightness while on (0.0 while off); a button's state is its line
    level (low when pressed, for an active-low button).
    """

    def __init__(self, factory, spec):
        super().__init__(factory, spec)
        self.gpio = self._number
        self._edges = "both"
        self._pwm = False  # a device set a frequency: the state is a duty cycle
        self._blink_thread = None
        # The device whose blink ledd runs, held while it does: in
        # ``LED(27).blink(...)`` nothing else holds it but its own blink
        # thread, which would then collect it, and gpiozero's close() would
        # try to join that very thread ("cannot join current thread").
        self._blinking_device = None
        # A new device starts from ledd's state as it is now, even if another
        # client changed it a moment ago and its event is still on the way.
        factory.ledd.state()

    # -- what ledd says about this line --------------------------------------
    @property
    def kind(self):
        return self._factory.line(self.gpio)[0]

    @property
    def ledd_object(self):
        return self._factory.line(self.gpio)[1]

    def _describe(self):
        kind, obj = self._factory.line(self.gpio)
        return "GPIO%d is %s %r in %s" % (self.gpio, "LED" if kind == "led" else "button", obj["name"],
                                          self._factory.config_hint())

    def _led_name(self, doing):
        """The name of this pin's LED; a button raises PinFixedFunction saying what was asked."""
        kind, obj = self._factory.line(self.gpio)
        if kind != "led":
            raise PinFixedFunction("%s: an input, %s" % (self._describe(), doing))
        return obj["name"]

    # -- function ----------------------------------------------------------
    def _get_function(self):
        return "output" if self.kind == "led" else "input"

    def _set_function(self, value):
        if value != self._get_function():
            raise PinFixedFunction("%s: ledd makes it an %s, it cannot be an %s"
                                   % (self._describe(), self._get_function(), value))

    # -- state -------------------------------------------------------------
    def _get_state(self):
        self._factory.fresh()
        kind, obj = self._factory.line(self.gpio)
        if kind == "led" and self._pwm:
            return obj["brightness"] / PERCENT.max if obj["on"] else 0.0
        if kind == "led":
            return int(obj["on"])
        return button_level(obj, self._factory.settings(self.gpio))

    def _set_state(self, value):
        name = self._led_name("whose state ledd reads")
        thread = threading.current_thread()
        if thread is self._blink_thread:
            return  # ledd blinks this LED itself
        if not _is_blink_thread(thread, self):
            self._blink_thread = self._blinking_device = None
            self._write(name, value)
            return
        periods = _blink_periods(thread)
        if periods is not None:
            self._start_ledd_blink(thread, name, value, periods)
            return
        self._blink_thread = self._blinking_device = None
        self._software_blink_write(thread, name, value)

    def _write(self, name, value):
        """One write of the pin's state: ledd's on or off, or with PWM its brightness (0: off)."""
        ledd = self._factory.ledd
        if self._pwm:
            ledd.brightness(name, _percent(value))
        elif value:
            ledd.on(name)
        else:
            ledd.off(name)

    def _start_ledd_blink(self, thread, name, value, periods):
        """The first write of a blink ledd can time: ledd blinks from now on, the thread's writes are dropped.

        gpiozero's blink is lit at full; ledd's is lit at the LED's brightness,
        so with PWM the LED goes to full first (lit, as the blink's first step).
        """
        on_ms, off_ms = periods if value else periods[::-1]  # active_high=False starts dark
        if self._pwm and self.ledd_object["brightness"] != PERCENT.max:
            self._factory.ledd.brightness(name, PERCENT.max)
        self._factory.ledd.blink(name, on_ms, off_ms)
        self._blink_thread = thread
        self._blinking_device = thread._target.__self__

    def _software_blink_write(self, thread, name, value):
        """One step of gpiozero's software blink (a count, or too fast for ledd).

        While ledd is down, the step waits for it instead of raising: the
        blink carries on once ledd is back, as the script's callbacks do,
        rather than its thread dying with :class:`LeddDown`. Stopping the
        blink (``off()``, ``close()``, the script's exit) ends the wait.
        """
        while True:
            try:
                self._write(name, value)
                return
            except LeddDown:
                if thread.stopping.wait(defaults.GPIOZERO_RECONNECT_S):
                    return

    def output_with_state(self, state):
        self._set_function("output")
        self._set_state(state)

    def input_with_pull(self, pull):
        self._set_function("input")
        self._set_pull(pull)

    # -- pull and bounce: ledd's config decides ---------------------------------
    def _get_pull(self):
        kind, obj = self._factory.line(self.gpio)
        if kind == "led":
            return "floating"
        pull = self._factory.settings(self.gpio)["pull"]
        return "floating" if pull == "none" else pull

    def _set_pull(self, value):
        if value != self._get_pull():
            advice = {"up": "pull_up=True", "down": "pull_up=False", "floating": "pull_up=None with active_state"}
            raise PinFixedPull("%s with pull %s; ask for the same (%s) or change the config"
                               % (self._describe(), self._get_pull(), advice.get(self._get_pull(), "")))

    def _get_bounce(self):
        kind, obj = self._factory.line(self.gpio)
        ms = self._factory.settings(self.gpio)["debounce_ms"] if kind == "button" else 0
        return ms / 1000 if ms else None

    def _set_bounce(self, value):
        # None is "no bounce compensation of gpiozero's own": ledd's applies anyway.
        if value is None:
            return
        current = self._get_bounce() or 0.0
        if abs(value - current) > 0.0005:
            raise PinFixedBounce("%s with debounce_ms = %d; use bounce_time=None (or %s) or change the config"
                                 % (self._describe(), current * 1000, current or None))

    def _get_edges(self):
        return self._edges

    def _set_edges(self, value):
        if value not in ("both", "rising", "falling", "none"):
            from gpiozero.exc import PinInvalidEdges

            raise PinInvalidEdges("invalid edge specification %r" % value)
        self._edges = value

    # -- PWM: ledd's brightness and frequency ----------------------------------
    def _get_frequency(self):
        """ledd's PWM frequency of this LED while a PWM device holds the pin, else None (digital)."""
        if not self._pwm:
            return None
        return self.ledd_object["pwm_hz"]

    def _set_frequency(self, value):
        """A PWM device takes the pin (``PWMLED(17)`` sets gpiozero's 100 Hz) or, with None, leaves it.

        ledd keeps the frequency (and the brightness) when the device goes:
        they are the LED's, as the dashboard and the state file see them.
        """
        if value is None:
            self._pwm = False
            return
        name = self._led_name("which has no PWM")
        if not HZ.min <= value <= HZ.max:
            raise PinFrequencyOutOfRange("%s: ledd's PWM runs at %d-%d %s, not %s"
                                         % (self._describe(), HZ.min, HZ.max, HZ.unit, value))
        hz = int(round(value))
        if self.ledd_object.get("pwm_hz") != hz:
            self._factory.ledd.frequency(name, hz)
        self._pwm = True

    # -- events --------------------------------------------------------------
    def _enable_event_detect(self):
        self._factory.enable_events(self)

    def _disable_event_detect(self):
        self._factory.disable_events(self)

    def fire(self, ticks, level):
        if self._edges == "none" or (self._edges == "rising" and not level) or (self._edges == "falling" and level):
            return
        ref = self._when_changed  # read once: close() may clear it meanwhile
        method = None if ref is None else ref()
        if method is not None:
            method(ticks, level)

    def close(self):
        """Stop this pin's events; ledd keeps the line and its state."""
        self.when_changed = None
        self._blinking_device = None
        self._pwm = False


def _percent(value):
    """A duty cycle 0.0-1.0 as ledd's brightness, in whole percent."""
    if not 0 <= value <= 1:
        raise PinInvalidState("a PWM pin's state is between 0 and 1, not %r" % (value,))
    return int(round(value * PERCENT.max))


def _blinking_device(thread):
    """The device whose gpiozero blink thread ``thread`` is, or None."""
    target = getattr(thread, "_target", None)
    if getattr(target, "__name__", None) != "_blink_device" or not hasattr(thread, "stopping"):
        return None
    return getattr(target, "__self__", None)


def _is_blink_thread(thread, pin):
    """Whether ``thread`` is gpiozero's blink thread of a device driving ``pin``
    (an ``LED``, a ``PWMLED``, or one LED of an ``RGBLED`` or an ``LEDBoard``)."""
    device = _blinking_device(thread)
    if device is None:
        return False
    leds = getattr(device, "leds", None) or getattr(device, "_leds", ())
    return getattr(device, "pin", None) is pin or any(getattr(led, "pin", None) is pin for led in leds)


def _blink_periods(thread):
    """(on_ms, off_ms) if the blink thread ``thread`` blinks one LED forever,
    without fades, with periods ledd can time; else None.

    The thread's arguments are named as its ``_blink_device`` names them:
    ``(on_time, off_time, n)`` for an ``LED``, with ``fade_in_time`` and
    ``fade_out_time`` for a ``PWMLED``, colours for an ``RGBLED``.
    """
    device = _blinking_device(thread)
    if device is None or getattr(device, "pin", None) is None:
        return None  # several LEDs, each with its own colour: gpiozero times them together
    code = thread._target.__code__
    args = dict(zip(code.co_varnames[1:code.co_argcount], getattr(thread, "_args", ())))
    if args.get("n") is not None or args.get("fade_in_time") or args.get("fade_out_time"):
        return None  # a count, or fades: software
    try:
        periods = tuple(int(round(float(args[t]) * 1000)) for t in ("on_time", "off_time"))
    except (KeyError, TypeError, ValueError):
        return None
    if all(defaults.BLINK_MIN_MS <= p <= defaults.BLINK_MAX_MS for p in periods):
        return periods
    return None

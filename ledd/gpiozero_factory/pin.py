""":class:`LeddPin`: one of ledd's lines as gpiozero sees a pin, and how gpiozero's blinks map onto ledd's.

Writes are ledd's verbs, called through the factory (``factory.ledd.on(name)``);
reads come from the factory's cache. gpiozero blinks in a thread of its own
(a ``GPIOThread`` running the device's ``_blink_device``): the first write of
a blink that ledd can time (forever, periods in ledd's range) becomes ledd's
blink and the thread's later writes are dropped; any other blink stays
gpiozero's, one write per step.
"""

import threading

from gpiozero.exc import PinFixedPull, PinPWMUnsupported
from gpiozero.pins.pi import PiPin

from ledd import defaults
from ledd.gpiozero_factory.errors import LeddDown, PinFixedBounce, PinFixedFunction

__all__ = ["LeddPin", "button_level"]


def button_level(button, settings):
    """The electrical level of a button line: low when pressed, unless it is active high."""
    active_low = True if settings is None else settings["active_low"]
    return int(button["pressed"] != active_low)


class LeddPin(PiPin):
    """One of ledd's lines, seen as a gpiozero pin.

    An LED's state is ledd's ``on`` (true while blinking too); a button's
    state is its line level (low when pressed, for an active-low button).
    """

    def __init__(self, factory, spec):
        super().__init__(factory, spec)
        self.gpio = self._number
        self._edges = "both"
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
        """One write of the pin's state: ledd's on or off."""
        ledd = self._factory.ledd
        if value:
            ledd.on(name)
        else:
            ledd.off(name)

    def _start_ledd_blink(self, thread, name, value, periods):
        """The first write of a blink ledd can time: ledd blinks from now on, the thread's writes are dropped."""
        on_ms, off_ms = periods if value else periods[::-1]  # active_high=False starts dark
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

    # -- PWM: ledd has none ------------------------------------------------
    def _get_frequency(self):
        return None

    def _set_frequency(self, value):
        if value is not None:
            raise PinPWMUnsupported("%s: ledd has no PWM (yet), so PWMLED and other PWM devices "
                                    "cannot use it; use LED instead" % self._describe())

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


def _is_blink_thread(thread, pin):
    """Whether ``thread`` is gpiozero's blink thread of a device on ``pin``."""
    target = getattr(thread, "_target", None)
    return (getattr(target, "__name__", None) == "_blink_device"
            and getattr(getattr(target, "__self__", None), "pin", None) is pin
            and hasattr(thread, "stopping"))


def _blink_periods(thread):
    """(on_ms, off_ms) if the blink thread ``thread`` blinks forever with
    periods ledd can time, else None."""
    args = getattr(thread, "_args", ())
    if len(args) != 3 or args[2] is not None:  # PWM blinks carry fades; a count needs software
        return None
    try:
        periods = tuple(int(round(float(t) * 1000)) for t in args[:2])
    except (TypeError, ValueError):
        return None
    if all(defaults.BLINK_MIN_MS <= p <= defaults.BLINK_MAX_MS for p in periods):
        return periods
    return None

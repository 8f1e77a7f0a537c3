""":class:`LeddFactory`: the gpiozero pin factory whose pins are ledd's LEDs and buttons.

It holds the one exchange with ledd (a :class:`ledd.client.Client`, one request
at a time, errors turned into gpiozero's), ledd's verbs as methods
(:attr:`LeddFactory.ledd`, see :mod:`.commands`), the state cache that the
replies and the watcher's events keep current, and the map from gpiozero's
pin names to ledd's lines.
"""

import json
import threading
import time

from gpiozero.exc import PinInvalidPin, PinUnknownPi
from gpiozero.pins.pi import PiFactory

from ledd import defaults
from ledd.client import Client, LeddError
from ledd.gpiozero_factory.commands import LeddVerbs
from ledd.gpiozero_factory.config import running_config
from ledd.gpiozero_factory.errors import PinNotConfigured, wrap
from ledd.gpiozero_factory.events import EventThread
from ledd.gpiozero_factory.pin import LeddPin, button_level

__all__ = ["LeddFactory"]


class LeddFactory(PiFactory):
    """A gpiozero pin factory whose pins are ledd's LEDs and buttons.

    ``runtime_dir`` is ledd's (default ``$LEDD_RUNTIME_DIR`` or ``/run/ledd``);
    ``timeout`` bounds each exchange with ledd, in seconds. Raises
    :class:`LeddDown` if ledd is not running.
    """

    def __init__(self, runtime_dir=None, timeout=defaults.TIMEOUT_S):
        super().__init__()
        self.pin_class = LeddPin
        self.client = Client(runtime_dir, timeout=timeout)
        self.ledd = LeddVerbs(self)
        self._request_lock = threading.Lock()   # one exchange at a time, in order
        self._state_lock = threading.Lock()
        self._leds = {}                          # gpio -> LED object of the last state
        self._buttons = {}                       # gpio -> button object, from events only
        self._seq = -1
        self._detecting = {}                     # gpio -> pin with when_changed set
        self.connected = threading.Event()       # the watcher is subscribed
        self._settings = {}                      # gpio -> button's pull, active_low, debounce_ms
        self.config_path = defaults.CONFIG_PATH  # the file ledd runs, for error messages
        self.load_settings()
        self._apply(self.ledd.state(), from_event=True)
        self._thread = EventThread(self)
        self._thread.start()
        # Not fatal when it fails: the watcher retries, and reads fall back to STATE.
        self.connected.wait(self.client.timeout)

    # -- talking to ledd -----------------------------------------------------
    def request(self, verb, *args):
        """One exchange; returns the decoded reply. Raises the Ledd* errors."""
        try:
            with self._request_lock:
                reply = self.client.request(verb, *args)
        except LeddError as err:
            raise wrap(err) from None
        return json.loads(reply)

    def load_settings(self):
        """Buttons' pull, active_low and debounce_ms: HELLO has them (the state has no room)."""
        buttons = self.ledd.hello().get("buttons", [])
        with self._state_lock:
            self._settings = {b["gpio"]: b for b in buttons}
        self.config_path = running_config(self.client.runtime_dir)

    def config_hint(self):
        """How errors name the config: the file the running ledd was started with."""
        return "ledd's config (%s)" % self.config_path

    def settings(self, gpio):
        """A button's settings; defaults of ledd.conf for a ledd that does not report them."""
        with self._state_lock:
            return self._settings.get(gpio, {"pull": "up", "active_low": True, "debounce_ms": 0})

    # -- the cache -------------------------------------------------------------
    def take_state(self, state):
        """A command's reply (ledd's state after it) into the cache."""
        self._apply(state)

    def _apply(self, state, from_event=False, reconnected=False):
        """Take a state into the cache; returns the pins whose level changed (events only)."""
        with self._state_lock:
            # A reply and an event may cross: never go back to an older LED state.
            if reconnected or state["seq"] >= self._seq:
                self._seq = state["seq"]
                self._leds = {led["gpio"]: led for led in state["leds"]}
            if not from_event:
                return []       # buttons change only with events (in order): each edge fires once
            changed = []
            buttons = {b["gpio"]: b for b in state["buttons"]}
            for gpio, pin in self._detecting.items():
                old = self._buttons.get(gpio)
                new = buttons.get(gpio)
                if old is not None and new is not None and old["pressed"] != new["pressed"]:
                    changed.append((pin, button_level(new, self._settings.get(gpio))))
            self._buttons = buttons
            return changed

    def fresh(self):
        """Make sure the cache is current: without a watcher, ask ledd."""
        if not self.connected.is_set():
            self._apply(self.ledd.state(), from_event=True, reconnected=True)

    def dispatch(self, state, reconnected=False):
        """An event from the watcher: into the cache, and each button edge to its pin."""
        ticks = self.ticks()
        for pin, level in self._apply(state, from_event=True, reconnected=reconnected):
            pin.fire(ticks, level)

    def enable_events(self, pin):
        with self._state_lock:
            self._detecting[pin.gpio] = pin

    def disable_events(self, pin):
        with self._state_lock:
            self._detecting.pop(pin.gpio, None)

    # -- lines -----------------------------------------------------------------
    def line(self, gpio):
        """(kind, ledd's object) of a configured GPIO; raises PinNotConfigured."""
        with self._state_lock:
            if gpio in self._leds:
                return "led", self._leds[gpio]
            if gpio in self._buttons:
                return "button", self._buttons[gpio]
        raise PinNotConfigured("GPIO%d is not a line in %s; it has %s"
                               % (gpio, self.config_hint(), self.describe_lines()))

    def describe_lines(self):
        with self._state_lock:
            lines = ["GPIO%d (LED %s)" % (g, led["name"]) for g, led in sorted(self._leds.items())]
            lines += ["GPIO%d (button %s)" % (g, b["name"]) for g, b in sorted(self._buttons.items())]
        return ", ".join(lines) or "no lines"

    def _by_name(self, spec):
        """GPIO number of a configured LED/button name, or None."""
        if isinstance(spec, str):
            with self._state_lock:
                for gpio, obj in list(self._leds.items()) + list(self._buttons.items()):
                    if obj["name"] == spec:
                        return gpio
        return None

    def _gpio_of(self, spec):
        """A pin spec in any of gpiozero's forms or a ledd name -> a configured GPIO number."""
        gpio = self._by_name(spec)
        if gpio is None:
            try:
                gpio = _gpio_number(self.board_info_compat.to_gpio(spec))
            except PinInvalidPin:
                raise PinNotConfigured("%r is neither a GPIO pin nor a name in %s; it has %s"
                                       % (spec, self.config_hint(), self.describe_lines())) from None
        self.line(gpio)
        return gpio

    # -- gpiozero's Factory API --------------------------------------------
    def pin(self, spec):
        return super().pin(self._gpio_of(spec))

    def reserve_pins(self, requester, *pins):
        super().reserve_pins(requester, *(self._gpio_of(p) for p in pins))

    def release_pins(self, reserver, *pins):
        super().release_pins(reserver, *(_first(self._by_name(p), p) for p in pins))

    def close(self):
        """Stop the watcher. ledd keeps the lines and their state."""
        super().close()
        self._thread.stop()

    def ticks(self):
        return time.monotonic()

    def ticks_diff(self, later, earlier):
        return later - earlier

    def _get_revision(self):
        """This Pi's revision (for the header map), else the default board's."""
        from ledd.board import read_revision

        try:
            from gpiozero.pins.pi import PiBoardInfo
        except ImportError:  # gpiozero 1.6
            from gpiozero.pins.data import PiBoardInfo
        revision = read_revision() or defaults.BOARD_DEFAULT_REVISION
        try:
            PiBoardInfo.from_revision(int(revision, 16))
        except (PinUnknownPi, ValueError):  # a Pi newer than this gpiozero: every 40-pin header is alike
            revision = defaults.BOARD_DEFAULT_REVISION
        return int(revision, 16)

    @property
    def board_info_compat(self):
        """``board_info`` in gpiozero 2, ``pi_info`` in 1.6."""
        if hasattr(PiFactory, "_get_board_info"):
            return self._get_board_info()
        return self._get_pi_info()


def _first(value, default):
    return default if value is None else value


def _gpio_number(name):
    """17 from gpiozero 1.6's 17 or 2.x's "GPIO17"."""
    return name if isinstance(name, int) else int(str(name)[4:])

"""gpiozero scripts on ledd's pins: a gpiozero pin factory over ledd's FIFO protocol.

Once ledd owns the GPIO lines, the kernel refuses them to anybody else, so a
gpiozero script would fail with "Device or resource busy". This factory makes
such a script a client of ledd instead, as ``PiGPIOFactory`` does for pigpiod::

    GPIOZERO_PIN_FACTORY=ledd python3 script.py      # after `sudo ./deploy.sh`

    from gpiozero import Device, LED               # or, in the script itself
    from ledd.gpiozero_factory import LeddFactory
    Device.pin_factory = LeddFactory()

How it maps gpiozero onto ledd (docs/gpiozero.md has the user's view):

- Pins are the lines in ledd's config, addressed the way gpiozero addresses
  pins (``17``, ``"GPIO17"``, ``"BCM17"``, ``"BOARD11"``, ``"J8:11"``) or by
  ledd's own names (``LED("red")``). A configured LED is an output, a button
  an input; nothing else can be asked of them.
- Writes go through ledd (``ON``/``OFF``, the reply carries the new state);
  reads come from a cache that one watcher (``WATCH``) keeps current, so
  ``led.toggle()`` costs one exchange, as ``ledctl toggle`` does.
- ``LED.blink()`` with no count runs in gpiozero's blink thread; the first
  write of that thread becomes ledd's kernel-timed ``BLINK`` and the thread's
  later writes are dropped. Other blinks (a count, PWM fades) stay software.
- Button edges come from the watcher's events and reach ``when_changed`` in
  the watcher thread (a gpiozero ``GPIOThread``, like the native factory's),
  with ``time.monotonic()`` ticks. Pull and bounce are ledd's: asking for
  others raises a ``PinFixedPull`` error.
- ``close()`` leaves the lines and their state to ledd.
- ledd stopping makes every call raise :class:`LeddDown` (a gpiozero
  ``PinError`` and a ``ledd.client.DaemonDown``); the watcher re-subscribes
  when ledd is back and the script carries on.

Registration: a pip install of this project declares the
``gpiozero_pin_factories`` entry point ``ledd``. For the system interpreter
after deploy.sh, ``python3 -m ledd.gpiozero_factory --register SITE_DIR``
writes the same entry point as a small dist-info plus a ``.pth`` pointing at
the installed tree (``--unregister SITE_DIR`` removes both). Both gpiozero
1.6 (Debian bookworm, pkg_resources) and 2.x (importlib.metadata) read it.
"""

import argparse
import json
import os
import select
import sys
import threading
import time

from gpiozero.exc import (
    PinFixedPull,
    PinInvalidFunction,
    PinInvalidPin,
    PinPWMUnsupported,
    PinError,
    PinUnknownPi,
)
from gpiozero.pins.pi import PiFactory, PiPin
from gpiozero.threads import GPIOThread

import ledd
from ledd import defaults
from ledd.client import Client, CommandError, DaemonDown, DaemonTimeout, LeddError, Watcher

__all__ = ["LeddFactory", "LeddPin", "LeddDown", "LeddTimeout", "LeddCommandError",
           "PinNotConfigured", "PinFixedFunction", "PinFixedBounce"]


# -- errors: each is a gpiozero PinError, the daemon ones also ledd.client's --

class LeddDown(DaemonDown, PinError):
    """ledd is not running, or stopped: the script cannot reach its pins until it is back."""


class LeddTimeout(DaemonTimeout, PinError):
    """ledd did not answer in time."""


class LeddCommandError(CommandError, PinError):
    """ledd refused a command (``ERR <code> ...``)."""


class PinNotConfigured(PinInvalidPin):
    """The pin is not one of the lines in ledd's config."""


class PinFixedFunction(PinInvalidFunction):
    """ledd's config makes the pin an output (LED) or an input (button) for good."""


class PinFixedBounce(PinFixedPull):
    """ledd's config sets the button's debounce; a script cannot ask for another."""


def _wrap(err):
    """The gpiozero-flavoured twin of a ledd.client error."""
    if isinstance(err, DaemonDown):
        return LeddDown("%s; the script's pins are unreachable until ledd is back" % err)
    if isinstance(err, DaemonTimeout):
        return LeddTimeout(str(err))
    if isinstance(err, CommandError):
        return LeddCommandError(str(err), err.code)
    return err


def running_config(runtime_dir):
    """The config file of the ledd serving ``runtime_dir``: its ``-c`` option, read
    from ``/proc/<pid>/cmdline`` (the PID from ``ledd.pid``); ledd's default when it
    has none or cannot be read."""
    try:
        with open(os.path.join(runtime_dir, defaults.PID_FILE), encoding="ascii") as f:
            pid = int(f.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = [a.decode("utf-8", "surrogateescape") for a in f.read().split(b"\0")[1:-1]]
    except (OSError, ValueError):
        return defaults.CONFIG_PATH
    path = _option_value(argv, "-c", "--config")
    if path is None:
        return defaults.CONFIG_PATH
    if not os.path.isabs(path):
        try:
            path = os.path.join(os.readlink("/proc/%d/cwd" % pid), path)
        except OSError:
            pass  # another user's process: name it as ledd was told
    return path


def _option_value(argv, short, long):
    """The value of ``-c PATH``, ``-cPATH``, ``--config PATH`` or ``--config=PATH`` in argv (getopt's forms)."""
    value = None
    args = iter(argv)
    for arg in args:
        if arg == "--":
            break
        if arg in (short, long):
            value = next(args, None)
        elif arg.startswith(long + "="):
            value = arg[len(long) + 1:]
        elif arg.startswith(short) and not arg.startswith("--"):
            value = arg[len(short):]
    return value


# -- the factory ------------------------------------------------------------

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
        self._request_lock = threading.Lock()   # one exchange at a time, in order
        self._state_lock = threading.Lock()
        self._leds = {}                          # gpio -> LED object of the last state
        self._buttons = {}                       # gpio -> button object, from events only
        self._seq = -1
        self._detecting = {}                     # gpio -> pin with when_changed set
        self._connected = threading.Event()      # the watcher is subscribed
        self._settings = {}                      # gpio -> button's pull, active_low, debounce_ms
        self.config_path = defaults.CONFIG_PATH  # the file ledd runs, for error messages
        self.load_settings()
        self._apply(self.request("STATE"), from_event=True)
        self._thread = _EventThread(self)
        self._thread.start()
        # Not fatal when it fails: the watcher retries, and reads fall back to STATE.
        self._connected.wait(self.client.timeout)

    # -- talking to ledd -----------------------------------------------------
    def request(self, verb, *args):
        """One exchange; returns the decoded reply. Raises the Ledd* errors."""
        try:
            with self._request_lock:
                reply = self.client.request(verb, *args)
        except LeddError as err:
            raise _wrap(err) from None
        return json.loads(reply)

    def load_settings(self):
        """Buttons' pull, active_low and debounce_ms: HELLO has them (the state has no room)."""
        buttons = self.request("HELLO").get("buttons", [])
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

    def command(self, verb, *args):
        """A command whose reply is the new state: apply it to the cache."""
        state = self.request(verb, *args)
        self._apply(state)
        return state

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
                    changed.append((pin, _level(new, self._settings.get(gpio))))
            self._buttons = buttons
            return changed

    def _fresh(self):
        """Make sure the cache is current: without a watcher, ask ledd."""
        if not self._connected.is_set():
            self._apply(self.request("STATE"), from_event=True, reconnected=True)

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

    # -- events ----------------------------------------------------------------
    def _enable(self, pin):
        with self._state_lock:
            self._detecting[pin.gpio] = pin

    def _disable(self, pin):
        with self._state_lock:
            self._detecting.pop(pin.gpio, None)

    def _dispatch(self, state, reconnected=False):
        ticks = self.ticks()
        for pin, level in self._apply(state, from_event=True, reconnected=reconnected):
            pin.fire(ticks, level)


def _first(value, default):
    return default if value is None else value


def _gpio_number(name):
    """17 from gpiozero 1.6's 17 or 2.x's "GPIO17"."""
    return name if isinstance(name, int) else int(str(name)[4:])


def _level(button, settings):
    """The electrical level of a button line: low when pressed, unless it is active high."""
    active_low = True if settings is None else settings["active_low"]
    return int(button["pressed"] != active_low)


class _EventThread(GPIOThread):
    """Holds one WATCH subscription; feeds the cache and fires when_changed.

    Sleeps in poll() on the event FIFO and a wake-up pipe. When ledd goes, it
    re-subscribes every ``GPIOZERO_RECONNECT_S`` until ledd is back (the only
    periodic wake-up, and only while ledd is down).
    """

    def __init__(self, factory):
        super().__init__(target=self._run)
        self.name = "ledd-events"
        self.factory = factory
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    def join(self, timeout=None):
        """Wake the poll first: gpiozero's exit handler sets ``stopping`` and joins."""
        self.stopping.set()
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass
        if threading.current_thread() is not self:
            super().join(timeout)
        if not self.is_alive() and self._wake_w >= 0:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    def _run(self):
        factory = self.factory
        while not self.stopping.is_set():
            try:
                watcher = Watcher(factory.client)
            except LeddError:
                factory._connected.clear()
                self.stopping.wait(defaults.GPIOZERO_RECONNECT_S)
                continue
            try:
                factory.load_settings()  # a new ledd may have a new config
                self._follow(watcher)
            except LeddError:
                pass  # EOF: ledd stopped or dropped us; subscribe again
            finally:
                factory._connected.clear()
                watcher.close()

    def _follow(self, watcher):
        poller = select.poll()
        poller.register(watcher.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        first = True
        while not self.stopping.is_set():
            while True:
                line = watcher.next_event(0)
                if line is None:
                    break
                self.factory._dispatch(json.loads(line), reconnected=first)
                if first:
                    first = False
                    self.factory._connected.set()
            poller.poll()


# -- the pin ----------------------------------------------------------------

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
        factory._apply(factory.request("STATE"), from_event=False)

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

    # -- function ----------------------------------------------------------
    def _get_function(self):
        return "output" if self.kind == "led" else "input"

    def _set_function(self, value):
        if value != self._get_function():
            raise PinFixedFunction("%s: ledd makes it an %s, it cannot be an %s"
                                   % (self._describe(), self._get_function(), value))

    # -- state -------------------------------------------------------------
    def _get_state(self):
        self._factory._fresh()
        kind, obj = self._factory.line(self.gpio)
        if kind == "led":
            return int(obj["on"])
        return _level(obj, self._factory.settings(self.gpio))

    def _set_state(self, value):
        kind, obj = self._factory.line(self.gpio)
        if kind != "led":
            raise PinFixedFunction("%s: an input, whose state ledd reads" % self._describe())
        thread = threading.current_thread()
        if thread is self._blink_thread:
            return  # ledd blinks this LED itself
        if not _is_blink_thread(thread, self):
            self._blink_thread = self._blinking_device = None
            self._factory.command("ON" if value else "OFF", obj["name"])
            return
        blink = _blink_periods(thread)
        if blink is not None:
            on_ms, off_ms = blink if value else blink[::-1]  # active_high=False starts dark
            self._factory.command("BLINK", obj["name"], on_ms, off_ms)
            self._blink_thread = thread
            self._blinking_device = thread._target.__self__
            return
        self._blink_thread = self._blinking_device = None
        self._software_blink_write(thread, "ON" if value else "OFF", obj["name"])

    def _software_blink_write(self, thread, verb, name):
        """One step of gpiozero's software blink (a count, or too fast for ledd).

        While ledd is down, the step waits for it instead of raising: the
        blink carries on once ledd is back, as the script's callbacks do,
        rather than its thread dying with :class:`LeddDown`. Stopping the
        blink (``off()``, ``close()``, the script's exit) ends the wait.
        """
        while True:
            try:
                self._factory.command(verb, name)
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
        self._factory._enable(self)

    def _disable_event_detect(self):
        self._factory._disable(self)

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


# -- registration for the system interpreter ------------------------------------

DIST_NAME = "ledd_gpiozero"


def register(site_dir, home=None):
    """Write the entry point (dist-info) and a .pth that puts ``home`` on sys.path."""
    home = os.path.abspath(home or os.path.dirname(os.path.dirname(os.path.abspath(ledd.__file__))))
    unregister(site_dir)
    info = os.path.join(site_dir, "%s-%s.dist-info" % (DIST_NAME, ledd.__version__))
    os.makedirs(info, exist_ok=True)
    files = {
        "METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: ledd's gpiozero pin factory\n"
                    % (DIST_NAME.replace("_", "-"), ledd.__version__),
        "entry_points.txt": "[%s]\n%s = ledd.gpiozero_factory:LeddFactory\n" % (defaults.GPIOZERO_ENTRY_GROUP, defaults.GPIOZERO_FACTORY_NAME),
        "INSTALLER": "ledd\n",
    }
    for name, text in files.items():
        with open(os.path.join(info, name), "w", encoding="utf-8") as f:
            f.write(text)
    with open(os.path.join(info, "RECORD"), "w", encoding="utf-8") as f:
        f.writelines("%s/%s,,\n" % (os.path.basename(info), name) for name in list(files) + ["RECORD"])
    with open(os.path.join(site_dir, DIST_NAME + ".pth"), "w", encoding="utf-8") as f:
        f.write(home + "\n")
    return info


def unregister(site_dir):
    """Remove what :func:`register` wrote (any version); returns the paths removed."""
    import shutil

    removed = []
    if not os.path.isdir(site_dir):
        return removed
    for name in sorted(os.listdir(site_dir)):
        path = os.path.join(site_dir, name)
        if name.startswith(DIST_NAME + "-") and name.endswith(".dist-info"):
            shutil.rmtree(path)
            removed.append(path)
        elif name == DIST_NAME + ".pth":
            os.unlink(path)
            removed.append(path)
    return removed


def default_site_dir():
    import site

    return site.getsitepackages()[0]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m ledd.gpiozero_factory",
        description="Register ledd's gpiozero pin factory (GPIOZERO_PIN_FACTORY=ledd) with an interpreter.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--register", metavar="SITE_DIR", nargs="?", const="",
                       help="write the entry point and a .pth into SITE_DIR (default: %s)" % default_site_dir())
    group.add_argument("--unregister", metavar="SITE_DIR", nargs="?", const="", help="remove them again")
    parser.add_argument("--home", help="the tree that holds the ledd package (default: this one)")
    args = parser.parse_args(argv)
    if args.register is not None:
        info = register(args.register or default_site_dir(), args.home)
        print("registered the gpiozero pin factory 'ledd': %s" % info)
    else:
        removed = unregister(args.unregister or default_site_dir())
        print("removed %s" % (", ".join(removed) or "nothing (not registered)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

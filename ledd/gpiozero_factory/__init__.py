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
- Writes are ledd's verbs, called as the methods :mod:`ledd.verbs` gives every
  client (the reply carries the new state); reads come from a cache that one
  watcher (``WATCH``) keeps current, so ``led.toggle()`` costs one exchange,
  as ``ledctl toggle`` does.
- A PWM device (``PWMLED``, each LED of an ``RGBLED``) makes its pin's state
  ledd's brightness (``value = 0.3`` is 30 %, 0 is off) and its frequency
  ledd's PWM frequency for that LED (10-1000 Hz, else
  :class:`PinFrequencyOutOfRange`).
- ``blink()`` with no count and no fades runs in gpiozero's blink thread; the
  first write of that thread becomes ledd's kernel-timed blink and the
  thread's later writes are dropped. Other blinks (a count, fades,
  ``pulse()``) stay gpiozero's, one write per step.
- Button edges come from the watcher's events and reach ``when_changed`` in
  the watcher thread (a gpiozero ``GPIOThread``, like the native factory's),
  with ``time.monotonic()`` ticks. Pull and bounce are ledd's: asking for
  others raises a ``PinFixedPull`` error.
- ``close()`` leaves the lines and their state to ledd.
- ledd stopping makes every call raise :class:`LeddDown` (a gpiozero
  ``PinError`` and a ``ledd.client.DaemonDown``); the watcher re-subscribes
  when ledd is back and the script carries on.

Modules, one concern each:

- :mod:`.factory`  :class:`LeddFactory`: the exchange with ledd, the state cache, pin names
- :mod:`.commands` ledd's verbs as the factory's methods, from the one verb table
- :mod:`.pin`      :class:`LeddPin`: what gpiozero asks of one line, and the blink mapping
- :mod:`.events`   the watcher thread that feeds the cache and fires button callbacks
- :mod:`.errors`   the exceptions, each a gpiozero ``PinError``
- :mod:`.config`   which config file the running ledd reads (for error messages)
- :mod:`.register` the entry point for an interpreter (``python3 -m ledd.gpiozero_factory``)

Registration: a pip install of this project declares the
``gpiozero_pin_factories`` entry point ``ledd`` (``ledd.gpiozero_factory:LeddFactory``).
For the system interpreter after deploy.sh, ``python3 -m ledd.gpiozero_factory
--register SITE_DIR`` writes the same entry point as a small dist-info plus a
``.pth`` pointing at the installed tree (``--unregister SITE_DIR`` removes
both). Both gpiozero 1.6 (Debian bookworm, pkg_resources) and 2.x
(importlib.metadata) read it.
"""

from ledd.gpiozero_factory.config import running_config
from ledd.gpiozero_factory.errors import (LeddCommandError, LeddDown, LeddTimeout, PinFixedBounce,
                                          PinFixedFunction, PinFrequencyOutOfRange, PinNotConfigured)
from ledd.gpiozero_factory.factory import LeddFactory
from ledd.gpiozero_factory.pin import LeddPin

__all__ = ["LeddFactory", "LeddPin", "LeddDown", "LeddTimeout", "LeddCommandError",
           "PinNotConfigured", "PinFixedFunction", "PinFixedBounce", "PinFrequencyOutOfRange", "running_config"]

"""The factory's exceptions: each is a gpiozero ``PinError``, and those about ledd
itself are also the matching :mod:`ledd.errors` kind, so a script can catch
either family. A leaf module: gpiozero's exceptions and ledd's, nothing more.
"""

from gpiozero.exc import PinError, PinFixedPull, PinInvalidFunction, PinInvalidPin, PinPWMError

from ledd.errors import CommandError, DaemonDown, DaemonTimeout

__all__ = ["LeddDown", "LeddTimeout", "LeddCommandError", "PinNotConfigured", "PinFixedFunction",
           "PinFixedBounce", "PinFrequencyOutOfRange", "wrap"]


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


class PinFrequencyOutOfRange(PinPWMError, ValueError):
    """A PWM frequency outside the range ledd's PWM runs at (the message names it)."""


def wrap(err):
    """The gpiozero-flavoured twin of a ledd.client error."""
    if isinstance(err, DaemonDown):
        return LeddDown("%s; the script's pins are unreachable until ledd is back" % err)
    if isinstance(err, DaemonTimeout):
        return LeddTimeout(str(err))
    if isinstance(err, CommandError):
        return LeddCommandError(str(err), err.code)
    return err

"""ledctl: switch LEDs, read buttons and watch events from the command line.

    ledctl status                     a table of LEDs and buttons
    ledctl on red / off 1 / toggle red
    ledctl blink green 100 900        on 100 ms, off 900 ms
    ledctl all on|off
    ledctl brightness red 30          dim to 30 % (0: off); all-brightness 30: every LED
    ledctl frequency red 500          the PWM frequency of a dimmed LED, 10-1000 Hz
    ledctl press button / release 0   simulated button (sim backend only)
    ledctl watch                      one line per state change, until Ctrl-C

Locally it speaks ledd's FIFO protocol through :class:`ledd.client.Client`
(``--runtime-dir`` or ``$LEDD_RUNTIME_DIR``, default ``/run/ledd``); with
``--url`` the same commands go to a dashboard's HTTP API through
:class:`ledd.remote.RemoteClient`. ``--json`` prints the state JSON (one
object per line for ``watch``) for scripts.

Exit status: 0 success, 1 ledd refused the command (no such LED, bad period,
...), 2 bad usage, 3 ledd (or the dashboard) unreachable or not answering,
130 interrupted (Ctrl-C). Errors are one line on stderr, never a traceback.
"""

import argparse
import json
import os
import sys
import time

from ledd import __version__, defaults
from ledd.client import Client
from ledd.errors import CommandError, DaemonDown, DaemonTimeout, LeddError
from ledd import verbs

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

PROG = "ledctl"
#: How long ``watch`` waits for a stopped ledd to come back, and how often it looks.
WATCH_RECONNECT_S = 10.0
RECONNECT_POLL_S = 0.2
#: Set to 1 to get a traceback instead of the one-line "unexpected error".
DEBUG_ENV = "LEDCTL_DEBUG"


# -- command line -------------------------------------------------------------
def _common_options(parser, suppress):
    """Options accepted before and after the subcommand (``ledctl --json status``, ``ledctl status --json``)."""
    default = (lambda value: argparse.SUPPRESS) if suppress else (lambda value: value)
    parser.add_argument("-j", "--json", action="store_true", default=default(False),
                        help="print the state as JSON (watch: one object per line)")
    parser.add_argument("-q", "--quiet", action="store_true", default=default(False),
                        help="print nothing on success (commands only)")
    parser.add_argument("-r", "--runtime-dir", metavar="DIR", default=default(None),
                        help="ledd's runtime directory (default: $%s or %s)" % (defaults.RUNTIME_DIR_ENV, defaults.RUNTIME_DIR))
    parser.add_argument("-u", "--url", metavar="URL", default=default(None),
                        help="talk to a dashboard over HTTP instead, e.g. http://pi.local")
    parser.add_argument("--user", metavar="USER[:PASS]", default=default(None),
                        help="HTTP Basic auth for --url (asks for the password if missing; "
                             "default: ~/.netrc)")
    parser.add_argument("-t", "--timeout", metavar="SECONDS", type=_positive_float, default=default(None),
                        help="give up after this long (default: %g s, %g s with --url)"
                             % (defaults.TIMEOUT_S, 2 * defaults.TIMEOUT_S))


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text) from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds: %r" % text)
    return value


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number of seconds: %r" % text) from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("must be 0 or more seconds: %r" % text)
    return value


def _number(arg):
    """The argparse type of a ``uint`` argument: plain decimal digits (ledd checks the range)."""
    def number(text):
        if not text.isdigit() or len(text) > defaults.MAX_DIGITS:
            raise argparse.ArgumentTypeError("%s must be a whole number (%s): %r" % (arg.name.upper(), _range(arg), text))
        return int(text)
    return number


def _range(arg):
    """``20-60000 ms``, ``0-100 %``: a ``uint`` argument's range as ledd's table gives it."""
    return "%d-%d %s" % (arg.min, arg.max, arg.unit)


def _ref(text):
    """An LED or button: an index or a name. ledd (or the dashboard) checks that it exists."""
    if not text or any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in text):
        raise argparse.ArgumentTypeError("not an index or a name: %r" % text)
    return text


def _add_argument(parser, arg):
    """One argument of a verb (ledd.verbs) as ledctl takes it."""
    if arg.kind in ("led", "button"):
        parser.add_argument(arg.name, metavar="N", type=_ref,
                            help="%s index or name" % ("LED" if arg.kind == "led" else "button"))
    elif arg.kind == "uint":
        parser.add_argument(arg.name, metavar=arg.name.upper(), type=_number(arg), help=_range(arg).replace("%", "%%"))
    elif arg.kind == "onoff":
        parser.add_argument(arg.name, choices=("on", "off"))
    else:
        raise ValueError("ledctl has no form for %s arguments" % arg.kind)


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Control the LEDs and read the buttons of a ledd board, locally or over HTTP.",
        epilog="N is an index (0, 1, ...) or a configured name (red, green, button). "
               "Exit status: 0 ok, 1 refused by ledd, 2 usage, 3 ledd unreachable, 130 interrupted.",
    )
    parser.add_argument("-V", "--version", action="version", version="%(prog)s " + __version__)
    _common_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name, help_text, aliases=()):
        p = sub.add_parser(name, help=help_text, description=help_text, aliases=list(aliases))
        _common_options(p, suppress=True)
        return p

    for verb in verbs.VERBS:
        if verb.cli:
            p = command(verb.cli.command, verb.cli.help, verb.cli.aliases)
            p.set_defaults(verb=verb)
            for arg in verb.args:
                _add_argument(p, arg)
    p = command("watch", "print every state change until Ctrl-C")
    p.add_argument("--reconnect", metavar="SECONDS", type=_seconds, default=WATCH_RECONNECT_S,
                   help="when ledd stops, wait this long for it to come back (0: exit at once; default %g)"
                   % WATCH_RECONNECT_S)
    return parser


# -- connecting -----------------------------------------------------------------
def _auth(user):
    """``USER[:PASS]`` to a requests auth tuple, asking for a missing password."""
    if user is None:
        return None  # requests falls back to ~/.netrc
    name, sep, password = user.partition(":")
    if not sep:
        import getpass

        try:
            password = getpass.getpass("Password for %s: " % name)
        except EOFError:
            raise UsageError("no password for %s (give --user USER:PASS or a ~/.netrc entry)" % name) from None
    return (name, password)


def make_client(args):
    """A local :class:`Client` or, with ``--url``, a :class:`RemoteClient`."""
    # Without --timeout each client keeps its own default: the HTTP one is longer
    # than the daemon's, so the dashboard's own 504 arrives before ours.
    timeout = {"timeout": args.timeout} if args.timeout else {}
    if args.url:
        try:
            from ledd.remote import RemoteClient
        except ImportError:
            raise UsageError("--url needs the Python 'requests' package (apt install python3-requests)") from None
        return RemoteClient(args.url, auth=_auth(args.user), **timeout)
    if args.user:
        raise UsageError("--user only makes sense with --url")
    return Client(args.runtime_dir, **timeout)


class UsageError(Exception):
    """A command line that parses but cannot be carried out (exit 2)."""


# -- human output -----------------------------------------------------------------
def _table(headers, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = []
    for row in [headers] + rows:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _led_state(led):
    if led.get("blink"):
        return "blinking"
    return "on" if led.get("on") else "off"


def _blink(led):
    blink = led.get("blink")
    return "%d/%d ms" % (blink["on_ms"], blink["off_ms"]) if blink else "-"


def _percent(led):
    """The LED's brightness (its brightness when lit, kept while it is off), or "-" from a ledd without one."""
    return "-" if led.get("brightness") is None else "%d%%" % led["brightness"]


def _hertz(led):
    return "-" if led.get("pwm_hz") is None else "%d Hz" % led["pwm_hz"]


def _when(ms):
    if ms is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000.0))


def format_status(state):
    """The compact human table of a state dict."""
    leds = [[led["id"], led["name"], _led_state(led), _percent(led), _blink(led), _hertz(led), led.get("gpio", "?")]
            for led in state.get("leds", [])]
    out = [_table(["#", "LED", "STATE", "BRIGHTNESS", "BLINK ON/OFF", "PWM", "GPIO"], leds)]
    buttons = state.get("buttons", [])
    if buttons:
        rows = [[b["id"], b["name"], "pressed" if b.get("pressed") else "released", b.get("presses", 0),
                 _when(b.get("last_press_ms")), b.get("gpio", "?")] for b in buttons]
        out.append(_table(["#", "BUTTON", "STATE", "PRESSES", "LAST PRESS", "GPIO"], rows))
    out.append("backend %s, seq %s" % (state.get("backend", "?"), state.get("seq", "?")))
    return "\n\n".join(out)


def _summary_items(state):
    items = []
    for led in state.get("leds", []):
        text = "%s=%s" % (led["name"], _led_state(led))
        if led.get("blink"):
            text += "(%d/%d)" % (led["blink"]["on_ms"], led["blink"]["off_ms"])
        if led.get("brightness") not in (None, 100):
            # Dimmed: red=on@30%/200Hz (the frequency matters only then).
            text += "@" + _percent(led) + ("/%dHz" % led["pwm_hz"] if led.get("pwm_hz") is not None else "")
        items.append(text)
    for b in state.get("buttons", []):
        items.append("%s=%s(%s)" % (b["name"], "pressed" if b.get("pressed") else "released", b.get("presses", 0)))
    return items


def format_event(state, previous=None):
    """One line per event: time, seq, then every item, the changed ones marked with ``*``."""
    old = set(_summary_items(previous)) if previous else None
    marked = [("*" + item if old is not None and item not in old else item) for item in _summary_items(state)]
    stamp = time.strftime("%H:%M:%S", time.localtime()) + ".%03d" % (time.time_ns() // 1_000_000 % 1000)
    return "%s seq=%s %s" % (stamp, state.get("seq", "?"), " ".join(marked))


def _print(text):
    print(text, flush=True)


def _dump(state):
    return json.dumps(state, separators=(",", ":"))


# -- commands -----------------------------------------------------------------
def _do_command(client, args):
    """Run the subcommand's verb through the client method of the same verb (ledd.verbs)."""
    verb = getattr(args, "verb", None)
    if verb is None:
        raise UsageError("unknown command %r" % args.command)
    values = [getattr(args, arg.name) for arg in verb.args]
    values = [value == "on" if arg.kind == "onoff" else value for arg, value in zip(verb.args, values)]
    return getattr(client, verb.method.name)(*values)


def _wait_for_daemon(client, seconds):
    """Poll until ledd (or the dashboard) answers again; DaemonDown after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            client.state()
            return
        except (DaemonDown, DaemonTimeout):
            if time.monotonic() >= deadline:
                raise DaemonDown("ledd did not come back within %g s" % seconds) from None
            time.sleep(RECONNECT_POLL_S)


def run_watch(client, args):
    """Print each event until interrupted; the first one is the current state.

    When ledd stops (``systemctl restart ledd``), wait up to ``--reconnect``
    seconds for it and go on; an unchanged state is not printed twice.
    """
    previous = None
    while True:
        try:
            with client.watch() as watcher:
                for payload in watcher:
                    state = json.loads(payload)
                    if state != previous:
                        _print(_dump(state) if args.json else format_event(state, previous))
                    previous = state
        except DaemonDown as err:
            if not args.reconnect or previous is None:
                raise
            print("%s: %s; waiting up to %g s for it" % (PROG, err, args.reconnect), file=sys.stderr, flush=True)
            _wait_for_daemon(client, args.reconnect)


def run(args):
    client = make_client(args)
    if args.command == "watch":
        run_watch(client, args)
        return EXIT_OK
    state = _do_command(client, args)
    if args.json:
        _print(_dump(state))
    elif not args.quiet:
        _print(format_status(state))
    return EXIT_OK


def _fail(message, status):
    print("%s: %s" % (PROG, message), file=sys.stderr, flush=True)
    return status


def main(argv=None):
    """Entry point of ``ledctl``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    try:
        return run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except UsageError as err:
        parser.print_usage(sys.stderr)
        return _fail(str(err), EXIT_USAGE)
    except (DaemonDown, DaemonTimeout) as err:
        return _fail(str(err), EXIT_UNREACHABLE)
    except CommandError as err:
        return _fail("%s (%s)" % (err, err.code), EXIT_REFUSED)
    except LeddError as err:  # e.g. RemoteError: HTTP 401, a proxy's error page
        return _fail(str(err), EXIT_REFUSED)
    except BrokenPipeError:
        # stdout went away (ledctl watch | head -1): quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as err:  # a bug or a peer we do not understand: still one line
        if os.environ.get(DEBUG_ENV):
            raise
        return _fail("unexpected error (%s: %s); set %s=1 for details" % (type(err).__name__, err, DEBUG_ENV),
                     EXIT_REFUSED)


if __name__ == "__main__":
    sys.exit(main())

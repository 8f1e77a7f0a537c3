"""Describe the Pi's 40-pin header for the dashboard: ``python3 -m ledd.board --out FILE``.

The page shows where each LED and button is wired (physical pin and GPIO
number). That data comes from gpiozero's board database, looked up once at
deploy or build time, never per request (gpiozero is big and slow to import;
the CGI scripts never load it)::

    python3 -m ledd.board --out www/board.json               # this Pi, or a Pi 4 B elsewhere
    python3 -m ledd.board --out board.json --revision 9000c1 # a Pi Zero W

The board is, in order: ``--revision HEX``; ``--model NAME`` (any revision
gpiozero lists for that model name, e.g. ``3B+``); the running Pi's own
revision (device tree, then /proc/cpuinfo); else a Raspberry Pi 4 Model B
(``ledd.defaults.BOARD_DEFAULT_REVISION``), and the output says so (``source``).
A Pi too new for the installed gpiozero gets the 4 B's header, which every 40-pin
Pi shares (``source: fallback``). Works with gpiozero 1.6 (Debian) and 2.x.

Output (UTF-8 JSON)::

    {"model": "4B", "revision": "c03111", "source": "default", "header": "J8",
     "rows": 20, "columns": 2,
     "pins": [{"pin": 1, "name": "3V3", "gpio": null, "row": 1, "col": 1}, ...]}
"""

import argparse
import json
import os
import sys

from ledd import defaults

HEADER = "J8"


def read_revision(dt_path=defaults.BOARD_DT_REVISION, cpuinfo_path=defaults.BOARD_CPUINFO):
    """The running board's revision code as lowercase hex, or None off a Pi."""
    try:
        with open(dt_path, "rb") as f:
            raw = f.read()
        if len(raw) == 4:
            return "%x" % int.from_bytes(raw, "big")
    except OSError:
        pass
    try:
        with open(cpuinfo_path, encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "Revision" and value.strip():
                    return value.strip().lower()
    except OSError:
        pass
    return None


def board_info_class():
    """gpiozero's PiBoardInfo: in gpiozero.pins.pi since 2.0, gpiozero.pins.data in 1.x (Debian bookworm)."""
    try:
        from gpiozero.pins.pi import PiBoardInfo
    except ImportError:
        from gpiozero.pins.data import PiBoardInfo
    return PiBoardInfo


def pin_name(pin):
    """A header pin's function ("GPIO17", "GND", "3V3"): ``name`` in gpiozero 2, ``function`` in 1.x."""
    return pin.name if hasattr(pin, "name") else pin.function


def revision_of_model(model):
    """A new-style revision code for a model name such as ``4B``, ``3B+`` or ``Zero2W``.

    The header layout depends on the board type alone, so the code is built from
    that field (bits 4-11, with the "new-style" flag and 1 GB) and gpiozero decodes it.
    """
    PiBoardInfo = board_info_class()
    wanted = model.upper().replace(" ", "")
    for board_type in range(0x100):
        revision = 0x800000 | (2 << 20) | (board_type << 4)
        if PiBoardInfo.from_revision(revision).model.upper().replace(" ", "") == wanted:
            return "%x" % revision
    raise ValueError("unknown Raspberry Pi model %r" % model)


def choose_revision(revision=None, model=None):
    """(revision hex, where it came from) following the order in the module docstring."""
    if revision:
        return revision.lower().removeprefix("0x"), "argument"
    if model:
        return revision_of_model(model), "model"
    found = read_revision()
    if found:
        return found, "board"
    return defaults.BOARD_DEFAULT_REVISION, "default"


def describe(revision, source="argument"):
    """The header description of board ``revision`` (a dict ready for JSON)."""
    board_info = board_info_class()  # an ImportError here means "no gpiozero", not a bad code
    from gpiozero import PinError

    try:
        info = board_info.from_revision(int(revision, 16))
    except (ValueError, PinError):  # bad hex, or gpiozero's PinUnknownPi for an unknown code
        raise ValueError("%r is not a board revision code (hex, e.g. c03111)" % revision) from None
    if info.model == "???":  # a type code this gpiozero release does not know yet
        raise ValueError("board revision %s is unknown to gpiozero %s" % (revision, gpiozero_version()))
    if HEADER not in info.headers:
        raise ValueError("the %s has no 40-pin %s header" % (info.model, HEADER))
    header = info.headers[HEADER]
    pins = []
    for number in sorted(header.pins):
        pin = header.pins[number]
        name = pin_name(pin)
        gpio = int(name[4:]) if name.startswith("GPIO") else None
        pins.append({"pin": number, "name": name, "gpio": gpio, "row": pin.row, "col": pin.col})
    return {
        "model": info.model,
        "revision": info.revision,
        "source": source,
        "header": HEADER,
        "rows": header.rows,
        "columns": header.columns,
        "pins": pins,
    }


def gpiozero_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gpiozero")
    except PackageNotFoundError:
        return "(unknown version)"


def write_atomically(path, text):
    """Write the file so a concurrent reader (the web server) never sees half of it."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m ledd.board", description="Write the Pi's 40-pin header layout as JSON for the dashboard.")
    parser.add_argument("--out", required=True, help="output file (www/board.json), or - for stdout")
    parser.add_argument("--revision", help="board revision code in hex (default: this Pi's, else %s)" % defaults.BOARD_DEFAULT_REVISION)
    parser.add_argument("--model", help="a model name instead of a revision, e.g. 4B, 3B+, Zero2W")
    args = parser.parse_args(argv)
    try:
        revision, source = choose_revision(args.revision, args.model)
        try:
            data = describe(revision, source)
        except ValueError:
            if source != "board":
                raise
            # A Pi newer than this gpiozero: every 40-pin Pi has the same J8 layout.
            data = describe(defaults.BOARD_DEFAULT_REVISION, "fallback")
            data.update(model="unknown (revision %s)" % revision, revision=revision)
    except ImportError:
        print("ledd.board: gpiozero is not installed (apt install python3-gpiozero)", file=sys.stderr)
        return 1
    except (ValueError, KeyError) as err:
        print("ledd.board: %s" % (err.args[0] if err.args else err), file=sys.stderr)
        return 2
    text = json.dumps(data, separators=(",", ":")) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        write_atomically(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

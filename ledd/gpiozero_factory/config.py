"""Which config file the running ledd reads, so that errors name the file to edit.

ledd says which file it runs only on its command line: its ``-c`` option, read
from ``/proc/<pid>/cmdline`` with the PID from ``ledd.pid`` in its runtime
directory.
"""

import os

from ledd import defaults

__all__ = ["running_config"]


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

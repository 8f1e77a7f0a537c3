"""Low-level helpers for the daemon tests: talk to ledd's FIFOs byte by byte.

The reference client (ledd/client.py) refuses malformed requests and discards
replies that are not its own; these helpers do neither, so the tests can send
hostile bytes and see every reply line ledd writes.
"""

import fcntl
import os
import select
import time
from pathlib import Path

CMD = "ledd.cmd"
REPLY = "ledd.reply"


def read_lines(fd, count, timeout=3.0):
    """Read until ``count`` complete lines arrived on ``fd`` (or the timeout); return them."""
    deadline = time.monotonic() + timeout
    data = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while data.count(b"\n") < count:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            break
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        if not chunk:
            break
        data += chunk
    lines = data.split(b"\n")
    return lines[:-1] if data.endswith(b"\n") else lines


def drain(fd):
    """Read and return whatever is pending on a non-blocking fd."""
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def exchange(runtime_dir, data, replies=1, timeout=3.0):
    """Send raw ``data`` under the reply lock and return the next ``replies`` reply lines."""
    runtime_dir = Path(runtime_dir)
    rfd = os.open(runtime_dir / REPLY, os.O_RDONLY | os.O_NONBLOCK)
    try:
        fcntl.flock(rfd, fcntl.LOCK_EX)
        drain(rfd)
        cfd = os.open(runtime_dir / CMD, os.O_WRONLY | os.O_NONBLOCK)
        try:
            assert os.write(cfd, data) == len(data)
        finally:
            os.close(cfd)
        return read_lines(rfd, replies, timeout)
    finally:
        os.close(rfd)


def write_cmd(runtime_dir, data):
    """Write raw bytes to ledd.cmd without reading any reply."""
    cfd = os.open(Path(runtime_dir) / CMD, os.O_WRONLY | os.O_NONBLOCK)
    try:
        return os.write(cfd, data)
    finally:
        os.close(cfd)


def ctxt_switches(pid):
    """(voluntary, involuntary) context switches of a process, from /proc."""
    vol = invol = None
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            vol = int(line.split()[1])
        elif line.startswith("nonvoluntary_ctxt_switches:"):
            invol = int(line.split()[1])
    return vol, invol


def write_config(path, leds=(("red", 17), ("green", 27)), buttons=(("button", 22),), ledd_section=""):
    """Write a config with the given (name, gpio) LEDs and buttons; return its path."""
    text = "[ledd]\nbackend = sim\n" + ledd_section
    for name, gpio in leds:
        text += "\n[led %s]\ngpio = %d\n" % (name, gpio)
    for name, gpio in buttons:
        text += "\n[button %s]\ngpio = %d\npull = up\nactive_low = true\n" % (name, gpio)
    Path(path).write_text(text)
    return Path(path)


def ledd_argv(binary, *args):
    """The command line to run ``binary`` by hand, honouring ``$LEDD_EXEC_PREFIX`` (qemu-user)."""
    prefix = os.environ.get("LEDD_EXEC_PREFIX")
    return (prefix.split() if prefix else []) + [str(binary)] + [str(a) for a in args]

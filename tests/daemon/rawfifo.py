"""Low-level helpers for the daemon tests: talk to ledd's FIFOs byte by byte.

The reference client (ledd/client.py) refuses malformed requests and makes
its own reply FIFOs; these helpers do neither, so the tests can send hostile
bytes to ``ledd.cmd`` and read every line ledd writes into a reply FIFO of
the test's choosing (``reply/<id>``, protocol 2).
"""

import fcntl
import os
import select
import struct
import termios
import time
from pathlib import Path

from ledd import defaults

CMD = defaults.CMD_FIFO
REPLY_DIR = defaults.REPLY_DIR


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
    return lines[:-1] if data.endswith(b"\n") or not data else lines


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


class ReplyFifo:
    """``reply/<name>`` made by hand: open O_RDWR like the reference client (no hang-up between replies)."""

    def __init__(self, runtime_dir, name, flags=os.O_RDWR):
        self.path = Path(runtime_dir) / REPLY_DIR / (name.decode() if isinstance(name, bytes) else name)
        os.mkfifo(self.path, 0o600)
        os.chmod(self.path, defaults.REPLY_FIFO_MODE)
        self.fd = os.open(self.path, flags | os.O_NONBLOCK)

    def read_lines(self, count, timeout=3.0):
        return read_lines(self.fd, count, timeout)

    def close(self):
        os.close(self.fd)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def first_id(data):
    """The id of the first request in raw ``data`` (what ledd answers to)."""
    return data.lstrip(b"\n").split(b"\n", 1)[0].split(b" ", 1)[0]


def exchange(runtime_dir, data, replies=1, timeout=3.0, name=None):
    """Write raw ``data`` to ledd.cmd and return the next ``replies`` lines on ``reply/<name>``.

    ``name`` defaults to the id of the first request in ``data``.
    """
    with ReplyFifo(runtime_dir, name or first_id(data)) as reply:
        assert write_cmd(runtime_dir, data) == len(data)
        return reply.read_lines(replies, timeout)


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


def pending(runtime_dir):
    """How many bytes of ledd.cmd ledd has not read yet (FIONREAD on a write end of the FIFO)."""
    cfd = os.open(Path(runtime_dir) / CMD, os.O_WRONLY | os.O_NONBLOCK)
    try:
        return struct.unpack("i", fcntl.ioctl(cfd, termios.FIONREAD, b"\0" * 4))[0]
    finally:
        os.close(cfd)

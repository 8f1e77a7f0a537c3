"""How ledd cuts the command FIFO's bytes into requests (docs/protocol.md, "Framing").

The two defects of review (issue 9): a write without LF that fills exactly one
4,096-byte read was kept when the next read said EAGAIN and glued to the next
client's request; and an overlong line written in several writes was not
skipped, so its tail ran as a command.
"""

import os

from ledd import defaults
import rawfifo
from waiting import wait_for


def leds_on(ledd):
    return [l["on"] for l in ledd.client().state()["leds"]]


def test_a_full_read_without_lf_does_not_swallow_the_next_request(ledd):
    """One 4,096-byte write whose last line, ``glue ON 0``, has no LF: it fills one read
    exactly, so only EAGAIN tells ledd the pipe is empty. The fragment is answered then, and
    the next client's request (its leading LF) must not complete it into a command that runs."""
    frag = b"glue ON 0"
    junk = b"\n" * (defaults.PIPE_BUF - len(frag)) + frag
    assert len(junk) == defaults.PIPE_BUF
    with rawfifo.ReplyFifo(ledd.runtime_dir, "glue") as glue:
        assert rawfifo.write_cmd(ledd.runtime_dir, junk) == defaults.PIPE_BUF
        lines = glue.read_lines(1, timeout=2)   # answered without any further write
        assert lines and lines[0].startswith(b"glue ERR badrequest request without LF"), lines
        lines = rawfifo.exchange(ledd.runtime_dir, b"\nhonest STATE\n", timeout=2)
        assert len(lines) == 1 and lines[0].startswith(b"honest OK {"), lines
        assert rawfifo.drain(glue.fd) == b"", "the fragment was completed into a request"
    assert leds_on(ledd) == [False, False]


def test_a_fragment_ending_a_full_read_is_answered_at_once(ledd):
    """A 4,096-byte write whose last line has no LF: that fragment is answered when the
    pipe runs empty (EAGAIN after a full read), not glued to the next request."""
    head = b"\nfirst STATE\n"
    frag = b"frag ALL"
    pad = b"\npad STATE\n" * ((defaults.PIPE_BUF - len(head) - len(frag)) // 11)
    data = head + pad
    data += b"\n" * (defaults.PIPE_BUF - len(data) - len(frag)) + frag
    assert len(data) == defaults.PIPE_BUF
    with rawfifo.ReplyFifo(ledd.runtime_dir, "frag") as reply:
        rawfifo.write_cmd(ledd.runtime_dir, data)
        lines = reply.read_lines(1, timeout=2)   # nothing else is written meanwhile
    assert lines and lines[0].startswith(b"frag ERR badrequest request without LF"), lines
    lines = rawfifo.exchange(ledd.runtime_dir, b"\nnext ON 1\n")
    assert lines[0].startswith(b"next OK "), lines
    assert leds_on(ledd) == [False, True]


def test_an_overlong_line_in_several_writes_never_runs_its_tail(ledd):
    """5,012 bytes ending in ' ALL ON', written 1,000 at a time: answered once, nothing runs."""
    line = b"long5 ON " + b"y" * (5012 - len(b"long5 ON ") - len(b"tail ALL ON\n")) + b"tail ALL ON\n"
    assert len(line) == 5012
    with rawfifo.ReplyFifo(ledd.runtime_dir, "long5") as first, rawfifo.ReplyFifo(ledd.runtime_dir, "tail") as tail:
        fd = os.open(ledd.runtime_dir / defaults.CMD_FIFO, os.O_WRONLY | os.O_NONBLOCK)
        try:
            for i in range(0, len(line), 1000):
                os.write(fd, line[i:i + 1000])
                # ledd reads each piece on its own and finds the pipe empty
                wait_for(lambda: rawfifo.pending(ledd.runtime_dir) == 0, what="ledd to read piece %d" % i)
        finally:
            os.close(fd)
        assert leds_on(ledd) == [False, False], "the overlong line's tail ran"
        lines = first.read_lines(1) + first.read_lines(1, timeout=0.5)   # the one reply, then nothing more
        assert len(lines) == 1 and lines[0].startswith(b"long5 ERR badrequest request longer than"), lines
        assert rawfifo.drain(tail.fd) == b""
    lines = rawfifo.exchange(ledd.runtime_dir, b"\nafter ON 0\n")
    assert lines[0].startswith(b"after OK "), lines
    assert leds_on(ledd) == [True, False]


def test_garbage_without_lf_cannot_glue_onto_a_request(ledd):
    """Whatever a broken writer left, the leading LF of an honest request ends it."""
    for junk in (b"ab", b"id ON", b"z" * 300, b"q" * defaults.PIPE_BUF):
        rawfifo.write_cmd(ledd.runtime_dir, junk)
        lines = rawfifo.exchange(ledd.runtime_dir, b"\nhonest TOGGLE 0\n")
        assert len(lines) == 1 and lines[0].startswith(b"honest OK "), (junk[:10], lines)
    assert leds_on(ledd) == [False, False]   # four toggles

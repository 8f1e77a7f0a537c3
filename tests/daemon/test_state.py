"""The state file: restore across restarts (blink and counters included), survival
of kill -9, corrupt or missing files, atomic writes, keyed by name."""

import os
import subprocess
import threading
from pathlib import Path

import pytest

import rawfifo
from waiting import WAIT_S, wait_for


def test_stop_start_restores_leds_blink_and_counters(ledd):
    c = ledd.client()
    c.on("red")
    c.blink("green", 120, 380)
    for _ in range(3):
        c.press("button")
        c.release("button")
    before = c.state()
    after = ledd.restart().client().state()
    # A blinking LED's level is its output at that moment: a restart starts its phase anew
    # (and a slow machine -- a sanitizer build -- reads it in either phase before).
    for s in (before, after):
        s["leds"][1].pop("level")
    assert after == before


def test_acknowledged_change_survives_kill9(ledd):
    c = ledd.client()
    s = c.blink("red", 50, 70)
    c.press(0)
    s = c.release(0)
    ledd.kill9()
    ledd.close_notify()
    ledd.notifications = []
    after = ledd.start().client().state()
    assert without_blink_phase(after) == without_blink_phase(s)


def without_blink_phase(state):
    """``state`` without a blinking LED's level: the pin's output right now, whose phase
    depends on when the state was read (on a busy machine, s may be read in an off phase)."""
    leds = [dict(l, level=None) if l["blink"] else l for l in state["leds"]]
    return dict(state, leds=leds)


def test_restored_blink_really_blinks(ledd):
    ledd.client().blink("red", 30, 30)
    c = ledd.restart().client()
    levels = set()
    wait_for(lambda: levels.add(c.state()["leds"][0]["level"]) or levels == {0, 1}, what="red's two blink phases",
             interval=0.011)


def test_missing_state_file_means_defaults_and_a_warning(ledd):
    assert "<4>no state file yet" in ledd.read_log()
    assert (ledd.state_file.read_text().splitlines()[0]) == "ledd-state 1"


@pytest.mark.parametrize("content", [
    b"",
    b"garbage\n",
    b"\x00\xff\x13binary",
    b"ledd-state 1\nled red on 1 blink 0 0",                 # truncated: no final newline
    b"ledd-state 2\nled red on 1 blink 0 0\n",               # unknown version
    b"ledd-state 1\nled red on 7 blink 0 0\n",
    b"ledd-state 1\nled red on 1 blink 5 5\n",               # period out of range
    b"ledd-state 1\nbutton button presses -3 last_press_ms -\n",
    b"ledd-state 1\nseq 99999999999999999999999\n",
    b"ledd-state 1\nled red on 1 blink 0 0\n" + b"x" * 20000 + b"\n",
])
def test_corrupt_state_file_means_defaults_and_a_warning(ledd_factory, content):
    d = ledd_factory()
    d.state_file.write_bytes(content)
    s = d.start().client().state()
    assert not any(l["on"] for l in s["leds"])
    assert s["buttons"][0]["presses"] == 0
    assert "<4>ignoring the state file" in d.read_log()
    # ... and the next change writes a good file again.
    d.client().on(0)
    assert d.state_file.read_bytes().startswith(b"ledd-state 1\n")


def test_state_is_keyed_by_name(ledd_factory, tmp_path):
    cfg = rawfifo.write_config(tmp_path / "a.conf")
    d = ledd_factory(config=cfg).start()
    d.client().on("green")
    d.client().press("button")
    d.stop()
    # Swap the LEDs, rename the button: green stays on, the new button starts at 0.
    rawfifo.write_config(cfg, leds=[("green", 27), ("red", 17)], buttons=[("stop", 22)])
    d.close_notify()
    d.notifications = []
    s = d.start().client().state()
    assert [(l["name"], l["on"]) for l in s["leds"]] == [("green", True), ("red", False)]
    assert (s["buttons"][0]["name"], s["buttons"][0]["presses"]) == ("stop", 0)


def test_unknown_names_in_state_file_are_ignored(ledd_factory):
    d = ledd_factory()
    d.state_file.write_text("ledd-state 1\nseq 5\nled red on 1 blink 0 0\nled purple on 1 blink 0 0\n"
                            "button button presses 9 last_press_ms 1763762400123\n")
    s = d.start().client().state()
    assert s["leds"][0]["on"] is True and s["seq"] == 5
    assert s["buttons"][0]["presses"] == 9 and s["buttons"][0]["last_press_ms"] == 1763762400123


def test_state_file_is_always_complete_while_written(ledd):
    """Readers racing the writer only ever see a whole old or whole new file."""
    stop = threading.Event()
    seen, bad = [0], []

    def reader():
        while not stop.is_set():
            try:
                data = ledd.state_file.read_bytes()
            except FileNotFoundError:
                bad.append("file missing")
                continue
            seen[0] += 1
            if not (data.startswith(b"ledd-state 1\n") and data.endswith(b"\n") and data.count(b"\n") == 5):
                bad.append(data)

    t = threading.Thread(target=reader)
    t.start()
    c = ledd.client()
    for i in range(200):
        c.toggle(i % 2)
    stop.set()
    t.join()
    assert seen[0] > 0 and not bad, bad[:3]
    ledd.stop()
    leftovers = [p.name for p in ledd.state_file.parent.iterdir() if p.name.startswith("state.")]
    assert leftovers == []


def test_unwritable_state_file_logs_an_error_but_keeps_serving(ledd_factory, tmp_path):
    d = ledd_factory()
    d.state_file.mkdir()  # rename over a directory fails
    d.start()
    assert d.client().on(0)["leds"][0]["on"] is True
    assert "cannot save state" in d.read_log()
    os.rmdir(d.state_file)
    d.client().off(0)
    assert d.state_file.read_text().startswith("ledd-state 1\n")


def test_state_directory_is_created(ledd_factory, tmp_path):
    d = ledd_factory()
    d.state_file = tmp_path / "newdir" / "state"
    d.start().client().on(0)
    assert d.state_file.read_text().startswith("ledd-state 1\n")


def test_counters_at_the_top_of_their_64_bit_range_survive_a_restart(ledd_factory):
    """seq and presses are 64-bit: every value ledd can write, it reads back (20 digits)."""
    d = ledd_factory()
    big_seq, big_presses = 2 ** 64 - 2, 2 ** 64 - 1
    d.state_file.write_text("ledd-state 1\nseq %d\nled red on 1 blink 0 0\nled green on 0 blink 0 0\n"
                            "button button presses %d last_press_ms 1795978892980\n" % (big_seq, big_presses))
    d.start()
    s = d.client().state()
    assert "ignoring the state file" not in d.read_log()
    assert (s["seq"], s["buttons"][0]["presses"], s["leds"][0]["on"]) == (big_seq, big_presses, True)
    assert d.client().off("red")["seq"] == big_seq + 1
    assert d.restart().client().state()["seq"] == big_seq + 1


@pytest.mark.skipif(bool(os.environ.get("LEDD_EXEC_PREFIX") or os.environ.get("LEDD_BINARY")),
                    reason="LD_PRELOAD reaches only a native, dynamically linked ledd")
def test_an_edge_is_saved_before_it_is_told(ledd_factory, tmp_path):
    """Issue 20, 9: button edges were broadcast before the state file was saved, so a watcher
    could act on a press that a crash right then would forget."""
    shim = tmp_path / "save_order.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(shim),
                    str(Path(__file__).parent / "shims" / "save_order.c"), "-ldl"], check=True)
    order = tmp_path / "order"
    d = ledd_factory(env={"LD_PRELOAD": str(shim), "SAVE_ORDER_LOG": str(order)})
    d.env["SAVE_ORDER_STATE"] = str(d.state_file)
    d.start()
    c = d.client()
    with c.watch() as w:
        w.next_event(WAIT_S)
        order.write_text("")
        c.press("button")
        c.release("button")
        w.next_event(WAIT_S)
        w.next_event(WAIT_S)
    assert order.read_text().split() == ["saved", "told", "saved", "told"]

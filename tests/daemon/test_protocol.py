"""Protocol conformance of ledd (sim backend): every verb, every reachable error code,
and a corpus of hostile request lines written raw to the command FIFO."""

import json
import time

import pytest

from ledd import defaults
from ledd.client import CommandError
import rawfifo
from waiting import WAIT_S, wait_for


def leds(state):
    return {led["name"]: led for led in state["leds"]}


# --- verbs -----------------------------------------------------------------

def test_hello(ledd):
    hello = ledd.client().hello()
    assert hello["protocol"] == defaults.PROTOCOL
    assert hello["backend"] == "sim"
    assert isinstance(hello["version"], str) and hello["version"]


def test_state_shape_matches_the_default_wiring(ledd):
    state = ledd.client().state()
    assert set(state) >= {"leds", "buttons", "seq", "backend", "protocol"}
    assert [(l["id"], l["name"], l["gpio"]) for l in state["leds"]] == [(0, "red", 17), (1, "green", 27)]
    assert [(b["id"], b["name"], b["gpio"]) for b in state["buttons"]] == [(0, "button", 22)]
    for led in state["leds"]:
        assert (led["on"], led["blink"], led["level"]) == (False, None, 0)
    button = state["buttons"][0]
    assert (button["pressed"], button["presses"], button["last_press_ms"]) == (False, 0, None)
    assert state["backend"] == "sim" and state["protocol"] == defaults.PROTOCOL


def test_on_off_by_id_and_by_name(ledd):
    c = ledd.client()
    s = c.on(0)
    assert leds(s)["red"]["on"] and leds(s)["red"]["level"] == 1 and not leds(s)["green"]["on"]
    s = c.on("green")
    assert leds(s)["green"]["on"] and leds(s)["green"]["level"] == 1
    s = c.off("red")
    assert not leds(s)["red"]["on"] and leds(s)["red"]["level"] == 0 and leds(s)["green"]["on"]
    s = c.off(1)
    assert not any(l["on"] for l in s["leds"])


def test_verbs_are_case_insensitive(ledd):
    assert leds(ledd.client().call("on", "red"))["red"]["on"]
    assert not leds(ledd.client().call("oFf", "red"))["red"]["on"]


def test_toggle(ledd):
    c = ledd.client()
    assert leds(c.toggle("red"))["red"]["on"]
    assert not leds(c.toggle("red"))["red"]["on"]
    c.blink("red", 100, 100)
    s = c.toggle("red")  # blinking counts as on: toggle switches it off
    assert (leds(s)["red"]["on"], leds(s)["red"]["blink"]) == (False, None)


def test_blink_reports_periods_and_really_blinks(ledd):
    c = ledd.client()
    s = c.blink("green", 40, 60)
    assert leds(s)["green"]["on"] is True
    assert leds(s)["green"]["blink"] == {"on_ms": 40, "off_ms": 60}
    levels = set()
    seqs = set()

    def both_phases_seen():
        st = c.state()
        levels.add(leds(st)["green"]["level"])
        seqs.add(st["seq"])
        return levels == {0, 1}
    wait_for(both_phases_seen, what="green's two blink phases", interval=0.013)
    assert len(seqs) == 1, "blink phases must not count as state changes"
    s = c.on("green")
    assert leds(s)["green"]["blink"] is None and leds(s)["green"]["level"] == 1


LOW, HIGH = defaults.BLINK_MIN_MS, defaults.BLINK_MAX_MS


@pytest.mark.parametrize("on_ms,off_ms", [(LOW - 1, 100), (100, LOW - 1), (HIGH + 1, 100), (100, HIGH + 1), (0, 0)])
def test_blink_period_out_of_range(ledd, on_ms, off_ms):
    with pytest.raises(CommandError) as err:
        ledd.client().blink(0, on_ms, off_ms)
    assert err.value.code == "badarg"


def test_blink_limits_are_inclusive(ledd):
    s = ledd.client().blink(0, LOW, HIGH)
    assert s["leds"][0]["blink"] == {"on_ms": LOW, "off_ms": HIGH}


def test_all_on_off(ledd):
    c = ledd.client()
    c.blink(1, 100, 100)
    s = c.all(True)
    assert all(l["on"] and l["blink"] is None and l["level"] == 1 for l in s["leds"])
    s = c.all(False)
    assert not any(l["on"] for l in s["leds"])
    assert c.call("ALL", "on")["leds"][0]["on"]
    with pytest.raises(CommandError) as err:
        c.call("ALL", "MAYBE")
    assert err.value.code == "badarg"


def test_press_release_counts_presses(ledd):
    c = ledd.client()
    before_ms = time.time() * 1000
    s = c.press("button")
    b = s["buttons"][0]
    assert b["pressed"] is True and b["presses"] == 1
    assert before_ms - 50 <= b["last_press_ms"] <= time.time() * 1000 + 50
    s = c.press(0)  # already pressed: no new edge, no new press
    assert s["buttons"][0]["presses"] == 1
    s = c.release(0)
    assert s["buttons"][0]["pressed"] is False and s["buttons"][0]["presses"] == 1
    assert s["buttons"][0]["last_press_ms"] == b["last_press_ms"]
    c.press(0)
    assert c.release("button")["buttons"][0]["presses"] == 2


def test_seq_counts_changes_only(ledd):
    c = ledd.client()
    seq = c.state()["seq"]
    c.hello()
    assert c.state()["seq"] == seq
    assert c.on(0)["seq"] == seq + 1
    assert c.on(0)["seq"] == seq + 1, "ON of a lit LED changes nothing"
    assert c.toggle(0)["seq"] == seq + 2
    assert c.press(0)["seq"] == seq + 3
    assert c.release(0)["seq"] == seq + 4


def test_all_refused_by_one_line_changes_nothing(ledd_factory):
    """The kernel refuses green's line: ALL answers ERR gpio and every LED stays as it was."""
    d = ledd_factory(env={"LEDD_SIM_REFUSE_GPIO": "27"}).start()
    c = d.client()
    c.on("red")
    before = c.state()
    with c.watch() as w:
        w.next_event(WAIT_S)
        for on in (False, True):
            with pytest.raises(CommandError) as err:
                c.all(on)
            assert err.value.code == "gpio" and "GPIO27" in str(err.value)
            assert c.state() == before, "the model was rolled back"
        assert w.next_event(0.3) is None, "no event for a change that did not happen"
    assert "seq %d\n" % before["seq"] in d.state_file.read_text()
    assert "led red on 1" in d.state_file.read_text()


def test_all_whose_rollback_fails_tells_the_truth(ledd_factory):
    """Issue 20, 11: ALL ON switched red, green's line refused, and red's line then refused
    to go back: the model said red was off while its line was on (drive_led()'s return was
    ignored). Now red is on in the state, the file and an event."""
    d = ledd_factory(env={"LEDD_SIM_REFUSE_GPIO": "17:1,27"}).start()   # red: one set, then EIO
    c = d.client()
    with c.watch() as w:
        before = json.loads(w.next_event(WAIT_S))
        with pytest.raises(CommandError) as err:
            c.all(True)
        assert err.value.code == "gpio" and "GPIO27" in str(err.value)
        s = c.state()
        assert [(l["on"], l["level"]) for l in s["leds"]] == [(True, 1), (False, 0)]
        assert s["seq"] == before["seq"] + 1
        assert json.loads(w.next_event(WAIT_S))["leds"][0]["on"] is True
    assert "led red on 1" in d.state_file.read_text()


# --- errors --------------------------------------------------------------------

@pytest.mark.parametrize("verb,args,code", [
    ("ON", ("2",), "notfound"),
    ("ON", ("blue",), "notfound"),
    ("OFF", ("999999999",), "notfound"),
    ("TOGGLE", ("-1",), "notfound"),
    ("BLINK", ("7", "100", "100"), "notfound"),
    ("PRESS", ("1",), "notfound"),
    ("RELEASE", ("red",), "notfound"),
    ("FLY", (), "badverb"),
    ("ON", (), "badarg"),
    ("ON", ("0", "1"), "badarg"),
    ("HELLO", ("x",), "badarg"),
    ("STATE", ("x",), "badarg"),
    ("BLINK", ("0", "100"), "badarg"),
    ("BLINK", ("0", "abc", "100"), "badarg"),
    ("BLINK", ("0", "+100", "100"), "badarg"),
    ("BLINK", ("0", "1" + "0" * defaults.MAX_DIGITS, "100"), "badarg"),
    ("ALL", (), "badarg"),
    ("WATCH", ("x",), "badarg"),
])
def test_error_codes(ledd, verb, args, code):
    c = ledd.client()
    before = c.state()
    with pytest.raises(CommandError) as err:
        c.call(verb, *args)
    assert err.value.code == code, str(err.value)
    assert str(err.value), "every error carries a human message"
    assert c.state() == before


def test_client_refuses_to_pack_two_requests_in_one_argument(ledd):
    with pytest.raises(CommandError) as err:
        ledd.client().call("ON", "1 ON\n2 OFF")
    assert err.value.code == "badarg"
    assert not any(l["on"] for l in ledd.client().state()["leds"])


# --- hostile raw lines -----------------------------------------------------------

HOSTILE = [
    # (raw bytes, expected reply id, expected code)
    (b"long1 ON " + b"0" * 300 + b"\n", b"long1", b"badrequest"),
    (b"long2 " + b"A" * 5000 + b"\n", b"long2", b"badrequest"),
    (b"nul1 ON\x000\n", b"nul1", b"badrequest"),
    (b"bin1 \xff\xfe\x00\x01\n", b"bin1", b"badrequest"),
    (b"utf1 ON \xc0\xaf\n", b"utf1", b"badrequest"),       # overlong encoding
    (b"utf2 ON \xed\xa0\x80\n", b"utf2", b"badrequest"),   # UTF-16 surrogate
    (b"utf3 ON \xe2\x82\n", b"utf3", b"badrequest"),       # truncated sequence
    (b"cr1 ON 0\r\n", b"cr1", b"badrequest"),
    (b"ctl1 ON\t0\n", b"ctl1", b"badrequest"),
    (b"del1 ON \x7f\n", b"del1", b"badrequest"),
    (b"sp1  ON 0\n", b"sp1", b"badrequest"),
    (b"sp2 ON 0 \n", b"sp2", b"badrequest"),
    (b"only-id\n", b"only-id", b"badrequest"),
    (b"verb1 LAUNCH 0\n", b"verb1", b"badverb"),
    (b"verb2 \xc3\xa9\n", b"verb2", b"badverb"),
    (b"verb3 a" + "\u00e9".encode() * 20 + b"\n", b"verb3", b"badverb"),   # quoted, cut at 32 bytes
    (b"args1 ON 0 1 2 3 4 5\n", b"args1", b"badarg"),
    (b"args2 ON red\xc3\xa9\n", b"args2", b"badarg"),
    (b"args3 ON a" + "\u00e9".encode() * 30 + b"\n", b"args3", b"badarg"),  # quoted, cut at 40 bytes
    (b"num1 BLINK 0 99999999999999999999 100\n", b"num1", b"badarg"),
    (b"num2 BLINK 0 -100 100\n", b"num2", b"badarg"),
    (b"num3 ON 99999999999999999999\n", b"num3", b"notfound"),
    (b"neg1 ON -1\n", b"neg1", b"notfound"),
    (b"neg2 PRESS -1\n", b"neg2", b"notfound"),
]

# Lines whose id cannot be read: there is no reply FIFO to answer on, so ledd
# logs them (and changes nothing).
UNANSWERABLE = [
    b"x" * 300 + b"\n",
    b"nul\x00x ON 0\n",
    b"\xff\xfe ON 0\n",
    b"    \n",
    b"i" * (defaults.MAX_ID + 1) + b" ON 0\n",
    b"bad/id ON 0\n",
    b"bad.id ON 0\n",
    b"../x ON 0\n",
]


@pytest.mark.parametrize("raw,rid,code", HOSTILE, ids=[repr(h[0][:24]) for h in HOSTILE])
def test_hostile_line_gets_its_error_and_changes_nothing(ledd, raw, rid, code):
    c = ledd.client()
    c.on("red")
    before = c.state()
    lines = rawfifo.exchange(ledd.runtime_dir, raw)
    assert len(lines) == 1, lines
    reply_id, status, rcode, message = (lines[0].split(b" ", 3) + [b""] * 4)[:4]
    assert (reply_id, status, rcode) == (rid, b"ERR", code), lines[0]
    assert message, "the error has a human message"
    assert lines[0].decode("utf-8")  # replies are valid UTF-8, whatever the request was
    assert c.state() == before
    assert c.hello()["protocol"] == defaults.PROTOCOL


@pytest.mark.parametrize("raw", UNANSWERABLE, ids=[repr(u[:24]) for u in UNANSWERABLE])
def test_line_without_a_readable_id_is_logged_and_changes_nothing(ledd, raw):
    c = ledd.client()
    c.on("red")
    before = c.state()
    rawfifo.write_cmd(ledd.runtime_dir, raw)
    assert c.state() == before   # answered after the hostile line: ledd has handled it
    assert "request without a readable id dropped" in ledd.read_log()


def test_all_hostile_lines_in_one_burst_then_normal_service(ledd):
    before = ledd.client().state()
    burst = b"".join(raw for raw, _, _ in HOSTILE) + b"".join(UNANSWERABLE)
    fifos = {rid: rawfifo.ReplyFifo(ledd.runtime_dir, rid) for _, rid, _ in HOSTILE}
    try:
        rawfifo.write_cmd(ledd.runtime_dir, burst)
        for _, rid, code in HOSTILE:
            lines = fifos[rid].read_lines(1)
            assert [l.split(b" ")[:3] for l in lines] == [[rid, b"ERR", code]]
    finally:
        for f in fifos.values():
            f.close()
    assert ledd.client().state() == before


def test_two_requests_in_one_write_get_two_replies_in_order(ledd):
    lines = rawfifo.exchange(ledd.runtime_dir, b"r1 ON 1\nr1 OFF 1\nr1 STATE\n", replies=3)
    assert [l.split(b" ")[:2] for l in lines] == [[b"r1", b"OK"]] * 3
    assert json.loads(lines[0].split(b" ", 2)[2])["leds"][1]["on"] is True
    assert json.loads(lines[2].split(b" ", 2)[2])["leds"][1]["on"] is False


def test_reply_and_state_fit_in_one_pipe_write_with_maximal_config(ledd_factory, tmp_path):
    names = ["L%0*d" % (defaults.MAX_NAME - 1, i) for i in range(defaults.MAX_LEDS)]
    cfg = rawfifo.write_config(tmp_path / "max.conf", leds=[(n, i) for i, n in enumerate(names)],
                               buttons=[("B%0*d" % (defaults.MAX_NAME - 1, i), 20 + i) for i in range(defaults.MAX_BUTTONS)])
    d = ledd_factory(config=cfg).start()
    c = d.client()
    for i in range(defaults.MAX_LEDS):
        c.blink(i, defaults.BLINK_MAX_MS, defaults.BLINK_MAX_MS)
        c.frequency(i, defaults.PWM_HZ_MAX)
    for i in range(defaults.MAX_BUTTONS):
        c.press(i)
    rid = b"i" * defaults.MAX_ID
    lines = rawfifo.exchange(d.runtime_dir, rid + b" STATE\n")
    assert len(lines[0]) + 1 < defaults.PIPE_BUF
    state = json.loads(lines[0].split(b" ", 2)[2])
    assert len(state["leds"]) == defaults.MAX_LEDS and len(state["buttons"]) == defaults.MAX_BUTTONS


def test_request_without_lf_is_an_error_not_glued_to_the_next(ledd):
    lines = rawfifo.exchange(ledd.runtime_dir, b"frag-1 ON 0")
    assert lines[0].startswith(b"frag-1 ERR badrequest "), lines
    rawfifo.write_cmd(ledd.runtime_dir, b"frag-2 ON")   # and nobody reads its reply
    wait_for(lambda: rawfifo.pending(ledd.runtime_dir) == 0, what="ledd to read the fragment")
    c = ledd.client()
    assert c.hello()["protocol"] == defaults.PROTOCOL
    assert c.on(1)["leds"][1]["on"] is True
    assert c.state()["leds"][0]["on"] is False

"""HELLO's "verbs": ledd's own verb table (verbs[] in cdaemon/src/protocol.c), reported
to clients so that a client's table can be checked against it.

The report is only worth checking against if it is the truth, so every verb it names
is sent to ledd with the arguments the report allows (accepted) and with one argument
too many, one too few and each number just out of its range (refused); its "action"
flag is checked against what --check-config accepts as a button action; and it must
match the verb table of docs/protocol.md and the fuzzer's dictionary.
"""

import itertools
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from ledd import defaults
import rawfifo

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"led", "button", "uint", "onoff"}


@pytest.fixture
def verbs(ledd):
    return ledd.client().hello()["verbs"]


SENT = itertools.count()


def send(ledd, verb, args):
    """[status, code-or-payload-start] of one request; a fresh id each (WATCH keeps its FIFO)."""
    line = " ".join(["v%d" % next(SENT), verb] + list(args)).encode() + b"\n"
    reply = rawfifo.exchange(ledd.runtime_dir, line)[0]
    return reply.split(b" ")[1:3]


def valid_args(verb, low=True):
    """Arguments the report says are good: index 0, the lowest (or highest) number, ON."""
    out = []
    for arg in verb["args"]:
        if arg["kind"] in ("led", "button"):
            out.append("0")
        elif arg["kind"] == "uint":
            out.append(str(arg["min"] if low else arg["max"]))
        else:
            out.append(arg["values"][0 if low else -1])
    return out


def test_hello_reports_every_verb_with_its_arguments(verbs):
    names = [v["name"] for v in verbs]
    assert len(names) == len(set(names)) and all(n == n.upper() for n in names), names
    for verb in verbs:
        assert set(verb) == {"name", "args", "action"}, verb
        assert isinstance(verb["action"], bool), verb
        for arg in verb["args"]:
            assert arg["kind"] in KINDS and re.fullmatch(r"[a-z_]+", arg["name"]), arg
            if arg["kind"] == "uint":
                assert 0 <= arg["min"] <= arg["max"] < 10 ** defaults.MAX_DIGITS and arg["unit"], arg
            if arg["kind"] == "onoff":
                assert arg["values"] == ["ON", "OFF"], arg
    blink = {v["name"]: v for v in verbs}["BLINK"]
    assert [(a["name"], a["kind"], a.get("min"), a.get("max")) for a in blink["args"]] == [
        ("led", "led", None, None),
        ("on_ms", "uint", defaults.BLINK_MIN_MS, defaults.BLINK_MAX_MS),
        ("off_ms", "uint", defaults.BLINK_MIN_MS, defaults.BLINK_MAX_MS),
    ]


def test_every_reported_verb_takes_exactly_the_reported_arguments(ledd, verbs):
    for verb in verbs:
        for low in (True, False):
            for name in (verb["name"], verb["name"].lower()):
                status = send(ledd, name, valid_args(verb, low))[0]
                assert status == b"OK", (name, valid_args(verb, low))
        args = valid_args(verb)
        assert send(ledd, verb["name"], args + ["0"]) == [b"ERR", b"badarg"], verb
        if args:
            assert send(ledd, verb["name"], args[:-1]) == [b"ERR", b"badarg"], verb
        for i, arg in enumerate(verb["args"]):
            wrong = []
            if arg["kind"] == "uint":
                wrong = [str(arg["max"] + 1)] + ([str(arg["min"] - 1)] if arg["min"] else [])
            elif arg["kind"] == "onoff":
                wrong = ["MAYBE"]
            else:
                wrong = ["no.such"]
            for value in wrong:
                got = send(ledd, verb["name"], args[:i] + [value] + args[i + 1:])
                assert got == [b"ERR", b"badarg"], (verb, value, got)
    assert send(ledd, "NOSUCHVERB", []) == [b"ERR", b"badverb"]


def test_action_flag_is_what_a_button_may_run(ledd_binary, verbs, tmp_path):
    for verb in verbs:
        args = []
        for arg in verb["args"]:
            args.append({"led": "red", "button": "button"}.get(arg["kind"]) or valid_args({"args": [arg]})[0])
        action = " ".join([verb["name"].lower()] + args)
        path = rawfifo.write_config(tmp_path / "a.conf", ledd_section="")
        path.write_text(path.read_text().replace("active_low = true\n", "active_low = true\non_press = %s\n" % action))
        r = subprocess.run(rawfifo.ledd_argv(ledd_binary, "--check-config", "-c", path), capture_output=True,
                           text=True, timeout=20)
        assert (r.returncode == 0) == verb["action"], (action, r.stderr)
        if not verb["action"]:
            assert "expected " in r.stderr, r.stderr


def test_docs_protocol_table_lists_the_reported_verbs(verbs):
    """docs/protocol.md's verb table: the same verbs, in order, with the same arguments."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.*?) \|", text, re.M)
    documented = [(name, args) for name, args in rows]

    def form(verb):
        if not verb["args"]:
            return "–"
        parts = ["`ON`\\|`OFF`" if a["kind"] == "onoff" else "<%s>" % a["name"] for a in verb["args"]]
        return "`%s`" % " ".join(parts) if all(p.startswith("<") for p in parts) else " ".join(parts)

    assert documented == [(v["name"], form(v)) for v in verbs]


def test_fuzz_dictionary_names_every_verb(verbs):
    words = set(re.findall(r'^"(.*)"$', (ROOT / "cdaemon" / "fuzz" / "request.dict").read_text(), re.M))
    missing = [v["name"] for v in verbs if v["name"] not in words]
    assert not missing, "cdaemon/fuzz/request.dict lacks %s" % missing


def test_hello_fits_in_one_pipe_write_with_maximal_config(ledd_factory, tmp_path):
    names = ["L%0*d" % (defaults.MAX_NAME - 1, i) for i in range(defaults.MAX_LEDS)]
    cfg = rawfifo.write_config(tmp_path / "max.conf", leds=[(n, i) for i, n in enumerate(names)],
                               buttons=[("B%0*d" % (defaults.MAX_NAME - 1, i), 20 + i)
                                        for i in range(defaults.MAX_BUTTONS)])
    d = ledd_factory(config=cfg).start()
    rid = b"i" * defaults.MAX_ID
    lines = rawfifo.exchange(d.runtime_dir, rid + b" HELLO\n")
    assert lines[0].startswith(rid + b" OK "), lines
    assert len(lines[0]) + 1 < os.sysconf("SC_PAGESIZE"), len(lines[0])
    hello = json.loads(lines[0].split(b" ", 2)[2])
    assert len(hello["buttons"]) == defaults.MAX_BUTTONS and hello["verbs"]


def test_docs_config_action_table_lists_the_action_verbs(verbs):
    """docs/config.md's table of button actions: exactly the verbs HELLO marks "action"."""
    text = (ROOT / "docs" / "config.md").read_text()
    section = text.split("### Button actions", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (`.*?) \| ", section, re.M)
    documented = {form.split()[0] for row in rows for form in re.findall(r"`([^`]+)`", row)}
    assert documented == {v["name"].lower() for v in verbs if v["action"]}


# -- the Python side's table (ledd/verbs.py, issue 22) -------------------------------------------

def test_python_verb_table_is_the_one_ledd_reports(ledd):
    """ledd.verbs.VERBS, from which every Python layer takes its verbs, says exactly what HELLO says."""
    from ledd import verbs as table

    assert table.report() == ledd.client().hello()["verbs"]


def test_clients_get_one_method_per_verb_from_the_table(ledd):
    """Client has a method for every verb with a Python form, RemoteClient for every one with a web
    form; each takes the verb's arguments by name, as written-out methods would, and sends the verb."""
    import inspect

    from ledd import verbs as table
    from ledd.client import Client
    from ledd.remote import RemoteClient

    for verb in table.VERBS:
        if verb.method is None:
            continue
        for cls, has in ((Client, True), (RemoteClient, verb.http is not None)):
            method = getattr(cls, verb.method.name, None)
            assert (method is not None) == has, (cls, verb.name)
            if has:
                assert list(inspect.signature(method).parameters) == ["self"] + list(verb.params()), verb.name
                assert method.__doc__ == verb.method.doc
    client = ledd.client()
    assert client.blink(led="red", on_ms=100, off_ms=900)["leds"][0]["blink"] == {"on_ms": 100, "off_ms": 900}
    assert client.all(on=False)["leds"][0]["on"] is False
    with pytest.raises(TypeError):
        client.on()
    with pytest.raises(TypeError):
        client.on("red", colour="blue")
    with pytest.raises(TypeError):
        client.toggle("red", "green")

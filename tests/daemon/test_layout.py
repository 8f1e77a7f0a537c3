"""The C daemon's source layout: one module per concern, no include circle, every file saying
what it does.

A module is a .c file and the header of the same name. Module A depends on module B when A's .c
reaches B's header through its includes (directly or through other headers); two modules that
depend on each other are one concern split in two, or two concerns tangled (actions.c and
state.c were, before button actions became protocol requests).
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "cdaemon" / "src"


def includes():
    return {p.name: set(re.findall(r'^#include "([^"]+)"', p.read_text(), re.M)) for p in SRC.glob("*.[ch]")}


def reached(graph, name):
    seen, todo = set(), list(graph.get(name, ()))
    while todo:
        header = todo.pop()
        if header not in seen:
            seen.add(header)
            todo.extend(graph.get(header, ()))
    return seen


def test_no_two_modules_include_each_other():
    graph = includes()
    modules = {p.stem for p in SRC.glob("*.c")}
    depends = {m: {Path(h).stem for h in reached(graph, m + ".c")} & modules - {m} for m in modules}
    circles = sorted((a, b) for a in depends for b in depends[a] if a in depends[b] and a < b)
    assert not circles, "modules that include each other: %s" % circles


def test_every_source_file_opens_with_what_it_does():
    for path in sorted(SRC.glob("*.[ch]")):
        first = path.read_text().split("\n", 1)[0]
        assert first.startswith("/* %s -- " % path.name), "%s: %r" % (path.name, first)

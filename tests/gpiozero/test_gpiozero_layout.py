"""The factory's source: ledd's verbs come from the one table (ledd/verbs.py), never
spelled out by hand, and no module past the size a reader takes in at once."""

import re

from ledd.verbs import VERBS
from zerostack import ROOT

PACKAGE = ROOT / "ledd" / "gpiozero_factory"
MAX_LINES = 600


def test_the_factory_spells_no_verb_by_hand():
    """It calls the methods ledd.verbs makes (factory.ledd.on(...)), as every client does."""
    names = "|".join(re.escape(v.name) for v in VERBS)
    quoted = re.compile(r"""(["'])(%s)\1""" % names)
    found = ["%s:%d: %s" % (path.name, n, line.strip())
             for path in sorted(PACKAGE.glob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if quoted.search(line)]
    assert not found, "verbs spelled by hand:\n" + "\n".join(found)


def test_no_module_of_the_factory_is_too_long():
    lengths = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert lengths and max(lengths.values()) <= MAX_LINES, lengths

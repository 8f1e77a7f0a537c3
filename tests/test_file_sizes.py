"""The project's shape: no source file grows past what one reader holds in mind (tests/daemon/test_layout.py
checks the C modules' includes).

A C file past ~500 lines or a Python or JavaScript file past ~600 has become two concerns (issue 22):
split it along the seam, as fifo.c and gpio_chardev.c were split, rather than raising the limit here.
The test files count too: a test module that long mixes layers.
"""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The most lines a file of each kind may have ("about 500" / "about 600": a few lines of slack, so
#: that a comment never forces a split).
MAX_LINES = {".c": 520, ".h": 520, ".py": 620, ".js": 620}


def tracked_sources():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = [ROOT / p for p in out.decode().split("\0") if p]
    return [p for p in paths if p.suffix in MAX_LINES and p.is_file()]


def test_no_source_file_is_past_its_size():
    sources = tracked_sources()
    assert any(p.suffix == ".c" for p in sources) and any(p.suffix == ".js" for p in sources), sources
    too_long = {}
    for path in sources:
        with path.open("rb") as f:
            lines = sum(1 for _ in f)
        if lines > MAX_LINES[path.suffix]:
            too_long[str(path.relative_to(ROOT))] = lines
    assert not too_long, "split these along a concern (limits %s): %s" % (MAX_LINES, too_long)

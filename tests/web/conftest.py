"""Fixtures for the web tests (the helpers live in webstack.py, shared with bench/web.py).

``lighttpd_factory(runtime_dir)`` starts the real lighttpd with lighttpd.conf on
a free port; ``web`` is one in front of the ``ledd`` fixture (a real sim ledd).
"""

import shutil
import subprocess
import sys

import pytest

from webstack import ROOT, Lighttpd

@pytest.fixture(scope="session")
def board_json(tmp_path_factory):
    """board.json for the default board, generated the way deploy.sh does it (never into the tree)."""
    out = tmp_path_factory.mktemp("board") / "board.json"
    subprocess.run([sys.executable, "-m", "ledd.board", "--out", str(out)], cwd=ROOT, check=True)
    return out


@pytest.fixture
def lighttpd_factory(tmp_path):
    """Start lighttpd with our config for a given runtime dir; stopped at teardown."""
    made = []

    def make(runtime_dir):
        server = Lighttpd(runtime_dir, tmp_path / ("lighttpd%d" % len(made))).start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def web(ledd, lighttpd_factory, board_json):
    """lighttpd in front of a running sim ledd; ``web.ledd`` is the daemon."""
    server = lighttpd_factory(ledd.runtime_dir)
    shutil.copy(board_json, server.workdir / "board.json")  # served as /board.json (lighttpd.conf)
    server.ledd = ledd
    return server

"""Fixtures for the web tests (the helpers live in webstack.py, shared with bench/web.py).

``lighttpd_factory(runtime_dir)`` starts the real lighttpd with lighttpd.conf on
a free port; ``web`` is one in front of the ``ledd`` fixture (a real sim ledd).
``browser`` is headless Chromium in the browser language ``locale`` (dashboard.py
has the browser tests' helpers).
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


@pytest.fixture
def locale():
    """The browser's language (navigator.languages, Accept-Language); tests parametrize it."""
    return "en-US"


@pytest.fixture
def browser(tmp_path, locale):
    """A Playwright browser context; Playwright is imported here so that only browser tests need it."""
    from dashboard import ARGS, CHROMIUM, TIMEOUT_MS, playwright_sync

    if not shutil.which(CHROMIUM):
        pytest.fail("Chromium is missing: tests/run installs it")
    with playwright_sync.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1100, "height": 900}, locale=locale)
        context.set_default_timeout(TIMEOUT_MS)
        playwright_sync.expect.set_options(timeout=TIMEOUT_MS)
        yield context
        context.close()

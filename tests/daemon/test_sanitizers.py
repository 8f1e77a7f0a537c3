"""ledd under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer at exit).

1. Build ledd with ``-fsanitize=address,undefined`` out of tree.
2. Run the daemon test suite (tests/daemon, minus the fuzz, sanitizer and
   cross-build tests, wake-up counting and anything marked slow) and the ledctl tests (watch,
   daemon restarts) in a pytest subprocess with
   ``LEDD_BINARY`` pointing at that build. A small plugin, loaded into that
   run, stops every still-running ledd with SIGTERM at teardown (the shared
   fixture would SIGKILL it), so LeakSanitizer gets to check every daemon.
   Fail if that pytest fails, or if any ledd.log holds a sanitizer report.
3. An explicit leak test: every verb, watchers (one dropped, one still open
   at exit), hostile lines, SIGHUP reloads with and without a wiring change,
   then SIGTERM: exit 0 and a clean log.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ledd.client import CommandError
from ledd import defaults
import rawfifo
from waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
SANITIZE = "-fsanitize=address,undefined"
ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1:halt_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
#: Words that start every ASan/LSan/UBSan report.
REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)")
#: Our own tests: fuzzing has its own sanitizers, cross builds are not x86.
EXCLUDED = ["test_fuzz.py", "test_sanitizers.py", "test_cross.py"]
PLUGIN = '''
"""Loaded by test_sanitizers.py into the daemon test run: SIGTERM, not SIGKILL, at teardown."""
import signal

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    import sys

    for module in list(sys.modules.values()):
        cls = getattr(module, "LeddProcess", None)
        if cls is None or getattr(cls, "_sanitizer_patched", False):
            continue
        original = cls.close

        def close(self, original=original):
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(30)  # LeakSanitizer runs at exit: give it time
                except Exception:
                    pass
            original(self)

        cls.close = close
        cls._sanitizer_patched = True
'''


def build_asan(cdaemon, out):
    flags = "%s -fno-sanitize-recover=all -g -fno-omit-frame-pointer" % SANITIZE
    subprocess.run(["make", "-s", "-C", str(cdaemon), "O=%s" % out, "EXTRA_CFLAGS=%s" % flags,
                    "EXTRA_LDFLAGS=%s" % SANITIZE], check=True)
    return out / "ledd"


@pytest.fixture(scope="module")
def asan_ledd(tmp_path_factory):
    return build_asan(ROOT / "cdaemon", tmp_path_factory.mktemp("asan"))


def sanitizer_reports(directory):
    """(log path, report excerpt) for every ledd.log under directory that holds a report."""
    found = []
    for log in sorted(Path(directory).rglob("ledd.log")):
        text = log.read_text(errors="replace")
        match = REPORT.search(text)
        if match:
            start = max(0, text.rfind("\n", 0, max(0, match.start() - 200)))
            found.append((log, text[start:start + 3000]))
    return found


def test_sanitizer_build_really_is_instrumented(asan_ledd):
    symbols = subprocess.run(["nm", str(asan_ledd)], capture_output=True, text=True, check=True).stdout
    assert "__asan_init" in symbols and "__ubsan_handle" in symbols


def test_daemon_suite_under_sanitizers(asan_ledd, tmp_path):
    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "ledd_sanitizer_plugin.py").write_text(textwrap.dedent(PLUGIN))
    env = dict(os.environ, LEDD_BINARY=str(asan_ledd), **ENV)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_dir), env.get("PYTHONPATH")]))
    env.pop("LEDD_EXEC_PREFIX", None)
    base = tmp_path / "run"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "ledd_sanitizer_plugin", "-m", "not slow and not timing",
           "--basetemp=%s" % base, "-o", "cache_dir=%s" % (tmp_path / "cache"), "-p", "no:cacheprovider"]
    cmd += ["--ignore=%s" % (ROOT / "tests" / "daemon" / name) for name in EXCLUDED]
    cmd += [str(ROOT / "tests" / "daemon"), str(ROOT / "tests" / "cli" / "test_ledctl.py")]
    result = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=1500)
    reports = sanitizer_reports(base)
    summary = result.stdout[-6000:]
    assert not reports, "sanitizer report(s):\n\n" + "\n\n".join("%s:\n%s" % r for r in reports[:3])
    assert result.returncode == 0, "daemon tests failed under ASan/UBSan:\n" + summary + result.stderr[-2000:]
    assert re.search(r"\d+ passed", summary), summary
    stopped = [log for log in base.rglob("ledd.log") if "stopped" in log.read_text(errors="replace")]
    assert len(stopped) >= 10, "expected many ledds stopped by SIGTERM (leak-checked), found %d" % len(stopped)


def reload(daemon, expect, timeout=10):
    """SIGHUP and wait for one more log line containing ``expect``."""
    before = daemon.read_log().count(expect)
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: daemon.read_log().count(expect) > before, timeout,
             what=lambda: "%r after SIGHUP:\n%s" % (expect, daemon.read_log()))


def test_every_verb_then_sigterm_is_leak_free(asan_ledd, ledd_factory, tmp_path):
    log = exercise_then_stop(asan_ledd, ledd_factory, tmp_path)
    assert not REPORT.search(log), log


def test_a_planted_leak_is_caught(ledd_factory, tmp_path):
    """The same scenario with a leak planted in a copy of the sources must fail: the check can fail."""
    cdaemon = tmp_path / "cdaemon"
    shutil.copytree(ROOT / "cdaemon", cdaemon, ignore=shutil.ignore_patterns("build", "ledd", "fuzz"))
    protocol = cdaemon / "src" / "protocol.c"
    text = protocol.read_text()
    anchor = "const char *protocol_code_name(enum proto_code code)\n{\n"
    assert anchor in text, "protocol.c changed: update the planted leak"
    leak = "\tstatic void *volatile leak;\n\tleak = malloc(64);\n\tif (leak)\n\t\tleak = NULL;\n"
    protocol.write_text("#include <stdlib.h>\n" + text.replace(anchor, anchor + leak))
    binary = build_asan(cdaemon, tmp_path / "build")
    with pytest.raises(AssertionError) as failure:
        exercise_then_stop(binary, ledd_factory, tmp_path)
    assert "LeakSanitizer" in str(failure.value)


def exercise_then_stop(binary, ledd_factory, tmp_path):
    """Every verb, watchers, hostile lines, reloads, SIGTERM; asserts exit 0 and returns the log."""
    config = tmp_path / "ledd.conf"
    config.write_text((ROOT / "cdaemon" / "ledd.conf").read_text())
    daemon = ledd_factory(binary=binary, config=config, env=ENV).start()
    client = daemon.client(timeout=5)
    assert client.hello()["protocol"] == defaults.PROTOCOL
    client.state()
    client.on("red")
    client.off(0)
    client.toggle("green")
    client.blink("red", 20, 20)
    levels = set()   # ledd blinks red through a few phases (timerfd path)
    wait_for(lambda: levels.add(client.state()["leds"][0]["level"]) or len(levels) == 2, what="red's blink phases")
    client.all(True)
    client.all(False)
    client.press("button")
    client.release("button")
    for bad in (lambda: client.on("nosuch"), lambda: client.blink(0, 1, 1), lambda: client.call("FROB")):
        with pytest.raises(CommandError):
            bad()
    hostile = (b"x" * 300 + b"\n" + b"id ON\x00 0\n" + b"id ON \xff\n" + b"id BLINK 0 999999999 1\n"
               + b"id " + b"A" * 5000 + b"\n" + b"\xff no id\n")
    assert len(rawfifo.exchange(daemon.runtime_dir, hostile, replies=4, timeout=5, name="id")) == 4
    dropped = client.watch()
    dropped.next_event(5)
    dropped.close()  # ledd drops it on the next event
    kept = client.watch()
    kept.next_event(5)
    client.on("green")
    kept.next_event(5)
    reload(daemon, "reloaded: nothing changed")
    config.write_text(config.read_text().replace("[led green]", "[led yellow]"))
    reload(daemon, "reloaded: lines requested again")
    assert client.state()["leds"][1]["name"] == "yellow", daemon.read_log()
    config.write_text("[led broken\n")
    reload(daemon, "reload failed")
    assert daemon.stop(timeout=30) == 0, daemon.read_log()
    kept.close()
    log = daemon.read_log()
    assert "stopped" in log
    return log

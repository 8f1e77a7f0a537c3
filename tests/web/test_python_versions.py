"""The CGI scripts and ledctl on Python 3.13, the interpreter of Raspberry Pi OS trixie.

The main suite runs on this machine's Debian bookworm Python (3.11). Python 3.13
removed the ``cgi`` module and turned some warnings into errors, so this test
builds a minimal Debian trixie root (debootstrap, cached in ``$LEDD_CACHE_DIR``),
copies the Python side of the project into it, and runs the real CGI scripts
there with ``chroot``, against a real ledd whose runtime directory lives inside
that root. Nothing is mocked: the scripts open the same FIFOs as on a Pi.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
TRIXIE_MIRROR = "http://deb.debian.org/debian"
#: Bump to rebuild the cached root when its recipe changes.
RECIPE = "trixie-minbase-python3-v1"
INSTALL_DIR = "/opt/ledd"
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"

pytestmark = pytest.mark.slow


def _cache_dir():
    return Path(os.environ.get("LEDD_CACHE_DIR") or Path.home() / ".cache" / "ledd-tests")


@pytest.fixture(scope="module")
def trixie_root():
    """A Debian trixie root with python3 (3.13), built once and cached."""
    if os.geteuid() != 0:
        pytest.skip("debootstrap and chroot need root (tests/run runs as root in CI)")
    if not shutil.which("debootstrap"):
        pytest.fail("debootstrap is missing: tests/run installs it")
    root = _cache_dir() / RECIPE
    if not (root / "usr" / "bin" / "python3").exists():
        partial = root.with_name(RECIPE + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        build = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3", "trixie", str(partial), TRIXIE_MIRROR],
            capture_output=True, text=True, timeout=900)
        assert build.returncode == 0, "debootstrap trixie failed:\n" + build.stdout[-3000:] + build.stderr[-3000:]
        shutil.rmtree(root, ignore_errors=True)
        partial.rename(root)
    return root


@pytest.fixture
def installed(trixie_root):
    """The project's Python side copied into the trixie root, as deploy.sh lays it out."""
    target = trixie_root / INSTALL_DIR.lstrip("/")
    shutil.rmtree(target, ignore_errors=True)
    for part in ("ledd", "cgi-bin", "bin"):
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, target / part, ignore=shutil.ignore_patterns("__pycache__"))
    yield target
    shutil.rmtree(target, ignore_errors=True)


@pytest.fixture
def daemon_in_root(trixie_root, ledd_factory):
    """A sim ledd whose runtime directory is inside the trixie root."""
    workdir = trixie_root / "tmp" / ("ledd-%d-%d" % (os.getpid(), time.monotonic_ns()))
    proc = ledd_factory(workdir=workdir).start()
    proc.chroot_runtime_dir = "/" + str(proc.runtime_dir.relative_to(trixie_root))
    yield proc
    proc.close()
    shutil.rmtree(workdir, ignore_errors=True)


def chroot_run(root, argv, env=None, stdin=b"", timeout=20):
    base = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run([CHROOT, str(root)] + argv, input=stdin, capture_output=True,
                          env=dict(base, **(env or {})), timeout=timeout)


def cgi(root, script, runtime_dir, method="GET", uri="/api/state", body=b"", content_type=""):
    """Run a CGI script inside the root the way lighttpd does: no PATH, CGI variables, body on stdin."""
    env = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": method,
        "REQUEST_URI": uri,
        "SCRIPT_NAME": uri,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "LEDD_RUNTIME_DIR": runtime_dir,
    }
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
        env["CONTENT_TYPE"] = content_type
    result = subprocess.run([CHROOT, str(root), INSTALL_DIR + "/cgi-bin/" + script], input=body,
                            capture_output=True, env=env, timeout=20)
    head, _, payload = result.stdout.partition(b"\r\n\r\n")
    if not payload:
        head, _, payload = result.stdout.partition(b"\n\n")
    return result, head.decode("latin-1"), payload


def status_of(head):
    for line in head.splitlines():
        if line.lower().startswith("status:"):
            return int(line.split()[1])
    return 200


def test_root_has_python_3_13(trixie_root):
    out = chroot_run(trixie_root, ["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() == "3.13"


def test_every_module_compiles_without_warnings(trixie_root, installed):
    """3.12+ turns invalid escapes into SyntaxWarning; -W error makes any such warning fail here."""
    out = chroot_run(trixie_root, ["/usr/bin/python3", "-W", "error", "-m", "compileall", "-q", "-f",
                                   INSTALL_DIR + "/ledd", INSTALL_DIR + "/cgi-bin"])
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()


def test_state_cgi_answers_on_3_13(trixie_root, installed, daemon_in_root):
    result, head, payload = cgi(trixie_root, "api.py", daemon_in_root.chroot_runtime_dir)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b"", result.stderr.decode()
    assert status_of(head) == 200, head
    assert "application/json" in head.lower()
    import json

    state = json.loads(payload)
    assert state["backend"] == "sim" and len(state["leds"]) >= 2


def test_post_cgi_switches_an_led_on_3_13(trixie_root, installed, daemon_in_root):
    result, head, payload = cgi(trixie_root, "api.py", daemon_in_root.chroot_runtime_dir, method="POST",
                                uri="/api/leds/1", body=b'{"on": true}', content_type="application/json")
    assert status_of(head) == 200, head + payload.decode(errors="replace") + result.stderr.decode()
    assert daemon_in_root.client().state()["leds"][1]["on"] is True


def test_bad_request_is_json_not_a_traceback_on_3_13(trixie_root, installed, daemon_in_root):
    result, head, payload = cgi(trixie_root, "api.py", daemon_in_root.chroot_runtime_dir, method="POST",
                                uri="/api/leds/0", body=b'{"on": tru', content_type="application/json")
    assert status_of(head) == 400, head
    assert b"Traceback" not in result.stdout + result.stderr
    import json

    assert json.loads(payload)["code"]


def test_events_cgi_streams_the_first_state_on_3_13(trixie_root, installed, daemon_in_root):
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "REQUEST_URI": "/api/events",
           "SCRIPT_NAME": "/api/events", "HTTP_HOST": "127.0.0.1",
           "LEDD_RUNTIME_DIR": daemon_in_root.chroot_runtime_dir}
    proc = subprocess.Popen([CHROOT, str(trixie_root), INSTALL_DIR + "/cgi-bin/events.py"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = b""
        os.set_blocking(proc.stdout.fileno(), False)

        def first_event():
            nonlocal seen
            seen += proc.stdout.read() or b""
            return b"data:" in seen
        wait_for(first_event, what="the stream's first event", interval=0.05)
        assert b"text/event-stream" in seen
        assert b"data:" in seen and b'"leds"' in seen
    finally:
        proc.kill()
        proc.wait()


def test_ledctl_runs_on_3_13(trixie_root, installed, daemon_in_root):
    if not (installed / "bin" / "ledctl").exists():
        pytest.fail("bin/ledctl is missing")
    out = chroot_run(trixie_root, [INSTALL_DIR + "/bin/ledctl", "--runtime-dir", daemon_in_root.chroot_runtime_dir,
                                   "--json", "status"])
    assert out.returncode == 0, out.stderr.decode()
    assert b'"leds"' in out.stdout


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))

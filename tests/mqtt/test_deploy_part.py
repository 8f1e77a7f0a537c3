"""deploy.d/mqtt.sh, the functions deploy.sh calls for --mqtt, run in a harness with staged paths.

deploy.sh itself is wired to them by the lead (see the file's header); here
each function runs with stand-ins for deploy.sh's helpers that write under a
DESTDIR, so nothing on this machine changes. The --local part runs the real
bridge against a real broker and ledd.
"""

import os
import shutil
import signal
import stat
import subprocess

import pytest

from mqttstack import PASSWORD, ROOT, SYSTEM_PYTHON, USER
from waiting import wait_for

PART = ROOT / "deploy.d" / "mqtt.sh"

HARNESS = r'''
set -Eeuo pipefail
ROOT=%(root)s DESTDIR=$1 DRY_RUN=${DRY_RUN:-0}; shift
TMP_DIR=$(mktemp -d) CONF_DIR=/etc/ledd UNIT_DIR=/etc/systemd/system DAEMON_USER=ledd PYTHON=%(python)s
RELOAD_SYSTEMD=0 LOCAL_PIDS=() LOCAL_RUN=${LOCAL_RUN:-}
info() { printf 'info: %%s\n' "$*"; }
warn() { printf 'warn: %%s\n' "$*" >&2; }
fatal() { printf 'fatal: %%s\n' "$*" >&2; exit 1; }
note_change() { info "$*"; }
run() { info "run: $*"; }
journal() { printf '%%s\n' "$*" >>"$DESTDIR/journal"; }
tmp_file() { mktemp "$TMP_DIR/XXXXXX"; }
put_dir() { mkdir -p "$DESTDIR$1"; chmod "$2" "$DESTDIR$1"; }
put_file() {
	local src=$1 dest=$DESTDIR$2 mode=$3 flag=${6:-}
	if [ -f "$dest" ] && cmp -s "$src" "$dest"; then return 0; fi
	note_change "install $2"
	if [ -n "$flag" ]; then printf -v "$flag" 1; fi
	mkdir -p "$(dirname "$dest")"
	journal file "$2"
	install -m "$mode" "$src" "$dest"
}
# shellcheck source=/dev/null
. "$ROOT/deploy.d/mqtt.sh"
# shellcheck source=/dev/null
. "$ROOT/deploy.d/local.sh"  # the local run's supervisor, which mqtt_local_start uses
LOCAL_START_LIMIT_BURST=10 LOCAL_START_LIMIT_S=60
"$@"
echo "MQTT_RESTART=$MQTT_RESTART RELOAD_SYSTEMD=$RELOAD_SYSTEMD"
'''


def harness(destdir, *args, stdin="", env=None):
    script = HARNESS % {"root": ROOT, "python": SYSTEM_PYTHON}
    return subprocess.run(["bash", "-c", script, "harness", str(destdir), *args], input=stdin, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, **(env or {})), stdin=None)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="no shellcheck")
def test_shellcheck_clean():
    proc = subprocess.run(["shellcheck", "-x", str(PART)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("url,message", [
    ("http://broker", "is not mqtt://"),
    ("mqtt://pi:secret@broker", "the URL carries a password"),
    ("mqtt://broker:port", "is not mqtt://"),
    ("mqtt://bro ker", "is not mqtt://"),
])
def test_preflight_refuses_bad_urls(tmp_path, url, message):
    proc = harness(tmp_path, "mqtt_preflight", env={"MQTT_URL": url})
    assert proc.returncode == 1 and message in proc.stderr
    assert "secret" not in proc.stdout + proc.stderr  # a password given by mistake is not echoed


def test_config_password_and_unit_are_staged_and_journaled(tmp_path):
    env = {"MQTT_URL": "mqtts://%s@broker.lan:8883" % USER, "MQTT_PASSWORD_STDIN": "1"}
    script = "mqtt_step_config; mqtt_step_password; mqtt_step_unit"
    proc = harness(tmp_path, "eval", script, stdin=PASSWORD + "\n", env=env)
    assert proc.returncode == 0, proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    conf = tmp_path / "etc/ledd/mqtt.conf"
    assert "\nurl = mqtts://%s@broker.lan:8883\n" % USER in conf.read_text()
    check = subprocess.run([SYSTEM_PYTHON, str(ROOT / "bin/ledd-mqtt"), "--check-config", "-c", str(conf)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    secret = tmp_path / "etc/ledd/credentials/mqtt-password"
    assert secret.read_text() == PASSWORD + "\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    assert (tmp_path / "etc/systemd/system/ledd-mqtt.service").read_text() == (ROOT / "systemd/ledd-mqtt.service").read_text()
    assert "MQTT_RESTART=1 RELOAD_SYSTEMD=1" in proc.stdout
    journal = (tmp_path / "journal").read_text().split("\n")
    assert "file /etc/ledd/mqtt.conf" in journal and "file /etc/ledd/credentials/mqtt-password" in journal

    # A re-run with another URL: only the url line changes, the owner's edits and the password stay.
    conf.write_text(conf.read_text().replace("# qos = 1", "qos = 2"))
    proc = harness(tmp_path, "eval", script, env={"MQTT_URL": "mqtt://%s@other.lan" % USER})
    assert proc.returncode == 0, proc.stderr
    text = conf.read_text()
    assert "\nurl = mqtt://%s@other.lan\n" % USER in text and "\nqos = 2\n" in text
    assert "MQTT password: kept" in proc.stdout
    assert secret.read_text() == PASSWORD + "\n"
    proc = harness(tmp_path, "eval", script, env={"MQTT_URL": "mqtt://%s@other.lan" % USER})
    assert "MQTT_RESTART=0 RELOAD_SYSTEMD=0" in proc.stdout  # nothing changed: no restart


def test_no_user_in_the_url_stores_an_empty_password(tmp_path):
    proc = harness(tmp_path, "eval", "mqtt_step_password", env={"MQTT_URL": "mqtt://broker.lan"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "etc/ledd/credentials/mqtt-password").read_text() == ""


def test_local_run_starts_the_bridge_beside_ledd(ledd, broker, probe, tmp_path):
    p = probe("ledd/+/availability", "homeassistant/#")
    env = {"MQTT_URL": broker.url(), "MQTT_PASSWORD_STDIN": "1", "LOCAL_RUN": str(ledd.runtime_dir)}
    # The bridge's supervisor (a forked bash) keeps every descriptor the harness has: give it a
    # file, not the harness's pipes, with exec (a redirection of the call would save the pipes).
    script = 'exec >>"$DESTDIR/local.out" 2>&1; mqtt_local_start; echo "${LOCAL_PIDS[0]}" >"$DESTDIR/pid"; disown -a'
    proc = harness(tmp_path, "eval", script, stdin=PASSWORD + "\n", env=env)
    assert proc.returncode == 0, (tmp_path / "local.out").read_text()
    pid = int((tmp_path / "pid").read_text())
    try:
        msg = p.wait(lambda m: m[1].endswith("-local/availability") and m[2] == b"online", what="local bridge online")
        p.wait(lambda m: m[1].startswith("homeassistant/light/") and m[1].endswith("_local/gpio17/config"),
               what="discovery of the local Pi")
        base = msg[1].rsplit("/", 1)[0]
        p.publish(base + "/led/red/set", "ON")
        wait_for(lambda: ledd.client().state()["leds"][0]["on"], what="red on through the local bridge")
        secret = ledd.runtime_dir / "mqtt-password"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    finally:
        os.kill(pid, signal.SIGTERM)
    harness(tmp_path, "eval", "MQTT_LOCAL_SECRET=%s/mqtt-password; mqtt_local_cleanup" % ledd.runtime_dir, env=env)
    assert not (ledd.runtime_dir / "mqtt-password").exists()

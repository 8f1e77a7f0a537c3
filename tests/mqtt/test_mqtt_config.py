"""mqtt.conf: parsing, file:line errors, --check-config, and where the password may come from."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledd import defaults
from ledd.mqtt import config as mqtt_config
from mqttstack import PASSWORD, ROOT, SYSTEM_PYTHON, WAIT_S, write_config

EXAMPLE = ROOT / "systemd" / "mqtt.conf.example"


def run_cli(*args, python=sys.executable, env=None):
    full_env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    full_env.update(PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([python, "-m", "ledd.mqtt", *args], cwd=ROOT, capture_output=True, text=True,
                          env=full_env, timeout=30)


def test_full_config_parses(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    cfg = mqtt_config.parse(
        "# comment\n[broker]\nurl = mqtts://pi@broker.lan:8884   # inline comment\nca_file = %s\n"
        "client_id = kitchen-pi\nkeepalive = 30\nqos = 2\r\n\n"
        "[bridge]\nbase_topic = house/kitchen/ledd\ndevice_id = kitchen\ndevice_name = Kitchen Pi\n"
        "runtime_dir = /run/ledd\nrate_limit = 5\nrate_burst = 10\n"
        "[homeassistant]\ndiscovery = no\ndiscovery_prefix = ha\nled_component = switch\n" % ca, "f.conf")
    assert (cfg.tls, cfg.host, cfg.port, cfg.username) == (True, "broker.lan", 8884, "pi")
    assert (cfg.ca_file, cfg.client_id, cfg.keepalive, cfg.qos) == (str(ca), "kitchen-pi", 30, 2)
    assert (cfg.base_topic, cfg.device_id, cfg.device_name) == ("house/kitchen/ledd", "kitchen", "Kitchen Pi")
    assert (cfg.rate_limit, cfg.rate_burst, cfg.discovery, cfg.discovery_prefix, cfg.led_component) == (
        5, 10, False, "ha", "switch")


def test_defaults():
    cfg = mqtt_config.parse("[broker]\nurl = mqtt://[::1]\n")
    assert (cfg.tls, cfg.host, cfg.port, cfg.username) == (False, "::1", defaults.MQTT_PORT, None)
    assert cfg.base_topic == "ledd/" + mqtt_config.hostname()
    assert (cfg.qos, cfg.discovery, cfg.discovery_prefix, cfg.led_component) == (1, True, "homeassistant", "light")
    assert mqtt_config.parse("[broker]\nurl = mqtts://b\n").port == defaults.MQTTS_PORT


ERRORS = [
    ("url = mqtt://b\n", 1, "outside a section"),
    ("[broker]\nurl = http://b\n", 2, "url: 'http://b' is not mqtt://"),
    ("[broker]\nurl = mqtt://pi:hunter2@b\n", 2, "the URL carries a password"),
    ("[broker]\nurl = mqtt://b:99999\n", 2, "port 99999 is out of range"),
    ("[broker]\nurl = mqtt://b\nurl = mqtt://c\n", 3, "url: set twice (first on line 2)"),
    ("[broker]\nurl = mqtt://b\npassword = x\n", 3, "unknown key 'password' in [broker]"),
    ("[broker]\nurl = mqtt://b\nqos = 3\n", 3, "qos: '3' is not a number from 0 to 2"),
    ("[broker]\nurl = mqtt://b\nkeepalive = 1\n", 3, "keepalive: '1' is not a number from 5 to 3600"),
    ("[broker]\nurl = mqtt://b\nca_file = /nonexistent/ca.crt\n", 3, "ca_file: /nonexistent/ca.crt: no such file"),
    ("[broker]\nurl = mqtt://b\npassword_file = relative\n", 3, "password_file: 'relative' is not an absolute path"),
    ("[broker]\nurl = mqtt://b\nqos\n", 3, "expected 'key = value'"),
    ("[broker]\nurl = mqtt://b\nqos =\n", 3, "qos: missing value"),
    ("[broker]\nurl = mqtt://u@b\nusername = v\n", 3, "username: already given in the url"),
    ("[brokers]\n", 1, "unknown section [brokers]"),
    ("[broker\n", 1, "section header must end with ']'"),
    ("[broker]\nurl = mqtt://b\n[broker]\n", 3, "a second [broker] section"),
    ("[broker]\nurl = mqtt://b\n[bridge]\nbase_topic = ledd/+/x\n", 4, "contains a wildcard"),
    ("[broker]\nurl = mqtt://b\n[bridge]\nbase_topic = /ledd\n", 4, "has an empty level"),
    ("[broker]\nurl = mqtt://b\n[bridge]\ndevice_id = my pi\n", 4, "device_id: 'my pi' may only use"),
    ("[broker]\nurl = mqtt://b\n[bridge]\nrate_limit = 0\n", 4, "rate_limit: '0' is not a number from 1 to 1000"),
    ("[broker]\nurl = mqtt://b\n[bridge]\nrate_limit = 50\nrate_burst = 10\n", 5, "rate_burst: 10 is below rate_limit"),
    ("[broker]\nurl = mqtt://b\n[homeassistant]\nled_component = lamp\n", 4, "'lamp' is not light or switch"),
    ("[broker]\nurl = mqtt://b\n[homeassistant]\ndiscovery = maybe\n", 4, "'maybe' is not a boolean"),
    ("[broker]\nurl = mqtt://b\nclient_id = a\x01b\n", 3, "control character"),
    ("[broker]\nurl = mqtt://b\n" + "# " + "x" * 600 + "\n", 3, "line longer than 511 bytes"),
    ("[broker]\n", 0, "no url in [broker]"),
]


@pytest.mark.parametrize("text,line,message", ERRORS, ids=[e[2][:30] for e in ERRORS])
def test_errors_name_file_line_and_problem(text, line, message):
    with pytest.raises(mqtt_config.ConfigError) as info:
        mqtt_config.parse(text, "/etc/ledd/mqtt.conf")
    expected = "/etc/ledd/mqtt.conf:%d: " % line if line else "/etc/ledd/mqtt.conf: "
    assert str(info.value).startswith(expected), str(info.value)
    assert message in str(info.value)


def test_tls_files_need_mqtts_and_go_together(tmp_path):
    f = tmp_path / "x.pem"
    f.write_text("x")
    with pytest.raises(mqtt_config.ConfigError, match=r":3: ca_file: needs an mqtts:// url"):
        mqtt_config.parse("[broker]\nurl = mqtt://b\nca_file = %s\n" % f, "m.conf")
    with pytest.raises(mqtt_config.ConfigError, match=r":3: cert_file: cert_file and key_file go together"):
        mqtt_config.parse("[broker]\nurl = mqtts://b\ncert_file = %s\n" % f, "m.conf")


def test_password_from_file_or_systemd_credential_only(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    cfg = mqtt_config.parse("[broker]\nurl = mqtt://b\npassword_file = %s\n" % secret)
    assert cfg.password({}) == "from-file"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / defaults.MQTT_PASSWORD_CREDENTIAL).write_text("from-credential")
    cfg = mqtt_config.parse("[broker]\nurl = mqtt://b\n")
    assert cfg.password({"CREDENTIALS_DIRECTORY": str(creds)}) == "from-credential"
    assert cfg.password({}) is None
    assert cfg.password({"MQTT_PASSWORD": "x", "LEDD_MQTT_PASSWORD": "y"}) is None  # never the environment


@pytest.mark.parametrize("python", [sys.executable, SYSTEM_PYTHON], ids=["venv", "system"])
def test_check_config_cli(tmp_path, python):
    good = tmp_path / "good.conf"
    good.write_text("[broker]\nurl = mqtt://broker.lan\n")
    out = run_cli("--check-config", "-c", str(good), python=python)
    assert out.returncode == 0 and "ok" in out.stdout, out
    bad = tmp_path / "bad.conf"
    bad.write_text("[broker]\nurl = mqtt://broker.lan\nqos = 7\n")
    out = run_cli("--check-config", "-c", str(bad), python=python)
    assert out.returncode == 1
    assert out.stderr.strip() == "%s:3: qos: '7' is not a number from 0 to 2" % bad
    out = run_cli("--check-config", "-c", str(tmp_path / "missing.conf"), python=python)
    assert out.returncode == 1 and "cannot read" in out.stderr
    assert run_cli("--bogus", python=python).returncode == 2


def test_shipped_example_is_valid_and_documents_every_key():
    text = EXAMPLE.read_text()
    for section, keys in mqtt_config.SCHEMA.items():
        assert "\n[%s]\n" % section in text
        for key in keys:
            assert "\n# %s = " % key in text or "\n%s = " % key in text, key
    mqtt_config.parse(text, str(EXAMPLE))


def test_password_is_in_no_argv_and_no_environment_of_the_bridge(ledd, broker, bridge_factory, tmp_path, probe):
    config = write_config(tmp_path / "mqtt.conf", broker, "ledd/pi1", "pi1")
    p = probe("ledd/pi1/availability")
    bridge = bridge_factory(config, ledd.runtime_dir).start()
    p.wait_for("ledd/pi1/availability", "online", timeout=WAIT_S)
    proc = Path("/proc/%d" % bridge.proc.pid)
    assert PASSWORD.encode() not in (proc / "cmdline").read_bytes()
    assert PASSWORD.encode() not in (proc / "environ").read_bytes()
    assert PASSWORD not in bridge.read_log()


def test_unusable_ca_file_is_one_clear_line(tmp_path, ledd):
    ca = tmp_path / "ca.crt"
    ca.write_text("not a certificate\n")
    conf = tmp_path / "mqtt.conf"
    conf.write_text("[broker]\nurl = mqtts://localhost:1\nca_file = %s\n" % ca)
    out = run_cli("-c", str(conf), "-r", str(ledd.runtime_dir))
    assert out.returncode == 1
    assert out.stderr.startswith("%s: TLS setup failed:" % conf) and "Traceback" not in out.stderr, out.stderr


def test_docs_cover_every_key_and_their_node_red_flow_is_json():
    import json
    import re

    text = (ROOT / "docs" / "mqtt.md").read_text()
    for keys in mqtt_config.SCHEMA.values():
        for key in keys:
            assert "`%s`" % key in text, key
    flows = re.findall(r"```json\n(.*?)```", text, re.S)
    assert flows and all(isinstance(json.loads(f), list) for f in flows)

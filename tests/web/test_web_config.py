"""lighttpd.conf itself: it parses, and documents its environment contract."""

import subprocess

from webstack import CONFIG, LIGHTTPD, lighttpd_env

CONTRACT = ("LEDD_HOME", "LEDD_HTTP_BIND", "LEDD_HTTP_PORT", "LEDD_RUNTIME_DIR", "LEDD_WEB_STATE_DIR", "LEDD_AUTH_INCLUDE")
#: Optional: lighttpd starts without it (ledd/web/hosts.py reads it), but the header documents it.
OPTIONAL = ("LEDD_ALLOWED_HOSTS",)


def test_lighttpd_tt_passes(tmp_path):
    env = lighttpd_env(8080, tmp_path / "run", tmp_path)
    result = subprocess.run([LIGHTTPD, "-tt", "-f", str(CONFIG)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr


def test_lighttpd_tt_fails_without_its_environment(tmp_path):
    env = lighttpd_env(8080, tmp_path / "run", tmp_path)
    del env["LEDD_HOME"]
    result = subprocess.run([LIGHTTPD, "-tt", "-f", str(CONFIG)], env=env, capture_output=True, text=True)
    assert result.returncode != 0


def test_every_variable_is_documented_in_the_header():
    header = CONFIG.read_text().split("\n\n")[0:3]
    text = "\n".join(header)
    for name in CONTRACT:
        assert name in text, name
        assert "env." + name in CONFIG.read_text(), name
    for name in OPTIONAL:
        assert name in text, name


def test_allowed_hosts_are_checked_at_start(tmp_path):
    env = lighttpd_env(8080, tmp_path / "run", tmp_path)
    env["LEDD_ALLOWED_HOSTS"] = "pi.example bad/name"
    result = subprocess.run([LIGHTTPD, "-tt", "-f", str(CONFIG)], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "bad/name" in result.stderr


def test_names_in_ledd_allowed_hosts_are_served(ledd, tmp_path, monkeypatch, board_json):
    import requests

    from webstack import Lighttpd

    monkeypatch.setenv("LEDD_ALLOWED_HOSTS", "Dash.Example.org 10.99.0.1")
    server = Lighttpd(ledd.runtime_dir, tmp_path / "lighttpd").start()
    try:
        for host in ("dash.example.org", "DASH.example.org:%d" % server.port, "10.99.0.1"):
            assert requests.get(server.url + "/api/state", headers={"Host": host}, timeout=10).status_code == 200, host
            assert requests.get(server.url + "/", headers={"Host": host}, timeout=10).status_code == 200, host
        r = requests.get(server.url + "/", headers={"Host": "other.example.org"}, timeout=10)
        assert r.status_code == 421 and r.json()["code"] == "misdirected_request"
    finally:
        server.stop()


def test_lighttpds_head_limit_is_the_one_in_defaults():
    """A URL over the API's limit must fit in what lighttpd reads, or it gets 431 instead of 414."""
    import re

    from ledd import defaults

    values = re.findall(r"^server\.max-request-field-size\s*=\s*(\d+)\s*$", CONFIG.read_text(), re.M)
    assert values == [str(defaults.WEB_MAX_REQUEST_HEAD)]
    assert defaults.WEB_MAX_URI + 1024 < defaults.WEB_MAX_REQUEST_HEAD <= 65535  # lighttpd's largest value

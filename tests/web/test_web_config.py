"""lighttpd.conf itself: it parses, and documents its environment contract."""

import subprocess

from webstack import CONFIG, LIGHTTPD, lighttpd_env

CONTRACT = ("LEDD_HOME", "LEDD_HTTP_BIND", "LEDD_HTTP_PORT", "LEDD_RUNTIME_DIR", "LEDD_WEB_STATE_DIR", "LEDD_AUTH_INCLUDE")


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

"""Configuration: errors name file and line, --check-config exit codes, precedence
of flags over environment over file, and SIGHUP reload with good and bad files."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

from ledd import defaults
from ledd.client import CommandError
import rawfifo
from waiting import WAIT_S, wait_for

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "cdaemon" / "ledd.conf"

GOOD_HEAD = "[ledd]\nbackend = sim\n\n[led red]\ngpio = 17\n"


def check(binary, *args, env=None):
    return subprocess.run(rawfifo.ledd_argv(binary, *args), capture_output=True, text=True, timeout=20,
                          env=env)


def test_shipped_config_is_valid(ledd_binary):
    r = check(ledd_binary, "--check-config", "-c", SHIPPED)
    assert r.returncode == 0, r.stderr
    assert "2 LEDs, 1 button" in r.stdout


def test_shipped_config_documents_every_key():
    text = SHIPPED.read_text()
    for key in ("backend", "chip", "runtime_dir", "state_file", "debounce_ms", "max_watchers", "pwm_hz",
                "gpio", "active_low", "pull"):
        assert "\n%s = " % key in text, key
    doc = (ROOT / "docs" / "config.md").read_text()
    for key in ("backend", "chip", "runtime_dir", "state_file", "debounce_ms", "max_watchers", "pwm_hz",
                "gpio", "active_low", "pull"):
        assert "`%s`" % key in doc, key


BAD = [
    # (config text, line, message fragment)
    (GOOD_HEAD.replace("gpio = 17", "gpio = 99"), 5, "gpio: 99 is not a GPIO number (0-53)"),
    (GOOD_HEAD.replace("gpio = 17", "gpio = -1"), 5, "gpio: -1 is not a GPIO number"),
    (GOOD_HEAD.replace("gpio = 17", "gpio = 17x"), 5, "not a GPIO number"),
    (GOOD_HEAD.replace("gpio = 17", "gpio ="), 5, "gpio: missing value"),
    (GOOD_HEAD.replace("gpio = 17", "gpio 17"), 5, "expected 'key = value'"),
    (GOOD_HEAD.replace("gpio = 17", "colour = red"), 5, "unknown key 'colour'"),
    (GOOD_HEAD + "gpio = 18\n", 6, "gpio: set twice"),
    (GOOD_HEAD.replace("backend = sim", "backend = wiringpi"), 2, "backend: 'wiringpi' is not chardev or sim"),
    (GOOD_HEAD.replace("backend = sim", "debounce_ms = 1001"), 2, "debounce_ms: 1001"),
    (GOOD_HEAD.replace("backend = sim", "max_watchers = 0"), 2, "max_watchers: 0"),
    (GOOD_HEAD.replace("backend = sim", "pwm_hz = 5"), 2, "pwm_hz: 5 is not a PWM frequency in Hz (10-1000)"),
    (GOOD_HEAD.replace("backend = sim", "runtime_dir = run/here"), 2, "not an absolute path"),
    ("gpio = 17\n", 1, "outside a section"),
    (GOOD_HEAD + "[lamp x]\n", 6, "unknown section [lamp x]"),
    (GOOD_HEAD + "[led red]\ngpio = 4\n", 6, "a second [led red]"),
    (GOOD_HEAD + "[led]\n", 6, "[led] needs a name"),
    (GOOD_HEAD + "[led 42]\ngpio = 4\n", 6, "all digits"),
    (GOOD_HEAD + "[led bad.name]\n", 6, "may only use"),
    (GOOD_HEAD + "[led %s]\n" % ("n" * 25), 6, "longer than 24"),
    (GOOD_HEAD + "[led green\n", 6, "must end with ']'"),
    (GOOD_HEAD + "[led green]\ngpio = 17\n", 6, "GPIO17 is already used by [led red]"),
    (GOOD_HEAD + "[led green]\nactive_low = false\n", 6, "[led green] has no gpio"),
    (GOOD_HEAD + "[led green]\ngpio = 27\nactive_low = maybe\n", 8, "active_low: 'maybe' is not a boolean"),
    (GOOD_HEAD + "[button b]\ngpio = 22\npull = sideways\n", 8, "pull: 'sideways' is not up, down or none"),
    (GOOD_HEAD + "[button b]\ngpio = 22\ndebounce_ms = 5000\n", 8, "debounce_ms: 5000"),
    (GOOD_HEAD + "[button b]\ngpio = 22\nbias = up\n", 8, "unknown key 'bias' in [button]"),
    (GOOD_HEAD + "x = \x01\n", 6, "control character"),
    ("[ledd]\nbackend = sim\n", None, "no [led NAME] section"),
    (GOOD_HEAD + "".join("[led l%d]\ngpio = %d\n" % (i, i) for i in range(defaults.MAX_LEDS)),
     2 * defaults.MAX_LEDS + 4, "more than %d LEDs" % defaults.MAX_LEDS),
    (GOOD_HEAD + "".join("[button b%d]\ngpio = %d\n" % (i, i) for i in range(9)), 22, "more than 8 buttons"),
]


@pytest.mark.parametrize("text,line,fragment", BAD, ids=[b[2][:30] for b in BAD])
def test_config_errors_name_file_line_and_problem(ledd_binary, tmp_path, text, line, fragment):
    path = tmp_path / "ledd.conf"
    path.write_text(text)
    r = check(ledd_binary, "--check-config", "-c", path)
    assert r.returncode == 1
    prefix = "%s:%d: " % (path, line) if line else "%s: " % path
    assert r.stderr.startswith(prefix), r.stderr
    assert fragment in r.stderr, r.stderr
    assert r.stdout == ""


def test_comments_blank_lines_and_crlf_are_fine(ledd_binary, tmp_path):
    path = tmp_path / "ok.conf"
    path.write_bytes(b"; a comment\r\n# another\r\n\r\n[ledd]   # inline\r\nbackend = sim  ; inline too\r\n"
                     b"[led red]\r\n  gpio   =   17\r\nactive_low = TRUE\r\n")
    r = check(ledd_binary, "--check-config", "-c", path)
    assert r.returncode == 0, r.stderr
    assert "sim, 1 LED, 0 buttons" in r.stdout


@pytest.mark.parametrize("args", [("--bogus",), ("-b", "gpiod"), ("extra-arg",), ("-c",)])
def test_usage_errors_exit_2(ledd_binary, args):
    r = check(ledd_binary, *args)
    assert r.returncode == 2
    assert "sage" in r.stderr or "-b" in r.stderr


def test_check_config_without_the_default_file_says_it_is_missing(tmp_path):
    """ledd --check-config with no -c and no default config file must not say "ok"."""
    missing = tmp_path / "etc" / "ledd.conf"
    out = tmp_path / "build"
    subprocess.run(["make", "-s", "-C", str(ROOT / "cdaemon"), "O=%s" % out,
                    "EXTRA_CFLAGS=-DLEDD_CONFIG_PATH='\"%s\"'" % missing], check=True)
    r = check(out / "ledd", "--check-config")
    assert r.returncode == 1
    assert "%s: no such file" % missing in r.stderr
    assert "ok" not in r.stdout


def test_missing_explicit_config_exits_1(ledd_binary, tmp_path):
    r = check(ledd_binary, "--check-config", "-c", tmp_path / "nope.conf")
    assert r.returncode == 1 and "nope.conf" in r.stderr and "No such file" in r.stderr


def test_help_and_version(ledd_binary):
    assert check(ledd_binary, "-h").returncode == 0
    r = check(ledd_binary, "-V")
    assert r.returncode == 0 and r.stdout.startswith("ledd ")


def test_daemon_refuses_to_start_on_a_bad_config(ledd_factory, tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text(GOOD_HEAD.replace("gpio = 17", "gpio = 99"))
    d = ledd_factory(config=path)
    d.start(wait=False)
    assert d.proc.wait(10) == 1
    assert "bad.conf:5: gpio: 99 is not a GPIO number (0-53)" in d.read_log()


def test_precedence_flag_over_env_over_file(ledd_binary, tmp_path):
    cfg_dir, env_dir, flag_dir = tmp_path / "cfg", tmp_path / "env", tmp_path / "flag"
    path = tmp_path / "p.conf"
    path.write_text(GOOD_HEAD.replace("backend = sim", "backend = sim\nruntime_dir = %s\nstate_file = %s"
                                      % (cfg_dir, tmp_path / "state")))

    def run_until_fifo(args, env, expect_dir):
        proc = subprocess.Popen(rawfifo.ledd_argv(ledd_binary, "-c", path, *args), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: (expect_dir / "ledd.cmd").exists() or proc.poll() is not None, what="ledd.cmd in %s" % expect_dir)
            assert proc.poll() is None, "ledd exited with %s" % proc.returncode
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0

    env = {k: v for k, v in os.environ.items() if k not in ("LEDD_RUNTIME_DIR", "NOTIFY_SOCKET")}
    run_until_fifo([], env, cfg_dir)
    run_until_fifo([], dict(env, LEDD_RUNTIME_DIR=str(env_dir)), env_dir)
    run_until_fifo(["-r", str(flag_dir)], dict(env, LEDD_RUNTIME_DIR=str(env_dir)), flag_dir)


def test_sighup_reload_applies_a_good_config_and_carries_state(ledd_factory, tmp_path):
    path = rawfifo.write_config(tmp_path / "r.conf")
    d = ledd_factory(config=path).start()
    c = d.client()
    c.blink("green", 100, 300)
    c.press("button")
    c.release("button")
    # Reorder, add an LED, move the button: state follows the names.
    rawfifo.write_config(path, leds=[("blue", 5), ("green", 27), ("red", 17)], buttons=[("button", 23)])
    d.notifications.clear()
    d.signal(signal.SIGHUP)
    d.wait_for("READY=1")
    assert any("RELOADING=1" in n for n in d.notifications)
    s = c.state()
    assert [l["name"] for l in s["leds"]] == ["blue", "green", "red"]
    assert s["leds"][1]["blink"] == {"on_ms": 100, "off_ms": 300}
    assert s["buttons"][0]["gpio"] == 23 and s["buttons"][0]["presses"] == 1
    assert c.on("blue")["leds"][0]["on"] is True
    assert "reloaded" in d.read_log()


def test_sighup_with_an_unchanged_config_changes_nothing(ledd_factory, tmp_path):
    """No seq, no event, no restarted blink phase: a reload that changes nothing does nothing."""
    path = rawfifo.write_config(tmp_path / "r.conf")
    d = ledd_factory(config=path).start()
    c = d.client()
    before = c.blink("green", 1000, 1000)
    with c.watch() as w:
        w.next_event(WAIT_S)
        d.notifications.clear()
        d.signal(signal.SIGHUP)
        d.wait_for("READY=1")
        assert w.next_event(0.3) is None, "a no-op reload sent an event"
    after = c.state()
    assert after["seq"] == before["seq"]
    assert after["leds"][1]["blink"] == before["leds"][1]["blink"]
    assert "reloaded: nothing changed" in d.read_log()


def test_reload_that_changes_no_led_or_button_changes_no_state(ledd_factory, tmp_path):
    """Issue 20, 5: a reload of only [ledd] settings (max_watchers) bumped seq, sent an event
    and restarted every blink phase."""
    path = rawfifo.write_config(tmp_path / "r.conf")
    d = ledd_factory(config=path).start()
    c = d.client()
    before = c.blink("green", 1000, 1000)
    wait_for(lambda: c.state()["leds"][1]["level"] == 0, 5,  # into the off phase, which lasts a second
             what="green's blink in its off phase")
    with c.watch() as w:
        w.next_event(WAIT_S)
        rawfifo.write_config(path, ledd_section="max_watchers = 7\n")
        d.notifications.clear()
        d.signal(signal.SIGHUP)
        d.wait_for("READY=1")
        after = c.state()
        assert after["leds"][1]["level"] == 0, "the blink phase was restarted"
        assert after["seq"] == before["seq"]
        assert w.next_event(0.3) is None, "a reload that changed no LED or button sent an event"
    assert "reloaded: no LED or button changed" in d.read_log()
    watchers = []
    try:
        with pytest.raises(CommandError) as err:
            for _ in range(8):
                watchers.append(c.watch())
        assert err.value.code == "busy" and len(watchers) == 7, "the new max_watchers applies"
    finally:
        for w in watchers:
            w.close()


def test_sighup_with_a_bad_config_keeps_the_running_one(ledd_factory, tmp_path):
    path = rawfifo.write_config(tmp_path / "r.conf")
    d = ledd_factory(config=path).start()
    c = d.client()
    c.on("red")
    before = c.state()
    path.write_text(GOOD_HEAD.replace("gpio = 17", "gpio = 99"))
    d.notifications.clear()
    d.signal(signal.SIGHUP)
    d.wait_for("READY=1")
    assert "reload failed, keeping the running config: %s:5: gpio: 99" % path in d.read_log()
    assert c.state() == before
    assert c.off("red")["leds"][0]["on"] is False


def test_reload_storm_under_traffic_loses_nothing(ledd_factory, tmp_path):
    """SIGHUPs arriving while clients talk: every request answered, state carried over."""
    import threading
    from ledd.client import LeddError

    path = rawfifo.write_config(tmp_path / "r.conf")
    d = ledd_factory(config=path).start()
    errors, done = [], [0]

    def traffic():
        c = d.client(timeout=5)
        for i in range(150):
            try:
                s = c.toggle("red")
                assert s["leds"][0]["name"] == "red"
                done[0] += 1
            except (LeddError, AssertionError) as e:
                errors.append(repr(e))

    t = threading.Thread(target=traffic)
    t.start()
    for i in range(20):
        # Alternate between two valid wirings (the button moves): lines are re-requested.
        rawfifo.write_config(path, buttons=[("button", 22 if i % 2 else 23)])
        reloads = d.read_log().count("reloaded: ")
        d.signal(signal.SIGHUP)
        wait_for(lambda: d.read_log().count("reloaded: ") > reloads, what=lambda: "reload %d:\n%s" % (i, d.read_log()))
    t.join(60)
    assert not errors, errors[:3]
    assert done[0] == 150
    d.notifications.clear()
    d.signal(signal.SIGHUP)
    d.wait_for("READY=1")
    # 150 toggles: red ends where it started (off).
    assert d.client().state()["leds"][0]["on"] is False
    assert d.proc.poll() is None


def test_no_buttons_is_a_valid_config(ledd_factory, tmp_path):
    d = ledd_factory(config=rawfifo.write_config(tmp_path / "nb.conf", buttons=())).start()
    c = d.client()
    assert c.state()["buttons"] == []
    from ledd.client import CommandError
    with pytest.raises(CommandError) as err:
        c.press(0)
    assert err.value.code == "notfound" and "none configured" in str(err.value)
    assert any("STATUS=sim, 2 LEDs, 0 buttons, 0 watchers" in n for n in d.notifications)

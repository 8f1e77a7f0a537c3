"""ledd/defaults.py, cdaemon/src/defaults.h and docs/protocol.md agree on names and limits."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ledd import defaults  # noqa: E402


def c_defines():
    text = (ROOT / "cdaemon" / "src" / "defaults.h").read_text()
    out = {}
    for name, value in re.findall(r"^#define[ \t]+(LEDD_\w+)[ \t]+(\S+)", text, re.M):
        if value.startswith('"'):
            out[name] = value.strip('"')
        elif not re.fullmatch(r"[0-9x]+", value):
            continue  # an initializer list or expression, not a scalar
        else:  # C octal (0770) is not Python syntax
            out[name] = int(value, 8) if re.fullmatch(r"0[0-7]+", value) else int(value, 0)
    return out


def test_fifo_names_and_paths_agree():
    c = c_defines()
    assert c["LEDD_CMD_FIFO"] == defaults.CMD_FIFO
    assert c["LEDD_REPLY_DIR"] == defaults.REPLY_DIR
    assert c["LEDD_REPLY_FIFO_MODE"] == defaults.REPLY_FIFO_MODE
    assert c["LEDD_REPLY_NAME_BITS"] == defaults.REPLY_NAME_BITS
    assert c["LEDD_RUNTIME_DIR"] == defaults.RUNTIME_DIR
    assert c["LEDD_RUNTIME_DIR_ENV"] == defaults.RUNTIME_DIR_ENV
    assert c["LEDD_CONFIG_PATH"] == defaults.CONFIG_PATH
    assert c["LEDD_STATE_PATH"] == defaults.STATE_PATH


def test_limits_agree():
    c = c_defines()
    assert c["LEDD_MAX_REQUEST"] == defaults.MAX_REQUEST
    assert c["LEDD_PROTOCOL"] == defaults.PROTOCOL
    assert c["LEDD_MAX_ID"] == defaults.MAX_ID
    assert (c["LEDD_MAX_LEDS"], c["LEDD_MAX_BUTTONS"]) == (defaults.MAX_LEDS, defaults.MAX_BUTTONS)
    assert c["LEDD_MAX_WATCHERS"] == defaults.MAX_WATCHERS
    assert c["LEDD_MAX_DIGITS"] == defaults.MAX_DIGITS
    assert c["LEDD_LINE_MAX"] == defaults.PIPE_BUF
    assert (c["LEDD_REPLY_CHECK_EVERY"], c["LEDD_REPLY_SWEEP_AT"]) == (defaults.REPLY_CHECK_EVERY, defaults.REPLY_SWEEP_AT)
    assert (c["LEDD_BLINK_MIN_MS"], c["LEDD_BLINK_MAX_MS"]) == (defaults.BLINK_MIN_MS, defaults.BLINK_MAX_MS)
    assert c["LEDD_MAX_NAME"] == defaults.MAX_NAME
    assert (c["LEDD_BRIGHTNESS_MAX"], c["LEDD_BRIGHTNESS_DEFAULT"]) == (defaults.BRIGHTNESS_MAX,
                                                                        defaults.BRIGHTNESS_DEFAULT)
    assert (c["LEDD_PWM_HZ_MIN"], c["LEDD_PWM_HZ_MAX"], c["LEDD_PWM_HZ_DEFAULT"]) == (
        defaults.PWM_HZ_MIN, defaults.PWM_HZ_MAX, defaults.PWM_HZ_DEFAULT)


def test_protocol_doc_limits_table_matches_defaults_h():
    c = c_defines()
    doc = (ROOT / "docs" / "protocol.md").read_text()
    table = doc[doc.index("## Limits"):doc.index("## Versioning")]
    assert "| request line | %d bytes with LF |" % c["LEDD_MAX_REQUEST"] in table
    assert "| LEDs / buttons | 1–%d / 0–%d |" % (c["LEDD_MAX_LEDS"], c["LEDD_MAX_BUTTONS"]) in table
    assert "| name | 1–%d of" % c["LEDD_MAX_NAME"] in table
    assert "| blink period | %d–%d ms each |" % (c["LEDD_BLINK_MIN_MS"], c["LEDD_BLINK_MAX_MS"]) in table
    assert "| debounce | 0–%d ms |" % c["LEDD_DEBOUNCE_MAX_MS"] in table
    assert "| watchers | %d (`max_watchers`) |" % c["LEDD_MAX_WATCHERS"] in table
    assert "1 to %d characters of `[A-Za-z0-9_-]`" % c["LEDD_MAX_ID"] in doc
    assert "at most %d digits" % c["LEDD_MAX_DIGITS"] in doc

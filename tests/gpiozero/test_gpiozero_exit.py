"""A gpiozero script as its user ends it: the last line starts a blink, the script
exits at once and cleanly, and ledd goes on blinking. Under gpiozero 2.x (venv) and
Debian's 1.6 (/usr/bin/python3), with the factory chosen by GPIOZERO_PIN_FACTORY=ledd."""

import os
import subprocess
import time

import pytest

from ledd import client as ledd_client
from zerostack import ROOT, led

SCRIPTS = {
    "named": "from gpiozero import LED\nled = LED(27)\nled.blink(0.2, 0.2)\n",
    "one-line": "from gpiozero import LED\nLED(27).blink(0.2, 0.2)\n",
    "pwm": "from gpiozero import PWMLED\nPWMLED(27).blink(0.2, 0.2)\n",
}


def reply_fifos(runtime_dir):
    """The reply FIFOs in ledd's runtime directory that this test process did not make."""
    mine = {os.path.basename(path) for path in ledd_client._live}
    return set(os.listdir(runtime_dir / "reply")) - mine


def levels_seen(client, name, timeout=5):
    """The levels an LED's line shows while polled, until it has shown both (or time is up)."""
    seen = set()
    deadline = time.monotonic() + timeout
    while seen != {0, 1} and time.monotonic() < deadline:
        seen.add(led(client.state(), name)["level"])
        time.sleep(0.01)
    return seen


@pytest.mark.parametrize("form", sorted(SCRIPTS))
def test_a_script_ending_in_blink_exits_cleanly_and_ledd_blinks_on(python, form, ledd, site_dir, tmp_path,
                                                                    observe, record_property):
    obs = observe(ledd)
    script = tmp_path / "blink.py"
    script.write_text(SCRIPTS[form])
    env = dict(os.environ, LEDD_RUNTIME_DIR=str(ledd.runtime_dir), GPIOZERO_PIN_FACTORY="ledd",
               PYTHONPATH=os.pathsep.join([str(site_dir), str(ROOT)]))
    before = reply_fifos(ledd.runtime_dir)
    proc = subprocess.Popen([python, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    out, err = proc.communicate(timeout=30)
    ended = time.monotonic()
    # Before the fix: a LeddTimeout traceback after 2 s (the exit handler had removed the
    # reply FIFO the BLINK waited on), and "cannot join current thread" for the one-liner.
    assert (proc.returncode, out, err) == (0, "", "")
    assert reply_fifos(ledd.runtime_dir) - before == set()  # the script removed its reply FIFOs
    found = obs.wait_for(lambda s: led(s, "green")["blink"] is not None, 5)
    assert found, "ledd never blinked green"
    record_property("blink_seen_to_exit_s", round(ended - found[1], 3))
    state = ledd.client().state()
    assert led(state, "green")["blink"] == {"on_ms": 200, "off_ms": 200}
    # It goes on blinking: the line keeps changing after the script has gone.
    assert levels_seen(ledd.client(), "green") == {0, 1}

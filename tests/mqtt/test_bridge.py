"""ledd-mqtt against a real mosquitto and a real sim ledd, under paho 2.x and Debian's paho 1.6.

Round trips both ways, TLS and client certificates, retained state across a
bridge restart, the last will, a broker restart mid-traffic, ledd's kill -9,
retained and hostile commands, and a command flood.
"""

import json
import threading
import time

import pytest

from ledd.mqtt.topics import Topics, state_messages
from mqttstack import retained, write_config
from waiting import WAIT_S, wait_for


def topic_payloads(probe, since, leaf):
    return [m[2] for m in probe.messages[since:] if m[1].endswith("/" + leaf)]


def led(state, name):
    return next(x for x in state["leds"] if x["name"] == name)


def expected_retained(pi):
    """What the broker must hold for this Pi: every state topic of ledd's current state, and online."""
    out = {t: p.encode() for t, p in state_messages(Topics(pi.base), pi.state()).items()}
    out[pi.topic("availability")] = b"online"
    return out


def test_round_trip_both_ways(make_pi, probe, python):
    p = probe("ledd/pi1/#")
    pi = make_pi("pi1", python=python)
    p.wait_for(pi.topic("availability"), "online")
    p.wait_for(pi.topic("led/red/state"), "OFF")

    # broker -> ledd
    p.publish(pi.topic("led/red/set"), "ON")
    p.wait_for(pi.topic("led/red/state"), "ON")
    assert led(pi.state(), "red")["on"] is True
    mark = p.mark()
    p.publish(pi.topic("led/green/set"), json.dumps({"blink": {"on_ms": 100, "off_ms": 300}}))
    p.wait_for(pi.topic("led/green/effect"), "blink", since=mark)
    attributes = json.loads(p.wait_for(pi.topic("led/green/attributes"), since=mark)[2])
    assert attributes == {"id": 1, "gpio": 27, "blink": {"on_ms": 100, "off_ms": 300}, "pwm_hz": 200}
    assert led(pi.state(), "green")["blink"] == {"on_ms": 100, "off_ms": 300}
    p.publish(pi.topic("led/red/set"), "toggle")
    p.wait_for(pi.topic("led/red/state"), "OFF", since=mark)
    p.publish(pi.topic("led/red/set"), '{"state": "ON"}')
    p.wait_for(pi.topic("led/red/state"), "ON", since=mark)
    mark = p.mark()
    p.publish(pi.topic("all/set"), "OFF")
    p.wait_for(pi.topic("led/green/state"), "OFF", since=mark)
    p.wait_for(pi.topic("led/red/state"), "OFF", since=mark)
    assert not any(x["on"] for x in pi.state()["leds"])

    # ledd -> broker: a button press and an LED switched by another client (the dashboard, ledctl)
    mark = p.mark()
    client = pi.ledd.client()
    client.press("button")
    p.wait_for(pi.topic("button/button/state"), "ON", since=mark)
    p.wait_for(pi.topic("button/button/presses"), "1", since=mark)
    client.release("button")
    p.wait_for(pi.topic("button/button/state"), "OFF", since=mark)
    client.on("green")
    p.wait_for(pi.topic("led/green/state"), "ON", since=mark)

    # State topics are retained and equal ledd's state; commands are not retained.
    wait_for(lambda: {t: v for t, v in retained(pi.broker, "ledd/pi1/#").items()} == expected_retained(pi),
               what="retained state == ledd's state")
    assert not any(t.endswith("/set") for t in retained(pi.broker, "ledd/pi1/#"))
    assert pi.bridge.alive()


def test_every_change_is_published_once_and_in_order(make_pi, probe):
    """A burst of button edges: each edge reaches the broker, in order (the binary sensor sees every press)."""
    p = probe("ledd/pi1/button/#")
    pi = make_pi("pi1")
    p.wait_for(pi.topic("button/button/presses"), "0")
    mark = p.mark()
    client = pi.ledd.client()
    for _ in range(20):
        client.press("button")
        client.release("button")
    p.wait_for(pi.topic("button/button/presses"), "20", since=mark)
    wait_for(lambda: len(topic_payloads(p, mark, "button/button/state")) >= 40, what="40 edges")
    states = topic_payloads(p, mark, "button/button/state")
    presses = topic_payloads(p, mark, "button/button/presses")
    assert states == [b"ON", b"OFF"] * 20
    assert presses == [str(i).encode() for i in range(1, 21)]


@pytest.mark.parametrize("mode", ["tls", "mtls"])
def test_tls_and_client_certificate(make_pi, probe, python, mode):
    p = probe("ledd/pi1/availability")
    pi = make_pi("pi1", python=python, tls=(mode == "tls"), mtls=(mode == "mtls"))
    p.wait_for(pi.topic("availability"), "online")
    p.publish(pi.topic("led/red/set"), "ON")
    wait_for(lambda: led(pi.state(), "red")["on"], what="red on over " + mode)
    assert "connected to mqtts://localhost:" in pi.bridge.read_log()


def test_untrusted_server_certificate_is_a_clear_log_line(ledd, broker, bridge_factory, tmp_path):
    """No ca_file: the system CAs do not know our test CA, so the handshake fails, the bridge says so and retries."""
    config = write_config(tmp_path / "mqtt.conf", broker, "ledd/pi1", "pi1", tls=True)
    config.write_text("\n".join(l for l in config.read_text().splitlines() if not l.startswith("ca_file")) + "\n")
    bridge = bridge_factory(config, ledd.runtime_dir).start()
    bridge.wait_log("reconnecting in", count=2, timeout=15)
    assert "certificate verify failed" in bridge.read_log()
    assert bridge.alive()


def test_wrong_password_is_refused_with_a_clear_log_line_and_retried(ledd, broker, bridge_factory, tmp_path, python):
    secret = tmp_path / "wrong.password"
    secret.write_text("not-the-password\n")
    config = write_config(tmp_path / "mqtt.conf", broker, "ledd/pi1", "pi1", password_file=secret)
    bridge = bridge_factory(config, ledd.runtime_dir, python=python).start()
    bridge.wait_log("refused the connection", timeout=15)
    bridge.wait_log("reconnecting in", count=2, timeout=15)
    assert "not-the-password" not in bridge.read_log()
    assert bridge.alive()


def test_retained_state_after_a_bridge_restart(make_pi, probe, python):
    p = probe("ledd/pi1/#")
    pi = make_pi("pi1", python=python)
    p.wait_for(pi.topic("availability"), "online")
    p.publish(pi.topic("led/red/set"), "ON")
    p.wait_for(pi.topic("led/red/state"), "ON")
    mark = p.mark()
    assert pi.bridge.stop() == 0
    p.wait_for(pi.topic("availability"), "offline", since=mark)
    assert "stopped: availability offline" in pi.bridge.read_log()
    assert retained(pi.broker, "ledd/pi1/availability") == {pi.topic("availability"): b"offline"}
    # The state changes while no bridge runs; the restarted bridge publishes the new state.
    pi.ledd.client().blink("green", 200, 200)
    pi.bridge.start()
    p.wait_for(pi.topic("availability"), "online", since=mark)
    wait_for(lambda: retained(pi.broker, "ledd/pi1/#") == expected_retained(pi), what="retained == ledd's state")
    assert retained(pi.broker, pi.topic("led/green/effect")) == {pi.topic("led/green/effect"): b"blink"}


def test_killed_bridge_leaves_its_last_will(make_pi, probe, python):
    p = probe("ledd/pi1/availability")
    pi = make_pi("pi1", python=python)
    p.wait_for(pi.topic("availability"), "online")
    mark = p.mark()
    pi.bridge.kill9()
    p.wait_for(pi.topic("availability"), "offline", since=mark)
    assert retained(pi.broker, pi.topic("availability")) == {pi.topic("availability"): b"offline"}


def test_broker_down_at_start_then_up(ledd, broker, bridge_factory, tmp_path, probe):
    broker.stop()
    config = write_config(tmp_path / "mqtt.conf", broker, "ledd/pi1", "pi1")
    bridge = bridge_factory(config, ledd.runtime_dir).start()
    bridge.wait_log("reconnecting in", count=2, timeout=15)
    assert "Connection refused" in bridge.read_log()
    broker.start()
    p = probe("ledd/pi1/availability")
    p.wait_for("ledd/pi1/availability", "online", timeout=15)


def test_broker_restart_in_the_middle_of_traffic(make_pi, probe, python):
    pi = make_pi("pi1", python=python)
    p = probe("ledd/pi1/#")
    p.wait_for(pi.topic("availability"), "online")
    stop = threading.Event()
    errors = []

    def traffic():
        client = pi.ledd.client()
        while not stop.is_set():
            try:
                client.toggle("red")
                client.press("button")
                client.release("button")
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(err)
            time.sleep(0.01)  # about time itself: traffic at a steady pace

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        mark = p.mark()
        wait_for(lambda: p.mark() >= mark + 10, what="traffic to flow to the broker")
        pi.broker.stop()
        wait_for(lambda: "connection lost" in pi.bridge.read_log(), what=lambda: "the bridge to notice the broker "
                 "is gone:\n" + pi.bridge.read_log())
        pi.broker.start()  # no persistence: every retained message is gone
        p2 = probe("ledd/pi1/#")
        p2.wait_for(pi.topic("availability"), "online", timeout=15)
        mark = p2.mark()
        wait_for(lambda: p2.mark() >= mark + 10, what="traffic to flow to the restarted broker")
    finally:
        stop.set()
        worker.join()
    assert not errors
    assert "connection lost" in pi.bridge.read_log()
    # After the traffic, the broker's retained copy matches ledd exactly (republished, then kept up to date).
    wait_for(lambda: retained(pi.broker, "ledd/pi1/#") == expected_retained(pi), what="retained == ledd's state")
    mark = p2.mark()
    p2.publish(pi.topic("led/green/set"), "TOGGLE")
    p2.wait(lambda m: m[1] == pi.topic("led/green/state"), since=mark, what="green state after TOGGLE")


def test_ledd_kill9_and_restart(make_pi, probe, python):
    pi = make_pi("pi1", python=python)
    p = probe("ledd/pi1/#")
    p.wait_for(pi.topic("availability"), "online")
    pi.ledd.client().on("red")
    p.wait_for(pi.topic("led/red/state"), "ON")
    mark = p.mark()
    pi.ledd.kill9()
    p.wait_for(pi.topic("availability"), "offline", since=mark)
    p.publish(pi.topic("led/green/set"), "ON")  # ledd is down: dropped, with a log line
    pi.bridge.wait_log("ledd is down")
    pi.ledd.close_notify()
    pi.ledd.notifications = []
    pi.ledd.start()
    p.wait_for(pi.topic("availability"), "online", since=mark)
    assert led(pi.state(), "red")["on"] and not led(pi.state(), "green")["on"]
    mark = p.mark()
    p.publish(pi.topic("led/green/set"), "ON")  # re-watched: commands and events flow again
    p.wait_for(pi.topic("led/green/state"), "ON", since=mark)
    assert pi.bridge.alive()
    assert "ledd went away" in pi.bridge.read_log()


def test_retained_commands_are_ignored(make_pi, probe):
    p = probe("ledd/pi1/#")
    p.publish("ledd/pi1/led/red/set", "ON", retain=True)
    pi = make_pi("pi1")
    p.wait_for(pi.topic("availability"), "online")
    pi.bridge.wait_log("ignored a retained command on ledd/pi1/led/red/set")
    assert not led(pi.state(), "red")["on"]
    p.publish("ledd/pi1/led/red/set", "", retain=True)


def test_a_retained_command_published_while_connected_runs_once_and_clearing_it_is_quiet(make_pi, probe):
    """What docs/mqtt.md says: live, a retained command is a command (the broker drops the
    flag); only the broker's replay on (re)connect is stale. Clearing it, as the bridge's
    own log line advises, is no warning."""
    p = probe("ledd/pi1/#")
    pi = make_pi("pi1")
    p.wait_for(pi.topic("availability"), "online")
    mark = p.mark()
    p.publish(pi.topic("led/red/set"), "ON", retain=True)
    p.wait_for(pi.topic("led/red/state"), "ON", since=mark)
    p.publish(pi.topic("led/red/set"), "", retain=True)   # mosquitto_pub -r -n
    p.publish(pi.topic("led/green/set"), "ON")            # the bridge has read everything before it
    p.wait_for(pi.topic("led/green/state"), "ON", since=mark)
    assert "WARNING" not in pi.bridge.read_log(), pi.bridge.read_log()
    # Restarted, the bridge finds nothing retained to warn about: the command was cleared.
    pi.bridge.stop()
    pi.bridge.start()
    p.wait_for(pi.topic("availability"), "online", since=p.mark())
    client = pi.ledd.client()
    client.off("red")
    p.wait_for(pi.topic("led/red/state"), "OFF", since=mark)
    assert "WARNING" not in pi.bridge.read_log() and led(pi.state(), "red")["on"] is False


HOSTILE = [
    ("led/red/set", b""),
    ("led/red/set", b"   "),
    ("led/red/set", b"on please"),
    ("led/red/set", b"\xff\xfe\x00ON"),
    ("led/red/set", b"ON\x00"),
    ("led/red/set", b"ON\nOFF"),
    ("led/red/set", b"A" * 100_000),
    ("led/red/set", b"[" * 200 + b"]" * 200),
    ("led/red/set", b"{" * 100),
    ("led/red/set", b'{"state": "ON", "state": "OFF"}'),
    ("led/red/set", b'{"state": "OFF", "blink": true}'),  # "ON" beside blink is HA's JSON light (issue 23)
    ("led/red/set", b'{"state": "EXPLODE"}'),
    ("led/red/set", b'{"state": 1}'),
    ("led/red/set", b'{"blink": {"on_ms": 19, "off_ms": 100}}'),
    ("led/red/set", b'{"blink": {"on_ms": 100, "off_ms": 60001}}'),
    ("led/red/set", b'{"blink": {"on_ms": true, "off_ms": 100}}'),
    ("led/red/set", b'{"blink": {"on_ms": 1e3, "off_ms": 100}}'),
    ("led/red/set", b'{"blink": {"on_ms": NaN, "off_ms": 100}}'),
    ("led/red/set", b'{"blink": {"on_ms": 100}}'),
    ("led/red/set", b'{"blink": {"on_ms": 100, "off_ms": 100, "x": 1}}'),
    ("led/red/set", b'{"blink": false}'),
    ("led/red/set", b'"ON"'),
    ("led/red/set", b"null"),
    ("led/red/set", b"{}"),
    ("led/nosuch/set", b"ON"),
    ("led/0/set", b"ON"),
    ("led/red green/set", b"ON"),
    ("led/../set", b"ON"),
    ("all/set", b"TOGGLE"),
    ("all/set", b"BLINK"),
    ("all/set", b'{"state": ["ON"]}'),
    ("all/set", b"\x80"),
    # brightness (issue 23): an integer percent, with "state" only as Home Assistant sends it
    ("led/red/set", b'{"brightness": 30.5}'),
    ("led/red/set", b'{"brightness": 1e2}'),
    ("led/red/set", b'{"brightness": 101}'),
    ("led/red/set", b'{"brightness": -1}'),
    ("led/red/set", b'{"brightness": true}'),
    ("led/red/set", b'{"brightness": "30"}'),
    ("led/red/set", b'{"brightness": null}'),
    ("led/red/set", b'{"state": "OFF", "brightness": 30}'),
    ("led/red/set", b'{"state": "ON", "brightness": 30, "transition": 2}'),
    ("led/red/set", b'{"state": "ON", "effect": "strobe"}'),
    ("led/red/set", b'{"pwm_hz": 500}'),
    ("all/set", b'{"brightness": 1.5}'),
    ("all/set", b'{"state": "ON", "effect": "blink"}'),
]


def test_hostile_payloads_are_logged_and_change_nothing(make_pi, probe, python):
    p = probe("ledd/pi1/#")
    pi = make_pi("pi1", python=python)
    p.wait_for(pi.topic("availability"), "online")
    before = pi.state()
    for topic, payload in HOSTILE:
        p.publish(pi.topic(topic), payload)
    # The first in full, then a count, not one WARNING each; the empty one (how MQTT clears a
    # retained message) is no command and no warning.
    invalid = len(HOSTILE) - 1
    pi.bridge.wait_log("invalid commands ignored: %d more in the last" % (invalid - 1), timeout=WAIT_S + 10)
    assert pi.bridge.read_log().count("ignored command on") == 1
    assert "(%d so far)" % invalid in pi.bridge.read_log()
    after = pi.state()
    assert after["seq"] == before["seq"] and after["leds"] == before["leds"]
    assert pi.bridge.alive()
    log = pi.bridge.read_log()
    assert "Traceback" not in log
    assert "A" * 200 not in log  # a huge payload is not copied into the journal
    p.publish(pi.topic("led/red/set"), "ON")  # and the bridge still works
    wait_for(lambda: led(pi.state(), "red")["on"], what="red on")


def test_command_flood_is_rate_limited_and_ledd_stays_responsive(make_pi, probe):
    pi = make_pi("pi1", extra="rate_limit = 20\nrate_burst = 40\n")
    p = probe("ledd/pi1/availability")
    p.wait_for(pi.topic("availability"), "online")
    seq0 = pi.state()["seq"]
    flood = 2000
    start = time.monotonic()
    for _ in range(flood):
        p.client.publish(pi.topic("led/red/set"), "TOGGLE", qos=0)
    slowest = 0.0
    client = pi.ledd.client()  # the dashboard's view of ledd while the flood lasts: never times out
    while time.monotonic() - start < 1.5:
        t = time.monotonic()
        client.state()
        slowest = max(slowest, time.monotonic() - t)
        time.sleep(0.01)  # about time itself: the dashboard's view, sampled while the flood lasts
    pi.bridge.wait_log("rate limit: more than 20 commands/s")
    elapsed = time.monotonic() - start
    applied = pi.state()["seq"] - seq0
    assert 0 < applied <= 40 + 20 * elapsed + 5, (applied, elapsed)
    print("flood: %d commands, %d applied in %.2f s, slowest STATE %.1f ms" % (flood, applied, elapsed, slowest * 1000))


ALL_NAMED_CONFIG = "[ledd]\nbackend = sim\n[led ALL]\ngpio = 17\n[led green]\ngpio = 27\n[button button]\ngpio = 22\n"


def test_an_led_named_all_is_commanded_alone(make_pi, probe, tmp_path):
    """ALL is a legal LED name: its own topic switches that LED only, never every LED."""
    conf = tmp_path / "all-named.conf"
    conf.write_text(ALL_NAMED_CONFIG)
    p = probe("ledd/pi1/#")
    pi = make_pi("pi1", ledd_config=conf)
    p.wait_for(pi.topic("availability"), "online")
    client = pi.ledd.client()
    mark = p.mark()
    client.on("ALL")
    # The bridge has published it: a late "OFF" from before cannot pass for the command's below.
    p.wait_for(pi.topic("led/ALL/state"), "ON", since=mark)
    mark = p.mark()
    # Before tagged commands this became all("OFF"), a truthy string: every LED on.
    p.publish(pi.topic("led/ALL/set"), "OFF")
    p.wait_for(pi.topic("led/ALL/state"), "OFF", since=mark)
    assert [(x["name"], x["on"]) for x in pi.state()["leds"]] == [("ALL", False), ("green", False)]
    p.publish(pi.topic("led/ALL/set"), json.dumps({"blink": {"on_ms": 100, "off_ms": 200}}))
    p.wait_for(pi.topic("led/ALL/effect"), "blink", since=mark)
    assert led(pi.state(), "ALL")["blink"] == {"on_ms": 100, "off_ms": 200} and not led(pi.state(), "green")["on"]
    p.publish(pi.topic("all/set"), "ON")  # and all/set still means every LED
    p.wait_for(pi.topic("led/green/state"), "ON", since=mark)
    assert all(x["on"] for x in pi.state()["leds"])


def light(probe, pi, name, since):
    """The last JSON light state (Home Assistant's state topic) of LED ``name`` since ``since``."""
    return json.loads(probe.wait_for(pi.topic("led/%s/json" % name), since=since)[2])


def test_home_assistant_json_light_sets_and_shows_brightness(make_pi, probe, python):
    """Issue 23: the commands Home Assistant's JSON light sends (brightness_scale 100) reach ledd as
    BRIGHTNESS, and a dimmed LED, however dimmed, is reported dimmed on the light's state topic."""
    p = probe("ledd/pi1/#")
    pi = make_pi("pi1", python=python)
    p.wait_for(pi.topic("availability"), "online")
    assert light(p, pi, "red", 0) == {"state": "OFF", "effect": "solid", "brightness": 100}

    def command(name, message, **expected):
        mark = p.mark()
        p.publish(pi.topic("led/%s/set" % name), json.dumps(message))
        p.wait(lambda m: m[1] == pi.topic("led/%s/json" % name) and
               all(json.loads(m[2]).get(k) == v for k, v in expected.items()), since=mark,
               what="%s after %s" % (expected, message))

    command("red", {"state": "ON", "brightness": 30}, state="ON", brightness=30)  # HA's slider
    assert (led(pi.state(), "red")["on"], led(pi.state(), "red")["brightness"]) == (True, 30)
    assert retained(pi.broker, pi.topic("led/red/brightness")) == {pi.topic("led/red/brightness"): b"30"}
    command("red", {"state": "OFF"}, state="OFF", brightness=30)  # off keeps the brightness HA shows
    command("red", {"state": "ON"}, state="ON", brightness=30)  # and on comes back at it
    command("red", {"state": "ON", "brightness": 60, "effect": "blink"}, effect="blink", brightness=60)
    assert led(pi.state(), "red")["blink"] == {"on_ms": 500, "off_ms": 500}
    command("red", {"state": "ON", "effect": "solid"}, effect="solid", brightness=60)
    command("red", {"brightness": 0}, state="OFF", brightness=60)  # ledd's own form: 0 is off
    mark = p.mark()
    p.publish(pi.topic("all/set"), json.dumps({"state": "ON", "brightness": 20}))
    wait_for(lambda: [(x["on"], x["brightness"]) for x in pi.state()["leds"]] == [(True, 20), (True, 20)],
             what="every LED at 20 %")
    assert light(p, pi, "green", mark)["brightness"] == 20

    # ledd -> Home Assistant: dimmed by another client (the dashboard's slider, ledctl).
    mark = p.mark()
    pi.ledd.client().brightness("green", 7)
    assert light(p, pi, "green", mark) == {"state": "ON", "effect": "solid", "brightness": 7}
    # What Home Assistant makes of it, by the scale discovery announced: 7 % of its 0-255.
    config = json.loads(retained(pi.broker, "homeassistant/light/ledd_pi1/gpio27/config")[
        "homeassistant/light/ledd_pi1/gpio27/config"])
    assert round(7 * 255 / config["brightness_scale"]) == 18
    assert pi.bridge.alive() and "Traceback" not in pi.bridge.read_log()

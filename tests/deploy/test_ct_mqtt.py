"""The MQTT bridge on a Pi whose owner runs mosquitto on the Pi itself (as many Home Assistant setups
do), in containers on bookworm (paho-mqtt 1.6) and trixie (paho-mqtt 2.x):

1. `deploy.sh --mqtt mqtt://ha@127.0.0.1 --mqtt-password-stdin`: the Home Assistant discovery configs
   of both LEDs and the button arrive, a command on the light's topic switches the LED, the broker
   password is in no file but its credential and in no journal line, and `--mqtt` is remembered;
2. a reboot (a container restart): ledd, ledd-web and ledd-mqtt come back, the LED from ledd's state
   file, and the bridge takes commands again;
3. `--no-mqtt` failing at the health check: the bridge's unit, config, password and user come back,
   the listing is the one before, and the bridge runs again;
4. `--uninstall --purge`: back to the listing of the Pi with its broker.
"""

import json
import shlex

import pytest

from ctpi import assert_same_listing, boot, step, suites, wait_for

pytestmark = pytest.mark.slow

BROKER_USER, BROKER_PASSWORD = "ha", "br0ker-Pa55word"
URL = "mqtt://%s@127.0.0.1:1883" % BROKER_USER
MOSQUITTO_CONF = """listener 1883 127.0.0.1
allow_anonymous false
password_file /etc/mosquitto/passwd
"""


@pytest.fixture
def pi(tmp_path_factory, suite):
    yield from boot(tmp_path_factory, "mqtt", suite, build_tools=True)


def owner_broker(pi):
    pi.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mosquitto mosquitto-clients "
          ">/tmp/apt.log 2>&1 || { tail /tmp/apt.log; exit 1; }; rm /tmp/apt.log\n"
          "printf '%%s' %s >/etc/mosquitto/conf.d/owner.conf\n"
          "mosquitto_passwd -c -b /etc/mosquitto/passwd %s %s && chown mosquitto: /etc/mosquitto/passwd "
          "&& chmod 0600 /etc/mosquitto/passwd\n"
          "systemctl restart mosquitto" % (shlex.quote(MOSQUITTO_CONF), BROKER_USER, shlex.quote(BROKER_PASSWORD)),
          timeout=300)


def retained(pi, topic_filter):
    """{topic: payload} of the retained messages under TOPIC_FILTER, read with mosquitto_sub on the Pi."""
    out = pi.sh("mosquitto_sub -h 127.0.0.1 -u %s -P %s -t %s -v --retained-only -W 2 2>/dev/null; true"
                % (BROKER_USER, shlex.quote(BROKER_PASSWORD), shlex.quote(topic_filter)))
    messages = {}
    for line in out.splitlines():
        topic, _, payload = line.partition(" ")
        messages[topic] = payload
    return messages


def discovery(pi):
    """{(component, object): config} once both LEDs and the button are announced."""
    configs = {}
    for topic, payload in retained(pi, "homeassistant/#").items():
        parts = topic.split("/")
        if len(parts) == 5 and parts[4] == "config" and payload:
            configs[(parts[1], parts[3])] = json.loads(payload)
    wanted = {("light", "gpio17"), ("light", "gpio27"), ("binary_sensor", "gpio22")}
    return configs if wanted <= set(configs) else None


def command(pi, config, on):
    """Switch an LED the way Home Assistant does, once the bridge says it listens (availability online)."""
    topic = config["availability_topic"]
    wait_for(lambda: retained(pi, topic).get(topic) == "online", 60, "the bridge online")
    payload = config.get("payload_on" if on else "payload_off", "ON" if on else "OFF")
    pi.sh("mosquitto_pub -h 127.0.0.1 -u %s -P %s -t %s -m %s" % (
        BROKER_USER, shlex.quote(BROKER_PASSWORD), shlex.quote(config["command_topic"]), shlex.quote(payload)))


def led_on(pi, index):
    return pi.api("GET", "/api/state")[1]["leds"][index]["on"]


@suites()
def test_mqtt_bridge_reboot_failed_no_mqtt_purge(pi):
    step(pi, "the owner's mosquitto", lambda: owner_broker(pi))
    before = step(pi, "listing", pi.listing)

    def bridge():
        out = pi.install("--mqtt", URL, "--mqtt-password-stdin", stdin=BROKER_PASSWORD)
        assert "MQTT: ledd-mqtt.service -> %s" % URL in out, out
        assert BROKER_PASSWORD not in out
        assert pi.sh("systemctl is-active ledd-mqtt").strip() == "active"
        configs = wait_for(lambda: discovery(pi), 60, "the discovery configs")
        assert configs[("light", "gpio17")]["device"] == configs[("binary_sensor", "gpio22")]["device"]
        command(pi, configs[("light", "gpio17")], on=True)
        wait_for(lambda: led_on(pi, 0), 30, "LED red on after the MQTT command")
        rc, out = pi.run("grep -rlF -- %s /var/log /etc /opt /root /home /var/lib /tmp 2>/dev/null; "
                         "journalctl --no-pager | grep -cF -- %s" % ((shlex.quote(BROKER_PASSWORD),) * 2))
        assert out.split() == ["/etc/ledd/credentials/mqtt-password", "0"], out
        kept = pi.deploy()
        assert "mqtt_url=%s" % URL in kept and "nothing changed" in kept, kept
    step(pi, "--mqtt against the owner's broker", bridge)

    def reboot():
        pi.ct.restart()
        wait_for(lambda: pi.sh("systemctl is-active ledd ledd-web ledd-mqtt || true").split() == ["active"] * 3,
                 60, "the units after the reboot")
        assert wait_for(lambda: led_on(pi, 0), 30, "LED red on again from the state file")
        configs = wait_for(lambda: discovery(pi), 60, "the discovery configs after the reboot")
        command(pi, configs[("light", "gpio17")], on=False)
        wait_for(lambda: not led_on(pi, 0), 30, "LED red off after an MQTT command")
    step(pi, "reboot: units, LED state and bridge come back", reboot)

    def failed_no_mqtt():
        installed = pi.listing()
        rc, out = pi.deploy("--no-mqtt", env=("LEDD_DEPLOY_FAIL_AT=health",), check=False)
        assert rc != 0 and "rolled back" in out, out
        assert "delete system user ledd-mqtt" in out, out
        assert_same_listing(installed, pi.listing(), "after a failed --no-mqtt")
        wait_for(lambda: pi.sh("systemctl is-active ledd-mqtt || true").strip() == "active", 60, "the bridge again")
        configs = wait_for(lambda: discovery(pi), 60, "the discovery configs")
        command(pi, configs[("light", "gpio17")], on=True)
        wait_for(lambda: led_on(pi, 0), 30, "LED red on after an MQTT command")
    step(pi, "--no-mqtt failing at the health check: the bridge comes back", failed_no_mqtt)

    def purge():
        pi.deploy("--uninstall", "--purge", "--yes")
        assert_same_listing(before, pi.listing(), "after --purge")
        assert pi.sh("systemctl is-active mosquitto").strip() == "active"
    step(pi, "--uninstall --purge", purge)

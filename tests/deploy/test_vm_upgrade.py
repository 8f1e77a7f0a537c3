"""The virtual Pi, second scenario (its own boot; tests/run runs it beside test_vm.py):

1. an install by the older deploy.sh (the lighttpd drop-in version, --port 8081
   --no-auth), rewired by its owner; a plain run of this deploy.sh upgrades it,
   keeping port, auth mode, config and LED state, and gives Debian's lighttpd its
   own site back;
2. `systemctl reload ledd` with a broken config fails and the old wiring works on;
   an upgrade failing at the health check and one killed by SIGTERM midway are
   rolled back (same system listing) and the working install keeps answering;
3. --tls: HTTPS verified with the generated certificate, HTTP redirects;
4. --mqtt against a mosquitto on the host (the guest reaches the host's loopback
   at 10.0.2.2): Home Assistant discovery configs arrive, a command switches an LED;
5. a reboot: the simulated header (a boot service), ledd, ledd-web and ledd-mqtt
   come back, the LEDs from the state file, HTTPS answers, the bridge takes commands;
6. --no-mqtt failing at the health check: the bridge, its user included, comes back;
7. --uninstall --purge.

Any failure carries the guest's journal and console.
"""

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
import requests

from vpi import (ADMIN, DEPLOY_TIMEOUT_S, HOST_FROM_GUEST, LED_GPIO, XFER, assert_same_listing, boot, deploy,
                 listing, mount_shares, prepare, read_gpio_env, sigterm_midway, step, wait_for)

# The MQTT broker on the host (appended: no module of tests/mqtt shadows one of ours).
sys.path.append(str(Path(__file__).resolve().parents[1] / "mqtt"))
import mqttstack  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.vm]


@pytest.fixture(scope="module")
def pi(tmp_path_factory):
    yield from boot(tmp_path_factory, "upgrade", old_tree=True)


def test_upgrade_from_the_drop_in_version_then_tls(pi):
    """An install by the older deploy.sh (lighttpd drop-in, --port 8081 --no-auth, rewired), upgraded
    by a plain run of this one: port, auth mode, config and LED state are kept, and Debian's lighttpd
    gets its own site back. Then --tls: HTTPS with the generated certificate, HTTP redirects."""
    prepare(pi)
    old = XFER + "/old"
    pi.port, pi.password = 8081, None

    def old_install():
        rc, out = pi.vm.run("cd %s && runuser -u %s -- sudo ./deploy.sh --port 8081 --no-auth" % (old, ADMIN),
                            timeout=DEPLOY_TIMEOUT_S)
        assert rc == 0, out[-3000:]
        assert pi.vm.run("test -f /etc/systemd/system/lighttpd.service.d/ledd.conf")[0] == 0
        # The owner rewires: green moves to GPIO 5 (reload), and switches it on.
        pi.sh("sed -i 's/^gpio = 27$/gpio = 5/' /etc/ledd/ledd.conf && systemctl reload ledd")
        wait_for(lambda: [led["gpio"] for led in pi.api("GET", "/api/state", auth=False).json()["leds"]] == [17, 5],
                 30, "the new wiring")
        assert pi.api("POST", "/api/leds/1", {"on": True}, auth=False).status_code == 200
        assert pi.line_value(5) == 1
    step(pi, "install by the older deploy.sh", old_install)
    conf = pi.sh("md5sum /etc/ledd/ledd.conf")

    def upgrade():
        out = deploy(pi)
        assert "taken over from the previous install (port 8081, auth none)" in out, out
        assert "password:" not in out  # --no-auth kept: no new random password
        assert pi.sh("md5sum /etc/ledd/ledd.conf") == conf
        assert pi.vm.run("test -e /etc/systemd/system/lighttpd.service.d/ledd.conf")[0] != 0
        assert pi.sh("systemctl is-active ledd ledd-web lighttpd").split() == ["active"] * 3
        state = wait_for(lambda: pi.api("GET", "/api/state", auth=False).json(), 30, "the API on 8081, no auth")
        assert [led["gpio"] for led in state["leds"]] == [17, 5] and state["leds"][1]["on"] is True
        assert pi.line_value(5) == 1
        assert "/etc/lighttpd/lighttpd.conf" in pi.sh("systemctl show -p ExecStart --value lighttpd")
        assert requests.get(pi.url("/"), timeout=15).status_code == 200  # Debian's own site on :80 again
        assert "port=8081" in pi.sh("cat /etc/ledd/deploy.conf")
    step(pi, "plain upgrade keeps port, auth, config and state", upgrade)

    def reload_broken_config():
        pi.sh("cp /etc/ledd/ledd.conf /root/ledd.conf.good && printf '\\n[led bad]\\ngpio = banana\\n' >> /etc/ledd/ledd.conf")
        assert pi.vm.run("systemctl reload ledd")[0] != 0, "reload of a broken config succeeded"
        assert "/etc/ledd/ledd.conf:" in pi.sh("journalctl -u ledd -n 10 --no-pager")  # ledd's file:line
        assert pi.sh("systemctl is-active ledd").strip() == "active"
        r = pi.api("POST", "/api/leds/0", {"on": False}, auth=False)  # the old wiring works on
        assert r.status_code == 200 and pi.line_value(LED_GPIO) == 0
        pi.sh("cp /root/ledd.conf.good /etc/ledd/ledd.conf && rm /root/ledd.conf.good && systemctl reload ledd")
    step(pi, "systemctl reload ledd with a broken config", reload_broken_config)

    def failed_upgrade():
        installed = listing(pi)
        conf = pi.sh("cat /etc/ledd/deploy.conf /etc/ledd/web/web.env /etc/ledd/web/auth.conf")
        rc, out = deploy(pi, "--port", "8080", env="LEDD_DEPLOY_FAIL_AT=health", check=False)
        assert rc != 0 and "rolled back" in out, out
        assert_same_listing(installed, listing(pi), "after a failed upgrade")
        assert pi.sh("cat /etc/ledd/deploy.conf /etc/ledd/web/web.env /etc/ledd/web/auth.conf") == conf
        wait_for(lambda: pi.api("GET", "/api/state", auth=False).status_code == 200, 30, "the old dashboard answers")
        sigterm_midway(pi, "--port 8080", "health")
        assert_same_listing(installed, listing(pi), "after SIGTERM during an upgrade")
        assert pi.sh("cat /etc/ledd/deploy.conf /etc/ledd/web/web.env /etc/ledd/web/auth.conf") == conf
        wait_for(lambda: pi.api("GET", "/api/state", auth=False).status_code == 200, 30, "the old dashboard answers")
    step(pi, "failed and interrupted upgrades: the working install keeps running", failed_upgrade)

    def tls():
        out = deploy(pi, "--tls", "--port", "443", "--redirect-port", "8081")
        fingerprint = re.search(r"SHA-256 fingerprint: ([0-9A-F:]{95})", out)
        assert fingerprint, out
        pi.sh("cp /etc/ledd/web/tls/cert.pem %s/cert.pem" % XFER)
        cert = str(Path(pi.vm.xfer) / "cert.pem")
        r = wait_for(lambda: requests.get("https://127.0.0.1:%d/api/state" % pi.vm.ports[443], verify=cert,
                                          timeout=15), 30, "HTTPS answers")
        assert r.status_code == 200 and r.json()["leds"][1]["on"] is True
        r = requests.get(pi.url("/api/state?x=1", 8081), allow_redirects=False, timeout=15)
        assert r.status_code == 308 and r.headers["Location"] == "https://127.0.0.1/api/state?x=1", r.headers
        kept = deploy(pi)  # TLS is remembered too
        assert "tls=self-signed" in kept and "nothing changed" in kept, kept
    step(pi, "--tls", tls)

    broker_dir = pi.vm.workdir / "broker"
    broker_dir.mkdir()
    broker = mqttstack.Broker(broker_dir, mqttstack.make_pki(broker_dir)).start()
    try:
        step(pi, "--mqtt: Home Assistant discovery on the host's broker", lambda: mqtt_bridge(pi, broker))
        step(pi, "reboot: units, LEDs, dashboard and bridge come back", lambda: reboot(pi, broker))
        step(pi, "--no-mqtt failing at the health check: the bridge comes back", lambda: failed_no_mqtt(pi, broker))
    finally:
        broker.stop()

    def uninstall():
        pi.vm.check("/opt/ledd/deploy.sh --uninstall --purge --yes", timeout=DEPLOY_TIMEOUT_S)
        assert pi.sh("systemctl is-active lighttpd").strip() == "active"
        assert requests.get(pi.url("/"), timeout=15).status_code == 200
        for what in ("id ledd-mqtt", "systemctl cat ledd-mqtt.service", "test -e /etc/ledd/mqtt.conf",
                     "dpkg-query -W -f='${Status}' python3-paho-mqtt | grep -q 'install ok installed'"):
            assert pi.vm.run(what)[0] != 0, "still there after --purge: " + what
    step(pi, "uninstall after the upgrade", uninstall)


def discovery(broker):
    """{(component, object): config} of the retained Home Assistant discovery configs, when the
    Pi's two LEDs (GPIO 17 and, rewired, 5) and its button (GPIO 22) are all announced."""
    configs = {}
    for topic, payload in mqttstack.retained(broker, "homeassistant/#").items():
        parts = topic.split("/")
        if len(parts) == 5 and parts[4] == "config" and payload:
            configs[(parts[1], parts[3])] = json.loads(payload)
    wanted = {("light", "gpio17"), ("light", "gpio5"), ("binary_sensor", "gpio22")}
    return configs if wanted <= set(configs) else None


def bridge_online(broker, config):
    """Wait until the bridge listens for commands: it publishes its availability ``online``
    (retained) only once it has subscribed, and ``offline`` when it stops. The retained discovery
    configs outlive the bridge, so they alone do not say that a command would be heard."""
    topic = config["availability_topic"]
    wait_for(lambda: mqttstack.retained(broker, topic).get(topic) == b"online", 90, "the bridge online")


def command(broker, config, on):
    """Switch an LED the way Home Assistant does: its discovery config's command topic and payload."""
    probe = mqttstack.Probe(broker, subscribe=("ledd-test/commands",))
    try:
        probe.publish(config["command_topic"], config.get("payload_on" if on else "payload_off", "ON" if on else "OFF"))
    finally:
        probe.close()


def mqtt_bridge(pi, broker):
    """deploy.sh --mqtt against a broker on the host: discovery configs arrive, a command lights an LED,
    and the broker password is in no file but the credential."""
    url = "mqtt://%s@%s:%d" % (mqttstack.USER, HOST_FROM_GUEST, broker.port)
    out = deploy(pi, "--mqtt", url, "--mqtt-password-stdin", stdin=mqttstack.PASSWORD)
    assert "MQTT: ledd-mqtt.service -> %s" % url in out, out
    assert mqttstack.PASSWORD not in out
    assert pi.sh("systemctl is-active ledd-mqtt").strip() == "active"
    configs = wait_for(lambda: discovery(broker), 90, "the discovery configs on the host's broker")
    assert configs[("light", "gpio17")]["device"] == configs[("binary_sensor", "gpio22")]["device"]
    assert pi.line_value(LED_GPIO) == 0
    bridge_online(broker, configs[("light", "gpio17")])
    command(broker, configs[("light", "gpio17")], on=True)
    wait_for(lambda: pi.line_value(LED_GPIO) == 1, 30, "GPIO 17 on after the MQTT command")
    rc, out = pi.vm.run("grep -rlF -- %s /var/log /etc /opt /root /home /var/lib /tmp 2>/dev/null; "
                        "journalctl -b --no-pager | grep -cF -- %s" % ((shlex.quote(mqttstack.PASSWORD),) * 2))
    assert out.split() == ["/etc/ledd/credentials/mqtt-password", "0"], out
    kept = deploy(pi)  # --mqtt is remembered
    assert "mqtt_url=%s" % url in kept and "nothing changed" in kept, kept


def reboot(pi, broker):
    """A reboot: both web units and the bridge come back, the LEDs are restored from the state file,
    the dashboard answers over HTTPS, and the bridge takes commands again."""
    pi.vm.reboot()
    # The agent answers early in the boot: wait for the boot to finish (the header, then ledd, ...).
    rc, state = pi.vm.run("systemctl is-system-running --wait", timeout=300)
    assert state.strip() == "running", state + pi.sh("systemctl --failed --no-pager")
    mount_shares(pi)
    read_gpio_env(pi)
    units = ["ledd", "ledd-web", "ledd-mqtt"]
    wait_for(lambda: pi.sh("systemctl is-active %s || true" % " ".join(units)).split() == ["active"] * 3,
             120, "the units after the reboot")
    # Red (switched on over MQTT) and green (on GPIO 5 since the rewiring) were on before the reboot.
    assert (pi.line_value(LED_GPIO), pi.line_value(5)) == (1, 1)
    cert = str(Path(pi.vm.xfer) / "cert.pem")
    r = wait_for(lambda: requests.get("https://127.0.0.1:%d/api/state" % pi.vm.ports[443], verify=cert, timeout=15),
                 60, "HTTPS answers after the reboot")
    assert r.status_code == 200 and [led["on"] for led in r.json()["leds"]] == [True, True], r.text
    configs = wait_for(lambda: discovery(broker), 60, "the discovery configs after the reboot")
    bridge_online(broker, configs[("light", "gpio17")])
    command(broker, configs[("light", "gpio17")], on=False)
    wait_for(lambda: pi.line_value(LED_GPIO) == 0, 60, "GPIO 17 off after an MQTT command")


def failed_no_mqtt(pi, broker):
    """--no-mqtt removes the bridge's unit, config, password and user; when the run fails, all of it,
    the user included, comes back and the bridge runs again."""
    installed = listing(pi)
    rc, out = deploy(pi, "--no-mqtt", env="LEDD_DEPLOY_FAIL_AT=health", check=False)
    assert rc != 0 and "rolled back" in out, out
    assert "delete system user ledd-mqtt" in out, out
    assert_same_listing(installed, listing(pi), "after a failed --no-mqtt")
    wait_for(lambda: pi.sh("systemctl is-active ledd-mqtt || true").strip() == "active", 60, "the bridge again")
    configs = wait_for(lambda: discovery(broker), 60, "the discovery configs")
    bridge_online(broker, configs[("light", "gpio17")])
    command(broker, configs[("light", "gpio17")], on=True)
    wait_for(lambda: pi.line_value(LED_GPIO) == 1, 60, "GPIO 17 on after an MQTT command")

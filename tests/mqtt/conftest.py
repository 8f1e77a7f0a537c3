"""Fixtures of the MQTT bridge tests (the helpers live in mqttstack.py, shared with bench/mqtt.py).

``broker``: a fresh mosquitto per test (password file, TLS listeners).
``probe(*filters)``: MQTT clients of the test. ``bridge_factory``: ledd-mqtt
processes, killed at teardown. ``python`` parametrizes a test over the
interpreters the bridge runs under (paho 2.x in the venv, Debian's paho 1.6).
"""

import sys

import pytest

pytest.importorskip("paho.mqtt.client")

from mqttstack import SYSTEM_PYTHON, Broker, BridgeProcess, Probe, make_pki, system_paho_version, write_config  # noqa: E402

_SYSTEM_PAHO = system_paho_version()
_PAHO = __import__("paho.mqtt").mqtt.__version__


@pytest.fixture(params=[sys.executable, SYSTEM_PYTHON], ids=["paho" + _PAHO, "paho%s" % _SYSTEM_PAHO])
def python(request):
    """The interpreter the bridge runs under: the venv's (paho 2.x), then Debian's (paho 1.6)."""
    if request.param == SYSTEM_PYTHON and _SYSTEM_PAHO is None:
        pytest.skip("no python3-paho-mqtt under /usr/bin/python3")
    return request.param


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(tmp_path, pki):
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = Broker(workdir, pki).start()
    yield b
    b.stop()


@pytest.fixture
def probe(broker):
    made = []

    def make(*subscribe):
        p = Probe(broker, subscribe=subscribe or ("#",))
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def bridge_factory():
    made = []

    def make(*args, **kwargs):
        b = BridgeProcess(*args, **kwargs)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()



class Pi:
    """One simulated Pi: a sim ledd, its bridge and the bridge's config, under base topic ``ledd/<name>``."""

    def __init__(self, name, ledd, bridge, config, broker):
        self.name, self.ledd, self.bridge, self.config, self.broker = name, ledd, bridge, config, broker
        self.base = "ledd/" + name

    def topic(self, rest):
        return "%s/%s" % (self.base, rest)

    def state(self):
        return self.ledd.client().state()


@pytest.fixture
def make_pi(ledd_factory, broker, bridge_factory, tmp_path):
    """make_pi(name, python=..., ledd_config=..., extra=..., start=True): a sim ledd plus its bridge."""
    def make(name="pi1", python=sys.executable, ledd_config=None, extra="", start=True, **conf_kwargs):
        kwargs = {"config": ledd_config} if ledd_config else {}
        ledd = ledd_factory(workdir=tmp_path / ("ledd-" + name), **kwargs).start()
        config = write_config(tmp_path / ("mqtt-%s.conf" % name), broker, "ledd/" + name, name, extra=extra, **conf_kwargs)
        bridge = bridge_factory(config, ledd.runtime_dir, python=python)
        if start:
            bridge.start()
        return Pi(name, ledd, bridge, config, broker)

    return make

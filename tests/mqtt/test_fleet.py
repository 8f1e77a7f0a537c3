"""A fleet: 10 simulated Pis (10 sim ledds, 10 bridges) on one broker, each under ledd/<pi>/.

Half the bridges run under Debian's paho 1.6, half under paho 2.x. A client
subscribed to ``ledd/+/...`` sees every Pi separately, and a command to one Pi
changes that Pi only. Bounded: 20 small processes, a few hundred messages.
"""

import os

import pytest

from mqttstack import SYSTEM_PYTHON, retained
from waiting import wait_for

FLEET = 10


@pytest.fixture
def fleet(make_pi):
    import sys

    system = SYSTEM_PYTHON if os.path.exists(SYSTEM_PYTHON) else sys.executable
    return [make_pi("pi%02d" % i, python=(system if i % 2 else sys.executable)) for i in range(FLEET)]


def test_fleet_of_ten_pis_on_one_broker(fleet, probe, broker):
    p = probe("ledd/+/availability", "ledd/+/led/+/state")
    wait_for(lambda: len({m[1] for m in p.messages if m[1].endswith("/availability") and m[2] == b"online"}) == FLEET,
               timeout=30, what="10 Pis online")
    # Every Pi has its own device and entities in Home Assistant.
    configs = retained(broker, "homeassistant/+/+/+/config")
    assert len(configs) == 4 * FLEET
    assert len({t.split("/")[2] for t in configs}) == FLEET

    target = fleet[3]
    mark = p.mark()
    p.publish(target.topic("led/red/set"), "ON")
    p.wait_for(target.topic("led/red/state"), "ON", since=mark)
    for pi in fleet:
        red = next(x for x in pi.state()["leds"] if x["name"] == "red")
        assert red["on"] is (pi is target), pi.name
    # The broker's view agrees: exactly one red LED on in the whole fleet.
    states = retained(broker, "ledd/+/led/red/state")
    assert sorted(t for t, v in states.items() if v == b"ON") == [target.topic("led/red/state")]
    assert len(states) == FLEET

    # A button on another Pi reaches its own topics only.
    other = fleet[8]
    b = probe("ledd/+/button/+/presses")
    other.ledd.client().press("button")
    b.wait_for(other.topic("button/button/presses"), "1")
    presses = retained(broker, "ledd/+/button/button/presses")
    assert {t: v for t, v in presses.items() if v != b"0"} == {other.topic("button/button/presses"): b"1"}

    # One Pi's ledd stops: only that Pi goes offline.
    mark = p.mark()
    fleet[5].ledd.stop()
    p.wait_for(fleet[5].topic("availability"), "offline", since=mark)
    online = retained(broker, "ledd/+/availability")
    assert sorted(t for t, v in online.items() if v == b"offline") == [fleet[5].topic("availability")]

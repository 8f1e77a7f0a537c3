"""ledd-mqtt: ledd's LEDs and buttons on an MQTT broker, with Home Assistant discovery.

A client of ledd like the dashboard: it watches ledd's events and publishes
them as retained topics, and turns command topics into ledd commands. Modules:

- :mod:`ledd.mqtt.config`    ``/etc/ledd/mqtt.conf`` (file:line errors)
- :mod:`ledd.mqtt.topics`    topic layout, state messages, command payloads
- :mod:`ledd.mqtt.discovery` Home Assistant discovery configs
- :mod:`ledd.mqtt.link`      paho-mqtt 1.x and 2.x behind one small adapter
- :mod:`ledd.mqtt.bridge`    the poll loop
- :mod:`ledd.mqtt.main`      the ``ledd-mqtt`` command

Only :mod:`link` and :mod:`bridge` import paho; ``--check-config`` works without it.
The user's guide is docs/mqtt.md.
"""

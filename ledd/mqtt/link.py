"""One MQTT connection through paho-mqtt 1.x (Debian bookworm) or 2.x (PyPI, trixie).

paho 2.0 changed the callback signatures (``CallbackAPIVersion``) and the type
of its result codes; this module is the only place that knows. The bridge
sees three plain callbacks::

    on_connect(ok: bool, reason: str)
    on_disconnect(reason: str, was_connected: bool)
    on_message(topic: str, payload: bytes, retained: bool)

and drives the socket from its own ``poll`` loop (paho's "external event
loop" API: ``socket``/``loop_read``/``loop_write``/``loop_misc``) instead of
``loop_start``/``loop_forever``, whose select wakes up every second. Idle, the
only wake-up left is the keepalive ping: :meth:`Link.next_deadline` says when.
"""

import socket
import time

import paho.mqtt.client as paho

from ledd import defaults

#: True with paho-mqtt 2.x (versioned callback API).
PAHO_V2 = hasattr(paho, "CallbackAPIVersion")
_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only
PAHO_VERSION = getattr(__import__("paho.mqtt", fromlist=["__version__"]), "__version__", "?")


def _reason_text(code, connack=False):
    """A readable reason from a paho 1.x int (a CONNACK code or an MQTT_ERR_*) or a paho 2.x ReasonCode."""
    if hasattr(code, "getName") or not isinstance(code, int):
        return str(code)
    return paho.connack_string(code) if connack else paho.error_string(code)


def _is_failure(code):
    if hasattr(code, "is_failure"):
        return code.is_failure
    return int(code) != 0


class Link:
    """An MQTT client session (clean session, MQTT 3.1.1) driven by the caller's poll loop."""

    def __init__(self, client_id, keepalive, on_connect, on_disconnect, on_message):
        self.client_id, self.keepalive = client_id, keepalive
        self._on_connect, self._on_disconnect, self._on_message = on_connect, on_disconnect, on_message
        self._tls = self._credentials = self._will = None
        self.client = self._new_client()
        self.connected = False

    def _new_client(self):
        """A fresh paho client for every connection attempt.

        paho keeps unacknowledged QoS>0 publishes and resends them after a
        reconnect, *after* whatever on_connect published: a stale LED state
        would overwrite the fresh one on the broker. The bridge republishes the
        whole current state on every connect, so nothing old may survive.
        """
        if PAHO_V2:
            client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True,
                                 protocol=paho.MQTTv311)
            client.on_connect = lambda c, u, flags, reason, props: self._connected(reason)
            client.on_disconnect = lambda c, u, flags, reason, props: self._disconnected(reason)
        else:
            client = paho.Client(client_id=self.client_id, clean_session=True, protocol=paho.MQTTv311)
            client.on_connect = lambda c, u, flags, rc: self._connected(rc)
            client.on_disconnect = lambda c, u, rc: self._disconnected(rc)
        client.on_message = lambda c, u, msg: self._on_message(msg.topic, msg.payload, bool(msg.retain))
        # Both versions keep the connect timeout here (2.x also has a property for it).
        client._connect_timeout = defaults.MQTT_CONNECT_TIMEOUT_S
        if self._tls is not None:
            client.tls_set(**self._tls)
        if self._credentials is not None:
            client.username_pw_set(*self._credentials)
        if self._will is not None:
            client.will_set(*self._will, retain=True)
        return client

    # -- setup --------------------------------------------------------------
    def set_tls(self, ca_file=None, cert_file=None, key_file=None):
        """TLS with the broker's certificate checked against ``ca_file`` (else the system's CAs)."""
        self._tls = {"ca_certs": ca_file, "certfile": cert_file, "keyfile": key_file}
        self.client.tls_set(**self._tls)  # now, so that a bad file fails at start

    def set_credentials(self, username, password):
        if username is not None:
            self._credentials = (username, password)

    def set_will(self, topic, payload, qos):
        """The broker publishes this (retained) if the connection dies without a DISCONNECT."""
        self._will = (topic, payload, qos)

    # -- connection -----------------------------------------------------------
    def connect(self, host, port):
        """Open the socket and send CONNECT (blocking, at most the connect timeout).

        Raises OSError (refused, unreachable, TLS failure). CONNACK arrives later
        through :meth:`read` and ends in ``on_connect``.
        """
        self.client = self._new_client()
        self.client.connect_async(host, port, self.keepalive)
        self.client.reconnect()
        # paho leaves Nagle's algorithm on: our state topics (three small
        # publishes per change) would wait for the broker's delayed ACK, ~40 ms.
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def disconnect(self, flush_s=1.0):
        """Send DISCONNECT (so the broker does not publish the will) and close."""
        if self.client.socket() is None:
            return
        self.client.disconnect()
        self.flush(flush_s)

    def flush(self, seconds):
        """Write what paho has queued, for at most ``seconds``."""
        import select

        end = time.monotonic() + seconds
        while self.client.socket() is not None and self.client.want_write() and time.monotonic() < end:
            select.select([], [self.client.socket()], [], max(0.0, end - time.monotonic()))
            self.client.loop_write()

    def fileno(self):
        """The socket to poll, or None when not connected."""
        sock = self.client.socket()
        return None if sock is None else sock.fileno()

    def want_write(self):
        return self.client.socket() is not None and self.client.want_write()

    def read(self):
        self.client.loop_read()
        self._ack_now()

    def _ack_now(self):
        """Acknowledge what was read at once instead of after Linux's delayed-ACK timer (~40 ms).

        A broker without TCP_NODELAY (mosquitto's default) holds its next small
        packet to us (a command) until the last one (a PUBACK of our state
        publish) is acknowledged: Nagle's algorithm meeting delayed ACK would
        put 40 ms into every command that follows a state change. The flag is
        not sticky: the kernel leaves quick-ACK mode by itself, so set it after
        every read.
        """
        sock = self.client.socket()
        if sock is not None and _TCP_QUICKACK is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
            except OSError:  # not TCP (a unix socket), or closed meanwhile
                pass

    def write(self):
        self.client.loop_write()

    def misc(self):
        """Keepalive bookkeeping: sends PINGREQ when due, notices a missing PINGRESP."""
        if self.client.socket() is not None:
            self.client.loop_misc()

    def next_deadline(self):
        """Monotonic time at which :meth:`misc` has work (the next ping), or None."""
        if self.client.socket() is None:
            return None
        c = self.client
        last_out = getattr(c, "_last_msg_out", None)
        last_in = getattr(c, "_last_bytes_received", getattr(c, "_last_msg_in", None))
        if not isinstance(last_out, float) or not isinstance(last_in, float):
            return time.monotonic() + self.keepalive / 4  # unknown paho internals: stay safe
        deadline = min(last_out, last_in) + self.keepalive
        ping_t = getattr(c, "_ping_t", 0)
        if ping_t:
            deadline = min(deadline, ping_t + self.keepalive)
        return deadline + 0.01

    # -- messages -----------------------------------------------------------
    def publish(self, topic, payload, qos, retain):
        if not self.connected:
            return False
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == 0

    def subscribe(self, topics, qos):
        self.client.subscribe([(t, qos) for t in topics])

    # -- paho callbacks -----------------------------------------------------
    def _connected(self, reason):
        ok = not _is_failure(reason)
        self.connected = ok
        self._on_connect(ok, _reason_text(reason, connack=True))

    def _disconnected(self, reason):
        was = self.connected
        self.connected = False
        self._on_disconnect(_reason_text(reason), was)

"""Helpers of the MQTT bridge tests and of bench/mqtt.py: mosquitto, probes, ledd-mqtt processes.

``Broker`` is Debian's mosquitto on free loopback ports with a password file
(no anonymous access) and three listeners: plain MQTT, TLS (a server
certificate from a CA that :func:`make_pki` generates with openssl) and TLS
that also requires a client certificate. It can be stopped and started again
on the same ports.

``Probe`` is an MQTT client of the tests' own (paho 2.x from the venv) that
records every message it sees. ``BridgeProcess`` runs ``python -m ledd.mqtt``
under a given interpreter: the venv's (paho 2.x) or ``/usr/bin/python3``
(Debian's paho 1.6), so every scenario can run against both callback APIs.
"""

import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho

from waiting import WAIT_S, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent

MOSQUITTO = "/usr/sbin/mosquitto"
SYSTEM_PYTHON = "/usr/bin/python3"
USER, PASSWORD = "pi", "s3cret-Pa55"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def system_paho_version():
    try:
        out = subprocess.run([SYSTEM_PYTHON, "-c", "import paho.mqtt; print(paho.mqtt.__version__)"],
                             capture_output=True, text=True, timeout=20)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None




# -- certificates ---------------------------------------------------------------
def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by the CA, in ``d``."""
    d = Path(d)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ledd test CA",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name,
                 "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
        (d / (name + ".ext")).write_text(ext + "\n")
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", name + ".ext", "-out", name + ".crt", cwd=d)
    for key in d.glob("*.key"):
        key.chmod(0o644)  # mosquitto may drop privileges; these are throwaway test keys
    return d


# -- the broker -------------------------------------------------------------------
class Broker:
    """A mosquitto on 127.0.0.1 with a plain, a TLS and a TLS+client-certificate listener."""

    def __init__(self, workdir, pki):
        self.dir = Path(workdir)
        self.pki = pki
        self.port, self.tls_port, self.mtls_port = free_port(), free_port(), free_port()
        self.proc = None
        self.log_path = self.dir / "mosquitto.log"
        passwd = self.dir / "passwd"
        subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), USER, PASSWORD], check=True, capture_output=True)
        passwd.chmod(0o600)
        tls = "cafile {p}/ca.crt\ncertfile {p}/server.crt\nkeyfile {p}/server.key\n".format(p=pki)
        (self.dir / "mosquitto.conf").write_text(
            # As root, mosquitto would switch to the user "mosquitto", who cannot read tmp_path.
            "user %s\n" % pwd.getpwuid(os.geteuid()).pw_name +
            "per_listener_settings false\nallow_anonymous false\npassword_file %s\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nmax_keepalive 3600\n"
            "listener %d 127.0.0.1\n"
            "listener %d 127.0.0.1\n%s"
            "listener %d 127.0.0.1\n%srequire_certificate true\n"
            % (passwd, self.port, self.tls_port, tls, self.mtls_port, tls))

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.dir / "mosquitto.conf")],
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        def listening():
            if self.proc.poll() is not None:
                raise AssertionError("mosquitto exited: %s" % self.log_path.read_text(errors="replace"))
            for port in (self.port, self.tls_port, self.mtls_port):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        wait_for(listening, WAIT_S, what="mosquitto to listen", ignore=(OSError,))
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def url(self, tls=False, mtls=False, user=USER):
        if mtls:
            return "mqtts://%s@localhost:%d" % (user, self.mtls_port)
        if tls:
            return "mqtts://%s@localhost:%d" % (user, self.tls_port)
        return "mqtt://%s@127.0.0.1:%d" % (user, self.port)


# -- a probe client -----------------------------------------------------------------
class Probe:
    """An MQTT client of the test: records (time, topic, payload, retained) of everything it sees."""

    def __init__(self, broker, subscribe=("#",), client_id=None):
        self.messages = []
        self.cond = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or "probe-" + uuid.uuid4().hex[:8])
        self.client.username_pw_set(USER, PASSWORD)
        self.client.on_message = self._on_message
        self.client.on_publish = lambda *a: self._ack_now()
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", broker.port, 30)
        # As the bridge does: no Nagle delay on our own publishes (paho leaves it on).
        self.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in subscribe])
        assert subscribed.wait(WAIT_S), "probe: no SUBACK"

    def _ack_now(self):
        """ACK what was just read (like the bridge does), or mosquitto's Nagle holds its next packet to us ~40 ms."""
        sock = self.client.socket()
        if sock is not None and hasattr(socket, "TCP_QUICKACK"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def _on_message(self, client, userdata, msg):
        self._ack_now()
        with self.cond:
            self.messages.append((time.monotonic(), msg.topic, msg.payload, bool(msg.retain)))
            self.cond.notify_all()

    def wait(self, predicate, timeout=WAIT_S, since=0, what="message"):
        """The first message (t, topic, payload, retained) at index >= since that matches."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.messages[since:]:
                    if predicate(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %ss; saw:\n%s" % (
                        what, timeout, "\n".join("%s %r%s" % (m[1], m[2][:100], " (r)" if m[3] else "") for m in self.messages[-40:])))
                self.cond.wait(left)

    def wait_for(self, topic, payload=None, timeout=WAIT_S, since=0):
        if isinstance(payload, str):
            payload = payload.encode()
        return self.wait(lambda m: m[1] == topic and (payload is None or m[2] == payload), timeout, since,
                         what="%s = %r" % (topic, payload))

    def mark(self):
        """An index for ``since=``: only messages after this call."""
        with self.cond:
            return len(self.messages)

    def last(self, topic):
        with self.cond:
            for m in reversed(self.messages):
                if m[1] == topic:
                    return m[2]
        return None

    def publish(self, topic, payload, retain=False, qos=1):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(WAIT_S)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def retained(broker, topic_filter):
    """{topic: payload} of every retained message under ``topic_filter`` right now."""
    marker = "ledd-test/marker/" + uuid.uuid4().hex
    probe = Probe(broker, subscribe=(topic_filter, marker))
    try:
        probe.publish(marker, b"x")
        probe.wait_for(marker)  # the broker sent the retained messages before it
        return {m[1]: m[2] for m in probe.messages if m[3]}
    finally:
        probe.close()


# -- the bridge --------------------------------------------------------------------
def write_config(path, broker, base, device_id, tls=False, mtls=False, extra="", password_file=None):
    """An mqtt.conf for this broker; the password goes into its own file next to it."""
    path = Path(path)
    if password_file is None:
        password_file = path.with_name(path.stem + ".password")
        password_file.write_text(PASSWORD + "\n")
        password_file.chmod(0o600)
    lines = ["[broker]", "url = %s" % broker.url(tls=tls, mtls=mtls), "password_file = %s" % password_file,
             "keepalive = 60"]
    if tls or mtls:
        lines.append("ca_file = %s/ca.crt" % broker.pki)
    if mtls:
        lines += ["cert_file = %s/client.crt" % broker.pki, "key_file = %s/client.key" % broker.pki]
    lines += ["[bridge]", "base_topic = %s" % base, "device_id = %s" % device_id, "device_name = %s" % device_id]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


class BridgeProcess:
    """``python -m ledd.mqtt -c CONFIG -r RUNTIME_DIR`` with its log in a file."""

    def __init__(self, config, runtime_dir, python=sys.executable, log_path=None):
        self.config, self.runtime_dir, self.python = Path(config), Path(runtime_dir), python
        self.log_path = Path(log_path or self.config.with_suffix(".log"))
        self.proc = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if k not in ("CREDENTIALS_DIRECTORY", "LEDD_RUNTIME_DIR", "JOURNAL_STREAM")}
        env["PYTHONPATH"] = str(ROOT)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.python, "-m", "ledd.mqtt", "-c", str(self.config), "-r", str(self.runtime_dir)],
                                     cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        return self

    def read_log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text, timeout=WAIT_S, count=1):
        found = wait_for(lambda: self.read_log().count(text) >= count or self.proc.poll() is not None, timeout,
                         what=lambda: "%r (x%d) in the bridge's log:\n%s" % (text, count, self.read_log()))
        if self.read_log().count(text) < count:
            raise AssertionError("the bridge exited (%s) with no %r (x%d) in its log:\n%s"
                                 % (self.proc.returncode, text, count, self.read_log()))
        return found

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("bridge ignored SIGTERM:\n" + self.read_log())

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def close(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        finally:
            if getattr(self, "log", None):
                self.log.close()
                self.log = None

"""Read and check ``/etc/ledd/mqtt.conf``, the MQTT bridge's configuration.

Same syntax as ledd.conf (docs/config.md): INI sections, ``key = value``,
``#``/``;`` comments at the start of a line or after a blank, and anything not
understood is an error naming the file and the line, never a guess::

    /etc/ledd/mqtt.conf:3: url: 'http://x' is not mqtt://HOST[:PORT] or mqtts://HOST[:PORT]

The password is never in this file's values, in argv or in the environment:
it is read from ``password_file`` or from the systemd credential
``$CREDENTIALS_DIRECTORY/mqtt-password`` (``LoadCredential=``). The reference
of every key is docs/mqtt.md and the commented example systemd/mqtt.conf.example.
"""

import os
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import unquote

from ledd import defaults

MAX_LINE = 511
MAX_FILE = 64 * 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class ConfigError(Exception):
    """A config problem; ``str()`` is the ``file:line: message`` line."""

    def __init__(self, path, line, message):
        self.path, self.line, self.message = path, line, message
        where = "%s:%d" % (path, line) if line else str(path)
        super().__init__("%s: %s" % (where, message))


@dataclass
class Config:
    """The bridge's settings, every one with its default (docs/mqtt.md)."""

    path: str = defaults.MQTT_CONFIG_PATH
    # [broker]
    url: str = ""
    tls: bool = False
    host: str = ""
    port: int = defaults.MQTT_PORT
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_id: str | None = None
    keepalive: int = defaults.MQTT_KEEPALIVE_S
    qos: int = defaults.MQTT_QOS
    # [bridge]
    base_topic: str = ""
    runtime_dir: str | None = None
    device_id: str = ""
    device_name: str = ""
    rate_limit: int = defaults.MQTT_RATE_LIMIT
    rate_burst: int = defaults.MQTT_RATE_BURST
    # [homeassistant]
    discovery: bool = True
    discovery_prefix: str = defaults.MQTT_DISCOVERY_PREFIX
    led_component: str = "light"
    lines: dict = field(default_factory=dict)  # key -> line number, for later messages

    def password(self, environ=None):
        """The broker password, or None: ``password_file``, else the systemd credential."""
        environ = os.environ if environ is None else environ
        path = self.password_file
        if path is None:
            creds = environ.get("CREDENTIALS_DIRECTORY")
            if not creds:
                return None
            path = os.path.join(creds, defaults.MQTT_PASSWORD_CREDENTIAL)
            if not os.path.exists(path):
                return None
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().rstrip("\r\n") or None  # an empty file: no password
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(self.path, self.lines.get("password_file", 0),
                              "password_file: cannot read %s: %s" % (path, getattr(err, "strerror", None) or err)) from None

    def effective_client_id(self):
        return self.client_id or "ledd-mqtt-" + self.device_id


# -- value parsers: each returns the value or raises ValueError(message) -----
def _bool(text):
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("%r is not a boolean (true/false)" % text)


def _int_range(low, high):
    def parse(text):
        if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
            raise ValueError("%r is not a number from %d to %d" % (text, low, high))
        return int(text)
    return parse


def _abs_path(text):
    if not text.startswith("/"):
        raise ValueError("%r is not an absolute path" % text)
    return text


def _existing_file(text):
    _abs_path(text)
    if not os.path.isfile(text):
        raise ValueError("%s: no such file" % text)
    return text


def _name(text):
    if not _NAME_RE.match(text):
        raise ValueError("%r may only use A-Z a-z 0-9 _ - (1-64 characters)" % text)
    return text


def _text(text):
    if len(text) > 64:
        raise ValueError("longer than 64 characters")
    return text


def _topic(text):
    """A topic prefix: no wildcards, no empty level, no leading or trailing '/'."""
    if not text or len(text) > 128:
        raise ValueError("must be 1-128 characters")
    if any(ch in text for ch in "+#\0") or any(ord(ch) < 32 for ch in text):
        raise ValueError("%r contains a wildcard (+, #) or a control character" % text)
    if "" in text.split("/"):
        raise ValueError("%r has an empty level (leading, trailing or double '/')" % text)
    return text


def _component(text):
    if text not in ("light", "switch"):
        raise ValueError("%r is not light or switch" % text)
    return text


def _url(text):
    """(tls, host, port, username or None) of mqtt://[user@]host[:port] or mqtts://…"""
    m = re.fullmatch(r"(mqtts?)://(?:([^@/:]*)(:[^@/]*)?@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{1,5}))?/?", text)
    if not m:
        raise ValueError("%r is not mqtt://[USER@]HOST[:PORT] or mqtts://[USER@]HOST[:PORT]" % text)
    scheme, user, password, host, port = m.groups()
    if password is not None:
        raise ValueError("the URL carries a password: put it in password_file or the %s credential instead"
                         % defaults.MQTT_PASSWORD_CREDENTIAL)
    tls = scheme == "mqtts"
    port = int(port) if port else (defaults.MQTTS_PORT if tls else defaults.MQTT_PORT)
    if not 1 <= port <= 65535:
        raise ValueError("port %d is out of range (1-65535)" % port)
    return tls, host.strip("[]"), port, (unquote(user) if user else None)


#: section -> key -> parser
SCHEMA = {
    "broker": {
        "url": _url,
        "username": _text,
        "password_file": _existing_file,
        "ca_file": _existing_file,
        "cert_file": _existing_file,
        "key_file": _existing_file,
        "client_id": _name,
        "keepalive": _int_range(*defaults.MQTT_KEEPALIVE_RANGE),
        "qos": _int_range(0, 2),
    },
    "bridge": {
        "base_topic": _topic,
        "runtime_dir": _abs_path,
        "device_id": _name,
        "device_name": _text,
        "rate_limit": _int_range(1, 1000),
        "rate_burst": _int_range(1, 10000),
    },
    "homeassistant": {
        "discovery": _bool,
        "discovery_prefix": _topic,
        "led_component": _component,
    },
}


def _strip_comment(line):
    """The line without a trailing ``#``/``;`` comment (one that starts a line or follows a blank)."""
    for i, ch in enumerate(line):
        if ch in "#;" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def machine_id(path=None):
    """The first 16 hex digits of the machine id (stable across hostname changes), or None."""
    try:
        with open(path or defaults.MQTT_MACHINE_ID, encoding="ascii", errors="replace") as f:
            text = f.read().strip()
    except OSError:
        return None
    return text[:16] if re.fullmatch(r"[0-9a-f]{32}", text) else None


def hostname():
    """This machine's short host name, usable as one topic level."""
    name = socket.gethostname().split(".")[0] or "localhost"
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def parse(text, path="<string>"):
    """A :class:`Config` from the file's text; raises :class:`ConfigError` at the first problem."""
    cfg = Config(path=str(path))
    section = None
    seen = {}
    if len(text.encode("utf-8", "surrogateescape")) > MAX_FILE:
        raise ConfigError(path, 0, "longer than %d bytes" % MAX_FILE)
    for number, raw in enumerate(text.split("\n"), 1):
        if raw.endswith("\r"):
            raw = raw[:-1]
        if len(raw.encode("utf-8", "surrogateescape")) > MAX_LINE:
            raise ConfigError(path, number, "line longer than %d bytes" % MAX_LINE)
        if any((ord(ch) < 32 and ch != "\t") or "\udc80" <= ch <= "\udcff" for ch in raw):
            raise ConfigError(path, number, "control character or invalid UTF-8")
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConfigError(path, number, "section header must end with ']'")
            section = line[1:-1].strip()
            if section not in SCHEMA:
                raise ConfigError(path, number, "unknown section [%s] (expected %s)"
                                  % (section, ", ".join("[%s]" % s for s in SCHEMA)))
            if section in seen:
                raise ConfigError(path, number, "a second [%s] section" % section)
            seen[section] = {}
            continue
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key:
            raise ConfigError(path, number, "expected 'key = value'")
        if section is None:
            raise ConfigError(path, number, "%s: outside a section (start with [broker])" % key)
        if key not in SCHEMA[section]:
            raise ConfigError(path, number, "unknown key '%s' in [%s]" % (key, section))
        if key in seen[section]:
            raise ConfigError(path, number, "%s: set twice (first on line %d)" % (key, seen[section][key]))
        if not value:
            raise ConfigError(path, number, "%s: missing value" % key)
        seen[section][key] = number
        try:
            parsed = SCHEMA[section][key](value)
        except ValueError as err:
            raise ConfigError(path, number, "%s: %s" % (key, err)) from None
        cfg.lines[key] = number
        if key == "url":
            cfg.url = value
            cfg.tls, cfg.host, cfg.port, user = parsed
            cfg.username = user or cfg.username
        else:
            setattr(cfg, key, parsed)
    _check_whole(cfg, path)
    return cfg


def _check_whole(cfg, path):
    """Rules that involve several keys, and the defaults that depend on the machine."""
    if not cfg.url:
        raise ConfigError(path, 0, "no url in [broker] (e.g. url = mqtt://broker.lan)")
    if "username" in cfg.lines and cfg.url and re.match(r"mqtts?://[^/]*@", cfg.url):
        raise ConfigError(path, cfg.lines["username"], "username: already given in the url")
    for key in ("ca_file", "cert_file", "key_file"):
        if getattr(cfg, key) and not cfg.tls:
            raise ConfigError(path, cfg.lines[key], "%s: needs an mqtts:// url" % key)
    if bool(cfg.cert_file) != bool(cfg.key_file):
        key = "cert_file" if cfg.cert_file else "key_file"
        raise ConfigError(path, cfg.lines[key], "%s: cert_file and key_file go together" % key)
    if cfg.rate_burst < cfg.rate_limit and "rate_burst" in cfg.lines:
        raise ConfigError(path, cfg.lines["rate_burst"], "rate_burst: %d is below rate_limit (%d)"
                          % (cfg.rate_burst, cfg.rate_limit))
    cfg.rate_burst = max(cfg.rate_burst, cfg.rate_limit)
    if not cfg.device_id:
        cfg.device_id = machine_id() or hostname()
    if not cfg.device_name:
        cfg.device_name = hostname()
    if not cfg.base_topic:
        cfg.base_topic = "ledd/" + hostname()


def load(path=defaults.MQTT_CONFIG_PATH):
    """Read and check the file; raises :class:`ConfigError` (also for a missing file)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE + 1)
    except OSError as err:
        raise ConfigError(path, 0, "cannot read: %s" % (err.strerror or err)) from None
    return parse(data.decode("utf-8", "surrogateescape"), path)

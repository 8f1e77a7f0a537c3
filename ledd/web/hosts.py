"""Which ``Host`` names the dashboard answers to: the DNS-rebinding guard.

A page on ``http://rebind.evil.example`` can make its name resolve to this
machine and then talk to the dashboard as if it were its own site: same origin,
so no CSRF check can tell. What gives it away is the ``Host`` header, which
still names the attacker's domain. So a request is answered only when its Host
(port aside) is one of:

- ``localhost`` or a loopback address (127.0.0.0/8, ``[::1]``);
- this machine's hostname, or that name + ``.local`` (mDNS);
- one of the machine's current IP addresses (IPv4, or IPv6 in brackets);
- a name listed in ``$LEDD_ALLOWED_HOSTS`` (space-separated; deploy.sh's
  ``--host NAME`` puts it into the web server's environment).

Two places apply the rule. lighttpd.conf runs this file at start
(``include_shell``) to get a regular expression of the names and addresses
known then, so static files are covered too; the CGI scripts call
:func:`host_allowed` on every request, which also sees addresses the machine
gained after lighttpd started. Only built-in modules are used, and the
addresses are read from /proc only for a Host that is an address literal
not already known: the GET /api/state path stays cheap.
"""

import posix
import sys

if __name__ == "__main__":  # run by lighttpd.conf's include_shell as a file
    sys.path.insert(0, __file__.rpartition("/ledd/")[0] or ".")

from ledd import defaults  # noqa: E402

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


def split_host(host):
    """``("name-or-address", port-or-None)`` from a Host header, lower-cased; None if malformed.

    ``pi.local:8080`` -> ``("pi.local", "8080")``; ``[::1]:80`` -> ``("[::1]", "80")``;
    a single trailing dot (``localhost.``) is the same DNS name and is dropped.
    """
    host = host.strip().lower()
    port = None
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None
        name, rest = host[:end + 1], host[end + 1:]
        if rest:
            if not rest.startswith(":"):
                return None
            port = rest[1:]
    else:
        name, sep, port = host.partition(":")
        if not sep:
            port = None
    if port is not None and not (port.isascii() and port.isdigit()):
        return None
    if name.endswith(".") and not name.startswith("["):
        name = name[:-1]
    if not name:
        return None
    return name, port


def allowed_words(environ_value):
    """``$LEDD_ALLOWED_HOSTS`` word by word, each parsed once: ``[(word, split_host(word)), ...]``."""
    return [(word, split_host(word)) for word in (environ_value or "").split()]


def configured_names(words):
    """The names of :func:`allowed_words`' list, lower-cased (malformed entries are skipped)."""
    return [parsed[0] for _, parsed in words if parsed is not None]


def machine_names():
    """Names that are always allowed: localhost, the hostname (+ .local, and the short name's)."""
    node = posix.uname().nodename.lower().rstrip(".")
    names = ["localhost", node, node + ".local"]
    short = node.partition(".")[0]
    if short != node:
        names += [short, short + ".local"]
    return [n for n in names if n]


def _pton(name):
    """The packed address of an address literal (``1.2.3.4``, ``[::1]``), or None for a name."""
    import _socket  # built into the interpreter: no import cost worth the name

    try:
        if name.startswith("[") and name.endswith("]"):
            return _socket.inet_pton(_socket.AF_INET6, name[1:-1].partition("%")[0])
        if name[:1].isdigit():
            return _socket.inet_pton(_socket.AF_INET, name)
    except (OSError, ValueError):
        pass
    return None


def read_file(path):
    """A whole file's bytes through ``posix`` (no ``os``, no ``io`` buffering), or None if unreadable."""
    try:
        fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while True:
            chunk = posix.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        posix.close(fd)


def _read_text(path):
    return (read_file(path) or b"").decode("ascii", "replace")


def machine_addresses():
    """The packed addresses of this machine's interfaces right now (IPv4 and IPv6), from /proc."""
    import _socket

    found = set()
    # IPv4: the fib_trie lists each local address as "|-- A.B.C.D" followed by "/32 host LOCAL".
    last = None
    for line in _read_text(defaults.WEB_PROC_FIB_TRIE).splitlines():
        text = line.strip()
        if text.startswith("|-- "):
            last = text[4:]
        elif text == "/32 host LOCAL" and last:
            try:
                found.add(_socket.inet_pton(_socket.AF_INET, last))
            except OSError:
                pass
    # IPv6: one address per line, 32 hex digits first.
    for line in _read_text(defaults.WEB_PROC_IF_INET6).splitlines():
        hexaddr = line[:32]
        if len(hexaddr) == 32:
            try:
                found.add(bytes.fromhex(hexaddr))
            except ValueError:
                pass
    return found


def is_loopback(packed):
    return (len(packed) == 4 and packed[0] == 127) or packed == b"\0" * 15 + b"\1"


def host_allowed(host, environ_value=None):
    """True if a request with this ``Host`` header may be answered (see the module doc)."""
    parsed = split_host(host) if host else None
    if parsed is None:
        return False
    name = parsed[0]
    configured = configured_names(allowed_words(environ_value))
    if name in configured or name in machine_names():
        return True
    packed = _pton(name)
    if packed is None:
        return False
    if is_loopback(packed) or any(_pton(allowed) == packed for allowed in configured):
        return True
    return packed in machine_addresses()


# -- lighttpd.conf's include_shell ------------------------------------------------------

#: 127.0.0.0/8 as lighttpd writes it (canonical dotted quad).
LOOPBACK_V4_REGEX = "127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"


def _regex_quote(text):
    return "".join("\\" + ch if ch in ".[]()|*+?^$\\{}" else ch for ch in text)


def _literal(packed):
    import _socket

    if len(packed) == 4:
        return _socket.inet_ntop(_socket.AF_INET, packed)
    return "[%s]" % _socket.inet_ntop(_socket.AF_INET6, packed)


def lighttpd_config(environ_value):
    """The config lines lighttpd.conf includes: the Host pattern, and the names + addresses for the CGIs."""
    words = allowed_words(environ_value)
    bad = [word for word, parsed in words
           if parsed is None or (_pton(parsed[0]) is None and not _NAME_CHARS.issuperset(parsed[0]))]
    if bad:
        raise SystemExit("%s: not a host name or address: %s" % (defaults.WEB_ALLOWED_HOSTS_ENV, " ".join(bad)))
    configured = configured_names(words)
    literals = {"127.0.0.1", "[::1]"}
    literals.update(_literal(p) for p in machine_addresses())
    names = sorted(set(machine_names() + configured) | literals)
    # lighttpd lower-cases Host, drops a default port and writes IP addresses in
    # their canonical form before matching ($HTTP["host"]); a trailing dot may remain.
    # lighttpd keeps backslashes in config strings as they are; no name holds a quote.
    alternatives = [_regex_quote(n) for n in names] + [LOOPBACK_V4_REGEX]
    pattern = "^(%s)\\.?(:[0-9]+)?$" % "|".join(alternatives)
    # The CGIs get the configured names plus the addresses of now: a Host among them is
    # answered without reading /proc (an address literal is never a rebinding name, so
    # one the machine has since lost is harmless).
    value = " ".join(configured + sorted(literals))
    return 'var.ledd_host_pattern = "%s"\nvar.ledd_allowed_hosts = "%s"\n' % (pattern, value)


if __name__ == "__main__":
    sys.stdout.write(lighttpd_config(posix.environ.get(defaults.WEB_ALLOWED_HOSTS_ENV.encode(), b"").decode("utf-8", "replace")))

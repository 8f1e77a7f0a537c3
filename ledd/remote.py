"""An HTTP client for a remote ledd dashboard, with the same methods as :class:`ledd.client.Client`.

Scripts can switch between a local daemon (FIFOs) and a dashboard across the
network by changing one line::

    from ledd.client import Client
    from ledd.remote import RemoteClient

    board = RemoteClient("http://pi.local", auth=("admin", "secret"))
    # board = Client()                      # the same calls, on the Pi itself
    board.on("red")
    board.blink("green", 100, 900)
    with board.watch() as events:
        for state in events:                # each state change, as JSON bytes
            print(state)

It talks to the dashboard's JSON API (``GET /api/state``, ``POST /api/leds/<id>``,
``POST /api/leds``, ``POST /api/buttons/<id>``, ``GET /api/events``) through
`requests <https://requests.readthedocs.io>`_, so proxies, HTTPS and
``~/.netrc`` credentials work as usual (requests reads ``~/.netrc`` when no
``auth`` is given). The API addresses LEDs and buttons by numeric id; names are
resolved through ``/api/state``.

Errors are the ones :mod:`ledd.client` raises: :class:`~ledd.client.DaemonDown`
(the dashboard or its daemon is unreachable, HTTP 503),
:class:`~ledd.client.DaemonTimeout` (HTTP 504 or no answer in time) and
:class:`~ledd.client.CommandError` (the request was refused; ``code`` is the
daemon's, e.g. ``notfound``, and ``api_code`` the API's, e.g. ``not_found``), plus :class:`RemoteError` for what only HTTP can get wrong
(authentication, an answer that is not the API's).
"""

import json
import queue
import socket
import threading

import requests

from ledd import defaults
from ledd.verbs import add_methods
from ledd.errors import DAEMON_CODE_OF_API_CODE, CommandError, DaemonDown, DaemonTimeout, LeddError, RemoteError

__all__ = ["RemoteClient", "RemoteWatcher", "RemoteError"]


#: Longest SSE line read at once: a state line is under PIPE_BUF; this only
#: bounds memory against a misbehaving server (HTTP-side only, hence not in defaults).
SSE_MAX_LINE = 65536


def _base_url(url):
    """``http://host[:port]`` with no trailing slash; a bare ``host`` gets ``http://``."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def _error_from_response(resp):
    """The LeddError that an HTTP error response stands for."""
    try:
        body = resp.json()
        message, code = str(body["error"]), str(body.get("code") or "")
    except (ValueError, KeyError, TypeError):
        body, message, code = None, "", ""
    status = resp.status_code
    if status == 401 or (status == 403 and body is None):
        # Authentication (the API's JSON 401, or a proxy's page), not a refused command.
        hint = " (wrong user or password? use --user or ~/.netrc)" if status == 401 else ""
        err = RemoteError("%s refused the request: HTTP %d%s" % (resp.url, status, hint), "unauthorized")
    elif status == 421:
        err = RemoteError("%s does not answer to this host name (add it with deploy.sh --host): %s"
                          % (resp.url, message), "misdirected_request")
    elif status == 503 and code != "busy":
        err = DaemonDown(message or "the dashboard reports ledd is not running (HTTP 503)")
    elif status == 504:
        err = DaemonTimeout(message or "the dashboard timed out waiting for ledd (HTTP 504)")
    elif body is None:
        err = RemoteError("unexpected answer from %s: HTTP %d %s" % (resp.url, status, resp.reason or ""), "http")
    else:
        err = CommandError(message, DAEMON_CODE_OF_API_CODE.get(code, code or "internal"))
    # Nothing of the answer is lost: the HTTP status and the API's own code stay on the error.
    err.http_status = status
    err.api_code = code or None
    retry_after = resp.headers.get("Retry-After", "")
    err.retry_after = int(retry_after) if retry_after.isdigit() else None
    return err


class RemoteClient:
    """A client of a ledd dashboard's HTTP API.

    ``url`` is the dashboard's address (``http://pi.local``, ``http://10.0.0.7:8080``);
    ``auth`` is anything requests accepts (a ``(user, password)`` tuple, an
    ``AuthBase``), or ``None`` to use ``~/.netrc`` if it has an entry;
    ``timeout`` bounds each request, in seconds.

    Every verb returns the new state as a dict, like :class:`ledd.client.Client`.
    ``led`` and ``button`` are an index or a configured name.
    """

    #: Default request timeout (s): longer than the dashboard's own wait for ledd,
    #: so its 504 (a clear "ledd did not answer") arrives before our timeout.
    default_timeout = 2 * defaults.TIMEOUT_S

    def __init__(self, url, auth=None, timeout=None):
        self.url = _base_url(url)
        self.timeout = timeout or self.default_timeout
        self.session = requests.Session()
        if auth is not None:
            self.session.auth = auth
        self.session.headers["Accept"] = "application/json"

    # -- the exchange -----------------------------------------------------
    def _send(self, method, path, body=None, timeout=None, **kwargs):
        try:
            resp = self.session.request(method, self.url + path, json=body, timeout=timeout or self.timeout, **kwargs)
        except requests.exceptions.Timeout:
            raise DaemonTimeout("%s did not answer within %.1f s" % (self.url, self.timeout)) from None
        except requests.exceptions.RequestException as err:
            raise DaemonDown("cannot reach %s: %s" % (self.url, _reason(err))) from None
        if resp.status_code >= 400:
            raise _error_from_response(resp)
        return resp

    def request_json(self, method, path, body=None):
        """Send one API request and return the decoded JSON answer."""
        resp = self._send(method, path, body)
        try:
            return resp.json()
        except ValueError:
            raise RemoteError("%s answered HTTP %d with no JSON" % (resp.url, resp.status_code), "http") from None

    def _id_of(self, kind, ref):
        """The numeric id of LED/button ``ref`` (an index or a name)."""
        text = str(ref)
        if text.isascii() and text.isdigit():
            return int(text)
        for item in self.state()[kind]:
            if item.get("name") == text:
                return item["id"]
        raise CommandError("no %s named %r" % ("LED" if kind == "leds" else "button", text), "notfound")

    # -- the verbs: one method per entry of ledd.verbs.VERBS with a web API form ------
    def _run_verb(self, verb, values):
        """``POST /api/leds/<id>`` (or the verb's other request) with its JSON body."""
        http = verb.http
        by_name = dict(zip((arg.name for arg in verb.args), values))
        body, path, target = http.body(verb, by_name), http.path, http.target(verb)
        if target is not None:
            collection = target.kind + "s"  # "leds", "buttons": the state's lists
            path = path.replace("<%s>" % target.name, str(self._id_of(collection, by_name[target.name])))
        return self.request_json(http.method, "/api/" + path, body)

    def watch(self):
        """Subscribe to state changes (``/api/events``); returns a :class:`RemoteWatcher`."""
        return RemoteWatcher(self)

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


add_methods(RemoteClient, usable=lambda verb: verb.http is not None)


def _reason(err):
    """The innermost, most human part of a requests/urllib3 exception."""
    text = str(err)
    for marker in ("Failed to establish a new connection: ", "Name or service not known"):
        if marker in text:
            tail = text.split(marker, 1)[1] if marker.endswith(": ") else marker
            return tail.split("'))")[0].split("))")[0].strip("'\" ")
    return text


class RemoteWatcher:
    """The dashboard's server-sent events, with the interface of :class:`ledd.client.Watcher`.

    :meth:`next_event` returns each event's state JSON as bytes (the first one
    is the current state), or ``None`` when ``timeout`` passes first. When the
    server ends the stream (a web server's time limit), the watcher connects
    again, as a browser's ``EventSource`` does; if that fails it raises
    :class:`~ledd.client.DaemonDown`.

    A reader thread parses the stream, so a timeout never cuts an event in half.
    """

    #: Stream read timeout (s): the dashboard pings every WEB_SSE_PING_S, far more often.
    idle_timeout = 4 * defaults.WEB_SSE_PING_S
    #: Pause before connecting again (s); the server may change it with ``retry:``.
    reconnect_delay = defaults.WEB_SSE_RETRY_MS / 1000.0
    #: Failed reconnections in a row before giving up with DaemonDown.
    max_reconnects = 3

    def __init__(self, client):
        self.client = client
        self._events = queue.Queue()
        self._closed = threading.Event()
        self._last = None
        self._last_id = None  # the last event's id (its seq), sent back as Last-Event-ID
        self._resp = self._connect()
        self._thread = threading.Thread(target=self._run, name="ledd-sse", daemon=True)
        self._thread.start()

    def _connect(self):
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", "Accept-Encoding": "identity"}
        if self._last_id is not None:
            headers["Last-Event-ID"] = self._last_id
        # (connect, read) timeouts: an idle stream still gets a ping well within idle_timeout.
        timeout = (self.client.timeout, self.idle_timeout)
        resp = self.client._send("GET", "/api/events", timeout=timeout, stream=True, headers=headers)
        ctype = resp.headers.get("Content-Type", "")
        if not ctype.startswith("text/event-stream"):
            resp.close()
            raise RemoteError("%s/api/events is not an event stream (Content-Type %r)" % (self.client.url, ctype), "http")
        return resp

    def _run(self):
        """Reader thread: parse streams into the queue, reconnecting; an exception object ends it."""
        failures = 0
        while not self._closed.is_set():
            wait = None
            try:
                if self._resp is None:
                    self._resp = self._connect()
                self._pump(self._resp)
                failures = 0  # the stream worked and ended: connect again after the delay
            except Exception as err:  # LeddError from _connect; requests/urllib3/socket read errors
                if self._closed.is_set():
                    break
                failures += 1
                wait = getattr(err, "retry_after", None)  # a 503 says when to come back
                if failures > self.max_reconnects:
                    if not isinstance(err, LeddError):
                        err = DaemonDown("event stream from %s broke: %s" % (self.client.url, _reason(err)))
                    self._events.put(err)
                    return
            finally:
                if self._resp is not None:
                    self._resp.close()
                    self._resp = None
            backoff = min(self.reconnect_delay * 2 ** failures, 10.0)
            self._closed.wait(max(backoff, wait or 0))
        self._events.put(DaemonDown("watcher closed"))

    def _deliver(self, payload):
        # A new stream starts with the current state: do not repeat an unchanged one.
        if payload != self._last:
            self._last = payload
            self._events.put(payload)

    def _pump(self, resp):
        """Parse one stream until it ends."""
        kind, data = "message", []
        for raw in _lines(resp):
            if self._closed.is_set():
                break
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:  # blank line: dispatch
                if data and kind == "state":
                    self._deliver("\n".join(data).encode("utf-8"))
                kind, data = "message", []
            elif line.startswith(":"):
                continue  # comment: a keep-alive ping
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    kind = value
                elif field == "id" and value.isdigit():
                    self._last_id = value
                elif field == "data":
                    data.append(value)
                elif field == "retry" and value.isdigit():
                    self.reconnect_delay = int(value) / 1000.0

    def next_event(self, timeout=None):
        """The next event's state JSON (bytes), or None after ``timeout`` seconds."""
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, Exception):
            self._events.put(item)  # every later call fails the same way
            raise item
        return item

    def __iter__(self):
        while True:
            yield self.next_event()

    def close(self):
        """Stop: wake the reader thread by shutting the socket down (it closes the response)."""
        self._closed.set()
        sock = _socket_of(self._resp)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _socket_of(resp):
    """The socket under a streaming response, or None.

    Closing the response from another thread would wait for the reader
    thread's blocked read (both take the same buffer lock) until the next
    ping; shutting the socket down wakes that read at once.
    """
    raw = getattr(resp, "raw", None)
    for path in (("_connection", "sock"), ("_fp", "fp", "raw", "_sock")):
        obj = raw
        for attr in path:
            obj = getattr(obj, attr, None)
        if isinstance(obj, socket.socket):
            return obj
    return None


def _lines(resp):
    """The stream's lines as they arrive.

    requests' ``iter_lines(chunk_size=None)`` only yields early for chunked
    responses: on a stream that ends at connection close it waits for the end.
    http.client's own ``readline`` (under urllib3, same on 1.26 and 2.x) returns
    each line as soon as it is complete, chunked or not.
    """
    fp = getattr(resp.raw, "_fp", None)
    if fp is not None and hasattr(fp, "readline"):
        while True:
            line = fp.readline(SSE_MAX_LINE)
            if not line:
                return
            yield line
    else:  # not urllib3 underneath: byte by byte is slow but never waits for more than a line
        yield from resp.iter_lines(chunk_size=1)


def decode(state_bytes):
    """Decode an event's state JSON (bytes) into a dict (a helper for scripts)."""
    return json.loads(state_bytes)

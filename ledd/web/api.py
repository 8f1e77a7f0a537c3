"""The HTTP API behind lighttpd: one CGI request in, one JSON response out.

``cgi-bin/api.py`` is a three-line launcher that calls :func:`main`; the logic
lives here so its bytecode is cached. Each route is the web form of a verb in
:mod:`ledd.verbs`'s table, validated by the verb's argument kinds and ranges
(no route has code of its own). Routes, bodies and errors are documented in
docs/api.md:

    GET  /api/state            the whole state (ledd's STATE payload, relayed as is)
    POST /api/leds/<id>        {"on": bool} | {"toggle": true} | {"blink": {"on_ms": N, "off_ms": N}}
                               | {"brightness": N} | {"pwm_hz": N}
    POST /api/leds             {"on": bool} | {"brightness": N}  every LED
    POST /api/buttons/<id>     {"pressed": bool}                 sim backend only (409 otherwise)

Before anything else, a request whose ``Host`` is not one of this machine's
names gets 421 (:mod:`ledd.web.hosts`: DNS rebinding). lighttpd's own errors
reach :func:`main` too (REDIRECT_STATUS, see lighttpd.conf): JSON under /api/,
www/error.html elsewhere. ledd's error codes become API codes and HTTP
statuses through ``DAEMON_ERRORS``, the one table of :mod:`ledd.errors`.

Start-up is most of a CGI's cost, so at load time this imports only modules
built into the interpreter (``posix``, ``sys``; ``os`` alone would cost about a
millisecond) and ledd's own :mod:`ledd.defaults`, :mod:`ledd.errors`,
:mod:`ledd.verbs`, :mod:`ledd.client` and :mod:`ledd.web.hosts`, which import
only built-in modules themselves. The GET path never imports ``json``: ledd's
reply already is the response body. The path is parsed by hand from
``REQUEST_URI`` for the same reason (no urllib).
"""

import posix
import sys

from ledd import defaults, verbs
from ledd.client import Client, getenv
from ledd.errors import DAEMON_ERRORS, LeddError
from ledd.web.hosts import host_allowed, read_file

API_PREFIX = "/api/"
#: GET /api/actions: the buttons' actions as data (actions_body), the one route that is no verb.
ACTIONS_ROUTE = ["actions"]

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    408: "Request Timeout",
    411: "Length Required",
    413: "Payload Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    415: "Unsupported Media Type",
    421: "Misdirected Request",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}

#: What a 503 daemon_down says: where ledd's FIFOs are is the server's business (it goes to the log).
DAEMON_DOWN_MESSAGE = "ledd is not running or this web server may not reach it"

#: The API code of every status lighttpd answers under /api/ itself: api.py gets it as
#: REDIRECT_STATUS, lighttpd.d/api-errors/ holds one last-resort file per status (for when
#: api.py cannot answer either), and docs/api.md lists each code, as the page's translations do.
#: A status lighttpd may add later gets the code of its class (:func:`lighttpd_error`).
LIGHTTPD_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "body_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    500: "internal_server_error",
    501: "not_implemented",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
    505: "http_version_not_supported",
}

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class HTTPError(Exception):
    """An error answer: status, machine code, human message and extra headers."""

    def __init__(self, status, code, message, headers=()):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)
        if status == 503:
            # Every 503 is temporary: say when to try again (the page backs off by it).
            self.headers.append(("Retry-After", str(defaults.WEB_RETRY_AFTER_S)))

    @classmethod
    def from_ledd(cls, err):
        """Map a :class:`ledd.client.LeddError` (503, 504, or ledd's ERR reply) to HTTP.

        A daemon_down message names ledd's FIFOs: it goes to lighttpd's error log,
        and the client gets :data:`DAEMON_DOWN_MESSAGE`.
        """
        code, status = DAEMON_ERRORS.get(err.code, (err.code, 500))  # a code newer than this table
        message = str(err)
        if code == "daemon_down":
            log("ledd api: %s" % message)
            message = DAEMON_DOWN_MESSAGE
        return cls(status, code, message)


class HTMLError(HTTPError):
    """lighttpd's own error for a URL outside /api/: answered with www/error.html, as lighttpd would."""


def log(line):
    """One line for lighttpd's error log (a CGI's stderr goes there)."""
    try:
        sys.stderr.write(line.replace("\n", " ") + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# -- output ------------------------------------------------------------------

def json_string(text):
    """``text`` as a JSON string literal, without importing json (the GET path must not)."""
    out = ['"']
    for ch in text:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch < " " or ch == "\x7f":
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def error_body(code, message):
    """The API's error document: ``{"error": message, "code": code}`` as bytes."""
    # "replace": a path with invalid UTF-8 reaches us as lone surrogates.
    return ('{"error":%s,"code":%s}\n' % (json_string(message), json_string(code))).encode("utf-8", "replace")


def write_all(fd, data):
    """Write every byte to ``fd`` (a pipe to lighttpd: writes may be partial)."""
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view):]


def respond(status, body, headers=(), head_only=False, content_type="application/json"):
    """Write a complete CGI response to stdout: a JSON body unless ``content_type`` says otherwise."""
    lines = [
        "Status: %d %s" % (status, REASONS.get(status, "Error")),
        "Content-Type: " + content_type,
        "Cache-Control: no-store",
        "Content-Length: %d" % len(body),
    ]
    lines.extend("%s: %s" % pair for pair in headers)
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    write_all(1, head if head_only else head + body)


def respond_error(err, head_only=False):
    """The error as the API's JSON, or as www/error.html (the page lighttpd shows outside /api/)."""
    if isinstance(err, HTMLError):
        page = read_file(__file__.rpartition("/ledd/")[0] + "/www/error.html") or b"<!doctype html><title>Error</title>\n"
        respond(err.status, page, err.headers, head_only, "text/html; charset=utf-8")
    else:
        respond(err.status, error_body(err.code, err.message), err.headers, head_only)


# -- the request -------------------------------------------------------------

def request_path(environ):
    """The URL path of the request as the client sent it, without the query string."""
    uri = environ.get("REQUEST_URI")
    if uri is None:
        uri = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return uri.partition("?")[0]


def api_route(environ):
    """Split ``/api/leds/0`` into ``["leds", "0"]``; anything outside /api/ is a 404."""
    path = request_path(environ)
    if not path.startswith(API_PREFIX):
        raise not_found(path)
    return path[len(API_PREFIX):].split("/")


def not_found(path):
    return HTTPError(404, "not_found", "no such resource: %s" % path[:200])


def check_method(environ, allowed):
    """405 with an ``Allow`` header unless the method is one of ``allowed``."""
    method = environ.get("REQUEST_METHOD", "GET")
    if method not in allowed:
        allow = ", ".join(allowed)
        raise HTTPError(405, "method_not_allowed", "%s is not allowed here (allowed: %s)" % (method, allow), [("Allow", allow)])
    return method


def check_same_origin(environ):
    """CSRF: a browser request from another site gets 403; clients without Origin pass.

    Browsers send ``Origin`` with every POST and ``Sec-Fetch-Site`` with every
    request; curl and scripts send neither and are not at risk.
    """
    if environ.get("HTTP_SEC_FETCH_SITE", "").lower() == "cross-site":
        raise HTTPError(403, "cross_site", "cross-site request refused")
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return
    scheme, sep, authority = origin.partition("://")
    host = environ.get("HTTP_HOST", "")
    if not sep or scheme.lower() not in ("http", "https") or not host or authority.lower() != host.lower():
        raise HTTPError(403, "cross_site", "request from origin %s refused: only this dashboard's own pages may change state" % origin[:100])


def check_host(environ):
    """DNS rebinding: 421 unless ``Host`` names this machine (ledd.web.hosts has the rule)."""
    host = environ.get("HTTP_HOST", "")
    if not host_allowed(host, environ.get(defaults.WEB_ALLOWED_HOSTS_ENV)):
        shown = host[:100] if host else "(none)"
        raise HTTPError(421, "misdirected_request", "this server does not answer to the host name %s; "
                        "add it to %s if it is yours" % (shown, defaults.WEB_ALLOWED_HOSTS_ENV))


def check_id(part, path):
    """An LED or button id: a canonical decimal index (no leading zero) or a configured name, else 404."""
    if not part or len(part) > defaults.MAX_NAME or not _NAME_CHARS.issuperset(part):
        raise not_found(path)
    if part.isdigit() and part != "0" and part.startswith("0"):
        raise not_found(path)  # "01" is not LED 1: one resource, one URL
    return part


def read_body(environ, stdin_fd=0):
    """The POST body as bytes, after the media-type and size checks (415, 413)."""
    content_type = environ.get("CONTENT_TYPE", "")
    if "," in content_type:  # lighttpd joins repeated headers with ", ": which one is meant?
        raise HTTPError(400, "bad_request", "more than one Content-Type")
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPError(415, "unsupported_media_type", "the body must be application/json (got %s)" % (media_type or "none"))
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HTTPError(400, "bad_json", "invalid Content-Length") from None
    if length > defaults.WEB_MAX_BODY:
        raise HTTPError(413, "body_too_large", "the body is over %d bytes" % defaults.WEB_MAX_BODY)
    chunks, left = [], length
    while left > 0:
        chunk = posix.read(stdin_fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def parse_object(body):
    """Decode a JSON object strictly: UTF-8, no NaN/Infinity, no duplicate keys (400)."""
    import json

    def no_constant(name):
        raise ValueError("%s is not JSON" % name)

    def no_duplicates(pairs):
        obj = {}
        for key, value in pairs:
            if key in obj:
                raise ValueError("duplicate key %r" % key)
            obj[key] = value
        return obj

    try:
        value = json.loads(body.decode("utf-8"), parse_constant=no_constant, object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as err:
        raise HTTPError(400, "bad_json", "the body is not valid JSON: %s" % err) from None
    except RecursionError:  # [[[[... deeper than the parser's stack: no valid body nests at all
        raise HTTPError(400, "bad_json", "the body is not valid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise HTTPError(400, "bad_json", "the body must be a JSON object")
    return value


def one_field(obj, allowed):
    """The single (key, value) of ``obj``; unknown or extra keys are a 400."""
    unknown = sorted(k for k in obj if k not in allowed)
    if unknown:
        raise HTTPError(400, "unknown_field", "unknown field %s (expected one of: %s)" % (", ".join(unknown), ", ".join(allowed)))
    if len(obj) != 1:
        raise HTTPError(400, "bad_body", "expected exactly one of: %s" % ", ".join(allowed))
    return next(iter(obj.items()))


def want_bool(key, value):
    if not isinstance(value, bool):
        raise HTTPError(400, "bad_value", "%s must be true or false" % key)
    return value


def want_number(key, value, arg):
    # bool is an int in Python; true is not a number.
    if isinstance(value, bool) or not isinstance(value, int) or not arg.min <= value <= arg.max:
        raise HTTPError(400, "bad_value", "%s must be an integer from %d to %d (%s)" % (key, arg.min, arg.max, arg.unit))
    return value


# -- the routes: each verb's web form (ledd.verbs) ---------------------------------------

def route(parts, path):
    """The verbs whose web form has the path ``parts``, and the ids it names by argument name."""
    found, ids = [], {}
    for verb in verbs.VERBS:
        pattern = verb.http.path.split("/") if verb.http else ()
        if len(pattern) != len(parts) or any(p != q for p, q in zip(pattern, parts) if not p.startswith("<")):
            continue
        ids = {p[1:-1]: check_id(q, path) for p, q in zip(pattern, parts) if p.startswith("<")}
        found.append(verb)
    return found, ids


def same_json(a, b):
    """Equal as JSON values: ``1`` is not ``true``."""
    return type(a) is type(b) and a == b


def _json_form(value):
    return {True: "true", False: "false"}.get(value, repr(value))


def verb_request(candidates, ids, obj):
    """The ledd request for a POST body ``obj`` to a route whose verbs are ``candidates``.

    The body has one field; the verbs of that field either take a constant
    (``{"toggle": true}``, ``{"on": false}``) or their other arguments:
    an on/off as a boolean, numbers as an object by name, or a verb's one
    number as the value itself when its form is ``scalar`` (``{"brightness": 30}``).
    """
    fields = []
    for verb in candidates:
        if verb.http.field not in fields:
            fields.append(verb.http.field)
    key, value = one_field(obj, fields)
    of_field = [verb for verb in candidates if verb.http.field == key]
    constants = [verb.http.value for verb in of_field if verb.http.value is not None]
    if constants:
        if set(constants) == {True, False}:
            want_bool(key, value)
        matching = [verb for verb in of_field if same_json(verb.http.value, value)]
        if not matching:
            raise HTTPError(400, "bad_value", "%s must be %s" % (key, " or ".join(_json_form(c) for c in constants)))
        return words(matching[0], ids, {})
    verb = of_field[0]
    rest = [arg for arg in verb.args if arg.name not in ids]
    if len(rest) == 1 and rest[0].kind == "onoff":
        return words(verb, ids, {rest[0].name: want_bool(key, value)})
    if verb.http.scalar:
        return words(verb, ids, {rest[0].name: want_number(key, value, rest[0])})
    names = [arg.name for arg in rest]
    if not isinstance(value, dict):
        raise HTTPError(400, "bad_value", "%s must be an object {%s}" % (key, ", ".join('"%s": N' % n for n in names)))
    extra = sorted(k for k in value if k not in names)
    if extra:
        raise HTTPError(400, "unknown_field", "unknown field %s (expected %s)" % (
            ", ".join("%s.%s" % (key, k) for k in extra), ", ".join(names)))
    if any(n not in value for n in names):
        raise HTTPError(400, "bad_value", "%s needs %s" % (key, " and ".join(names)))
    return words(verb, ids, {arg.name: want_number("%s.%s" % (key, arg.name), value[arg.name], arg) for arg in rest})


def words(verb, ids, values):
    """The request's words: the verb, then each argument from the path's ids or the body's values."""
    out = [verb.name]
    for arg in verb.args:
        if arg.name in ids:
            out.append(ids[arg.name])
        elif arg.kind == "onoff":
            out.append("ON" if values[arg.name] else "OFF")
        else:
            out.append(str(values[arg.name]))
    return tuple(out)


def redirect_status(environ):
    """lighttpd's own error status when it passed the request here as its error handler, else None.

    lighttpd then sets REDIRECT_STATUS to its status (it is 200 on a normal request)
    and turns the request into a GET of /api/; REQUEST_URI is still the original.
    """
    status = environ.get("REDIRECT_STATUS", "200")
    if status == "200" or not (status.isascii() and status.isdigit()) or not 400 <= int(status) <= 599:
        return None
    return int(status)


def is_api_path(path):
    return path == API_PREFIX[:-1] or path.startswith(API_PREFIX)


def lighttpd_error(environ, status):
    """lighttpd's own error (``status``) as the API's JSON, or as error.html outside /api/.

    Errors lighttpd finds while parsing a request (400 for a control byte or a
    repeated Content-Length, 411, 431, 501, 505) come before its URL rules apply,
    so lighttpd.conf's default error handler is this script for every URL; it
    answers outside /api/ with the page lighttpd would have sent.
    """
    path = request_path(environ)
    reason = REASONS.get(status, "Error")
    if path and not is_api_path(path):
        return HTMLError(status, "", reason)
    code = LIGHTTPD_CODES.get(status) or ("bad_request" if status < 500 else "internal_server_error")
    if status == 431:
        # lighttpd stops reading at its limit, before it knows the URL: either may be the cause.
        detail = "the URL and headers are over %d bytes together" % defaults.WEB_MAX_REQUEST_HEAD
    else:
        detail = path[:200] or "(no path)"
    return HTTPError(status, code, "%s: %s" % (reason, detail))


def check_uri(environ):
    """414 for a URL (path and query, as sent) longer than ``WEB_MAX_URI``."""
    length = len(environ.get("REQUEST_URI", "").encode("utf-8", "surrogateescape"))  # bytes, as sent
    if length > defaults.WEB_MAX_URI:
        raise HTTPError(414, "uri_too_long", "the URL is %d bytes long; at most %d are accepted" % (length, defaults.WEB_MAX_URI))


def handle(environ):
    """Serve one API request; returns (status, body bytes, head_only) or raises HTTPError."""
    status = redirect_status(environ)
    if status is None or environ.get("HTTP_HOST"):
        # First: nothing about a request for another site's name is answered. (A request
        # lighttpd could not parse may have no Host at all: its own error says more.)
        check_host(environ)
    path = request_path(environ)
    if status is None or is_api_path(path):
        check_uri(environ)  # first: lighttpd's own answer to a long path is a misleading 404
    if status is not None:
        raise lighttpd_error(environ, status)
    if not is_api_path(path):
        # lighttpd sends a URL outside /api/ here only when its Host is not one it knew at start.
        raise HTTPError(421, "misdirected_request", "this server did not know the host name %s when it started; "
                        "restart it to serve its pages there" % environ.get("HTTP_HOST", "")[:100])
    parts = api_route(environ)
    if parts == ACTIONS_ROUTE:
        method = check_method(environ, ("GET", "HEAD"))
        return actions_body(ledd_request(("STATE",))), method == "HEAD"
    candidates, ids = route(parts, path)
    if not candidates:
        raise not_found(path)
    if candidates[0].http.method == "GET":
        method = check_method(environ, ("GET", "HEAD"))
        return ledd_request(words(candidates[0], ids, {})), method == "HEAD"
    post(environ)
    return ledd_request(verb_request(candidates, ids, parse_object(read_body(environ)))), False


def actions_body(state):
    """``GET /api/actions``: every button's actions as data (ledd.verbs.parse_action), so that the
    dashboard shows "toggles red" in its language without reading ledd's action grammar itself."""
    import json

    buttons = [{"id": b["id"], "name": b["name"],
                "on_press": verbs.parse_action(b.get("on_press")),
                "on_release": verbs.parse_action(b.get("on_release"))}
               for b in json.loads(state)["buttons"]]
    return (json.dumps({"buttons": buttons}, separators=(",", ":")) + "\n").encode()


def post(environ):
    """The checks every state change passes: POST (405) from this site (403)."""
    check_method(environ, ("POST",))
    check_same_origin(environ)


def ledd_request(request):
    """One exchange with ledd; its errors become HTTP errors (503 at once when it is down)."""
    try:
        return Client(environ_runtime_dir()).request(*request)
    except LeddError as err:
        raise HTTPError.from_ledd(err) from None


def environ_runtime_dir():
    return getenv(defaults.RUNTIME_DIR_ENV) or defaults.RUNTIME_DIR


def cgi_environ():
    """The request's CGI variables as ``os.environ`` would give them, without importing ``os``."""
    os_module = sys.modules.get("os")
    if os_module is not None:
        return os_module.environ
    return {key.decode("utf-8", "surrogateescape"): value.decode("utf-8", "surrogateescape")
            for key, value in posix.environ.items()}


def main(environ=None):
    """CGI entry point of ``cgi-bin/api.py``: never a traceback, always a JSON answer."""
    environ = cgi_environ() if environ is None else environ
    head_only = environ.get("REQUEST_METHOD") == "HEAD"
    try:
        try:
            body, head_only = handle(environ)
            respond(200, body, head_only=head_only)
        except HTTPError as err:
            respond_error(err, head_only)
        except Exception as err:  # a bug: log it for lighttpd's error log, answer JSON
            log("ledd api: internal error: %r" % (err,))
            respond_error(HTTPError(500, "internal", "internal error in the web API"), head_only)
    except BrokenPipeError:
        pass  # the client left before the answer: nothing to tell anyone

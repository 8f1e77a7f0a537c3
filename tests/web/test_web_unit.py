"""ledd.web.api's pieces on their own: error mapping, the hand-made JSON, the origin check."""

import json
import re
import os

import pytest

from ledd import defaults
from ledd.web import api as web
from webstack import ROOT
from ledd.client import CommandError, DaemonDown, DaemonTimeout


@pytest.mark.parametrize("err, status, code", [
    (CommandError("PRESS needs the sim backend", "notsupported"), 409, "not_supported"),
    (CommandError("no LED blue", "notfound"), 404, "not_found"),
    (CommandError("period out of range", "badarg"), 400, "bad_value"),
    (CommandError("line busy", "gpio"), 500, "gpio"),
    (CommandError("too many watchers", "busy"), 503, "busy"),
    (CommandError("???", "brand-new-code"), 500, "brand-new-code"),
    (DaemonDown("ledd is not running"), 503, "daemon_down"),
    (DaemonTimeout("ledd did not answer"), 504, "timeout"),
])
def test_ledd_errors_map_to_http(err, status, code):
    http = web.HTTPError.from_ledd(err)
    assert (http.status, http.code) == (status, code)
    assert http.message == (web.DAEMON_DOWN_MESSAGE if code == "daemon_down" else str(err))
    assert ("Retry-After", str(defaults.WEB_RETRY_AFTER_S)) in http.headers if status == 503 else not http.headers


@pytest.mark.parametrize("err", [
    DaemonDown("ledd is not running (nobody reads /run/ledd/ledd.cmd)"),
    DaemonDown("no permission to open /srv/secret/run/ledd.cmd (are you in the ledd group?)"),
    DaemonDown("ledd is not running (no ledd.reply in /home/pi/run)"),
])
def test_503_never_names_a_server_path_but_logs_it(err, capsys):
    """Defect 7: the FIFO paths went out in the 503's message."""
    http = web.HTTPError.from_ledd(err)
    assert "/" not in http.message and "ledd.cmd" not in http.message and "ledd.reply" not in http.message
    assert str(err) in capsys.readouterr().err  # ...and lighttpd's error log still has them


def test_one_error_table_in_the_web_layer():
    """Every daemon code docs/protocol.md lists has one (API code, HTTP status) in ledd.web."""
    from ledd import client, remote

    documented = set(re.findall(r"^\| `([a-z_]+)` \|", (ROOT / "docs" / "protocol.md").read_text(), re.M))
    assert {"badrequest", "notfound", "busy"} <= documented
    assert not hasattr(client, "HTTP_STATUS_OF_CODE")  # the table lives in the web layer only
    assert documented <= set(web.DAEMON_ERRORS)
    assert web.HTTPError.from_ledd(client.CommandError("x", "no-such-code")).status == 500
    for code, (api_code, status) in web.DAEMON_ERRORS.items():
        assert web.HTTPError.from_ledd(client.CommandError("x", code)).code == api_code
        # remote.py maps an API code back to a daemon code that maps to it again.
        back = remote.DAEMON_CODE_OF_API_CODE.get(api_code, api_code)
        assert web.DAEMON_ERRORS[back][0] == api_code, (code, back)


@pytest.mark.parametrize("text", ["", "plain", 'quote " and \\ backslash', "tab\tnew\nline\r\x00\x1f\x7f", "héllo ☃ 𝄞", "</script>"])
def test_json_string_matches_json(text):
    assert json.loads(web.json_string(text)) == text


def test_error_body_is_valid_json():
    body = web.error_body("bad_value", 'say "hi"\n')
    assert json.loads(body) == {"error": 'say "hi"\n', "code": "bad_value"}


@pytest.mark.parametrize("headers, allowed", [
    ({}, True),
    ({"HTTP_ORIGIN": "http://pi.local"}, True),
    ({"HTTP_ORIGIN": "http://PI.local"}, True),
    ({"HTTP_ORIGIN": "https://pi.local"}, True),
    ({"HTTP_ORIGIN": "http://pi.local:8080"}, False),
    ({"HTTP_ORIGIN": "http://evil.example"}, False),
    ({"HTTP_ORIGIN": "null"}, False),
    ({"HTTP_ORIGIN": "ftp://pi.local"}, False),
    ({"HTTP_SEC_FETCH_SITE": "cross-site"}, False),
    ({"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_ORIGIN": "http://pi.local"}, True),
    ({"HTTP_SEC_FETCH_SITE": "none"}, True),
])
def test_same_origin_check(headers, allowed):
    environ = dict(headers, HTTP_HOST="pi.local")
    if allowed:
        web.check_same_origin(environ)
    else:
        with pytest.raises(web.HTTPError) as info:
            web.check_same_origin(environ)
        assert info.value.status == 403


def test_origin_without_host_is_refused():
    with pytest.raises(web.HTTPError):
        web.check_same_origin({"HTTP_ORIGIN": "http://pi.local"})


# -- ledd.web.hosts: the Host allowlist ---------------------------------------------------------

from ledd.web import hosts as web_hosts  # noqa: E402


@pytest.mark.parametrize("host, parsed", [
    ("pi.local", ("pi.local", None)), ("PI.Local:8080", ("pi.local", "8080")), ("localhost.", ("localhost", None)),
    ("[::1]:80", ("[::1]", "80")), ("[::1]", ("[::1]", None)), ("10.0.0.7:8080", ("10.0.0.7", "8080")),
    ("", None), (":80", None), ("pi.local:x", None), ("[::1", None), ("[::1]x", None),
])
def test_split_host(host, parsed):
    assert web_hosts.split_host(host) == parsed


def test_host_rule():
    node = os.uname().nodename.lower()
    allowed = ["localhost", "localhost:8080", "127.0.0.1", "127.1.2.3:80", "[::1]:8080", node, node + ".local:80", node.upper()]
    refused = ["evil.example", "localhost.evil.example", "127.0.0.1.evil.example", "evil.example:8080", "", "[::2]",
               "8.8.8.8", node + ".evil.example", "x" + node]
    for host in allowed:
        assert web_hosts.host_allowed(host), host
    for host in refused:
        assert not web_hosts.host_allowed(host), host
    assert web_hosts.host_allowed("pi.example:80", "other.example pi.example")
    assert web_hosts.host_allowed("10.9.9.9", "10.9.9.9")
    assert not web_hosts.host_allowed("pi.example", "other.example")


def test_the_machines_current_addresses_are_allowed():
    addresses = web_hosts.machine_addresses()
    assert addresses, "no address read from /proc"
    for packed in addresses:
        assert web_hosts.host_allowed(web_hosts._literal(packed) + ":8080")


def test_check_host_is_a_json_421():
    with pytest.raises(web.HTTPError) as info:
        web.check_host({"HTTP_HOST": "rebind.evil.example:8080"})
    assert (info.value.status, info.value.code) == (421, "misdirected_request")
    web.check_host({"HTTP_HOST": "rebind.evil.example:8080", defaults.WEB_ALLOWED_HOSTS_ENV: "rebind.evil.example"})


# -- one way to do each thing (issue 21, item 18) -------------------------------------------------

def split_head(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return lines[0], dict(line.split(": ", 1) for line in lines[1:]), body


@pytest.mark.parametrize("head_only", [False, True])
def test_an_html_error_gets_the_same_head_as_a_json_one(capfdbinary, head_only):
    """respond() writes every CGI head: the error page's has the JSON errors' fields (a 503's Retry-After too)."""
    web.respond_error(web.HTTPError(503, "service_unavailable", "Service Unavailable"), head_only)
    json_status, json_head, json_body = split_head(capfdbinary.readouterr().out)
    web.respond_error(web.HTMLError(503, "", "Service Unavailable"), head_only)
    html_status, html_head, html_body = split_head(capfdbinary.readouterr().out)
    assert html_status == json_status == "Status: 503 Service Unavailable"
    assert html_head.pop("Content-Type") == "text/html; charset=utf-8"
    assert json_head.pop("Content-Type") == "application/json"
    page = (ROOT / "www" / "error.html").read_bytes()
    assert html_head.pop("Content-Length") == str(len(page))
    json_head.pop("Content-Length")
    assert html_head == json_head == {"Cache-Control": "no-store", "Retry-After": str(defaults.WEB_RETRY_AFTER_S)}
    assert html_body == (b"" if head_only else page)
    assert json_body == (b"" if head_only else web.error_body("service_unavailable", "Service Unavailable"))


@pytest.fixture
def split_host_calls(monkeypatch):
    """The words web_hosts.split_host is asked to parse, in order."""
    calls = []
    real = web_hosts.split_host

    def counting(host):
        calls.append(host)
        return real(host)

    monkeypatch.setattr(web_hosts, "split_host", counting)
    return calls


def test_host_allowed_parses_each_word_once(split_host_calls):
    allowed = "pi.example other.example:8080 10.9.9.9"
    assert web_hosts.host_allowed("10.9.9.9:80", allowed)
    assert sorted(split_host_calls) == sorted(allowed.split() + ["10.9.9.9:80"])
    split_host_calls.clear()
    assert not web_hosts.host_allowed("[fd00::99]", allowed)
    assert sorted(split_host_calls) == sorted(allowed.split() + ["[fd00::99]"])


def test_lighttpd_config_parses_each_word_once(split_host_calls):
    allowed = "Pi.Example other.example:8080 10.9.9.9 [fd00::7]"
    config = web_hosts.lighttpd_config(allowed)
    assert sorted(split_host_calls) == sorted(allowed.split())
    assert "pi\\.example" in config and "other\\.example" in config and "10\\.9\\.9\\.9" in config
    assert 'var.ledd_allowed_hosts = "pi.example other.example 10.9.9.9 [fd00::7] ' in config


def test_the_module_doc_names_every_module_the_api_loads():
    """ledd.web.api's docstring says what a CGI start loads; a fresh interpreter says the same."""
    import subprocess

    probe = ("import sys; sys.path.insert(0, %r); before = set(sys.modules); import ledd.web.api; "
             "print(' '.join(sorted(set(sys.modules) - before - set(sys.builtin_module_names))))" % str(ROOT))
    loaded = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    ours = {name for name in loaded if name.startswith("ledd.")} - {"ledd.web.api", "ledd.web"}  # the package: empty
    foreign = [name for name in loaded if name != "ledd" and not name.startswith("ledd.")]
    assert not foreign, "ledd.web.api loads modules that are not built into the interpreter: %s" % foreign
    named = set(re.findall(r":mod:`(ledd\.[\w.]+)`", web.__doc__.partition("Start-up")[2]))
    assert named == ours, "the docstring's start-up paragraph names %s; ledd.web.api loads %s" % (sorted(named), sorted(ours))


# -- lighttpd's own errors: one table (issue 21, item 15) ----------------------------------------

def test_lighttpds_fallback_files_say_what_the_api_says():
    """lighttpd.d/api-errors/N.html (used when api.py cannot answer) is, for every status lighttpd
    answers itself, the document api.py sends for it, and nothing else is there."""
    folder = ROOT / "lighttpd.d" / "api-errors"
    assert sorted(int(p.stem) for p in folder.glob("*.html")) == sorted(web.LIGHTTPD_CODES)
    for status, code in web.LIGHTTPD_CODES.items():
        made = web.lighttpd_error({"REQUEST_URI": "/api/x"}, status)
        assert (made.status, made.code) == (status, code)
        assert made.message.startswith(web.REASONS[status] + ": ")
        assert json.loads((folder / ("%d.html" % status)).read_text()) == {"error": web.REASONS[status], "code": code}


@pytest.mark.parametrize("status, code", [(418, "bad_request"), (499, "bad_request"), (507, "internal_server_error")])
def test_a_status_lighttpd_may_add_later_gets_a_listed_code(status, code):
    assert web.lighttpd_error({"REQUEST_URI": "/api/x"}, status).code == code


def test_app_js_redraws_the_cards_in_one_place():
    """A language switch and board.json's arrival rebuild the cards through one function."""
    source = (ROOT / "www" / "app.js").read_text()
    assert source.count("build(shown)") == 1 and source.count("render(shown, true)") == 1, "build(shown); render(shown, true) twice"


#: The size past which a script of www/ is split along a concern (as a Python module past 600 lines).
MAX_SCRIPT_LINES = 600


def test_each_script_of_the_page_stays_readable():
    sizes = {path.name: len(path.read_text().splitlines()) for path in (ROOT / "www").glob("*.js")}
    assert "app.js" in sizes and "lang.js" in sizes, sizes
    assert max(sizes.values()) <= MAX_SCRIPT_LINES, sizes


def test_the_url_limit_counts_bytes_as_sent():
    at_limit = "/api/state?q=" + "é" * ((defaults.WEB_MAX_URI - 13) // 2)
    web.check_uri({"REQUEST_URI": at_limit})
    with pytest.raises(web.HTTPError) as info:
        web.check_uri({"REQUEST_URI": at_limit + "é"})
    assert (info.value.status, info.value.code) == (414, "uri_too_long")
    with pytest.raises(web.HTTPError):
        web.check_uri({"REQUEST_URI": "/api/" + "\udcff" * defaults.WEB_MAX_URI})  # invalid UTF-8, one byte each


# -- routes from the verb table (issue 22) ---------------------------------------------------

READ_BODY = web.read_body


def post_environ(path, body, monkeypatch):
    """A POST CGI environment; its body is read from a pipe standing in for stdin."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, json.dumps(body).encode())
    os.close(write_fd)

    def read_body(environ):
        try:
            return READ_BODY(environ, read_fd)
        finally:
            os.close(read_fd)

    monkeypatch.setattr(web, "read_body", read_body)
    return {"REQUEST_METHOD": "POST", "REQUEST_URI": path, "HTTP_HOST": "localhost",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(json.dumps(body)))}


def test_a_new_verb_is_a_route_with_its_validation(monkeypatch):
    """An entry added to ledd.verbs.VERBS is served at its web form's path and checked by its
    arguments' ranges, with no code of its own in ledd.web."""
    from ledd import verbs

    pulse = verbs.Verb("PULSE", [verbs.led(), verbs.Arg("depth", "uint", 0, 100, "%")],
                       http=verbs.Http("leds/<led>", "pulse"))
    monkeypatch.setattr(verbs, "VERBS", verbs.VERBS + (pulse,))
    sent = []
    monkeypatch.setattr(web, "ledd_request", lambda words: sent.append(words) or b"{}")
    web.handle(post_environ("/api/leds/red", {"pulse": {"depth": 30}}, monkeypatch))
    web.handle(post_environ("/api/leds/1", {"toggle": True}, monkeypatch))  # the old verbs still there
    assert sent == [("PULSE", "red", "30"), ("TOGGLE", "1")]
    for body, code in [({"pulse": {"depth": 101}}, "bad_value"), ({"pulse": {"depth": True}}, "bad_value"),
                       ({"pulse": {}}, "bad_value"), ({"pulse": {"depth": 1, "x": 2}}, "unknown_field"),
                       ({"pulse": 30}, "bad_value"), ({"pulse": {"depth": 1}, "on": True}, "bad_body")]:
        with pytest.raises(web.HTTPError) as err:
            web.handle(post_environ("/api/leds/red", body, monkeypatch))
        assert (err.value.status, err.value.code) == (400, code), body
    with pytest.raises(web.HTTPError) as err:
        web.handle(post_environ("/api/leds/red", {"dim": 1}, monkeypatch))
    assert err.value.code == "unknown_field" and "pulse" in err.value.message


def test_a_scalar_form_takes_the_number_itself_and_checks_it_strictly(monkeypatch):
    """Issue 23: a verb whose web form is ``scalar`` takes ``{"field": N}``; a float, a boolean, a
    string, an object or a number out of range is a 400 naming the field and its range."""
    from ledd import verbs

    pulse = verbs.Verb("PULSE", [verbs.led(), verbs.Arg("depth", "uint", 0, 100, "%")],
                       http=verbs.Http("leds/<led>", "pulse", scalar=True))
    monkeypatch.setattr(verbs, "VERBS", verbs.VERBS + (pulse,))
    sent = []
    monkeypatch.setattr(web, "ledd_request", lambda words: sent.append(words) or b"{}")
    web.handle(post_environ("/api/leds/red", {"pulse": 0}, monkeypatch))
    web.handle(post_environ("/api/leds/red", {"pulse": 100}, monkeypatch))
    assert sent == [("PULSE", "red", "0"), ("PULSE", "red", "100")]
    for bad in (30.0, 30.5, True, False, "30", None, {"depth": 30}, [30], -1, 101, 10 ** 30):
        with pytest.raises(web.HTTPError) as err:
            web.handle(post_environ("/api/leds/red", {"pulse": bad}, monkeypatch))
        assert (err.value.status, err.value.code) == (400, "bad_value"), bad
        assert "pulse must be an integer from 0 to 100 (%)" == err.value.message
    assert len(sent) == 2
    assert pulse.http.body(pulse, {"led": "red", "depth": 7}) == {"pulse": 7}  # what RemoteClient sends


def test_docs_route_table_lists_every_body_field_of_the_table():
    """docs/api.md's route table shows each verb's body field on its route (a new verb's web form is documented)."""
    import re
    from pathlib import Path
    from ledd import verbs

    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| POST \| `/api/([^`]+)` \| (.*?) \|", doc, re.M)}
    for verb in verbs.VERBS:
        if verb.http and verb.http.field:
            path = verb.http.path.replace("<led>", "<id>").replace("<button>", "<id>")
            assert '{"%s": ' % verb.http.field in rows.get(path, ""), (verb.name, path)

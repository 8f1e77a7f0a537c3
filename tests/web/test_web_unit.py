"""ledd.web's pieces on their own: error mapping, the hand-made JSON, the origin check."""

import json

import pytest

from ledd import web
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
    assert http.message == str(err)


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

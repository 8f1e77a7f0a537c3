"""The HTTP API through the real lighttpd and the real (sim) ledd: routes, bodies, errors, CSRF."""

import signal
import time

import pytest
import requests

from waiting import wait_for

JSON = {"Content-Type": "application/json"}


def post_raw(web, path, data, headers=JSON, **kw):
    return requests.post(web.url + path, data=data, headers=headers, timeout=10, **kw)


def assert_json_error(response, status, code=None):
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error", "code"}, body
    assert body["error"] and "Traceback" not in body["error"]
    if code is not None:
        assert body["code"] == code, body
    return body


def led(state, i):
    return next(x for x in state["leds"] if x["id"] == i)


# -- GET /api/state --------------------------------------------------------------

def test_state_is_ledds_state(web):
    r = web.get("/api/state")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    state = r.json()
    assert [x["name"] for x in state["leds"]] == ["red", "green"]
    assert state["buttons"][0]["name"] == "button"
    assert state["backend"] == "sim"
    assert isinstance(state["seq"], int)
    for x in state["leds"]:
        assert {"id", "name", "on", "blink", "gpio"} <= set(x)
    # The same bytes ledd sent, relayed untouched.
    assert r.content.rstrip(b"\n") == web.ledd.client().request("STATE").rstrip(b"\n")


def test_state_head(web):
    r = requests.head(web.url + "/api/state", timeout=10)
    assert r.status_code == 200
    assert r.content == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_state_wrong_method_is_405_with_allow(web, method):
    r = requests.request(method, web.url + "/api/state", timeout=10, headers=JSON, data="{}")
    assert_json_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET, HEAD"


# -- POST /api/leds/<id> -------------------------------------------------------------

def test_led_on_off_toggle(web):
    r = web.post("/api/leds/0", {"on": True})
    assert r.status_code == 200, r.text
    s1 = r.json()
    assert led(s1, 0)["on"] is True and led(s1, 0)["blink"] is None
    s2 = web.post("/api/leds/0", {"toggle": True}).json()
    assert led(s2, 0)["on"] is False
    assert s2["seq"] > s1["seq"]
    s3 = web.post("/api/leds/0", {"on": False}).json()
    assert led(s3, 0)["on"] is False
    assert web.ledd.client().state()["leds"][0]["on"] is False


def test_led_by_name(web):
    r = web.post("/api/leds/green", {"on": True})
    assert r.status_code == 200
    assert led(r.json(), 1)["on"] is True


def test_led_blink(web):
    r = web.post("/api/leds/1", {"blink": {"on_ms": 100, "off_ms": 300}})
    assert r.status_code == 200, r.text
    green = led(r.json(), 1)
    assert green["on"] is True
    assert green["blink"] == {"on_ms": 100, "off_ms": 300}
    # ON stops blinking.
    assert led(web.post("/api/leds/1", {"on": True}).json(), 1)["blink"] is None


def test_all_leds(web):
    state = web.post("/api/leds", {"on": True}).json()
    assert all(x["on"] for x in state["leds"])
    state = web.post("/api/leds", {"on": False}).json()
    assert not any(x["on"] for x in state["leds"])


@pytest.mark.parametrize("body, code", [
    ({}, "bad_body"),
    ({"on": True, "toggle": True}, "bad_body"),
    ({"colour": "red"}, "unknown_field"),
    ({"on": 1}, "bad_value"),
    ({"on": "true"}, "bad_value"),
    ({"on": None}, "bad_value"),
    ({"toggle": False}, "bad_value"),
    ({"blink": True}, "bad_value"),
    ({"blink": {"on_ms": 100}}, "bad_value"),
    ({"blink": {"on_ms": 100, "off_ms": 100, "x": 1}}, "unknown_field"),
    ({"blink": {"on_ms": 19, "off_ms": 100}}, "bad_value"),
    ({"blink": {"on_ms": 100, "off_ms": 60001}}, "bad_value"),
    ({"blink": {"on_ms": -5, "off_ms": 100}}, "bad_value"),
    ({"blink": {"on_ms": 10 ** 30, "off_ms": 100}}, "bad_value"),
    ({"blink": {"on_ms": 100.5, "off_ms": 100}}, "bad_value"),
    ({"blink": {"on_ms": True, "off_ms": 100}}, "bad_value"),
    ([{"on": True}], "bad_json"),
])
def test_led_bad_bodies_are_400_and_change_nothing(web, body, code):
    before = web.get("/api/state").json()
    r = web.post("/api/leds/0", body)
    assert_json_error(r, 400, code)
    assert web.get("/api/state").json()["seq"] == before["seq"]


# -- brightness and PWM frequency (issue 23) ---------------------------------------------

def test_led_brightness_dims_and_zero_switches_off_keeping_it(web):
    state = web.post("/api/leds/red", {"brightness": 30}).json()
    assert (led(state, 0)["on"], led(state, 0)["brightness"]) == (True, 30)
    assert web.ledd.client().state()["leds"][0]["brightness"] == 30  # ledd's own word, not only the reply
    state = web.post("/api/leds/0", {"brightness": 0}).json()
    assert (led(state, 0)["on"], led(state, 0)["brightness"]) == (False, 30)
    assert led(web.post("/api/leds/0", {"brightness": 100}).json(), 0)["brightness"] == 100


def test_all_brightness(web):
    state = web.post("/api/leds", {"brightness": 40}).json()
    assert [(x["on"], x["brightness"]) for x in state["leds"]] == [(True, 40), (True, 40)]
    state = web.post("/api/leds", {"brightness": 0}).json()
    assert [(x["on"], x["brightness"]) for x in state["leds"]] == [(False, 40), (False, 40)]


def test_led_pwm_frequency(web):
    red_before = led(web.get("/api/state").json(), 0)["pwm_hz"]
    state = web.post("/api/leds/green", {"pwm_hz": 500}).json()
    assert led(state, 1)["pwm_hz"] == 500 and led(state, 0)["pwm_hz"] == red_before
    assert web.ledd.client().state()["leds"][1]["pwm_hz"] == 500


@pytest.mark.parametrize("path, body, code", [
    ("/api/leds/0", {"brightness": 30.0}, "bad_value"),  # an integer percent, not a float that looks like one
    ("/api/leds/0", {"brightness": 30.5}, "bad_value"),
    ("/api/leds/0", {"brightness": True}, "bad_value"),
    ("/api/leds/0", {"brightness": 101}, "bad_value"),
    ("/api/leds/0", {"brightness": -1}, "bad_value"),
    ("/api/leds/0", {"brightness": "30"}, "bad_value"),
    ("/api/leds/0", {"brightness": None}, "bad_value"),
    ("/api/leds/0", {"brightness": {"percent": 30}}, "bad_value"),
    ("/api/leds/0", {"brightness": 10 ** 30}, "bad_value"),
    ("/api/leds/0", {"brightness": 30, "on": True}, "bad_body"),
    ("/api/leds/0", {"pwm_hz": 9}, "bad_value"),
    ("/api/leds/0", {"pwm_hz": 1001}, "bad_value"),
    ("/api/leds/0", {"pwm_hz": 200.0}, "bad_value"),
    ("/api/leds/0", {"pwm_hz": False}, "bad_value"),
    ("/api/leds", {"brightness": 1.5}, "bad_value"),
    ("/api/leds", {"brightness": False}, "bad_value"),
    ("/api/leds", {"pwm_hz": 200}, "unknown_field"),  # a frequency is per LED
])
def test_bad_brightness_and_frequency_are_400_and_change_nothing(web, path, body, code):
    before = web.get("/api/state").json()
    error = assert_json_error(web.post(path, body), 400, code)
    assert web.get("/api/state").json() == before
    if code == "bad_value":
        assert next(iter(body)) in error["error"]  # names the field, and its range
        assert ("0 to 100" if "brightness" in body else "10 to 1000") in error["error"]


@pytest.mark.parametrize("raw", [
    b"", b"{", b"on=true", b'{"on": tru}', b'{"on": NaN}', b"\xff\xfe", b'{"on":true,"on":false}', b"null", b"12",
])
def test_malformed_json_is_400(web, raw):
    assert_json_error(post_raw(web, "/api/leds/0", raw), 400)


def test_all_leds_rejects_led_only_fields(web):
    assert_json_error(web.post("/api/leds", {"toggle": True}), 400, "unknown_field")


def test_body_too_large_is_refused(web):
    r = post_raw(web, "/api/leds/0", b'{"on":true,"pad":"' + b"x" * 2000 + b'"}')
    assert r.status_code in (400, 413)
    assert r.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/api/leds/7", "/api/leds/blue", "/api/buttons/3"])
def test_unknown_id_is_404(web, path):
    body = {"pressed": True} if "buttons" in path else {"on": True}
    assert_json_error(web.post(path, body), 404, "not_found")


@pytest.mark.parametrize("path", ["/api/", "/api/nope", "/api/leds/0/x", "/api/state/", "/api/leds/%2e%2e", "/api/leds/a%20b",
                                  "/api/leds/" + "x" * 40, "/api/buttons"])
def test_unknown_route_is_json_404(web, path):
    r = requests.post(web.url + path, json={"on": True}, timeout=10)
    assert_json_error(r, 404)
    r = requests.get(web.url + path, timeout=10)
    assert_json_error(r, 404)


def test_led_get_is_405(web):
    r = web.get("/api/leds/0")
    assert_json_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "POST"


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_non_json_post_is_415(web, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    r = post_raw(web, "/api/leds/0", b'{"on":true}', headers=headers)
    assert_json_error(r, 415, "unsupported_media_type")
    assert led(web.get("/api/state").json(), 0)["on"] is False


def test_json_with_charset_is_accepted(web):
    r = post_raw(web, "/api/leds/0", b'{"on":true}', headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200


# -- POST /api/buttons/<id> ------------------------------------------------------------

def test_sim_button_press_release(web):
    before = web.get("/api/state").json()["buttons"][0]["presses"]
    r = web.post("/api/buttons/0", {"pressed": True})
    assert r.status_code == 200, r.text
    b = r.json()["buttons"][0]
    assert b["pressed"] is True and b["presses"] == before + 1
    b = web.post("/api/buttons/button", {"pressed": False}).json()["buttons"][0]
    assert b["pressed"] is False and b["presses"] == before + 1


def test_button_bad_body(web):
    assert_json_error(web.post("/api/buttons/0", {"pressed": "yes"}), 400, "bad_value")
    assert_json_error(web.post("/api/buttons/0", {"on": True}), 400, "unknown_field")


# -- CSRF ----------------------------------------------------------------------------

def test_cross_site_origin_is_403(web):
    r = post_raw(web, "/api/leds/0", b'{"on":true}', headers={**JSON, "Origin": "http://evil.example"})
    assert_json_error(r, 403, "cross_site")
    assert led(web.get("/api/state").json(), 0)["on"] is False


@pytest.mark.parametrize("origin", ["null", "http://127.0.0.1:1", "http://127.0.0.1.evil.example", "file://"])
def test_other_origins_are_403(web, origin):
    r = post_raw(web, "/api/leds", b'{"on":true}', headers={**JSON, "Origin": origin})
    assert_json_error(r, 403, "cross_site")


def test_sec_fetch_site_cross_site_is_403(web):
    r = post_raw(web, "/api/leds/0", b'{"on":true}', headers={**JSON, "Sec-Fetch-Site": "cross-site"})
    assert_json_error(r, 403, "cross_site")


def test_same_origin_is_allowed(web):
    origin = "http://127.0.0.1:%d" % web.port
    r = post_raw(web, "/api/leds/0", b'{"on":true}', headers={**JSON, "Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200, r.text


# -- ledd down or hung -------------------------------------------------------------------

@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_ledd_down_is_503_at_once(web, how):
    getattr(web.ledd, how)()  # SIGTERM, or SIGKILL: the FIFOs stay behind with no reader
    for method, path, body in [("GET", "/api/state", None), ("POST", "/api/leds/0", {"on": True}), ("GET", "/api/events", None)]:
        start = time.monotonic()
        r = requests.request(method, web.url + path, json=body, timeout=10)
        elapsed = time.monotonic() - start
        assert_json_error(r, 503, "daemon_down")
        assert elapsed < 1.0, elapsed


def test_ledd_never_started_is_503(lighttpd_factory, tmp_path):
    server = lighttpd_factory(tmp_path / "nothing-here")
    assert_json_error(server.get("/api/state"), 503, "daemon_down")


def test_ledd_hung_is_504_within_about_2s(web):
    web.ledd.signal(signal.SIGSTOP)
    try:
        start = time.monotonic()
        r = web.get("/api/state")
        elapsed = time.monotonic() - start
        assert_json_error(r, 504, "timeout")
        assert 1.5 < elapsed < 3.5, elapsed
    finally:
        web.ledd.signal(signal.SIGCONT)
    # Once it runs again the stale reply is dropped and the next request is answered.
    assert web.get("/api/state").status_code == 200


def test_ledd_restart_is_served_again(web):
    assert web.get("/api/state").status_code == 200
    web.ledd.restart()
    assert web.get("/api/state").status_code == 200


# -- issue 10 ------------------------------------------------------------------------------

def test_deeply_nested_json_is_400_not_500(web):
    """Defect 6: [[[[... got 500 internal through an uncaught RecursionError."""
    from ledd import defaults

    before = web.get("/api/state").json()["seq"]
    for body in (b"[" * (defaults.WEB_MAX_BODY - 4), b'{"a":[' * 140):
        assert_json_error(post_raw(web, "/api/leds/0", body), 400, "bad_json")
    assert web.get("/api/state").json()["seq"] == before


@pytest.mark.parametrize("path", ["/api/leds/01", "/api/leds/001", "/api/leds/00", "/api/buttons/00"])
def test_ids_with_leading_zeros_are_404(web, path):
    """Defect 8: /api/leds/01 addressed LED 1. Only the canonical form of an id is a URL."""
    before = web.get("/api/state").json()["seq"]
    body = {"pressed": True} if "buttons" in path else {"toggle": True}
    assert_json_error(web.post(path, body), 404, "not_found")
    assert web.get("/api/state").json()["seq"] == before
    assert web.post("/api/leds/0", {"on": False}).status_code == 200


def test_503_does_not_reveal_server_paths(web):
    """Defect 7: "nobody reads /run/ledd/ledd.cmd" went out to the client."""
    web.ledd.kill9()
    for method, path in [("GET", "/api/state"), ("POST", "/api/leds/0"), ("GET", "/api/events")]:
        r = requests.request(method, web.url + path, json={"on": True} if method == "POST" else None, timeout=10)
        body = assert_json_error(r, 503, "daemon_down")
        assert "/" not in body["error"] and str(web.ledd.runtime_dir) not in r.text
        assert r.headers["Retry-After"].isdigit()
    assert str(web.ledd.runtime_dir) in web.read_log()  # the log keeps the detail


def test_rebinding_host_cannot_toggle_an_led(web):
    """Defect 1: the issue's curl, a foreign Host with a matching Origin, toggled the LED."""
    before = web.get("/api/state").json()
    host = "rebind.evil.example:%d" % web.port
    r = post_raw(web, "/api/leds/0", b'{"toggle":true}', headers={**JSON, "Host": host, "Origin": "http://" + host})
    assert_json_error(r, 421, "misdirected_request")
    assert web.get("/api/state").json() == before


def test_a_504_command_still_runs_when_ledd_resumes_and_the_docs_say_so(web):
    """Defect 9: a 504 does not mean "not applied". The command was written before the
    web server gave up; ledd runs it when it resumes. docs/api.md must say so."""
    from webstack import ROOT

    before = web.get("/api/state").json()
    web.ledd.signal(signal.SIGSTOP)
    try:
        assert_json_error(web.post("/api/leds/0", {"toggle": True}), 504, "timeout")
    finally:
        web.ledd.signal(signal.SIGCONT)
    wait_for(lambda: web.get("/api/state").json()["seq"] != before["seq"], what="ledd to run the command once resumed")
    after = web.get("/api/state").json()
    assert after["seq"] == before["seq"] + 1 and led(after, 0)["on"] is not led(before, 0)["on"]
    docs = (ROOT / "docs" / "api.md").read_text()
    assert "### 504 does not mean" in docs and "GET /api/state" in docs.split("### 504 does not mean")[1].split("##")[0]


# -- GET /api/actions ------------------------------------------------------------------

ACTIONS_CONFIG = """[ledd]
[led red]
gpio = 17
[led green]
gpio = 27
[button button]
gpio = 22
on_press = blink red 100 250
on_release = all off
[button dimmer]
gpio = 23
on_press = brightness green 30
"""


def test_actions_are_data_the_dashboard_reads_without_ledds_grammar(ledd_factory, lighttpd_factory, tmp_path):
    """Issue 22: app.js parsed the action grammar a third time; the server hands it each action's
    verb and arguments by name (the verb table's names), with the text ledd reported."""
    cfg = tmp_path / "ledd.conf"
    cfg.write_text(ACTIONS_CONFIG)
    web = lighttpd_factory(ledd_factory(config=cfg).start().runtime_dir)
    r = web.get("/api/actions")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json", r.text
    assert r.json() == {"buttons": [
        {"id": 0, "name": "button",
         "on_press": {"text": "blink red 100 250", "verb": "BLINK", "args": {"led": "red", "on_ms": 100, "off_ms": 250}},
         "on_release": {"text": "all off", "verb": "ALL", "args": {"state": False}}},
        {"id": 1, "name": "dimmer",
         "on_press": {"text": "brightness green 30", "verb": "BRIGHTNESS", "args": {"led": "green", "percent": 30}},
         "on_release": None}]}
    # It reads the state: a button's text there is the text an action here answers for.
    state = web.get("/api/state").json()
    assert [b["on_press"] for b in state["buttons"]] == ["blink red 100 250", "brightness green 30"]
    assert requests.head(web.url + "/api/actions", timeout=10).status_code == 200
    assert_json_error(web.post("/api/actions", {}), 405, "method_not_allowed")

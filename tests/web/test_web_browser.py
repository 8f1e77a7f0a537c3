"""The dashboard in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright),
served by the real lighttpd in front of the real sim ledd.

The main flows (click an LED, press the button, ledd down) run once per language, with
the browser set to that language: each checks texts from www/i18n/<lang>.json, that no
English shows in a French or Spanish page, and axe-core's accessibility rules.

Set LEDD_SCREENSHOT=path/to/file.png to keep the dashboard screenshot (docs/screenshot.png
is made that way; LEDD_SCREENSHOT_LOCALE=fr-FR for another language); otherwise it goes
to the test's tmp dir.
"""

import json
import os
import re
import time

import pytest

from dashboard import (NUMBER, RECONNECT_TIMEOUT_MS, TIMEOUT_MS, assert_accessible, assert_no_english, fill,
                       open_dashboard, per_language, playwright_sync, serve_state, strings)
from waiting import wait_for


# -- the main flows, once per language ---------------------------------------

@per_language
def test_click_an_led(browser, web, lang):
    s = strings(lang)
    errors = []
    page = open_dashboard(browser, web, errors)
    expect = playwright_sync.expect
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("#conn-text")).to_have_text(s["conn.live"])
    expect(page.locator("#leds-title")).to_have_text(s["leds.title"])
    expect(page.locator("#all-on")).to_have_text(s["leds.all_on"])
    expect(page.locator("#lang")).to_have_value(lang)
    red = page.locator("#led-0 .led-toggle")
    led = fill(s["led.named"], name="red")
    expect(red).to_have_attribute("aria-label", fill(s["led.toggle_label_dark"], led=led, state=s["led.off"]))
    red.click()
    expect(red).to_have_attribute("aria-pressed", "true", timeout=TIMEOUT_MS)
    expect(page.locator("#led-0 .state")).to_have_text(s["led.on"])
    expect(red).to_have_attribute("aria-label", fill(s["led.toggle_label_lit"], led=led, state=s["led.on"]))
    assert web.ledd.client().state()["leds"][0]["on"] is True
    expect(page.locator("#led-0 .where")).to_have_text(fill(s["where.pin"], gpio=17, pin=11))
    expect(page.locator("#pinout li.used").first).to_contain_text(led)
    page.locator("#period-0").fill("400")
    page.locator("#led-0 .blink").click()
    expect(page.locator("#led-0 .state")).to_have_text(fill(s["led.blink"], on_ms=200, off_ms=200), timeout=TIMEOUT_MS)
    page.locator("#period-1").fill("5")
    page.locator("#led-1 .blink").click()
    expect(page.locator("#toast-text")).to_have_text(fill(s["led.period_range"], min=40, max=NUMBER[lang](120000)))
    assert_no_english(page, web, lang)
    assert_accessible(page)
    assert errors == []  # no CSP violation, no script error


@per_language
def test_press_the_button(browser, web, lang):
    s = strings(lang)
    page = open_dashboard(browser, web)
    expect = playwright_sync.expect
    expect(page.locator("#button-0 .last")).to_have_text(s["button.never"])
    zero = "button.presses.one" if lang == "fr" else "button.presses.other"  # 0 presses, 0 appui, 0 pulsaciones
    expect(page.locator("#button-0 .presses-label")).to_have_text(s[zero])
    hold = page.locator("#button-0 .press")
    expect(hold).to_have_text(s["button.hold"])
    box = hold.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    expect(page.locator("#button-0 .state")).to_have_text(s["button.pressed"], timeout=TIMEOUT_MS)
    assert web.ledd.client().state()["buttons"][0]["pressed"] is True
    page.mouse.up()
    expect(page.locator("#button-0 .state")).to_have_text(s["button.released"], timeout=TIMEOUT_MS)
    expect(page.locator("#button-0 .presses")).to_have_text("1")
    expect(page.locator("#button-0 .presses-label")).to_have_text(s["button.presses.one"])
    last = page.locator("#button-0 .last").text_content()
    prefix = fill(s["button.last_press"], time="")
    assert last.startswith(prefix), last
    clock = last[len(prefix):]
    if lang == "en":
        assert re.fullmatch(r"\d{1,2}:\d\d:\d\d\s[AP]M", clock), clock  # en-US: 12-hour clock
    else:
        assert re.fullmatch(r"\d{1,2}:\d\d:\d\d", clock), clock  # fr-FR, es-ES: 24-hour clock
    assert_no_english(page, web, lang)
    assert_accessible(page)


@per_language
def test_ledd_down(browser, web, lang):
    s = strings(lang)
    page = open_dashboard(browser, web)
    expect = playwright_sync.expect
    state = web.ledd.client().state()
    web.ledd.stop()
    expect(page.locator("#conn")).to_have_attribute("data-conn", "down", timeout=TIMEOUT_MS)
    expect(page.locator("#conn-text")).to_have_text(s["conn.down"])
    page.locator("#led-0 .led-toggle").click()
    expect(page.locator("#toast-text")).to_have_text(s["error.daemon_down"], timeout=TIMEOUT_MS)
    detail = page.locator("#toast-detail")
    expect(detail).to_have_attribute("lang", "en")  # the API's own message, for programs: English, marked so
    expect(detail).not_to_be_empty()
    assert_no_english(page, web, lang, state)
    assert_accessible(page)
    web.ledd.close_notify()
    web.ledd.notifications = []
    web.ledd.start()
    expect(page.locator("#conn")).to_have_attribute("data-conn", "live", timeout=RECONNECT_TIMEOUT_MS)
    expect(page.locator("#conn-text")).to_have_text(s["conn.live"])
    page.locator("#led-0 .led-toggle").click()
    expect(page.locator("#led-0 .state")).to_have_text(s["led.on"], timeout=TIMEOUT_MS)


@per_language
def test_error_page(browser, web, lang):
    s = strings(lang)
    page = browser.new_page()
    response = page.goto(web.url + "/no/such/page")
    assert response.status == 404
    expect = playwright_sync.expect
    expect(page.locator("html")).to_have_attribute("lang", lang, timeout=TIMEOUT_MS)
    expect(page.locator("h1")).to_have_text(s["errorpage.heading"])
    expect(page.locator("a")).to_have_text(s["errorpage.back"])
    assert page.title() == s["errorpage.title"]
    assert_no_english(page, web, lang)
    assert_accessible(page)


# -- choosing the language -----------------------------------------------------

@pytest.mark.parametrize("locale", ["fr-CA"])
def test_switch_overrides_the_browser_and_is_remembered(browser, web):
    fr, es = strings("fr"), strings("es")
    requests = []
    page = browser.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.goto(web.url + "/")
    expect = playwright_sync.expect
    expect(page.locator("#conn-text")).to_have_text(fr["conn.live"], timeout=TIMEOUT_MS)
    # One static file per page load: the chosen language's, no other.
    assert [u for u in requests if "/i18n/" in u] == [web.url + "/i18n/fr.json"]
    page.locator("#lang").select_option("es")
    expect(page.locator("html")).to_have_attribute("lang", "es", timeout=TIMEOUT_MS)
    expect(page.locator("#conn-text")).to_have_text(es["conn.live"])
    expect(page.locator("#led-0 .state")).to_have_text(es["led.off"])
    expect(page.locator("#wiring-title")).to_have_text(es["wiring.title"])
    expect(page.locator("#pinout")).to_have_attribute("aria-label", es["wiring.header_label"])
    assert_no_english(page, web, "es")
    requests.clear()
    page.reload()
    expect(page.locator("#conn-text")).to_have_text(es["conn.live"], timeout=TIMEOUT_MS)
    expect(page.locator("#lang")).to_have_value("es")
    assert [u for u in requests if "/i18n/" in u] == [web.url + "/i18n/es.json"]
    # The error page follows the switch too.
    page.goto(web.url + "/missing")
    expect(page.locator("h1")).to_have_text(es["errorpage.heading"], timeout=TIMEOUT_MS)


@pytest.mark.parametrize("locale", ["de-DE"])
def test_a_language_without_translation_gets_english(browser, web):
    page = open_dashboard(browser, web)
    playwright_sync.expect(page.locator("html")).to_have_attribute("lang", "en")
    playwright_sync.expect(page.locator("#conn-text")).to_have_text(strings("en")["conn.live"])


# -- the server under strain (issue 10) and button actions (issue 12) ----------

@per_language
def test_a_refused_stream_shows_reconnecting_and_waits_retry_after(browser, web, lang):
    s = strings(lang)
    page = browser.new_page()
    attempts = []

    def events(route):
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            route.fulfill(status=503, headers={"Retry-After": "2", "Content-Type": "application/json"},
                          body='{"error":"too many event streams","code":"busy"}')
        else:
            route.continue_()

    page.route("**/api/events", events)
    page.goto(web.url + "/")
    expect = playwright_sync.expect
    expect(page.locator("#conn")).to_have_attribute("data-conn", "reconnecting", timeout=TIMEOUT_MS)
    expect(page.locator("#conn-text")).to_have_text(s["conn.reconnecting"])
    expect(page.locator("#conn")).to_have_attribute("data-conn", "live", timeout=RECONNECT_TIMEOUT_MS)
    assert attempts[1] - attempts[0] >= 1.9, attempts  # Retry-After: 2, not the 0.5 s backoff


@per_language
def test_a_timeout_rereads_the_state(browser, web, lang):
    s = strings(lang)
    page = open_dashboard(browser, web)
    reads = []
    client = web.ledd.client()

    def timeout(route):
        client.on(0)  # the command ran after all, as it may once ledd resumes
        route.fulfill(status=504, headers={"Content-Type": "application/json"},
                      body='{"error":"ledd did not answer within 2 s","code":"timeout"}')

    page.route("**/api/leds/0", timeout)
    page.on("request", lambda r: reads.append(r.url) if r.url.endswith("/api/state") else None)
    page.locator("#led-0 .led-toggle").click()
    expect = playwright_sync.expect
    expect(page.locator("#toast-text")).to_have_text(s["error.timeout"], timeout=TIMEOUT_MS)
    expect(page.locator("#led-0 .state")).to_have_text(s["led.on"], timeout=TIMEOUT_MS)
    wait_for(lambda: reads, what="a GET /api/state after the 504", sleep=lambda s: page.wait_for_timeout(s * 1000))


@per_language
def test_button_actions_are_shown(browser, web, lang):
    s = strings(lang)
    state = web.ledd.client().state()
    state["buttons"][0].update(on_press="toggle 0", on_release=None)
    page = browser.new_page()
    serve_state(page, state)
    page.goto(web.url + "/")
    expect = playwright_sync.expect
    action = fill(s["button.on_press"], action=fill(s["action.toggle"], led="red"))
    expect(page.locator("#button-0 .on-press")).to_have_text(action, timeout=TIMEOUT_MS)
    expect(page.locator("#button-0 .on-release")).to_be_hidden()
    if lang == "en":
        assert action == "On press: toggle red"
    assert_no_english(page, web, lang)
    assert_accessible(page)


def test_actions_are_worded_from_the_servers_data_not_parsed(browser, web):
    """Issue 22: the page shows an action from GET /api/actions' verb and arguments, and a text
    the server has no data for as ledd wrote it, never by reading ledd's grammar itself."""
    s = strings("en")
    state = web.ledd.client().state()
    state["buttons"][0].update(on_press="brightness 1 30", on_release="all off")
    page = browser.new_page()
    serve_state(page, state)
    asked = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/api/actions") else None)
    page.goto(web.url + "/")
    expect = playwright_sync.expect
    expect(page.locator("#button-0 .on-press")).to_have_text("On press: dim green to 30%", timeout=TIMEOUT_MS)
    expect(page.locator("#button-0 .on-release")).to_have_text(fill(s["button.on_release"], action=s["action.all_off"]))
    assert len(asked) == 1, asked  # once for every text the state names
    # A text the server has no data for (an older web API, a newer ledd's verb) is shown as ledd
    # wrote it: "toggle 1", not "toggle green", which only reading the grammar would give.
    state["buttons"][0].update(on_press="toggle 1")
    other = browser.new_page()
    serve_state(other, state)
    other.unroute("**/api/actions")
    other.route("**/api/actions", lambda route: route.fulfill(status=404, headers={"Content-Type": "application/json"},
                                                             body='{"error":"no such resource","code":"not_found"}'))
    other.goto(web.url + "/")
    expect(other.locator("#button-0 .on-press")).to_have_text("On press: toggle 1", timeout=TIMEOUT_MS)


# -- numbers, names and the switch in each language (issue 21, items 12, 16, 17) ---

@per_language
def test_every_number_is_written_the_languages_way(browser, web, lang):
    s, num = strings(lang), NUMBER[lang]
    state = web.ledd.client().state()
    state["seq"] = 1234567
    state["buttons"][0].update(presses=12345, on_press="blink 0 20000 40000")
    state["leds"][1].update(on=True, blink={"on_ms": 25000, "off_ms": 60000})
    page = browser.new_page()
    serve_state(page, state)
    page.goto(web.url + "/")
    expect = playwright_sync.expect
    expect(page.locator("#button-0 .presses")).to_have_text(num(12345), timeout=TIMEOUT_MS)
    expect(page.locator("#button-0 .presses-label")).to_have_text(s["button.presses.other"])
    expect(page.locator("#seq")).to_have_text(fill(s["foot.seq"], seq=num(1234567)))
    expect(page.locator("#led-1 .state")).to_have_text(fill(s["led.blink"], on_ms=num(25000), off_ms=num(60000)))
    action = fill(s["action.blink"], led="red", on_ms=num(20000), off_ms=num(40000))
    expect(page.locator("#button-0 .on-press")).to_have_text(fill(s["button.on_press"], action=action))
    page.locator("#period-0").fill("5")
    page.locator("#led-0 .blink").click()
    expect(page.locator("#toast-text")).to_have_text(fill(s["led.period_range"], min=40, max=num(120000)))
    if lang == "fr":
        assert page.locator("#toast-text").text_content() == "La période doit être comprise entre 40 et 120\u202f000 ms."
    assert_accessible(page)


@per_language
def test_a_button_named_button_is_called_so_in_each_language(browser, web, lang):
    """ledd's default name is the English word: never "bouton button" / "botón button"."""
    s = strings(lang)
    state = web.ledd.client().state()
    door = dict(state["buttons"][0], id=1, name="door", gpio=23)
    state["buttons"].append(door)
    page = browser.new_page()
    serve_state(page, state)
    page.goto(web.url + "/")
    expect = playwright_sync.expect
    hold = page.locator("#button-0 .press")
    expect(hold).to_have_attribute("aria-label", fill(s["button.hold_label"], button=s["button.word"]), timeout=TIMEOUT_MS)
    expect(page.locator("#button-1 .press")).to_have_attribute(
        "aria-label", fill(s["button.hold_label"], button=fill(s["button.named"], name="door")))
    expect(page.locator("#pinout li.used.button").first).to_contain_text("GPIO22 · " + s["button.word"])
    labels = page.evaluate("[...document.querySelectorAll('[aria-label], .pin-name')].map((el) => el.getAttribute('aria-label') || el.textContent)")
    assert not [text for text in labels if re.search(r"\b(bouton|botón|button) button\b", text, re.I)], labels
    assert_no_english(page, web, lang, state)


@pytest.mark.parametrize("locale", ["fr-CA"])
def test_a_language_that_fails_to_load_is_not_switched_to_nor_remembered(browser, web):
    fr, es = strings("fr"), strings("es")
    page = open_dashboard(browser, web)
    expect = playwright_sync.expect
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.route("**/i18n/es.json", lambda route: route.fulfill(status=503, body=""))
    page.locator("#lang").select_option("es")
    expect(page.locator("#toast-text")).to_have_text(fill(fr["page.language_failed"], language="Español"), timeout=TIMEOUT_MS)
    expect(page.locator("#lang")).to_have_value("fr")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#conn-text")).to_have_text(fr["conn.live"])
    assert page.evaluate("localStorage.getItem('ledd-language')") is None
    page.unroute("**/i18n/es.json")
    page.reload()
    expect(page.locator("#conn-text")).to_have_text(fr["conn.live"], timeout=TIMEOUT_MS)
    expect(page.locator("#lang")).to_have_value("fr")
    # ...and a switch that works is remembered, as before.
    page.locator("#lang").select_option("es")
    expect(page.locator("#conn-text")).to_have_text(es["conn.live"], timeout=TIMEOUT_MS)
    assert page.evaluate("localStorage.getItem('ledd-language')") == "es"


# -- the rest, in English ------------------------------------------------------

def test_keyboard_blink_and_all(browser, web):
    page = open_dashboard(browser, web)
    expect = playwright_sync.expect
    page.locator("#led-1 .led-toggle").focus()
    page.keyboard.press("Space")
    expect(page.locator("#led-1 .state")).to_have_text("ON", timeout=TIMEOUT_MS)
    page.locator("#period-0").fill("400")
    page.locator("#led-0 .blink").click()
    expect(page.locator("#led-0 .state")).to_have_text("BLINK 200/200 ms", timeout=TIMEOUT_MS)
    assert web.ledd.client().state()["leds"][0]["blink"] == {"on_ms": 200, "off_ms": 200}
    page.locator("#all-off").click()
    expect(page.locator("#led-0 .state")).to_have_text("OFF", timeout=TIMEOUT_MS)
    expect(page.locator("#led-1 .state")).to_have_text("OFF", timeout=TIMEOUT_MS)


def test_button_press_from_cli_side_updates_two_pages(browser, web, tmp_path):
    pages = [open_dashboard(browser, web), open_dashboard(browser, web)]
    expect = playwright_sync.expect
    before = web.ledd.client().state()["buttons"][0]["presses"]
    for page in pages:
        expect(page.locator("#button-0 .presses")).to_have_text(str(before))
    client = web.ledd.client()
    client.press(0)
    for page in pages:
        expect(page.locator("#button-0 .state")).to_have_text("PRESSED", timeout=TIMEOUT_MS)
        expect(page.locator("#button-0")).to_have_attribute("data-pressed", "true")
        expect(page.locator("#button-0 .presses")).to_have_text(str(before + 1))
    client.release(0)
    for page in pages:
        expect(page.locator("#button-0 .state")).to_have_text("released", timeout=TIMEOUT_MS)
    # A change made in one page shows in the other.
    pages[0].locator("#led-1 .led-toggle").click()
    expect(pages[1].locator("#led-1 .led-toggle")).to_have_attribute("aria-pressed", "true", timeout=TIMEOUT_MS)


def test_wiring_shows_pins(browser, web):
    page = open_dashboard(browser, web)
    expect = playwright_sync.expect
    expect(page.locator("#led-0 .where")).to_have_text("GPIO17 · physical pin 11", timeout=TIMEOUT_MS)
    expect(page.locator("#led-1 .where")).to_have_text("GPIO27 · physical pin 13")
    expect(page.locator("#button-0 .where")).to_have_text("GPIO22 · physical pin 15")
    expect(page.locator("#pinout li")).to_have_count(40)
    expect(page.locator("#pinout li.used")).to_have_count(3)
    expect(page.locator("#pinout li.used").first).to_contain_text("red LED")


CARD_OVERFLOW_JS = """() => [...document.querySelectorAll('.card')]
  .filter((card) => card.scrollWidth > card.clientWidth + 1).map((card) => card.id)"""


@per_language
def test_phone_layout_touch_targets(browser, web, lang, tmp_path):
    """Touch targets of 44 px or more, nothing wider than a phone or its card, in every language."""
    web.ledd.client().press(0)  # the longest state words (and the LEDs are off: their brightness in words)
    page = open_dashboard(browser, web)
    assert page.evaluate(CARD_OVERFLOW_JS) == []
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(CARD_OVERFLOW_JS) == []
    for selector in (".led-toggle", ".brightness", ".blink", ".period", ".press", "#all-on", "#all-off", "#lang"):
        for box in [el.bounding_box() for el in page.locator(selector).all()]:
            assert box["height"] >= 44 and box["width"] >= 44, (selector, box)
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (selector, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # A brightness slider is as wide as its card allows: fine steps under a thumb.
    slider, card_text = page.locator("#brightness-0").bounding_box(), page.locator("#led-0 .where").bounding_box()
    assert slider["width"] >= card_text["width"] - 1, (slider, card_text)
    # The longest connection text still fits.
    web.ledd.stop()
    playwright_sync.expect(page.locator("#conn")).to_have_attribute("data-conn", "down", timeout=TIMEOUT_MS)
    page.screenshot(path=str(tmp_path / ("phone-down-%s.png" % lang)))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#conn").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box


@pytest.mark.parametrize("locale", [os.environ.get("LEDD_SCREENSHOT_LOCALE", "en-US")])
def test_screenshot(browser, web, tmp_path, locale):
    client = web.ledd.client()
    client.brightness(0, 60)  # lit, dimmed
    client.blink(1, 500, 500)
    client.press(0), client.release(0), client.press(0)
    page = open_dashboard(browser, web)
    expect = playwright_sync.expect
    pressed = strings(page.evaluate("document.documentElement.lang"))["button.pressed"]
    expect(page.locator("#button-0 .state")).to_have_text(pressed, timeout=TIMEOUT_MS)
    page.set_viewport_size({"width": 1100, "height": 900})
    out = os.environ.get("LEDD_SCREENSHOT") or str(tmp_path / "dashboard.png")
    page.screenshot(path=out, full_page=True, animations="disabled")
    assert os.path.getsize(out) > 10000


def test_page_copes_without_board_json(browser, web):
    page = browser.new_page()
    page.route("**/board.json", lambda route: route.fulfill(status=404, body="{}"))
    page.goto(web.url + "/")
    expect = playwright_sync.expect
    expect(page.locator("#conn")).to_have_attribute("data-conn", "live", timeout=TIMEOUT_MS)
    expect(page.locator("#board-missing")).to_be_visible()
    expect(page.locator("#led-0 .where")).to_have_text("GPIO17")
    page.locator("#led-0 .led-toggle").click()
    expect(page.locator("#led-0 .state")).to_have_text("ON", timeout=TIMEOUT_MS)
    assert_accessible(page)


def test_reconnecting_sends_last_event_id(browser, web):
    """The stream is read through fetch (to see a 503's code): it sends Last-Event-ID as EventSource would."""
    state = web.ledd.client().state()
    sent = []

    def events(route):
        sent.append(route.request.headers.get("last-event-id"))
        if len(sent) == 1:  # one event, then the stream ends (as when lighttpd restarts)
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"},
                          body="retry: 500\nid: 41\nevent: state\ndata: %s\n\n" % json.dumps(state))
        else:
            route.continue_()

    page = browser.new_page()
    page.route("**/api/events", events)
    page.goto(web.url + "/")
    expect = playwright_sync.expect
    expect(page.locator("#conn")).to_have_attribute("data-conn", "live", timeout=RECONNECT_TIMEOUT_MS)
    wait_for(lambda: len(sent) >= 2, what=lambda: "the page to reconnect (requests: %r)" % sent,
             sleep=lambda s: page.wait_for_timeout(s * 1000))
    assert sent[:2] == [None, "41"]
    expect(page.locator("#conn")).to_have_attribute("data-conn", "live", timeout=RECONNECT_TIMEOUT_MS)
    page.locator("#led-0 .led-toggle").click()
    expect(page.locator("#led-0 .state")).to_have_text("ON", timeout=TIMEOUT_MS)

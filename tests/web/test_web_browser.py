"""The dashboard in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright),
served by the real lighttpd in front of the real sim ledd.

Set LEDD_SCREENSHOT=path/to/file.png to keep the dashboard screenshot (docs/screenshot.png
is made that way); otherwise it goes to the test's tmp dir.
"""

import os
import shutil

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 5000


@pytest.fixture
def browser(tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.fail("Chromium is missing: tests/run installs it")
    with playwright_sync.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1100, "height": 900})
        yield context
        context.close()


def open_dashboard(browser, web, errors=None):
    page = browser.new_page()
    if errors is not None:
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(web.url + "/")
    expect = playwright_sync.expect
    expect(page.locator("#conn")).to_have_attribute("data-conn", "live", timeout=TIMEOUT_MS)
    return page


def test_click_an_led_and_see_its_state(browser, web):
    errors = []
    page = open_dashboard(browser, web, errors)
    expect = playwright_sync.expect
    red = page.locator("#led-0 .led-toggle")
    expect(red).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#led-0 .name")).to_have_text("red")
    red.click()
    expect(red).to_have_attribute("aria-pressed", "true", timeout=TIMEOUT_MS)
    expect(page.locator("#led-0 .state")).to_have_text("ON")
    assert web.ledd.client().state()["leds"][0]["on"] is True
    red.click()
    expect(page.locator("#led-0 .state")).to_have_text("OFF", timeout=TIMEOUT_MS)
    assert web.ledd.client().state()["leds"][0]["on"] is False
    assert errors == []  # no CSP violation, no script error


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


def test_hold_the_sim_button(browser, web):
    page = open_dashboard(browser, web)
    expect = playwright_sync.expect
    hold = page.locator("#button-0 .press")
    expect(hold).to_be_visible()
    box = hold.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    expect(page.locator("#button-0 .state")).to_have_text("PRESSED", timeout=TIMEOUT_MS)
    assert web.ledd.client().state()["buttons"][0]["pressed"] is True
    page.mouse.up()
    expect(page.locator("#button-0 .state")).to_have_text("released", timeout=TIMEOUT_MS)
    assert web.ledd.client().state()["buttons"][0]["pressed"] is False


def test_wiring_shows_pins(browser, web):
    page = open_dashboard(browser, web)
    expect = playwright_sync.expect
    expect(page.locator("#led-0 .where")).to_have_text("GPIO17 · physical pin 11", timeout=TIMEOUT_MS)
    expect(page.locator("#led-1 .where")).to_have_text("GPIO27 · physical pin 13")
    expect(page.locator("#button-0 .where")).to_have_text("GPIO22 · physical pin 15")
    expect(page.locator("#pinout li")).to_have_count(40)
    expect(page.locator("#pinout li.used")).to_have_count(3)
    expect(page.locator("#pinout li.used").first).to_contain_text("red LED")


def test_connection_state_follows_ledd(browser, web):
    page = open_dashboard(browser, web)
    expect = playwright_sync.expect
    web.ledd.stop()
    expect(page.locator("#conn")).to_have_attribute("data-conn", "down", timeout=TIMEOUT_MS)
    expect(page.locator("#conn-text")).to_contain_text("not running")
    web.ledd.close_notify()
    web.ledd.notifications = []
    web.ledd.start()
    expect(page.locator("#conn")).to_have_attribute("data-conn", "live", timeout=10000)
    page.locator("#led-0 .led-toggle").click()
    expect(page.locator("#led-0 .state")).to_have_text("ON", timeout=TIMEOUT_MS)


def test_phone_layout_touch_targets(browser, web):
    page = open_dashboard(browser, web)
    page.set_viewport_size({"width": 390, "height": 844})
    for selector in (".led-toggle", ".blink", ".period", ".press", "#all-on", "#all-off"):
        for box in [el.bounding_box() for el in page.locator(selector).all()]:
            assert box["height"] >= 44 and box["width"] >= 44, (selector, box)
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (selector, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_screenshot(browser, web, tmp_path):
    client = web.ledd.client()
    client.on(0)
    client.blink(1, 500, 500)
    client.press(0), client.release(0), client.press(0)
    page = open_dashboard(browser, web)
    expect = playwright_sync.expect
    expect(page.locator("#button-0 .state")).to_have_text("PRESSED", timeout=TIMEOUT_MS)
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

"""The dashboard in a browser, for the browser tests (test_web_browser.py, test_web_brightness.py).

Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright; the ``browser``
fixture (conftest.py) is a context in the ``locale`` a test parametrizes. Each language's texts come from
www/i18n/<lang>.json; assert_no_english() finds English left in a French or Spanish page,
assert_accessible() runs axe-core's rules.
"""

import json
import re

import pytest

from ledd import defaults
from ledd.web import api as web
from waiting import WAIT_S
from webstack import ROOT

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
#: One bound for every wait on a page (expect, click, ...): the suite's, paid only when a test fails.
#: It was Playwright's 5 s default, which a page legitimately spends reconnecting on a loaded machine.
TIMEOUT_MS = int(WAIT_S * 1000)
#: A wait that spans a reconnect after a 503: the page first waits out its Retry-After.
RECONNECT_TIMEOUT_MS = TIMEOUT_MS + defaults.WEB_RETRY_AFTER_S * 1000
I18N = ROOT / "www" / "i18n"
LOCALES = {"en": "en-US", "fr": "fr-FR", "es": "es-ES"}


def strings(lang):
    with open(I18N / ("%s.json" % lang), encoding="utf-8") as f:
        return json.load(f)


def fill(text, **params):
    return re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]), text)


def open_dashboard(browser, web, errors=None, path="/"):
    page = browser.new_page()
    if errors is not None:
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(web.url + path)
    expect = playwright_sync.expect
    expect(page.locator("#conn")).to_have_attribute("data-conn", "live", timeout=TIMEOUT_MS)
    return page


# -- what a person (or a screen reader) gets ----------------------------------

VISIBLE_TEXT_JS = """() => {
  const pageLang = document.documentElement.lang;
  const foreign = (el) => { const holder = el.closest('[lang]'); return holder && holder.lang !== pageLang; };
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (el && !foreign(el) && el.checkVisibility()) out.push(node.data);
  }
  for (const el of document.querySelectorAll('[aria-label]')) if (!foreign(el)) out.push(el.getAttribute('aria-label'));
  return out.join('\\n');
}"""


def words(text):
    return {w.lower() for w in re.findall(r"[^\W\d_]{2,}", re.sub(r"\{\w+\}", " ", text))}


def english_only_words(lang):
    """Words of en.json that no text of ``lang`` has: any of them on that page is a leak."""
    english = set().union(*map(words, strings("en").values()))
    return english - set().union(*map(words, strings(lang).values()))


def assert_no_english(page, web, lang, state=None):
    """The page's visible text and aria-labels, less text marked lang="en" and the configured names."""
    if lang == "en":
        return
    state = state or web.ledd.client().state()
    names = set().union(*(words(x["name"]) for x in state["leds"] + state["buttons"])) | words(state["backend"])
    text = page.evaluate(VISIBLE_TEXT_JS)
    leaked = (words(text) - names) & english_only_words(lang)
    assert not leaked, "English in the %s page: %s\n%s" % (lang, sorted(leaked), text)


def assert_accessible(page):
    """axe-core's rules (WCAG 2 A/AA and best practices) find nothing."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.fail("axe-playwright-python is missing: tests/run installs it")
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_snapshot() + "\n" + json.dumps(
        [[v["id"], [n["html"] for n in v["nodes"]]] for v in results.response["violations"]], indent=1)


#: Numbers of five digits or more as each language writes them (Spanish groups no 4-digit number).
NUMBER = {"en": "{:,}".format, "fr": lambda n: "{:,}".format(n).replace(",", "\u202f"),
          "es": lambda n: "{:,}".format(n).replace(",", ".")}


def serve_state(page, state):
    """The page's event stream sends ``state`` once, and GET /api/actions answers for its buttons
    what the web API would for that state (the page's POSTs still reach ledd)."""
    page.route("**/api/events", lambda route: route.fulfill(
        status=200, headers={"Content-Type": "text/event-stream"},
        body="retry: 5000\nid: %d\nevent: state\ndata: %s\n\n" % (state["seq"], json.dumps(state))))
    page.route("**/api/actions", lambda route: route.fulfill(
        status=200, headers={"Content-Type": "application/json"},
        body=web.actions_body(json.dumps(state).encode()).decode()))


def per_language(test):
    return pytest.mark.parametrize("lang,locale", [(lang, loc) for lang, loc in LOCALES.items()], ids=list(LOCALES))(test)

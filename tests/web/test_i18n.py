"""The dashboard's translations (www/i18n/<lang>.json) against each other and against the page.

English (en.json) is the reference. A key missing from a language, a key no page uses, a
key a page uses that no file defines, a placeholder lost in translation, markup text that
is not translatable: each fails here, naming the key. No browser needed (the browser
runs of each language are in test_web_browser.py).
"""

import json
import re
from html.parser import HTMLParser

import pytest

from webstack import ROOT

WWW = ROOT / "www"
I18N = WWW / "i18n"
SCRIPTS = sorted(WWW.glob("*.js"))  # app.js and the modules it imports
PAGES = [WWW / "index.html", WWW / "error.html"]
API_DOC = ROOT / "docs" / "api.md"
REFERENCE = "en"

#: Markup text that is the same in every language (names, units).
UNTRANSLATED_TEXT = {"ledd", "ms", "0"}

KEY = r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def load(code):
    with open(I18N / ("%s.json" % code), encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=no_duplicates)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    assert not dupes, "duplicate keys: %s" % dupes
    return dict(pairs)


def script_source():
    return "\n".join(path.read_text(encoding="utf-8") for path in SCRIPTS)


def listed_languages():
    """The codes in lang.js's LANGUAGES table (what the switch offers)."""
    match = re.search(r"const LANGUAGES = \{([^}]*)\}", script_source())
    assert match, "no script of www/ has a LANGUAGES table"
    return re.findall(r"(\w+):\s*'", match.group(1))


LANGUAGES = sorted(p.stem for p in I18N.glob("*.json"))
OTHERS = [code for code in LANGUAGES if code != REFERENCE]


class Markup(HTMLParser):
    """The data-i18n keys of a page, its English texts, and any text or aria-label left untranslatable."""

    VOID = {"meta", "link", "input", "br", "img", "hr", "source"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []       # (tag, translated?, code?)
        self.keys = {}        # key -> the markup's English text (None for aria-labels)
        self.label_keys = {}  # key -> the markup's aria-label
        self.untranslated = []
        self._text_key = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        key = attrs.get("data-i18n")
        label_key = attrs.get("data-i18n-label")
        if "aria-label" in attrs and not label_key:
            self.untranslated.append("aria-label=%r" % attrs["aria-label"])
        if label_key:
            self.label_keys[label_key] = attrs.get("aria-label")
        inside_code = tag == "code" or bool(self.stack and self.stack[-1][2])
        translated = bool(key) or bool(self.stack and self.stack[-1][1])
        if key:
            self.keys.setdefault(key, "")
            self._text_key = key
        if tag not in self.VOID:
            self.stack.append((tag, translated, inside_code, key))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        text = " ".join(data.split())
        if not text or not self.stack:
            return
        tag, translated, inside_code, key = self.stack[-1]
        if key:
            self.keys[key] += text
        elif not translated and not inside_code and tag not in ("script", "style") and re.search(r"[^\W\d_]", text) \
                and text not in UNTRANSLATED_TEXT:
            self.untranslated.append(text)


def parse(page):
    markup = Markup()
    markup.feed(page.read_text(encoding="utf-8"))
    return markup


def keys_used_by_script():
    """Every key the scripts spell out: quoted dotted names; tn('x', ...) uses x.one, x.other, ..."""
    source = script_source()
    literal = set(re.findall(r"'(%s)'" % KEY, source))
    counted = set(re.findall(r"\btn\('(%s)'" % KEY, source))
    return literal - counted, counted


def documented_error_codes():
    """The `code`s of the error table in docs/api.md: the page has its own text for each."""
    codes = set()
    for line in API_DOC.read_text(encoding="utf-8").splitlines():
        cells = line.split("|")
        if len(cells) > 3 and re.fullmatch(r"\s*[45]\d\d(\s*,\s*[45]\d\d)*\s*", cells[1]):  # "501, 505" too
            codes.update(re.findall(r"`([a-z_]+)`", cells[2]))
    assert len(codes) > 10, "the error table of docs/api.md was not found"
    return codes


def test_the_switch_offers_exactly_the_translated_languages():
    assert set(LANGUAGES) >= {"en", "fr", "es"}
    assert sorted(listed_languages()) == LANGUAGES


@pytest.mark.parametrize("code", LANGUAGES)
def test_every_value_is_a_nonempty_trimmed_string(code):
    table = load(code)
    bad = [k for k, v in table.items() if not isinstance(v, str) or not v.strip() or v != v.strip()]
    assert not bad, "%s.json: empty, padded or non-string values: %s" % (code, bad)
    assert all(re.fullmatch(KEY, k) for k in table), "%s.json: keys are dotted lowercase names" % code


@pytest.mark.parametrize("code", OTHERS)
def test_every_language_has_exactly_the_reference_keys(code):
    reference, table = load(REFERENCE), load(code)
    missing = sorted(set(reference) - set(table))
    extra = sorted(set(table) - set(reference))
    assert not missing, "%s.json lacks: %s" % (code, missing)
    assert not extra, "%s.json has keys that en.json (the reference) lacks: %s" % (code, extra)


@pytest.mark.parametrize("code", OTHERS)
def test_placeholders_survive_translation(code):
    reference, table = load(REFERENCE), load(code)
    wrong = {k: (table[k], reference[k]) for k in reference if k in table
             and sorted(PLACEHOLDER.findall(table[k])) != sorted(PLACEHOLDER.findall(reference[k]))}
    assert not wrong, "%s.json: placeholders differ from en.json: %s" % (code, wrong)


@pytest.mark.parametrize("code", OTHERS)
def test_translations_are_not_english_copies(code):
    reference, table = load(REFERENCE), load(code)
    same = sorted(k for k in reference if table.get(k) == reference[k])
    assert not same, "%s.json: still the English text: %s" % (code, same)


def test_french_punctuation_is_consistent():
    """A no-break space before : ; ! ? (never a plain one, never none) and typographic apostrophes."""
    for key, value in load("fr").items():
        assert "'" not in value, (key, value, "use ’")
        for match in re.finditer(r"(.)([:;!?])", value):
            assert match.group(1) in "\u00a0\u202f", (key, value)


def test_spanish_punctuation_is_consistent():
    for key, value in load("es").items():
        assert "'" not in value, (key, value)
        assert value.count("?") == value.count("¿") and value.count("!") == value.count("¡"), (key, value)


def test_every_key_is_used_and_every_used_key_is_defined():
    reference = load(REFERENCE)
    literal, counted = keys_used_by_script()
    markup = set()
    for page in PAGES:
        parsed = parse(page)
        markup |= set(parsed.keys) | set(parsed.label_keys)
    error_keys = {"error." + code for code in documented_error_codes()}
    used = literal | markup | error_keys | action_keys()
    undefined = sorted(k for k in used if k not in reference)
    undefined += sorted(k for k in counted if k + ".other" not in reference)
    assert not undefined, "used by the page but not in en.json: %s" % undefined
    covered = used | {k for k in reference if k.rpartition(".")[0] in counted}
    unused = sorted(set(reference) - covered)
    assert not unused, "in en.json but used by no page: %s" % unused


def action_keys():
    """The words of every verb a button action may run (www/actions.js): "action.<verb>", with
    "_on"/"_off" for an on/off argument (``all on`` is "action.all_on")."""
    from ledd.verbs import VERBS

    keys = set()
    for verb in VERBS:
        if verb.action:
            names = {"action." + verb.name.lower()}
            for arg in verb.args:
                if arg.kind == "onoff":
                    names = {n + suffix for n in names for suffix in ("_on", "_off")}
            keys |= names
    return keys


def test_each_documented_api_error_code_has_a_translated_text():
    reference = load(REFERENCE)
    missing = sorted(code for code in documented_error_codes() if "error." + code not in reference)
    assert not missing, "docs/api.md error codes without a page text (add error.<code> to www/i18n/*.json): %s" % missing


def codes_the_server_sends():
    """Every ``code`` an error under /api/ can carry, wherever it is made: ledd.web.api's tables
    (ledd's errors, lighttpd's own), the codes spelled out in ledd/web/*.py, and the files
    lighttpd falls back on (lighttpd.d/api-errors/)."""
    import ast

    from ledd.web import api as web

    codes = {code for code, _ in web.DAEMON_ERRORS.values()} | set(web.LIGHTTPD_CODES.values())
    for source in sorted((ROOT / "ledd" / "web").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            name = isinstance(node, ast.Call) and (getattr(node.func, "id", None) or getattr(node.func, "attr", None))
            position = {"HTTPError": 1, "error_body": 0}.get(name)  # HTTPError(status, code, ...), error_body(code, ...)
            if position is not None and isinstance(node.args[position], ast.Constant):
                codes.add(node.args[position].value)
    for page in (ROOT / "lighttpd.d" / "api-errors").glob("*.html"):
        codes.add(json.loads(page.read_text(encoding="utf-8"))["code"])
    assert {"bad_json", "daemon_down", "headers_too_large", "busy"} <= codes, codes
    return codes


def test_every_code_the_server_sends_is_documented():
    """One list of codes: docs/api.md's table, which the page has a text for (test above)."""
    missing = sorted(codes_the_server_sends() - documented_error_codes())
    assert not missing, "error codes the server sends that docs/api.md does not list: %s" % missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_markup_text_is_all_translatable_and_is_the_reference_english(page):
    parsed = parse(page)
    assert not parsed.untranslated, "%s: text without data-i18n: %s" % (page.name, parsed.untranslated)
    reference = load(REFERENCE)
    for key, text in parsed.keys.items():
        assert text == reference.get(key), (page.name, key, text, "differs from en.json")
    for key, label in parsed.label_keys.items():
        assert label in (None, reference.get(key)), (page.name, key, label)


@pytest.mark.parametrize("code", LANGUAGES)
def test_plural_forms_cover_the_language(code):
    """tn() falls back to .other; French and Spanish need .one as well (1 press, 1 appui)."""
    table = load(code)
    _, counted = keys_used_by_script()
    for key in counted:
        assert key + ".other" in table and key + ".one" in table, (code, key)

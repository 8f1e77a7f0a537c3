"""lighttpd.conf's security rules: only the API executes, no source or dotfile is ever served,
no directory listing, security headers on every response (static, API, errors)."""

import http.client

import pytest

SECRETS = (b"import ", b"#!/usr/bin/python3", b"[core]", b"server.modules", b"def ", b"Index of")

# Every one of these must not disclose anything (paths are sent as-is, not normalised by the client).
PROBES = [
    "/cgi-bin/api.py", "/cgi-bin/events.py", "/cgi-bin/", "/ledd/client.py", "/ledd/web/api.py", "/ledd/",
    "/.git/config", "/.git/HEAD", "/.gitignore", "/lighttpd.conf", "/lighttpd.d/none.conf", "/www/", "/www/index.html",
    "/tests/web/conftest.py", "/../ledd/client.py", "/%2e%2e/ledd/client.py", "/%2E%2E/%2E%2E/etc/passwd",
    "/..%2fledd%2fclient.py", "/api/../ledd/client.py", "/api/%2e%2e/ledd/client.py", "/api/..%2f..%2fledd/client.py",
    "/api/..%2fcgi-bin/api.py", "/api/events/../../ledd/client.py", "/api/.git/config", "/api/api.py", "/api/../../lighttpd.conf",
    "/index.html~", "/.well-known/../.git/config", "//ledd/client.py", "/./lighttpd.conf", "/api/state/../../../.git/config",
    "/cgi-bin/api.py/state", "/ledd/__pycache__/", "/app.js/..%2f..%2flighttpd.conf",
]


def raw_get(web, path, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("path", PROBES)
def test_nothing_but_the_dashboard_is_disclosed(web, path):
    status, headers, body = raw_get(web, path)
    assert status in (400, 403, 404), (path, status, body[:200])
    for secret in SECRETS:
        assert secret not in body, (path, secret)


def test_no_directory_listing(web):
    for path in ("/", "/api/"):
        status, headers, body = raw_get(web, path)
        assert b"Index of" not in body and b"Parent Directory" not in body


def test_static_files_served_with_types(web):
    for path, ctype in [("/", "text/html"), ("/app.js", "text/javascript"), ("/app.css", "text/css"), ("/board.json", "application/json")]:
        status, headers, body = raw_get(web, path)
        assert status == 200, path
        assert headers["content-type"].startswith(ctype), (path, headers)


@pytest.mark.parametrize("path", ["/", "/app.js", "/api/state", "/api/nope", "/nope.html", "/.git/config", "/api/.git", "/api/leds/0"])
def test_security_headers_everywhere(web, path):
    status, headers, body = raw_get(web, path)
    csp = headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, (path, csp)
    assert "unsafe-inline" not in csp
    assert headers.get("x-content-type-options") == "nosniff", path
    assert headers.get("x-frame-options") == "DENY", path
    assert headers.get("referrer-policy"), path


@pytest.mark.parametrize("path", ["/api/.git", "/api/eventsx", "/api", "/api/leds/0/x/../../y"])
def test_lighttpd_errors_under_api_are_json(web, path):
    status, headers, body = raw_get(web, path)
    assert status in (403, 404), (path, status)
    assert headers["content-type"] == "application/json", (path, headers)
    assert body.startswith(b'{"error":'), body


def test_oversized_body_is_json_413(web):
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    conn.request("POST", "/api/leds/0", body=b"{" + b" " * 20000 + b"}", headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 413
    assert response.getheader("Content-Type") == "application/json"
    assert b'"code":"body_too_large"' in body


def test_page_has_no_inline_script_or_external_resource():
    from webstack import ROOT

    html = (ROOT / "www" / "index.html").read_text()
    assert "<script>" not in html and "onclick" not in html.lower() and "style=" not in html
    for path in [ROOT / "www" / "index.html", ROOT / "www" / "app.css", *sorted((ROOT / "www").glob("*.js"))]:
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text

"""Someone else's web server on the Pi, in containers: the ports are the container's own (a private
network namespace), so these scenarios run beside each other and never touch the host's :80 and :443.

* nginx holding :80, then :80 and :443 (the Pi-hole v6 case), on bookworm and trixie: a plain run and
  `--tls` are refused before any change, naming the port, its holder and the flag that moves ours
  (`--port` for the dashboard's port, `--redirect-port` for the HTTP redirect); then `--tls --port 8443
  --redirect-port 8080` works beside nginx;
* the owner's lighttpd site (Debian's lighttpd.service) on bookworm: the site answers before, during
  (deploy.sh paused before its services step), after the install on --port 8080 and after
  `--uninstall`, and `--purge` gives back the listing with the owner's lighttpd.
"""

import re
import shlex

import pytest

from ctpi import (BACKEND_ARGS, BG_LOG, assert_same_listing, boot, signal_group, start_background, step, suites,
                  wait_for, wait_in_container)

pytestmark = pytest.mark.slow

NGINX_PAGE = "<h1>nginx: the owner site</h1>"
OWNER_PAGE = "<h1>the owner site</h1>"


@pytest.fixture
def pi(tmp_path_factory, suite, request):
    yield from boot(tmp_path_factory, request.node.originalname.replace("test_", ""), suite, build_tools=True)


def apt_install(pi, packages):
    pi.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends %s >/tmp/apt.log 2>&1 "
          "|| { tail /tmp/apt.log; exit 1; }; rm /tmp/apt.log" % packages, timeout=600)


def refused(pi, before, args, port, hint):
    rc, out = pi.deploy(*args, check=False)
    assert rc != 0, out
    assert re.search(r"port %d (\([^)]*\) )?is in use by nginx \(pid \d+, nginx.service\); nothing was changed"
                     % port, out), out
    assert hint in out, "no %r in:\n%s" % (hint, out)
    assert_same_listing(before, pi.listing(), "after deploy.sh %s was refused" % " ".join(args))
    assert pi.get("/")[1].strip() == NGINX_PAGE


@suites()
def test_nginx_holds_80_then_443(pi):
    apt_install(pi, "nginx")
    pi.sh("echo %s >/var/www/html/index.html && systemctl is-active nginx" % shlex.quote(NGINX_PAGE))
    wait_for(lambda: pi.get("/")[0] == 200, 30, "nginx answers")
    before = step(pi, "listing", pi.listing)

    step(pi, "plain run: port 80 taken", lambda: refused(pi, before, BACKEND_ARGS, 80, "--port 8080"))
    step(pi, "--tls: the redirect's port 80 taken",
         lambda: refused(pi, before, BACKEND_ARGS + ("--tls",), 80, "--redirect-port"))

    # Pi-hole v6 holds both: nginx on 443 as well.
    pi.sh("sed -i 's/^\\(\\s*\\)listen 80 default_server;/&\\n\\1listen 443 default_server;/' "
          "/etc/nginx/sites-enabled/default && systemctl restart nginx")
    wait_for(lambda: pi.get("/", port=443)[0] == 200, 30, "nginx on 443")
    before = step(pi, "listing", pi.listing)
    step(pi, "--tls: port 443 taken", lambda: refused(pi, before, BACKEND_ARGS + ("--tls",), 443, "--port"))

    def beside_nginx():
        out = pi.install("--tls", "--port", "8443", "--redirect-port", "8080")
        assert "SHA-256 fingerprint" in out, out
        pi.port, pi.scheme = 8443, "https"
        assert pi.api("GET", "/api/state", auth=False)[0] == 401
        assert pi.api("GET", "/api/state")[0] == 200
        status, _ = pi.ct.http("http://127.0.0.1:8080/api/state?x=1", "-D", "/dev/stderr")
        assert status == 308
        assert pi.get("/")[1].strip() == NGINX_PAGE and pi.get("/", port=443)[1].strip() == NGINX_PAGE
    step(pi, "--tls --port 8443 --redirect-port 8080 beside nginx", beside_nginx)


@pytest.mark.parametrize("suite", ["bookworm"])
def test_owner_lighttpd_site_before_during_after(pi):
    pi.sh("systemctl enable --now --quiet lighttpd && echo %s >/var/www/html/index.html" % shlex.quote(OWNER_PAGE))
    page = wait_for(lambda: pi.get("/")[0] == 200 and pi.get("/"), 30, "the owner's site")
    assert OWNER_PAGE in page[1]
    before = step(pi, "listing", pi.listing)

    def refused_plain():
        rc, out = pi.deploy(*BACKEND_ARGS, check=False)
        assert rc != 0 and "port 80 is in use by lighttpd" in out and "--port 8080" in out, out
        assert_same_listing(before, pi.listing(), "after the refused run")
    step(pi, "port 80 is the owner's: refused", refused_plain)

    def during():
        pgid = start_background(pi, BACKEND_ARGS + ("--port", "8080"), env=("LEDD_DEPLOY_PAUSE_AT=services",))
        assert wait_in_container(pi, "grep -qF 'pausing before step services' %s" % BG_LOG, pgid), \
            pi.sh("cat %s" % BG_LOG)
        assert pi.get("/") == page  # packages, users and files in place; the owner's site still answers
        signal_group(pi, pgid)
        assert_same_listing(before, pi.listing(), "after Ctrl-C during the install")
        assert pi.get("/") == page
    step(pi, "during the install", during)

    def after():
        pi.install("--port", "8080")
        pi.port = 8080
        assert pi.api("GET", "/api/state")[0] == 200
        assert pi.get("/") == page
        assert pi.sh("systemctl is-active ledd ledd-web lighttpd").split() == ["active"] * 3
    step(pi, "after the install on --port 8080", after)

    def after_uninstall():
        out = pi.sh("/opt/ledd/deploy.sh --uninstall", timeout=600)
        assert "uninstalled" in out, out
        assert pi.get("/") == page
        assert pi.sh("systemctl is-enabled lighttpd; systemctl is-active lighttpd").split() == ["enabled", "active"]
        pi.deploy("--uninstall", "--purge", "--yes")
        assert_same_listing(before, pi.listing(), "after --purge")
        assert pi.get("/") == page
    step(pi, "after --uninstall and --purge", after_uninstall)

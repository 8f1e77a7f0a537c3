"""More of what owners do, in containers on bookworm and trixie:

* two runs at once: the second is refused at once, names the first, and changes nothing; the first
  finishes;
* a renamed Pi under --tls: the re-run makes a certificate for the new name, which a browser that
  trusts it verifies; a re-run without a change keeps the certificate.
"""

import re

import pytest

from ctpi import (BACKEND_ARGS, BG_LOG, WAIT_GROUP_GONE, assert_same_listing, boot, start_background, step, suites,
                  wait_for, wait_in_container)

pytestmark = pytest.mark.slow


@pytest.fixture
def pi(tmp_path_factory, suite, request):
    yield from boot(tmp_path_factory, request.node.originalname.replace("test_", ""), suite, build_tools=True)


@suites()
def test_two_runs_at_once(pi):
    pgid = start_background(pi, BACKEND_ARGS, env=("LEDD_DEPLOY_PAUSE_AT=files",))
    assert wait_in_container(pi, "grep -qF 'pausing before step files' %s" % BG_LOG, pgid), pi.sh("cat %s" % BG_LOG)
    during = pi.listing()

    def second_refused():
        rc, out = pi.deploy(*BACKEND_ARGS, check=False)
        assert rc != 0, out
        assert re.search(r"another deploy.sh is running \(pid %d\)" % pgid, out), out
        assert_same_listing(during, pi.listing(), "after the refused second run")
    step(pi, "the second run is refused", second_refused)

    def first_finishes():
        # The pause is a `sleep` child of deploy.sh: end it, and the run goes on.
        pi.sh("kill $(ps -o pid=,comm= --ppid %d | awk '$2 == \"sleep\" {print $1}')" % pgid)
        out = pi.sh(("timeout 300 bash -c '" + WAIT_GROUP_GONE + "'; cat %s") % (pgid, BG_LOG), timeout=330)
        assert "health check: the API answers" in out, out
        pi.password = re.search(r"user: ledd  password: (\S+)", out).group(1)
        assert pi.api("GET", "/api/state")[0] == 200
    step(pi, "the first run finishes", first_finishes)


@suites()
def test_hostname_change_under_tls(pi):
    def with_tls():
        out = pi.install("--tls")
        pi.port, pi.scheme = 443, "https"
        assert pi.api("GET", "/api/state")[0] == 200
        return re.search(r"SHA-256 fingerprint: ([0-9A-F:]{95})", out).group(1)
    first = step(pi, "install with --tls", with_tls)

    def verified_as(name):
        cert = pi.ct.workdir / "cert.pem"   # what a browser trusts, on the host that runs curl
        cert.write_text(pi.sh("cat /etc/ledd/web/tls/cert.pem"))
        return pi.ct.http("https://%s/api/state" % name, "--cacert", str(cert), "--resolve", "%s:443:127.0.0.1" % name,
                          "-u", "ledd:%s" % pi.password)

    def renamed():
        pi.sh("hostname garden-pi && echo garden-pi >/etc/hostname && "
              "sed -i 's/\\bledd-[a-z]*$/garden-pi/' /etc/hosts")
        out = pi.deploy()
        names = re.search(r"TLS: a self-signed certificate for (\S+)", out)
        assert names and {"DNS:garden-pi", "DNS:garden-pi.local"} <= set(names.group(1).split(",")), out
        fingerprint = re.search(r"SHA-256 fingerprint: ([0-9A-F:]{95})", out).group(1)
        assert fingerprint != first
        status, _ = wait_for(lambda: verified_as("garden-pi"), 30, "HTTPS verified as garden-pi")
        assert status == 200
        status, _ = verified_as("garden-pi.local")
        assert status == 200
        again = pi.deploy()
        assert "nothing changed" in again and fingerprint in again, again
    step(pi, "renamed Pi: a certificate for the new name", renamed)

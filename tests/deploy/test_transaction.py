"""deploy.sh's machinery without a VM: the journal and its rollback, remembered settings, the port
preflight, secrets kept out of the log, and HTTPS served by lighttpd from a staged tree.

Functions are called by sourcing deploy.sh in bash (it only defines when sourced) in a scratch
root (DESTDIR), so nothing here touches the machine's own /etc or /opt.
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deployutil import DEPLOY, ROOT, deploy_var, run_deploy
from waiting import wait_for

BOOKWORM = 'ID=debian\nVERSION_CODENAME=bookworm\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'


def bash(script, tmp_path, timeout=60, **env):
    """Source deploy.sh, prepare a scratch TMP_DIR and DESTDIR, run ``script``."""
    prelude = ('. "%s"\nTMP_DIR=%s/tmp; mkdir -p "$TMP_DIR"\nDESTDIR=%s/root; mkdir -p "$DESTDIR"\n'
               'LOG_FILE=%s/deploy.log\n' % (DEPLOY, tmp_path, tmp_path, tmp_path))
    return subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **env))


# --- the journal -------------------------------------------------------------------------------

CHANGES = r'''
echo old >"$DESTDIR/kept.conf"
echo doomed >"$DESTDIR/gone.txt"
echo new >"$TMP_DIR/src"
journal_begin
put_file "$TMP_DIR/src" /kept.conf 0600 root root
put_file "$TMP_DIR/src" /opt/newdir/sub/file 0644 root root
put_dir /var/lib/fresh 0750 root root
remove_path /gone.txt
'''


def assert_as_before(root):
    assert (root / "kept.conf").read_text() == "old\n"
    assert oct((root / "kept.conf").stat().st_mode & 0o777) != "0o600"
    assert (root / "gone.txt").read_text() == "doomed\n"
    assert not (root / "opt").exists() and not (root / "var").exists()  # created dirs go too


def test_rollback_undoes_every_change_in_reverse(tmp_path):
    proc = bash(CHANGES + 'rollback\n', tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_as_before(tmp_path / "root")
    assert "rolled back" in proc.stderr


def test_a_fatal_error_rolls_back(tmp_path):
    proc = bash('trap on_exit EXIT\n' + CHANGES + 'fatal "the health check failed"\n', tmp_path)
    assert proc.returncode == 1
    assert "error: the health check failed" in proc.stderr and "rolled back" in proc.stderr
    assert_as_before(tmp_path / "root")


def test_an_unexpected_error_rolls_back(tmp_path):
    proc = bash("trap on_exit EXIT\ntrap 'on_error $LINENO' ERR\n" + CHANGES + 'false\necho not reached\n',
                tmp_path)
    assert proc.returncode == 1 and "not reached" not in proc.stdout
    assert "failed at deploy.sh line" in proc.stderr and "rolled back" in proc.stderr
    assert_as_before(tmp_path / "root")


def test_sigterm_midway_rolls_back(tmp_path):
    script = ("trap on_exit EXIT\ntrap 'on_signal TERM 143' TERM\n" + CHANGES +
              'sleep 60 &\nPAUSE_PID=$!\ntouch "%s/ready"\nwait $!\n' % tmp_path)  # as the pause hook does
    # "ready" only once PAUSE_PID is set: a SIGTERM before that would leave the sleep running,
    # holding the pipes open for communicate().
    proc = subprocess.Popen(["bash", "-c", '. "%s"\nTMP_DIR=%s/tmp; mkdir -p "$TMP_DIR"\nDESTDIR=%s/root\n'
                             'mkdir -p "$DESTDIR"\n%s' % (DEPLOY, tmp_path, tmp_path, script)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (tmp_path / "ready").exists() or proc.poll() is not None, 30, what="the pause hook")
    assert proc.poll() is None, proc.communicate()
    assert (tmp_path / "root" / "kept.conf").read_text() == "new\n"  # the change was made
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "rolled back" in err
    assert_as_before(tmp_path / "root")


def test_commit_lists_what_was_created_for_uninstall(tmp_path):
    journal = tmp_path / "installed.journal"
    proc = bash(CHANGES + 'journal user ledd\njournal package gcc\njournal start ledd.service\n'
                'INSTALL_JOURNAL=%s DEPLOY_STATE_DIR=%s\njournal_commit\necho "open=$TXN_OPEN"\n'
                % (journal, tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "open=0" in proc.stdout
    lines = journal.read_text().splitlines()
    root = str(tmp_path / "root")
    assert "file\t%s/opt/newdir/sub/file" % root in lines
    assert "dir\t%s/opt" % root in lines and "dir\t%s/var/lib/fresh" % root in lines
    assert "user\tledd" in lines and "package\tgcc" in lines
    assert not [line for line in lines if line.startswith(("start", "removed"))]  # not creations
    assert not [line for line in lines if "kept.conf" in line]  # existed before: not ours to remove



def test_commit_forgets_what_a_later_run_deleted(tmp_path):
    """--no-mqtt deletes the bridge's files and user: --uninstall must not look for them any more."""
    journal = tmp_path / "installed.journal"
    root = tmp_path / "root"
    journal.write_text("file\t%s/gone.txt\nuser\tledd-mqtt\nuser\tledd\n" % root)
    proc = bash(CHANGES + 'journal userdel ledd-mqtt "ledd-mqtt:x:998:998:ledd MQTT bridge:/nonexistent:/usr/sbin/nologin"\n'
                'INSTALL_JOURNAL=%s DEPLOY_STATE_DIR=%s\njournal_commit\n' % (journal, tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = journal.read_text().splitlines()
    assert "user\tledd" in lines and "file\t%s/opt/newdir/sub/file" % root in lines
    assert "user\tledd-mqtt" not in lines and not [line for line in lines if "gone.txt" in line]


def test_rollback_creates_a_deleted_user_again_from_its_passwd_line(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "useradd").write_text('#!/bin/sh\necho "useradd $*" >>%s/calls\n' % tmp_path)
    (fake / "useradd").chmod(0o755)
    proc = bash('journal_begin\njournal userdel ledd-mqtt "ledd-mqtt:x:998:997:ledd MQTT bridge:/nonexistent:/usr/sbin/nologin"\n'
                'rollback\n', tmp_path, PATH="%s:%s" % (fake, os.environ["PATH"]))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "calls").read_text() == (
        "useradd --system --uid 998 --gid 997 --comment ledd MQTT bridge --home-dir /nonexistent "
        "--no-create-home --shell /usr/sbin/nologin ledd-mqtt\n")

def test_a_failed_upgrade_from_the_drop_in_version_puts_the_drop_in_back(tmp_path):
    """The migration from the lighttpd drop-in deletes the drop-in and its directory; a failure
    after that must bring both back (the directory's record was made after its deletion, so the
    rollback stopped on it and the drop-in stayed gone)."""
    dropin = tmp_path / "etc/systemd/system/lighttpd.service.d/ledd.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text("[Service]\nEnvironment=LEDD_HTTP_PORT=8081\n")
    dropin.parent.chmod(0o750)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemctl").write_text('#!/bin/sh\necho "systemctl $*" >>%s/calls\n'
                                    'case "$1" in is-active|is-enabled) exit 3 ;; esac\n' % tmp_path)
    (fake / "systemctl").chmod(0o755)
    proc = bash('DESTDIR= LEGACY_DROPIN=%s PORT=8081 TLS=off\njournal_begin\nstep_legacy_migration\n'
                '[ ! -e "%s" ] && echo "migrated"\nrollback\n' % (dropin, dropin.parent), tmp_path,
                PATH="%s:%s" % (fake, os.environ["PATH"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "migrated" in proc.stdout
    assert "rolled back: the system is as it was" in proc.stderr, proc.stdout + proc.stderr
    assert dropin.read_text() == "[Service]\nEnvironment=LEDD_HTTP_PORT=8081\n"
    assert oct(dropin.parent.stat().st_mode & 0o777) == "0o750"


def test_rollback_puts_back_a_directorys_owner_and_the_old_pycs(tmp_path):
    """An upgrade re-owns an existing directory (www-data's /var/lib/ledd-web goes to ledd-web) and
    byte-compiles over the old .pycs: a rollback must give the directory its old mode and owner
    (not the uid of a user it deletes) and leave exactly the old .pycs."""
    root = tmp_path / "root"
    web = root / "var/lib/web"
    web.mkdir(parents=True)
    os.chown(web, 33, 33)
    web.chmod(0o755)
    pkg = root / "opt/ledd/ledd"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "__pycache__/old.cpython-311.pyc").write_bytes(b"old")
    (pkg / "mod.py").write_text("X = 1\n")
    proc = bash('journal_begin\nput_dir /var/lib/web 0750 root root\n'
                'LEDD_HOME_DIR=/opt/ledd TREE_CHANGED=1 PYTHON=python3 compile_python\n'
                'ls "$DESTDIR/opt/ledd/ledd/__pycache__"\nrollback\n', tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mod." in proc.stdout  # compiled, then rolled back
    assert (web.stat().st_uid, web.stat().st_gid, oct(web.stat().st_mode & 0o777)) == (33, 33, "0o755")
    assert sorted(p.name for p in (pkg / "__pycache__").iterdir()) == ["old.cpython-311.pyc"]


def test_what_a_package_created_goes_with_it_unless_it_was_there_or_holds_the_owners_files(tmp_path):
    """lighttpd's postinst creates /var/www/html/index.lighttpd.html, and its purge leaves it and the
    directories: those absent before the run go again after the rollback, the owner's files stay."""
    root = tmp_path / "root"
    proc = bash('journal_begin\nW=$DESTDIR/var/www; O=$DESTDIR/srv\n'
                'mkdir -p "$O" && echo owner >"$O/index.lighttpd.html"\n'
                'journal_leftovers ledd-no-such-package "$W/html/index.lighttpd.html" "$W/html" "$W" '
                '"$O/index.lighttpd.html" "$O"\n'
                'mkdir -p "$W/html" && echo debian >"$W/html/index.lighttpd.html"\n'
                'rollback\n', tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (root / "var/www").exists()
    assert (root / "srv/index.lighttpd.html").read_text() == "owner\n"
    proc = bash('journal_begin\nW=$DESTDIR/var/www\n'
                'journal_leftovers ledd-no-such-package "$W/html/index.lighttpd.html" "$W/html" "$W"\n'
                'mkdir -p "$W/html" && echo debian >"$W/html/index.lighttpd.html" && echo mine >"$W/html/my.html"\n'
                'rollback\n', tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in (root / "var/www/html").iterdir()) == ["my.html"]


def test_a_second_run_waits_for_no_one_it_refuses(tmp_path):
    lock = tmp_path / "deploy.lock"
    holder = subprocess.Popen(["flock", str(lock), "sleep", "30"])
    try:
        wait_for(lambda: subprocess.run(["flock", "-n", str(lock), "true"]).returncode != 0, what="the holder's lock")
        proc = bash("LOCK_FILE=%s\ntake_lock\n" % lock, tmp_path)
        assert proc.returncode == 1
        assert "another deploy.sh is running" in proc.stderr
    finally:
        holder.kill()
        holder.wait()


# --- settings ----------------------------------------------------------------------------------

def stage(dest, *args, stdin=None):
    proc = subprocess.run([str(DEPLOY), "--stage", *args], cwd=ROOT, input=stdin, capture_output=True, text=True,
                          env=dict(os.environ, DESTDIR=str(dest)), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def staged(dest, var):
    return Path(str(dest) + deploy_var(var))


def test_a_rerun_keeps_port_auth_and_hosts_and_says_so(tmp_path, ledd_binary):
    dest = tmp_path / "root"
    stage(dest, "--port", "8081", "--no-auth", "--host", "pi.example", "--host", "ledd.lan")
    proc = stage(dest)
    assert "settings kept from the last run" in proc.stdout
    for kept in ("port=8081", "auth=none", "hosts=pi.example ledd.lan"):
        assert kept in proc.stdout, kept
    assert "nothing changed" in proc.stdout
    env = staged(dest, "WEB_ENV_FILE").read_text()
    assert "LEDD_HTTP_PORT=8081" in env and 'LEDD_ALLOWED_HOSTS="pi.example ledd.lan"' in env
    assert not staged(dest, "HTPASSWD_FILE").exists()  # no new random password
    assert "password: " not in proc.stdout
    # A flag overrides one setting; the others stay.
    stage(dest, "--port", "8082", "--host", "extra.lan")
    text = staged(dest, "DEPLOY_CONF").read_text()
    assert "port=8082\n" in text and "auth=none\n" in text and "hosts=pi.example ledd.lan extra.lan\n" in text
    stage(dest, "--no-hosts")
    assert "hosts=\n" in staged(dest, "DEPLOY_CONF").read_text()


def test_an_install_from_before_deploy_conf_keeps_its_port_and_auth(tmp_path, ledd_binary):
    dest = tmp_path / "root"
    dropin = staged(dest, "LEGACY_DROPIN")
    dropin.parent.mkdir(parents=True)
    dropin.write_text("[Service]\nEnvironment=LEDD_HOME=/opt/ledd LEDD_HTTP_BIND=0.0.0.0 LEDD_HTTP_PORT=8081\n")
    auth = staged(dest, "AUTH_SNIPPET")
    auth.parent.mkdir(parents=True)
    auth.write_text("# ledd: authentication disabled (deploy.sh --no-auth)\n")
    proc = stage(dest)
    assert "taken over from the previous install (port 8081, auth none)" in proc.stdout
    assert "LEDD_HTTP_PORT=8081" in staged(dest, "WEB_ENV_FILE").read_text()


def test_the_password_from_stdin_is_never_echoed_and_is_in_no_file(tmp_path, ledd_binary):
    """The owner gave it: the summary says it was set, and never prints it back (it was echoed,
    into whatever captured deploy.sh's output)."""
    dest = tmp_path / "root"
    proc = stage(dest, "--password-stdin", stdin="correct horse battery\n")
    assert "correct horse battery" not in proc.stdout + proc.stderr
    assert "the new password you gave" in proc.stdout
    for path in dest.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert b"correct horse battery" not in path.read_bytes(), path
    htpasswd = staged(dest, "HTPASSWD_FILE")
    assert subprocess.run(["htpasswd", "-vb", str(htpasswd), "ledd", "correct horse battery"],
                          capture_output=True).returncode == 0


def test_the_summary_never_writes_the_password_into_the_log(tmp_path):
    script = ('exec 3>"%s/terminal"\nDRY_RUN=0 MODE=stage AUTH=basic TLS=off NEW_PASSWORD=S3cret-Value PASSWORD_GENERATED=1\n'
              'open_log\nprint_summary\nsleep 0.3\n' % tmp_path)
    proc = bash(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "deploy.log").read_text()
    assert "S3cret-Value" not in log and "shown on the terminal only" in log
    assert "password: S3cret-Value" in (tmp_path / "terminal").read_text()


# --- preflight -----------------------------------------------------------------------------------

@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_taken_port_stops_the_run_and_names_the_program(tmp_path, busy_port):
    os_release = tmp_path / "os-release"
    os_release.write_text(BOOKWORM)
    proc = run_deploy("--dry-run", "--port", str(busy_port), env=dict(os.environ, LEDD_OS_RELEASE=str(os_release)))
    assert proc.returncode == 1, proc.stdout
    match = re.search(r"port %d is in use by (\S+) \(pid (\d+)" % busy_port, proc.stderr)
    assert match, proc.stderr
    assert int(match.group(2)) == os.getpid()  # this test process holds it
    assert "nothing was changed" in proc.stderr and "--port " in proc.stderr
    assert "would" not in proc.stdout  # refused before any step


# --- HTTPS, served for real by lighttpd from the staged tree -----------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tls_serves_https_with_the_generated_certificate_and_redirects_http(tmp_path, ledd_binary):
    dest = tmp_path / "root"
    https_port, http_port = free_port(), free_port()
    proc = stage(dest, "--tls", "--no-auth", "--port", str(https_port), "--redirect-port", str(http_port))
    fingerprint = re.search(r"SHA-256 fingerprint: ([0-9A-F:]{95})", proc.stdout)
    assert fingerprint, proc.stdout
    cert = staged(dest, "TLS_CERT")
    names = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True, check=True).stdout
    host = socket.gethostname()
    assert "DNS:%s," % host in names and "DNS:%s.local" % host in names and "IP Address:127.0.0.1" in names
    assert oct(staged(dest, "TLS_KEY").stat().st_mode & 0o777) == "0o640"
    # lighttpd with the staged config, on loopback only.
    home = staged(dest, "LEDD_HOME_DIR")
    for snippet in staged(dest, "WEB_CONF_DIR").glob("*.conf"):
        text = snippet.read_text().replace('"/etc/', '"%s/etc/' % dest)
        snippet.write_text(text.replace('"0.0.0.0:', '"127.0.0.1:').replace('"[::]:', '"[::1]:'))
    env = dict(os.environ, LEDD_HOME=str(home), LEDD_HTTP_BIND="127.0.0.1", LEDD_HTTP_PORT=str(https_port),
               LEDD_RUNTIME_DIR=str(tmp_path / "run"), LEDD_WEB_STATE_DIR=str(tmp_path),
               LEDD_AUTH_INCLUDE=str(staged(dest, "SITE_SNIPPET")), LEDD_ALLOWED_HOSTS="")
    server = subprocess.Popen(["lighttpd", "-D", "-f", str(home / "lighttpd.conf")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen("https://127.0.0.1:%d/" % https_port, context=context,
                                            timeout=5) as resp:
                    assert resp.status == 200 and b"<html" in resp.read().lower()
                    break
            except (ConnectionError, urllib.error.URLError) as e:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("no HTTPS: %s\n%s" % (e, server.stdout.read() if server.poll() else ""))
                time.sleep(0.2)
        with urllib.request.urlopen("https://[::1]:%d/" % https_port, context=context, timeout=5) as resp:
            assert resp.status == 200  # IPv6 too, same certificate
        conn = socket.create_connection(("127.0.0.1", http_port), timeout=5)
        conn.sendall(b"GET /api/state?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % http_port)
        head = conn.recv(4096).decode()
        conn.close()
        assert head.startswith("HTTP/1.1 308"), head
        assert "Location: https://127.0.0.1:%d/api/state?x=1\r\n" % https_port in head, head
    finally:
        server.terminate()
        server.wait(10)


def run_on_a_terminal(args, env, answers, timeout=120):
    """Run deploy.sh on a new pseudo-terminal, typing each answer after its prompt; return (status, output)."""
    import pty
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.chdir(ROOT)
        os.execve(str(DEPLOY), [str(DEPLOY), *args], env)
    out, deadline = b"", time.monotonic() + timeout
    answers = list(answers)
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child is gone
            break
        if not chunk:
            break
        out += chunk
        if answers and out.rstrip().endswith((b":", b"]")):
            time.sleep(0.3)  # as a person would: type-ahead before read -s starts is echoed by any tty
            os.write(fd, answers.pop(0).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_set_password_prompts_twice_and_never_echoes(tmp_path, ledd_binary):
    dest = tmp_path / "root"
    env = dict(os.environ, DESTDIR=str(dest))
    status, out = run_on_a_terminal(["--stage", "--set-password"], env, ["typed-secret-1", "typed-secret-1"])
    assert status == 0, out
    assert "New dashboard password for 'ledd':" in out and "Again:" in out
    assert "typed-secret-1" not in out  # not echoed while typed, nor printed back at the end
    htpasswd = staged(dest, "HTPASSWD_FILE")
    assert subprocess.run(["htpasswd", "-vb", str(htpasswd), "ledd", "typed-secret-1"],
                          capture_output=True).returncode == 0
    status, out = run_on_a_terminal(["--stage", "--set-password"], env, ["first-try-1", "other-try-2"])
    assert status == 1 and "the two passwords differ; nothing was changed" in out
    assert subprocess.run(["htpasswd", "-vb", str(htpasswd), "ledd", "typed-secret-1"],
                          capture_output=True).returncode == 0


# --- the build of ledd --------------------------------------------------------------------------

def test_ledd_is_rebuilt_only_when_its_sources_change(tmp_path):
    """A re-run with the same sources installs the same ledd without compiling (slow on a Pi Zero);
    any change of a source builds from scratch again (never mixing objects of two versions)."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "cdaemon", tree / "cdaemon", ignore=shutil.ignore_patterns("build", "ledd", "obj", "fuzz"))
    script = 'ROOT=%s BUILD_DIR=%s/build\nstep_build\necho "built=$LEDD_BUILT"\n' % (tree, tmp_path)

    def build():
        proc = bash(script, tmp_path, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "built=%s/build/ledd" % tmp_path in proc.stdout
        return proc.stdout + proc.stderr

    assert "building ledd" in build()
    binary = tmp_path / "build" / "ledd"
    first = binary.stat().st_mtime_ns
    assert "built from these sources already" in build()
    assert binary.stat().st_mtime_ns == first
    source = tree / "cdaemon" / "src" / "defaults.h"
    source.write_text(source.read_text() + "\n/* changed */\n")
    assert "building ledd" in build()
    assert binary.stat().st_mtime_ns != first


# --- packages -------------------------------------------------------------------------------------

#: apt stubbed: it logs each call; ``install`` fails while $FAKE_APT/fail-install has lines left.
FAKE_APT = r'''
apt_get() {
	echo "apt-get $*" >>"$FAKE_APT/calls"
	if [ "$1" = install ] && [ -s "$FAKE_APT/fail-install" ]; then sed -i 1d "$FAKE_APT/fail-install"; return 1; fi
}
APT_UPDATE_STAMPS=("$FAKE_APT/periodic/update-success-stamp" "$FAKE_APT/update-stamp")
journal_begin
install_missing_packages ledd-test-no-such-package
echo "exit=$?"
'''


def install_packages(tmp_path, failures=0):
    """install_missing_packages of a package that is not installed, with apt stubbed; its apt calls."""
    fake = tmp_path / "apt"
    fake.mkdir(exist_ok=True)
    (fake / "calls").write_text("")
    (fake / "fail-install").write_text("x\n" * failures)
    proc = bash(FAKE_APT, tmp_path, FAKE_APT=str(fake))
    return proc, [line.split()[1] for line in (fake / "calls").read_text().splitlines()]


def test_package_lists_are_updated_once_an_hour_and_again_when_an_install_fails(tmp_path):
    """A re-run within the hour (adding --tls, retrying) skips apt-get update, by apt's stamp; an
    older stamp updates again, and so does a failed install on lists thought fresh."""
    stamp = tmp_path / "apt" / "periodic" / "update-success-stamp"
    proc, calls = install_packages(tmp_path)
    assert calls == ["update", "install"], proc.stderr
    assert "exit=0" in proc.stdout and stamp.exists()  # deploy.sh's update stamps the time

    proc, calls = install_packages(tmp_path)
    assert calls == ["install"], proc.stderr
    assert "updated less than 60 min ago: no apt-get update" in proc.stdout + proc.stderr

    proc, calls = install_packages(tmp_path, failures=1)
    assert calls == ["install", "update", "install"], proc.stderr
    assert "updating them and trying again" in proc.stdout + proc.stderr and "exit=0" in proc.stdout

    old = time.time() - 2 * 3600
    os.utime(stamp, (old, old))
    (tmp_path / "apt" / "update-stamp").touch()  # apt.systemd.daily's stamp counts too
    assert install_packages(tmp_path)[1] == ["install"]
    (tmp_path / "apt" / "update-stamp").unlink()
    assert install_packages(tmp_path)[1] == ["update", "install"]


def test_an_install_that_fails_after_fresh_lists_is_fatal(tmp_path):
    proc, calls = install_packages(tmp_path, failures=2)
    assert calls == ["update", "install"], proc.stderr
    assert proc.returncode != 0 and "exit=" not in proc.stdout
    assert "apt-get install ledd-test-no-such-package failed" in proc.stdout + proc.stderr

"""deploy.sh without a VM: lint, command line, --dry-run and the staging install (tree, modes, owners)."""

import grp
import os
import pwd
import re
import stat
import subprocess
from pathlib import Path

import pytest

from deployutil import DEPLOY, ROOT, deploy_var, run_deploy

SCRIPTS = [DEPLOY, *sorted((ROOT / "deploy.d").glob("*.sh")), ROOT / "tests/deploy/vmimage.sh",
           ROOT / "tests/deploy/guest-agent.sh"]


def test_shellcheck_clean():
    # -x: follow the sourced deploy.d/ parts, so that their use of deploy.sh's globals is checked.
    proc = subprocess.run(["shellcheck", "-x", "--severity=style", *map(str, SCRIPTS)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout


def test_help_documents_modes_and_overrides():
    proc = run_deploy("--help", check=True)
    for word in ("--local", "--uninstall", "--purge", "--dry-run", "--stage", "--no-auth", "--password-stdin",
                 "--set-password", "--tls", "--tls-cert", "--host", "--yes", "sudo env LEDD_",
                 "LEDD_LED_PINS", "LEDD_BUTTON_PINS", "LEDD_CHIP"):
        assert word in proc.stdout, word


def test_every_environment_variable_read_is_documented():
    """Header and --help name every LEDD_*/MQTT_* variable the scripts read, the test hooks as such."""
    sources = [DEPLOY, *sorted((ROOT / "deploy.d").glob("*.sh"))]
    read = set()
    for path in sources:
        read |= set(re.findall(r"\$\{((?:LEDD|MQTT)_[A-Z_]+)(?::-|:\+|\+|-)", path.read_text()))
    assert "LEDD_DEPLOY_FAIL_AT" in read and "MQTT_URL" in read
    header = DEPLOY.read_text().split("set -Eeuo pipefail")[0]
    help_text = run_deploy("--help", check=True).stdout
    for name in sorted(read):
        assert name in header, name
        assert name in help_text or name == "LEDD_PASSWORD", name
    tests_only = help_text.split("For tests only")[1]
    for name in ("LEDD_DEPLOY_FAIL_AT", "LEDD_DEPLOY_PAUSE_AT", "LEDD_OS_RELEASE"):
        assert name in tests_only, name


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option '--bogus'"),
    (["--port", "99999"], "invalid port '99999'"),
    (["--port", "8o"], "invalid port '8o'"),
    (["--port"], "--port needs a number"),
    (["--purge"], "--purge only goes with --uninstall"),
    (["--stage"], "--stage needs DESTDIR"),
    (["--no-auth", "--password-stdin"], "contradict"),
    (["--password", "x"], "--password PW is no longer accepted"),
    (["--password=x"], "Use --set-password (prompt) or --password-stdin"),
    (["--tls-cert", "a.pem"], "--tls-cert and --tls-key go together"),
    (["--host", "bad host"], "invalid --host 'bad host'"),
    (["--backend", "gpio"], "the backend must be chardev or sim"),
])
def test_bad_arguments_are_refused_clearly(args, message):
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    proc = run_deploy(*args, env=env)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "line" not in proc.stderr  # a clear message, not the ERR trap's


# --- staging install ---------------------------------------------------------

def stage(destdir, *args, password=None, **env):
    full_env = dict(os.environ, DESTDIR=str(destdir), **env)
    if password is None:
        return run_deploy("--stage", *args, env=full_env, check=True)
    proc = subprocess.run([str(DEPLOY), "--stage", "--password-stdin", *args], cwd=ROOT, env=full_env,
                          input=password + "\n", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def staged(destdir, var):
    return Path(str(destdir) + deploy_var(var))


def mode_owner(path):
    st = path.lstat()
    return stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


@pytest.fixture
def staged_root(tmp_path, ledd_binary):
    dest = tmp_path / "root"
    proc = stage(dest, password="s3cret-pw")
    return dest, proc


def test_stage_installs_the_tree(staged_root):
    dest, _ = staged_root
    home = staged(dest, "LEDD_HOME_DIR")
    for rel in ("www/index.html", "cgi-bin/api.py", "cgi-bin/events.py", "ledd/client.py", "ledd/web/api.py",
                "bin/ledctl", "lighttpd.conf"):
        assert (home / rel).is_file(), rel
        assert (home / rel).read_bytes() == (ROOT / rel).read_bytes(), rel
    assert list((home / "ledd" / "__pycache__").glob("client.*.pyc")), "ledd/ not byte-compiled"
    assert not list(home.rglob("*.orig")) and not (home / "tests").exists() and not (home / ".git").exists()
    sbin = staged(dest, "LEDD_SBIN")
    assert sbin.read_bytes()[:4] == b"\x7fELF"
    link = staged(dest, "LEDCTL_LINK")
    assert os.readlink(link) == deploy_var("LEDD_HOME_DIR") + "/bin/ledctl"
    assert staged(dest, "UNIT_FILE").read_bytes() == (ROOT / "systemd/ledd.service").read_bytes()
    assert staged(dest, "WEB_UNIT_FILE").read_bytes() == (ROOT / "systemd/ledd-web.service").read_bytes()
    # The whole tree, deploy.sh and its parts included: /opt/ledd/deploy.sh --uninstall needs no checkout.
    assert (home / "deploy.sh").read_bytes() == DEPLOY.read_bytes()
    assert mode_owner(home / "deploy.sh")[0] == 0o755
    for part in (ROOT / "deploy.d").glob("*.sh"):
        assert (home / "deploy.d" / part.name).read_bytes() == part.read_bytes()
    assert not list(ROOT.joinpath("ledd").glob("__pycache__/health*"))  # nothing byte-compiled in the checkout
    assert staged(dest, "CONF_FILE").read_bytes() == (ROOT / "cdaemon/ledd.conf").read_bytes()


def test_stage_modes_and_owners(staged_root):
    dest, _ = staged_root
    home = staged(dest, "LEDD_HOME_DIR")
    assert mode_owner(home / "cgi-bin/api.py") == (0o755, "root", "root")
    assert mode_owner(home / "bin/ledctl") == (0o755, "root", "root")
    assert mode_owner(home / "ledd/client.py") == (0o644, "root", "root")
    assert mode_owner(staged(dest, "LEDD_SBIN")) == (0o755, "root", "root")
    assert mode_owner(staged(dest, "CONF_FILE")) == (0o644, "root", "root")
    assert mode_owner(staged(dest, "UNIT_FILE")) == (0o644, "root", "root")
    web_group = "ledd-web" if _group_exists("ledd-web") else "root"
    assert mode_owner(staged(dest, "HTPASSWD_FILE")) == (0o640, "root", web_group)
    for path in dest.rglob("*"):
        if path.is_symlink():
            continue
        st = path.lstat()
        assert not st.st_mode & stat.S_IWOTH, "world-writable: %s" % path
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID), "setuid/setgid: %s" % path


def _group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def test_stage_auth_is_bcrypt_and_valid_for_lighttpd(staged_root):
    dest, proc = staged_root
    htpasswd = staged(dest, "HTPASSWD_FILE")
    line = htpasswd.read_text().strip()
    user, _, hashed = line.partition(":")
    assert user == "ledd" and hashed.startswith("$2y$"), line
    assert "s3cret-pw" not in htpasswd.read_text()
    ok = subprocess.run(["htpasswd", "-vb", str(htpasswd), "ledd", "s3cret-pw"], capture_output=True)
    bad = subprocess.run(["htpasswd", "-vb", str(htpasswd), "ledd", "wrong"], capture_output=True)
    assert ok.returncode == 0 and bad.returncode != 0
    assert "s3cret-pw" not in proc.stdout + proc.stderr  # given by the owner: never printed back
    snippet = staged(dest, "AUTH_SNIPPET").read_text()
    assert deploy_var("HTPASSWD_FILE") in snippet and '"method" => "basic"' in snippet
    assert_lighttpd_accepts(dest)


def assert_lighttpd_accepts(dest):
    """lighttpd -tt accepts lighttpd.conf with the staged web.env and snippets (paths moved into dest)."""
    home = staged(dest, "LEDD_HOME_DIR")
    env = dict(os.environ)
    for line in staged(dest, "WEB_ENV_FILE").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value.strip('"')
    for snippet in staged(dest, "WEB_CONF_DIR").glob("*.conf"):
        snippet.write_text(snippet.read_text().replace('"/etc/', '"%s/etc/' % dest))
    env.update(LEDD_HOME=str(home), LEDD_HTTP_PORT=str(free_port()), LEDD_HTTP_BIND="127.0.0.1",
               LEDD_WEB_STATE_DIR=str(dest), LEDD_AUTH_INCLUDE=str(dest) + env["LEDD_AUTH_INCLUDE"])
    conf = dest / "lighttpd-test.conf"  # the sockets of site.conf moved to free ports too
    conf.write_text((home / "lighttpd.conf").read_text())
    site = staged(dest, "SITE_SNIPPET")
    text = site.read_text()
    for port in set(re.findall(r'\]:(\d+)"', text)) | set(re.findall(r'0\.0\.0\.0:(\d+)"', text)):
        text = text.replace(":%s\"" % port, ":%d\"" % free_port())
    site.write_text(text)
    tt = subprocess.run(["lighttpd", "-tt", "-f", str(home / "lighttpd.conf")], env=env, capture_output=True,
                        text=True)
    assert tt.returncode == 0 and "WARNING" not in tt.stderr, tt.stderr


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stage_web_environment(staged_root):
    dest, _ = staged_root
    text = staged(dest, "WEB_ENV_FILE").read_text()
    home = deploy_var("LEDD_HOME_DIR")
    for needle in ("LEDD_HOME=" + home, "LEDD_HTTP_PORT=80", "LEDD_HTTP_BIND=0.0.0.0",
                   "LEDD_RUNTIME_DIR=/run/ledd", "LEDD_AUTH_INCLUDE=" + deploy_var("SITE_SNIPPET"),
                   'LEDD_ALLOWED_HOSTS=""'):
        assert needle in text, needle
    site = staged(dest, "SITE_SNIPPET").read_text()
    assert '$SERVER["socket"] == "[::]:80"' in site  # IPv6 next to server.bind 0.0.0.0
    assert 'include "%s"' % deploy_var("AUTH_SNIPPET") in site
    assert not staged(dest, "LEGACY_DROPIN").exists()  # Debian's lighttpd.service is left alone


def test_second_stage_changes_nothing(staged_root):
    dest, _ = staged_root
    before = {p: p.lstat().st_mtime_ns for p in dest.rglob("*")}
    proc = stage(dest)  # no --password: the existing hash is kept
    assert "nothing changed" in proc.stdout, proc.stdout
    assert "s3cret-pw" not in proc.stdout and "password: unchanged" in proc.stdout
    assert "settings kept from the last run" in proc.stdout
    after = {p: p.lstat().st_mtime_ns for p in dest.rglob("*")}
    assert after == before


def test_stage_removes_files_gone_from_the_checkout(staged_root):
    dest, _ = staged_root
    stale = staged(dest, "LEDD_HOME_DIR") / "www" / "old-version.js"
    stale.write_text("// from an older ledd\n")
    proc = stage(dest)
    assert not stale.exists()
    assert "remove %s/www/old-version.js" % deploy_var("LEDD_HOME_DIR") in proc.stdout


def test_stage_existing_config_is_never_overwritten(staged_root):
    dest, _ = staged_root
    conf = staged(dest, "CONF_FILE")
    conf.write_text(conf.read_text() + "\n# edited by the owner\n")
    edited = conf.read_bytes()
    proc = stage(dest, LEDD_LED_PINS="blue:5")
    assert conf.read_bytes() == edited
    assert "exists and is kept" in proc.stderr


def test_stage_pin_overrides_write_a_valid_new_config(tmp_path, ledd_binary):
    dest = tmp_path / "root"
    stage(dest, "--no-auth", LEDD_LED_PINS="blue:5,white:6", LEDD_BUTTON_PINS="", LEDD_CHIP="gpiochip4")
    text = staged(dest, "CONF_FILE").read_text()
    assert "[led blue]\ngpio = 5" in text and "[led white]\ngpio = 6" in text
    assert not re.search(r"^\[(led red|led green|button)", text, re.M)
    assert "chip = gpiochip4" in text
    check = subprocess.run([str(ledd_binary), "--check-config", "-c", str(staged(dest, "CONF_FILE"))],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert not staged(dest, "HTPASSWD_FILE").exists()
    assert "authentication disabled" in staged(dest, "AUTH_SNIPPET").read_text()


@pytest.mark.parametrize("pins", ["red17", "red:x", "bad name:3", "red:1234"])
def test_stage_bad_pins_are_refused(tmp_path, ledd_binary, pins):
    dest = tmp_path / "root"
    proc = run_deploy("--stage", "--no-auth", env=dict(os.environ, DESTDIR=str(dest), LEDD_LED_PINS=pins))
    assert proc.returncode == 1
    assert "LEDD_LED_PINS" in proc.stderr
    assert not staged(dest, "CONF_FILE").exists()


# --- dry run -------------------------------------------------------------------

def test_dry_run_prints_changes_and_makes_none(ledd_binary):
    watched = [deploy_var(v) for v in ("LEDD_HOME_DIR", "LEDD_SBIN", "UNIT_FILE", "WEB_UNIT_FILE",
                                        "WEB_CONF_DIR", "LOG_FILE", "BUILD_DIR")]
    if any(os.path.exists(p) for p in watched):
        pytest.skip("ledd is installed on this machine; the dry run would report no changes")
    existed = {p: os.path.exists(p) for p in watched + [deploy_var("CONF_DIR")]}
    users_before = Path("/etc/passwd").read_bytes(), Path("/etc/group").read_bytes()
    proc = run_deploy("--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for expected in ("would build ledd (make -C cdaemon O=%s) and install %s" % (deploy_var("BUILD_DIR"),
                                                                                 deploy_var("LEDD_SBIN")),
                     "would install %s" % deploy_var("UNIT_FILE"),
                     "would install %s" % deploy_var("WEB_UNIT_FILE"),
                     "would install %s/cgi-bin/api.py" % deploy_var("LEDD_HOME_DIR"),
                     "would link %s" % deploy_var("LEDCTL_LINK"),
                     "would enable ledd.service", "would start ledd.service",
                     "would enable ledd-web.service"):
        assert expected in out, expected
    if not _user_exists("ledd"):
        assert "would create system user ledd" in out
    assert "change(s) would be made" in out
    assert {p: os.path.exists(p) for p in existed} == existed
    assert (Path("/etc/passwd").read_bytes(), Path("/etc/group").read_bytes()) == users_before


def test_dry_run_compiles_nothing(tmp_path):
    """--dry-run promises no change; it compiled ledd (into a temporary directory) all the same."""
    if os.path.exists(deploy_var("BUILD_DIR")):
        pytest.skip("ledd was built by an install on this machine")
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("make", "cc", "gcc"):
        (fake / tool).write_text('#!/bin/sh\necho "%s $*" >>%s/calls\n' % (tool, tmp_path))
        (fake / tool).chmod(0o755)
    proc = run_deploy("--dry-run", "--no-auth", env=dict(os.environ, PATH="%s:%s" % (fake, os.environ["PATH"])))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "would build ledd" in proc.stdout
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    assert not [c for c in calls if not c.startswith("cc --version")], calls


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_stage_generates_a_password_when_none_is_given(tmp_path, ledd_binary):
    dest = tmp_path / "root"
    env = dict(os.environ)
    env.pop("LEDD_PASSWORD", None)
    proc = run_deploy("--stage", env=dict(env, DESTDIR=str(dest)), check=True)
    match = re.search(r"user: ledd  password: ([A-Za-z0-9]+)\s", proc.stdout)
    assert match and len(match.group(1)) == 16, proc.stdout
    htpasswd = str(staged(dest, "HTPASSWD_FILE"))
    assert subprocess.run(["htpasswd", "-vb", htpasswd, "ledd", match.group(1)], capture_output=True).returncode == 0
    assert "error" not in proc.stderr


def test_uninstall_dry_run_on_a_clean_machine_changes_nothing():
    if any(os.path.exists(deploy_var(v)) for v in ("LEDD_HOME_DIR", "UNIT_FILE", "WEB_UNIT_FILE")) \
            or _user_exists("ledd"):
        pytest.skip("ledd is installed on this machine")
    proc = run_deploy("--uninstall", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "dry run: 0 change(s) would be made" in proc.stdout
    assert "would run" not in proc.stdout  # no needless daemon-reload or lighttpd restart


@pytest.mark.parametrize("os_release, message", [
    ('ID=ubuntu\nVERSION_CODENAME=noble\nPRETTY_NAME="Ubuntu 24.04 LTS"\n',
     "unsupported system 'Ubuntu 24.04 LTS': ledd installs on Raspberry Pi OS or Debian"),
    ('ID=raspbian\nVERSION_CODENAME=bullseye\nPRETTY_NAME="Raspbian GNU/Linux 11 (bullseye)"\n',
     "unsupported release 'Raspbian GNU/Linux 11 (bullseye)': ledd needs bookworm (12) or trixie (13)"),
])
def test_unsupported_system_is_refused_clearly(tmp_path, os_release, message):
    path = tmp_path / "os-release"
    path.write_text(os_release)
    proc = run_deploy("--dry-run", env=dict(os.environ, LEDD_OS_RELEASE=str(path)))
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "would" not in proc.stdout  # refused before any step


@pytest.mark.parametrize("os_release", [
    'ID=raspbian\nVERSION_CODENAME=bookworm\nPRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"\n',
    'ID=debian\nVERSION_CODENAME=trixie\nPRETTY_NAME="Debian GNU/Linux 13 (trixie)"\n',
])
def test_supported_systems_are_accepted(tmp_path, os_release, ledd_binary):
    path = tmp_path / "os-release"
    path.write_text(os_release)
    proc = run_deploy("--dry-run", "--no-auth", env=dict(os.environ, LEDD_OS_RELEASE=str(path)))
    assert proc.returncode == 0, proc.stderr
    assert "system: %s" % os_release.split('PRETTY_NAME="')[1].split('"')[0] in proc.stdout


# --- the installed copy: /opt/ledd/deploy.sh is the whole installer -------------------------------

def listing(root):
    """{relative path: (mode, content or link target)} of everything under root."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = path.lstat()
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            out[rel] = (oct(stat.S_IMODE(st.st_mode)), None)
        else:
            out[rel] = (oct(stat.S_IMODE(st.st_mode)), path.read_bytes())
    return out


def test_the_installed_deploy_sh_installs_the_same_tree_again(tmp_path, ledd_binary):
    """sudo /opt/ledd/deploy.sh (a re-run, --set-password, --tls ...) works without the checkout:
    run from the staged copy, it stages exactly the tree the checkout's deploy.sh staged, and run
    over its own root it changes nothing. (It failed at `cd .../cdaemon`: the sources were not
    installed.)"""
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["--no-auth", "--tls", "--port", "8443", "--mqtt", "mqtt://broker.lan"]
    stage(first, *args)
    installed = staged(first, "LEDD_HOME_DIR") / "deploy.sh"
    env = dict(os.environ, DESTDIR=str(second))
    proc = subprocess.run([str(installed), "--stage", *args], cwd="/", env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = listing(first), listing(second)
    for tls in ("cert.pem", "key.pem"):  # a new key each: compared as files present
        rel = str(staged(first, "TLS_DIR").relative_to(first) / tls)
        assert a.pop(rel)[0] == b.pop(rel)[0]
    assert sorted(a) == sorted(b)
    assert [rel for rel in a if a[rel] != b[rel]] == []
    proc = subprocess.run([str(installed), "--stage"], cwd="/", env=dict(os.environ, DESTDIR=str(first)),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "nothing changed" in proc.stdout, proc.stdout + proc.stderr
    # A file of its own tree with another mode (an owner's chmod) is put right, not refused.
    page = staged(first, "LEDD_HOME_DIR") / "www" / "index.html"
    page.chmod(0o600)
    proc = subprocess.run([str(installed), "--stage"], cwd="/", env=dict(os.environ, DESTDIR=str(first)),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert mode_owner(page)[0] == 0o644


def test_stage_writes_what_an_install_writes_beyond_the_web_tree(tmp_path, ledd_binary):
    """The gpiozero entry point and the MQTT bridge's files are part of the staged tree too."""
    dest = tmp_path / "root"
    stage(dest, "--no-auth", "--mqtt", "mqtt://broker.lan")
    site = subprocess.run(["/usr/bin/python3", "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    pth = Path(str(dest) + site) / "ledd_gpiozero.pth"
    assert pth.read_text() == deploy_var("LEDD_HOME_DIR") + "\n"
    assert list(Path(str(dest) + site).glob("ledd_gpiozero-*.dist-info/entry_points.txt"))
    assert "url = mqtt://broker.lan" in staged(dest, "CONF_DIR").joinpath("mqtt.conf").read_text()
    assert staged(dest, "UNIT_DIR").joinpath("ledd-mqtt.service").is_file()

"""deploy.sh's packages: what apt brought is undone exactly, even when apt was interrupted or failed.

apt-get, dpkg and dpkg-query are replaced by a small fake package database (a text file of
"name status version" lines) whose apt-get installs, upgrades, downloads and purges the way the
real one does, as far as deploy.sh can tell. The scripts run the real ``main`` of deploy.sh (its
traps and log) with do_install replaced by one ``install_missing_packages`` call.
"""

import os
import subprocess

import pytest

from deployutil import DEPLOY

FAKE = r'''#!/usr/bin/python3
"""A fake %(name)s over the package database $FAKE_PKG/db."""
import os, signal, sys
from pathlib import Path
fake = Path(os.environ["FAKE_PKG"])
with open(fake / "calls", "a") as f:
    f.write("%(name)s " + " ".join(sys.argv[1:]) + "\n")
db = {l.split()[0]: l.split()[1:] for l in (fake / "db").read_text().splitlines() if l.strip()}
def save():
    (fake / "db").write_text("".join("%%s %%s %%s\n" %% (n, s, v) for n, (s, v) in sorted(db.items())))
%(body)s
'''

DPKG_QUERY = r'''
args = [a for a in sys.argv[1:] if not a.startswith("-")]
fmt = [a for a in sys.argv[1:] if a.startswith("-f=")][0]
if args:
    state = db.get(args[0])
    if not state:
        sys.exit(1)
    print("all" if "Architecture" in fmt else "install ok installed" if state[0] == "ii" else "x", end="")
else:
    for name, (status, version) in db.items():
        print("%s \t%s\t%s" % (status, name + (":amd64" if name.startswith("lib") else ""), version))
'''

DPKG = r'''
if "--print-architecture" in sys.argv:
    print("amd64")
elif "--audit" in sys.argv:
    print("\n".join(n for n, (s, _) in db.items() if s not in ("ii", "rc")))
elif "--configure" in sys.argv:
    for state in db.values():
        if state[0] != "rc":
            state[0] = "ii"
    save()
'''

APT_GET = r'''
opts, words, skip = [], [], False
for a in sys.argv[1:]:
    if skip:
        skip = False
    elif a == "-o":
        skip = True
    elif a.startswith("-"):
        opts.append(a)
    else:
        words.append(a)
command, names = words[0], words[1:]
if command == "install" and "-s" in opts:
    print((fake / "sim").read_text(), end="")
elif command == "install" and any(n.endswith((".deb", "-")) for n in names):
    for n in names:
        if n.endswith("-"):
            db.pop(n[:-1], None)
        else:
            name, version, _ = os.path.basename(n).split("_")
            db[name] = ["ii", version.replace("%3a", ":")]
    save()
elif command == "install":
    db.clear()
    db.update({l.split()[0]: l.split()[1:] for l in (fake / "effect").read_text().splitlines()})
    save()
    print("Unpacking lighttpd-mod-openssl (1.4.69-1+deb12u1) ...", flush=True)
    if (fake / "interrupt").exists():  # Ctrl-C on the terminal: the whole foreground group
        os.killpg(0, signal.SIGINT)
        time.sleep(5)
    if (fake / "fail").exists():
        sys.exit(100)
elif command == "download":
    if (fake / "no-download").exists():
        print("E: Can't find a source to download version", file=sys.stderr)
        sys.exit(100)
    for n in names:
        name, version = n.split("=")
        Path("%s_%s_all.deb" % (name, version.replace(":", "%3a"))).write_text("a deb\n")
elif command == "purge":
    for n in names:
        db.pop(n, None)
    save()
elif command == "remove":  # dpkg keeps the config files, and the version last removed
    for n in names:
        db[n][0] = "rc"
    save()
'''

BEFORE = "libc6 ii 2.36-9\nlighttpd ii 1.4.69-1\nopenssl rc 3.0.11-1\n"
#: apt's plan for lighttpd-mod-openssl under a Pi-hole-like system: a newer lighttpd comes too.
SIM = ("NOTE: This is only a simulation!\n"
       "Inst lighttpd [1.4.69-1] (1.4.69-1+deb12u1 Debian-Security:12/stable-security [amd64])\n"
       "Inst libssl3 (3.0.15-1 Debian:12.8/stable [amd64])\n"
       "Inst lighttpd-mod-openssl (1.4.69-1+deb12u1 Debian-Security:12/stable-security [amd64])\n"
       "Conf lighttpd (1.4.69-1+deb12u1 Debian-Security:12/stable-security [amd64])\n")
#: What the install leaves; an interruption inside dpkg leaves one package unpacked only.
AFTER = ("libc6 ii 2.36-9\nlighttpd ii 1.4.69-1+deb12u1\nopenssl rc 3.0.11-1\nlibssl3 ii 3.0.15-1\n"
         "lighttpd-mod-openssl iU 1.4.69-1+deb12u1\n")


@pytest.fixture
def fake(tmp_path):
    """The fake package tools on PATH, with lighttpd 1.4.69-1 installed."""
    pkg = tmp_path / "pkg"
    (pkg / "bin").mkdir(parents=True)
    for name, body in (("dpkg-query", DPKG_QUERY), ("dpkg", DPKG), ("apt-get", APT_GET)):
        path = pkg / "bin" / name
        path.write_text(FAKE % dict(name=name, body=body))
        path.chmod(0o755)
    (pkg / "db").write_text(BEFORE)
    (pkg / "sim").write_text(SIM)
    (pkg / "effect").write_text(AFTER)
    (pkg / "calls").write_text("")
    (tmp_path / "archives").mkdir()
    return pkg


def deploy(tmp_path, fake):
    script = r'''
. "%(deploy)s"
LOG_FILE=%(tmp)s/deploy.log
APT_ARCHIVES=%(tmp)s/archives
APT_UPDATE_STAMPS=(%(tmp)s/no-such-stamp)
do_install() {
	open_log
	journal_begin
	install_missing_packages lighttpd-mod-openssl
	info "installed"
	cat "$RUN_JOURNAL"
	journal_commit
}
main
''' % dict(deploy=DEPLOY, tmp=tmp_path)
    env = dict(os.environ, FAKE_PKG=str(fake), PATH="%s:%s" % (fake / "bin", os.environ["PATH"]))
    proc = subprocess.Popen(["bash", "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out, (fake / "calls").read_text().splitlines()


def db(fake):
    return (fake / "db").read_text()


def test_ctrl_c_inside_apt_removes_and_downgrades_exactly_what_it_brought(tmp_path, fake):
    """Interrupted inside dpkg: the new packages (one only unpacked) are purged and the upgraded
    lighttpd goes back to its old version, from the .deb kept before the upgrade."""
    (fake / "interrupt").touch()
    status, out, calls = deploy(tmp_path, fake)
    assert status == 130, out
    assert "interrupted by SIGINT" in out and "installed" not in out
    assert db(fake) == BEFORE, out
    assert "apt-get download -q lighttpd=1.4.69-1" in calls  # kept before the upgrade
    assert "dpkg --configure -a" in calls  # the interrupted dpkg run finished first
    restore = [c for c in calls if "--allow-downgrades" in c]
    assert len(restore) == 1 and "lighttpd_1.4.69-1_all.deb" in restore[0], calls
    assert "libssl3-" in restore[0] and "lighttpd-mod-openssl-" in restore[0] and "--purge" in restore[0]
    assert "packages: as before this run" in out and "rolled back: the system is as it was" in out
    assert "rc" in db(fake).split("openssl ")[1]  # a package with only its config files left stays so
    assert "Unpacking lighttpd-mod-openssl" in (tmp_path / "deploy.log").read_text()  # apt's output, interrupted


def test_a_failed_apt_is_undone_too(tmp_path, fake):
    (fake / "fail").touch()
    status, out, calls = deploy(tmp_path, fake)
    assert status == 1, out
    assert "apt-get install lighttpd-mod-openssl failed" in out
    assert db(fake) == BEFORE, out
    assert "rolled back: the system is as it was" in out


def test_the_old_deb_comes_from_apts_cache_when_it_is_there(tmp_path, fake):
    (tmp_path / "archives" / "lighttpd_1.4.69-1_all.deb").write_text("the cached deb\n")
    (fake / "interrupt").touch()
    status, out, calls = deploy(tmp_path, fake)
    assert status == 130 and db(fake) == BEFORE, out
    assert not [c for c in calls if "download" in c]


def test_an_upgrade_that_cannot_be_undone_is_announced_and_reported_not_hidden(tmp_path, fake):
    """No old .deb anywhere (a Pi flashed from an older image): the run says so before apt runs,
    goes on (refusing would stop the most common first install), and its rollback undoes all else
    and reports that upgrade instead of claiming the system is as it was."""
    (fake / "no-download").touch()
    (fake / "interrupt").touch()
    status, out, calls = deploy(tmp_path, fake)
    assert status == 130, out
    assert "apt also upgrades or removes lighttpd 1.4.69-1, and no .deb of that version is at hand" in out
    assert out.index("no .deb of that version") < out.index("interrupted by SIGINT")
    assert db(fake) == BEFORE.replace("lighttpd ii 1.4.69-1", "lighttpd ii 1.4.69-1+deb12u1"), out
    assert "no .deb kept to put back: lighttpd 1.4.69-1" in out
    assert "rollback incomplete" in out and "rolled back: the system is as it was" not in out


def test_a_rollback_that_cannot_put_a_package_back_says_so(tmp_path, fake):
    """Something else changed a package meanwhile (no .deb kept for it): the rollback reports it
    and does not claim the system is as it was."""
    (fake / "effect").write_text(AFTER.replace("libc6 ii 2.36-9", "libc6 ii 2.36-9+deb12u9"))
    (fake / "interrupt").touch()
    status, out, calls = deploy(tmp_path, fake)
    assert status == 130, out
    assert "no .deb kept to put back: libc6 2.36-9" in out
    assert "packages not as before this run" in out and "before: libc6 ii 2.36-9" in out
    assert "rolled back: the system is as it was" not in out and "rollback incomplete" in out


def test_a_successful_install_journals_the_new_packages_not_the_upgrade(tmp_path, fake):
    (fake / "effect").write_text(AFTER.replace(" iU ", " ii "))
    status, out, calls = deploy(tmp_path, fake)
    assert status == 0, out
    records = [l for l in out.splitlines() if l.startswith("package\t")]
    assert records == ["package\tlibssl3", "package\tlighttpd-mod-openssl"], out


def test_package_names_are_apts_whatever_dpkg_query_calls_them(tmp_path, fake):
    """dpkg-query says libc6:amd64 for a Multi-Arch: same package, apt's simulation says libc6:
    the states drop the native suffix (and keep a foreign one), so the kept .deb is found."""
    (fake / "db").write_text(BEFORE + "libfoo:armhf ii 1.0\n")
    script = '. "%s"\npackage_states\n' % DEPLOY
    env = dict(os.environ, FAKE_PKG=str(fake), PATH="%s:%s" % (fake / "bin", os.environ["PATH"]))
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["libc6 ii 2.36-9", "libfoo:armhf ii 1.0", "lighttpd ii 1.4.69-1",
                                "openssl rc 3.0.11-1"]


def test_a_package_whose_config_files_were_left_is_removed_not_purged(tmp_path, fake):
    """openssl had been removed with its config files kept (rc); the run installed it again. The
    rollback removes it, keeping those files (a purge would delete the owner's files)."""
    (fake / "effect").write_text(AFTER.replace("openssl rc 3.0.11-1", "openssl ii 3.0.15-1"))
    (fake / "interrupt").touch()
    status, out, calls = deploy(tmp_path, fake)
    assert status == 130, out
    assert "apt-get -o DPkg::Lock::Timeout=600 -q remove -y openssl" in calls, calls
    assert not [c for c in calls if "openssl-" in c.split() or ("purge" in c.split() and "openssl" in c.split())], calls
    assert "openssl rc 3.0.15-1" in db(fake)
    assert "rolled back: the system is as it was" in out, out

"""deploy.sh interrupted and failing undos, without a VM.

A terminal's Ctrl-C signals the whole process group, the log's ``tee`` included; SIGTERM to the
group, SIGHUP and a closed terminal do the same. Each must roll the run back, with the log
recording it. The rollback itself must finish every undo it can, report each one that failed, and
say "rolled back" only when all succeeded.

The scripts source deploy.sh (it only defines when sourced), replace do_install by a small
transaction in a scratch root (DESTDIR), and run the real ``main``: its traps, its log and its
temporary directory are the ones under test. Nothing here touches the machine's /etc or /opt.
"""

import os
import pty
import signal
import subprocess
import time

import pytest

from deployutil import DEPLOY, fake_commands

#: A transaction in $DESTDIR: a file replaced, a new file in new directories, a file removed.
CHANGES = r'''
echo old >"$DESTDIR/kept.conf"
echo doomed >"$DESTDIR/gone.txt"
echo new >"$TMP_DIR/src"
journal_begin
put_file "$TMP_DIR/src" /kept.conf 0600 root root
put_file "$TMP_DIR/src" /opt/newdir/sub/file 0644 root root
remove_path /gone.txt
'''


def script(tmp_path, body):
    """deploy.sh's main, with do_install replaced by BODY run inside the log and a transaction."""
    return r'''
. "%(deploy)s"
LOG_FILE=%(tmp)s/deploy.log
check_root() { :; }
do_install() {
	DESTDIR=%(tmp)s/root
	mkdir -p "$DESTDIR"
	open_log
	%(body)s
}
main
''' % dict(deploy=DEPLOY, tmp=tmp_path, body=body)


#: Paused midway, as LEDD_DEPLOY_PAUSE_AT does (a background sleep the script waits for).
PAUSED = CHANGES + r'''
info "changes made"
touch "$TMPDIR/../ready"
sleep 3600 &
PAUSE_PID=$!
wait "$PAUSE_PID"
echo "not reached"
'''


def assert_as_before(tmp_path):
    root = tmp_path / "root"
    assert (root / "kept.conf").read_text() == "old\n"
    assert (root / "gone.txt").read_text() == "doomed\n"
    assert not (root / "opt").exists()
    assert os.listdir(tmp_path / "tmp") == []  # the run's temporary directory is gone too


def start_paused(tmp_path):
    """deploy.sh in its own process group (as a terminal's foreground job), paused midway."""
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    proc = subprocess.Popen(["bash", "-c", script(tmp_path, PAUSED)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_ready(tmp_path, proc)
    return proc


def wait_ready(tmp_path, proc):
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "deploy.sh never reached the pause"
        time.sleep(0.05)
    assert (tmp_path / "root" / "kept.conf").read_text() == "new\n"  # the change was made


@pytest.mark.parametrize("signame, status", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_signal_to_the_whole_process_group_rolls_back(tmp_path, signame, status):
    """Ctrl-C (SIGINT), `kill -TERM -- -PGID` and a hangup reach the log's tee as well as bash."""
    proc = start_paused(tmp_path)
    os.killpg(proc.pid, getattr(signal, signame))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == status, (out, err)
    assert "interrupted by %s" % signame in out and "rolled back: the system is as it was" in out, (out, err)
    assert "not reached" not in out
    assert_as_before(tmp_path)
    log = (tmp_path / "deploy.log").read_text()
    assert "changes made" in log and "interrupted by %s" % signame in log and "undone: file" in log
    assert "rolled back: the system is as it was" in log


#: A child that catches Ctrl-C and then exits normally, as apt-get does while dpkg runs (it waits for
#: dpkg, then exits 100). Bash must still run its own INT trap once the child is gone, before the
#: child's status counts: not go on, retry the install, or report a plain failure.
CATCHING_CHILD = 'trap \'kill $!; exit %d\' INT; sleep 3600 & touch %s/ready; wait'

#: Where deploy.sh runs such a child: in apt_get (in an if), and bare (the ERR trap's case).
CATCHING_CALLS = {
    "apt_get": 'if apt_get install -y x; then info "apt ok"; else warn "apt failed: trying again"; fi\n',
    "bare": 'apt-get install -y x\n',
}


@pytest.mark.parametrize("call, status", [("apt_get", 100), ("apt_get", 0), ("bare", 100)])
def test_ctrl_c_that_a_child_caught_still_rolls_back(tmp_path, call, status):
    (tmp_path / "tmp").mkdir()
    path = fake_commands(tmp_path, apt_get=CATCHING_CHILD % (status, tmp_path))
    body = CHANGES + 'info "changes made"\n' + CATCHING_CALLS[call] + 'echo "not reached"\n'
    proc = subprocess.Popen(["bash", "-c", script(tmp_path, body)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, TMPDIR=str(tmp_path / "tmp"), PATH=path), text=True,
                            start_new_session=True)
    wait_ready(tmp_path, proc)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "interrupted by SIGINT" in out and "rolled back: the system is as it was" in out, (out, err)
    assert "not reached" not in out and "trying again" not in out and "failed at" not in out, out
    assert_as_before(tmp_path)


def test_a_closed_terminal_rolls_back(tmp_path):
    """The terminal goes away (an ssh session dropped): SIGHUP, and every later write to it fails."""
    (tmp_path / "tmp").mkdir()
    pid, master = pty.fork()
    if pid == 0:  # the child: a session whose controlling terminal is the pty
        os.environ["TMPDIR"] = str(tmp_path / "tmp")
        os.execvp("bash", ["bash", "-c", script(tmp_path, PAUSED)])
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "ready").exists():
            assert time.monotonic() < deadline, "deploy.sh never reached the pause"
            time.sleep(0.05)
        os.read(master, 65536)
    finally:
        os.close(master)  # hang up
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 129
    assert_as_before(tmp_path)
    log = (tmp_path / "deploy.log").read_text()
    assert "interrupted by SIGHUP" in log and "rolled back: the system is as it was" in log, log


# --- a rollback that meets a failing undo --------------------------------------------------------

def run_script(tmp_path, body, **env):
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run(["bash", "-c", script(tmp_path, body)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, TMPDIR=str(tmp_path / "tmp"), **env))


def test_one_failing_undo_does_not_stop_the_others(tmp_path):
    """An undo that fails (here: systemctl cannot disable a unit) is reported; every other undo,
    the daemon-reload and the restarts still run, and the run does not claim to be rolled back."""
    path = fake_commands(tmp_path, systemctl='case "$1" in disable) exit 1 ;; esac')
    body = CHANGES + r'''
put_file "$TMP_DIR/src" /etc/systemd/system/x.service 0644 root root
journal restart lighttpd.service
journal enable ledd.service
journal start ledd.service
UNIT_DIR=$DESTDIR/etc/systemd/system
fatal "the health check failed"
'''
    proc = run_script(tmp_path, body, PATH=path)
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout + proc.stderr
    assert "could not undo: enable ledd.service" in out
    assert "rolled back: the system is as it was" not in out
    assert "rollback incomplete: 1 change(s) could not be undone" in out
    assert_as_before(tmp_path)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["systemctl stop ledd.service", "systemctl disable --quiet ledd.service",
                     "systemctl daemon-reload", "systemctl show -p LoadState --value lighttpd.service",
                     "systemctl restart lighttpd.service"], calls


def test_a_failing_undo_under_the_err_trap_of_main_does_not_abort_the_rollback(tmp_path):
    """The ERR trap of main stays set in an unexpected failure; a failing cp inside the rollback
    must not end it (it did: the remaining undos were skipped)."""
    body = CHANGES + r'''
journal file "$DESTDIR/elsewhere.conf" "$TMP_DIR/no-such-backup"
false
'''
    proc = run_script(tmp_path, body)
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout + proc.stderr
    assert "could not undo: file %s/root/elsewhere.conf" % tmp_path in out
    assert "rolled back: the system is as it was" not in out
    assert_as_before(tmp_path)


def test_an_unexpected_error_names_the_file_of_deploy_d_it_happened_in(tmp_path):
    body = 'journal_begin\nput_file "$TMP_DIR/no-such-source" /x.conf 0644 root root\n'
    proc = run_script(tmp_path, body)
    assert proc.returncode == 1
    line = [l for l in proc.stdout.splitlines() if "failed at" in l]
    assert line and line[0].startswith("[deploy] error: failed at deploy.d/files.sh line "), proc.stdout
    number = int(line[0].split(" line ")[1].split()[0])
    source = (DEPLOY.parent / "deploy.d" / "files.sh").read_text().splitlines()
    assert source[number - 1].strip().startswith("install "), source[number - 1]


def test_a_rolled_back_fresh_install_does_not_restart_the_lighttpd_it_purged(tmp_path):
    """A first install that brought lighttpd stopped Debian's instance; once the rollback has
    purged the package, there is no lighttpd.service to start again (it said 'Unit not found')."""
    path = fake_commands(tmp_path, systemctl='[ "$1" = show ] && echo not-found; exit 0')
    proc = run_script(tmp_path, CHANGES + 'journal stop lighttpd.service\nfatal "the health check failed"\n',
                      PATH=path)
    assert proc.returncode == 1
    assert "lighttpd.service: its package is gone again, nothing to restart" in proc.stdout
    assert "rolled back: the system is as it was" in proc.stdout
    assert "systemctl restart lighttpd.service" not in (tmp_path / "calls").read_text()

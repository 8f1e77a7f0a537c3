"""The container Pi's shared parts for tests/deploy/test_ct_*.py: one boot per scenario, deploy.sh as
the Pi's login user, the system listing, deploy.sh interrupted the way a terminal's Ctrl-C does it,
the dashboard through the container's own network, and steps that fail with the journal attached.

Every scenario boots its own container on a throwaway overlay of the cached root of its Debian
release (container.py), so the scenarios are independent and can run side by side.
"""

import difflib
import json
import os
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest

from container import ADMIN, SHARE, SUITES, Container, ensure_image, ensure_layer

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_IGNORE = (".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", "obj", "build", "run", "*.o",
                   "board.json")
DEPLOY_TIMEOUT_S = 600
#: A container has no GPIO: ledd runs on its simulated pins. The kernel side (gpio-sim, udev, the chardev
#: backend) is the virtual Pi's (test_vm.py).
BACKEND_ARGS = ("--backend", "sim")
#: deploy.sh's install steps (INSTALL_STEPS in deploy.sh), in order.
INSTALL_STEPS = ("packages", "build", "users", "files", "config", "auth", "tls", "web_config", "legacy_migration",
                 "python_entry_points", "validate", "services", "health")
#: deploy.sh's own packages (APT_PACKAGES and TLS_PACKAGES in deploy.sh).
DEPLOY_PACKAGES = "lighttpd gcc make libc6-dev python3 python3-gpiozero apache2-utils lighttpd-mod-openssl openssl"
#: The "build tools" layer: a Pi whose owner has deploy.sh's packages already (Debian's lighttpd came with
#: them, and the owner switched it off). For the scenarios about something else than a first apt run:
#: each saves an apt install and purge of ~50 packages.
BUILD_TOOLS_LAYER = ("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends %s "
                     ">/tmp/apt.log 2>&1 || { tail -n 30 /tmp/apt.log; exit 1; }; rm /tmp/apt.log; "
                     "systemctl disable --now --quiet lighttpd" % DEPLOY_PACKAGES)
BG_LOG = "/run/ledd-ct-deploy.log"
BG_PID = "/run/ledd-ct-deploy.pid"

#: What "the system" is for the before/after comparisons: every path (type, mode, owner) under /etc,
#: /opt, /usr/local, /var, /srv, /home, /root and /boot, the enabled units, the installed packages with
#: their versions, users, and groups with their members (as a set). The volatile paths below are left out: what a running Debian changes
#: by itself or what apt and dpkg keep as history (their logs, caches and backups), never state that
#: an install leaves behind. docs/testing.md lists them too.
VOLATILE_PATHS = (
    "/etc/ld.so.cache",                     # rebuilt by ldconfig on every package change
    "/etc/machine-id", "/etc/.pwd.lock",
    "/var/log",                             # journals, dpkg.log, apt's history (deploy.sh's own log: see purge)
    "/var/cache/apt", "/var/cache/debconf", "/var/cache/ldconfig", "/var/cache/man",
    "/var/lib/apt/lists", "/var/lib/apt/periodic",
    "/var/lib/apt/extended_states",         # apt's auto-installed marks: made at its first install, kept
    "/var/lib/apt/daily_lock",              # apt.systemd.daily's lock (its timers are masked in the tests)
    "/var/lib/dpkg/triggers", "/var/lib/dpkg/lock", "/var/lib/dpkg/lock-frontend",
    "/var/lib/systemd/random-seed", "/var/lib/systemd/timers", "/var/lib/systemd/catalog",
    "/var/lib/systemd/coredump", "/var/lib/systemd/linger",
    "/var/tmp", "/var/backups", "/var/lib/sudo",
    "/var/cache/ledd/build/*",              # ledd's build cache: objects and a stamp of their sources; the
                                            # directories themselves are listed (purge removes them)
)
VOLATILE_NAMES = ("*-old", "*.dpkg-old", "*-")   # dpkg's and shadow's backup copies (status-old, passwd-)
LISTED_ROOTS = "/etc /opt /usr/local /var /srv /home /root /boot"


def listing_script():
    prune = " -o ".join("-path %s" % shlex.quote(p) for p in VOLATILE_PATHS)
    names = " ".join("! -name %s" % shlex.quote(n) for n in VOLATILE_NAMES)
    return ("find %s -xdev \\( %s \\) -prune -o %s -printf '%%y %%m %%u:%%g %%p\\n' | sort -k4; echo ---; "
            "find /etc/systemd/system -mindepth 2 -type l -path '*.wants/*' -printf '%%f\\n' | sort -u; echo ---; "
            "dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\\n' | awk '$1 == \"ii\"' | sort; "
            "echo ---; cut -d: -f1,3,4,6,7 /etc/passwd | sort; "
            # a group's members as a set: a rollback that re-adds one appends it
            "awk -F: '{n = split($4, m, \",\"); for (i = 1; i < n; i++) for (j = i + 1; j <= n; j++) "
            "if (m[j] < m[i]) {t = m[i]; m[i] = m[j]; m[j] = t}; s = \"\"; "
            "for (i = 1; i <= n; i++) s = s (i > 1 ? \",\" : \"\") m[i]; print $1 \":\" $3 \":\" s}' /etc/group | sort"
            % (LISTED_ROOTS, prune, names))


def cache_dir():
    return Path(os.environ.get("LEDD_CACHE_DIR") or Path.home() / ".cache" / "ledd-tests")


class Pi:
    """A booted container Pi plus what the scenario learns on the way (password, port, scheme)."""

    def __init__(self, ct, suite):
        self.ct = ct
        self.suite = suite
        self.password = None
        self.port = 80
        self.scheme = "http"

    def sh(self, script, timeout=120):
        return self.ct.check(script, timeout)

    def run(self, script, timeout=120):
        return self.ct.run(script, timeout)

    def deploy(self, *args, env=(), check=True, stdin=None, script="./deploy.sh", cwd=SHARE, sudo=True):
        """``sudo [env ...] ./deploy.sh ARGS`` as the login user (``stdin``: a line on its stdin);
        returns the output, or (status, output) with check=False."""
        feed = "printf '%%s\\n' %s | " % shlex.quote(stdin) if stdin is not None else ""
        who = "runuser -u %s -- sudo " % ADMIN if sudo else ""
        envs = ("env " + " ".join(shlex.quote(e) for e in env) + " ") if env else ""
        rc, out = self.ct.run("cd %s && %s%s%s%s %s" % (cwd, feed, who, envs, script,
                                                        " ".join(shlex.quote(a) for a in args)),
                              timeout=DEPLOY_TIMEOUT_S)
        if check:
            assert rc == 0, "deploy.sh %s exited %d; its last lines:\n%s" % (
                " ".join(args), rc, "\n".join(out.splitlines()[-60:]))
            return out
        return rc, out

    def install(self, *args, env=(), stdin=None):
        """A first install with the simulated pins; remembers the printed password."""
        out = self.deploy(*(BACKEND_ARGS + args), env=env, stdin=stdin)
        match = re.search(r"user: ledd  password: (\S+)", out)
        if match:
            self.password = match.group(1)
        return out

    def listing(self):
        return self.sh(listing_script(), timeout=120)

    def url(self, path, port=None, scheme=None):
        scheme = scheme or self.scheme
        port = port or self.port
        default = {"http": 80, "https": 443}[scheme]
        return "%s://127.0.0.1%s%s" % (scheme, "" if port == default else ":%d" % port, path)

    def api(self, method, path, body=None, auth=True, port=None, scheme=None, extra=()):
        """(status, parsed JSON or text) of METHOD PATH on the Pi's dashboard, from inside its network."""
        args = ["-X", method] + list(extra)
        if auth and self.password:
            args += ["-u", "ledd:%s" % self.password]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        if (scheme or self.scheme) == "https":
            args += ["-k"]
        status, text = self.ct.http(self.url(path, port, scheme), *args)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def get(self, path, port=80, scheme="http", extra=()):
        """(status, body) of a plain GET, by default on :80 (whoever serves it: the owner's site, ours)."""
        return self.ct.http(self.url(path, port, scheme), *extra)

    def main_pid(self, unit):
        return int(self.sh("systemctl show -p MainPID --value %s" % unit).strip())

    def diagnostics(self):
        parts = ["--- journal ---\n" + self.ct.journal(),
                 "--- deploy log ---\n" + self.ct.run("tail -n 80 /var/log/ledd-deploy.log 2>&1", log=False)[1],
                 "(every command with its output, the journal and the deploy log are kept in "
                 "$LEDD_CACHE_DIR/ct-last-run-*/)"]
        return "\n".join(parts)


def snapshot(dest):
    """A copy of the checkout: edits made while a scenario runs cannot reach it. ``$LEDD_CT_SOURCE``
    names another tree to copy instead (e.g. a worktree at an older commit, to see a scenario fail
    before a fix)."""
    shutil.copytree(os.environ.get("LEDD_CT_SOURCE") or ROOT, dest, symlinks=True, ignore=shutil.ignore_patterns(*SNAPSHOT_IGNORE))
    return dest


def boot(tmp_path_factory, name, suite, network="private", before_boot=None, build_tools=False):
    """Boot a container Pi of ``suite`` for one scenario (a generator for a fixture); ``before_boot``
    is called with the checkout snapshot's path (bound read-only at SHARE) before the boot;
    ``build_tools``: on the BUILD_TOOLS_LAYER."""
    cache = cache_dir()
    lower = ensure_layer(cache, suite, "build-tools", BUILD_TOOLS_LAYER) if build_tools else ensure_image(cache, suite)
    workdir = tmp_path_factory.mktemp("ct-%s-%s" % (name, suite))
    src = snapshot(workdir / "src")
    if before_boot:
        before_boot(src)
    ct = Container(lower, workdir, src, name="ledd-%s" % suite[:4], network=network)
    started = time.monotonic()
    try:
        ct.start()
        # The login user has used sudo once before (its lecture and timestamp files exist already).
        ct.check("runuser -u %s -- sudo true" % ADMIN)
        yield Pi(ct, suite)
    finally:
        # Each part even when the one before fails or a Ctrl-C ends the run: never a container or an
        # overlay mount left behind.
        try:
            ct._log("scenario %s on %s: %.1f s\n" % (name, suite, time.monotonic() - started))
            ct.keep_logs(cache / ("ct-last-run-%s-%s" % (name, suite)))
        finally:
            try:
                ct.stop()
            finally:
                ct.remove()
                shutil.rmtree(src, ignore_errors=True)


def suites():
    return pytest.mark.parametrize("suite", SUITES)


def step(pi, what, fn):
    """Run one scenario step; on failure, fail with the container's journal and deploy log attached."""
    try:
        return fn()
    except Exception as e:
        pytest.fail("[%s] %s: %s\n\n%s" % (pi.suite, what, e, pi.diagnostics()), pytrace=True)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # e.g. connection refused during a restart
            last = e
        time.sleep(0.2)
    raise AssertionError("%s: not within %ss (last: %r)" % (what, timeout, last))


def assert_same_listing(before, after, what):
    if before != after:
        diff = "\n".join(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0))
        raise AssertionError("%s: the system differs:\n%s" % (what, diff))


def set_password_on_a_terminal(pi, password, script="/opt/ledd/deploy.sh"):
    """``sudo SCRIPT --set-password`` on a terminal (a pty of util-linux's `script`), the password typed
    at each prompt once the prompt is there (so the terminal's echo is off); returns what the
    terminal showed and deploy.sh's exit status."""
    shell = r"""
        rm -f /run/ledd-ct-tty.in /run/ledd-ct-tty.out && mkfifo /run/ledd-ct-tty.in
        cd / && script -qfec "runuser -u %(admin)s -- sudo %(script)s --set-password" /run/ledd-ct-tty.out \
            </run/ledd-ct-tty.in >/dev/null 2>&1 &
        pid=$!
        exec 7>/run/ledd-ct-tty.in
        for prompt in 'New dashboard password' 'Again'; do
            timeout 120 bash -c "until grep -q '$prompt' /run/ledd-ct-tty.out 2>/dev/null; do
                kill -0 $pid 2>/dev/null || exit 1; sleep 0.05; done" || break
            printf '%%s\n' %(password)s >&7
        done
        exec 7>&-
        wait $pid; status=$?
        cat /run/ledd-ct-tty.out; rm -f /run/ledd-ct-tty.in /run/ledd-ct-tty.out
        echo "[exit status $status]"
    """ % {"admin": ADMIN, "script": script, "password": shlex.quote(password)}
    out = pi.sh(shell, timeout=DEPLOY_TIMEOUT_S)
    status = int(re.search(r"\[exit status (\d+)\]\s*$", out).group(1))
    return status, out


# -- deploy.sh interrupted as a terminal's Ctrl-C does it ------------------------------------------------
def start_background(pi, args, env=(), cwd=SHARE):
    """Start ``sudo ./deploy.sh ARGS`` in a session and process group of its own (as a terminal's
    foreground job is), SIGINT at its default; returns its process group id (= its pid)."""
    envs = " ".join(shlex.quote(e) for e in env)
    pi.sh("rm -f %s %s; cd %s && (setsid env --default-signal=INT %s ./deploy.sh %s >%s 2>&1 </dev/null & "
          "echo $! >%s)" % (BG_LOG, BG_PID, cwd, envs, " ".join(shlex.quote(a) for a in args), BG_LOG, BG_PID))
    return int(pi.sh("cat %s" % BG_PID).strip())


def wait_in_container(pi, condition, pgid, timeout=DEPLOY_TIMEOUT_S, then=None):
    """Wait inside the container (one command, a tight loop) until CONDITION (a shell test) holds or
    deploy.sh has exited; returns whether CONDITION held. THEN, a shell command, runs the moment
    CONDITION holds, in the same command: starting another command for it took, on a loaded
    machine, longer than the rest of an install (a Ctrl-C meant for the copying came after "done")."""
    quoted = lambda script: script.replace("'", "'\\''")  # noqa: E731 -- inside bash -c '...'
    rc, _ = pi.run("timeout %d bash -c 'until %s; do kill -0 %d 2>/dev/null || exit 3; sleep 0.02; done%s'"
                   % (timeout, quoted(condition), pgid, "; " + quoted(then) if then else ""), timeout=timeout + 30)
    return rc == 0


#: Wait (in the container) until no process of a group is left: deploy.sh and its log's tee, which
#: writes the last lines after deploy.sh has exited (reading the log at deploy.sh's exit once
#: missed the rollback's last lines, "rolled back" among them).
WAIT_GROUP_GONE = "while kill -0 -- -%d 2>/dev/null; do sleep 0.1; done"


def signal_group(pi, pgid, sig="INT", timeout=300):
    """SIGNAL to the whole process group (a terminal's Ctrl-C; None: it was sent already), then wait
    until deploy.sh and its tee have exited; returns its output."""
    kill = "kill -%s -- -%d; " % (sig, pgid) if sig else ""
    rc, out = pi.run("%stimeout %d bash -c '%s'" % (kill, timeout, WAIT_GROUP_GONE % pgid), timeout=timeout + 30)
    assert rc == 0, "deploy.sh still runs %s s after SIG%s to its process group:\n%s" % (timeout, sig, out)
    return pi.sh("cat %s" % BG_LOG)


def interrupt_at_step(pi, args, step_name, sig="INT"):
    """deploy.sh paused before STEP_NAME, then SIG to its process group; returns its output."""
    pgid = start_background(pi, args, env=("LEDD_DEPLOY_PAUSE_AT=%s" % step_name,))
    marker = "test hook: pausing before step %s" % step_name
    reached = wait_in_container(pi, "grep -qF %s %s" % (shlex.quote(marker), BG_LOG), pgid)
    assert reached, "deploy.sh did not reach step %s:\n%s" % (step_name, pi.sh("cat %s" % BG_LOG))
    return signal_group(pi, pgid, sig)


def assert_rolled_back(out, sig="INT"):
    assert "interrupted by SIG%s" % sig in out, out
    assert "rolled back" in out, out

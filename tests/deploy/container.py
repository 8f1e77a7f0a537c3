"""The container Pi: a Debian bookworm or trixie root booted with systemd-nspawn, for the operator
scenarios of tests/deploy/test_ct_*.py (fresh install, interruptions, port conflicts, upgrades).

The pristine root (debootstrap + systemd + Raspberry Pi OS's gpio group, rule, config.txt and
login user, and deploy.sh's packages in apt's cache) is built once by ``ctimage.sh`` and cached
under ``$LEDD_CACHE_DIR``, keyed by a hash of everything that goes into it. Each scenario boots
a throwaway overlayfs on top of it (the cached root is the read-only lower layer), so scenarios
run side by side and the cache is never modified.

How a scenario talks to its container:
  * ``systemd-nspawn -D MERGED -b --register=no --keep-unit --console=pipe --private-network``
    boots systemd as the container's PID 1 in well under a second; its console goes to
    ``console.log``. The private network namespace has only a loopback: scenarios bind :80 and
    :443 there without touching the host's ports, and apt installs from the prefetched packages.
  * ``nsenter -t INIT -a`` runs a bash script inside (``Container.run``), as root.
  * ``nsenter -t INIT -n curl`` is the host's curl in the container's network namespace
    (``Container.http``): the container has no curl, as a fresh Pi has none.
  * the checkout snapshot is bound read-only at /mnt/src (``--bind-ro``).

``Container.restart`` stands for a reboot: the container's systemd powers off, nspawn exits, and
the same overlay boots again. Everything the harness starts is stopped by its PID; on a failure
the journal, the console and every command's output are kept under
``$LEDD_CACHE_DIR/ct-last-run-NAME/``.
"""

import fcntl
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

from vm import host_mirror

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CTIMAGE = HERE / "ctimage.sh"

SUITES = ("bookworm", "trixie")
#: What deploy.sh installs on plain Debian (with --tls and --mqtt), what the drop-in version installed,
#: and what the owners of the scenarios run (lighttpd's own site, nginx, a mosquitto broker):
#: downloaded, not installed.
PREFETCH_PACKAGES = ["lighttpd", "gcc", "make", "libc6-dev", "python3", "python3-gpiozero", "python3-requests",
                     "apache2-utils", "lighttpd-mod-openssl", "openssl", "python3-paho-mqtt", "nginx",
                     "mosquitto", "mosquitto-clients"]
ADMIN = "owner"            # the image's login user with sudo (ctimage.sh), not `pi`
SHARE = "/mnt/src"
IMAGE_BUILD_TIMEOUT_S = 1800
BOOT_TIMEOUT_S = 60
APT_STAMP = "/var/lib/apt/periodic/update-success-stamp"
QUIET_TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer")
#: Where each container gets a cgroup of its own. With --keep-unit, nspawn leaves the container in
#: its caller's cgroup (in a "payload" child), and the container's systemd takes that as its root: two
#: containers started from the same cgroup share (and remove) each other's system.slice/*, and a
#: systemd >= 256 then fails a unit with "Failed to spawn executor" once the other one has removed
#: its cgroup. Every hierarchy a container's systemd writes needs its own cgroup: the cgroup2 one
#: (all of /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid machine) and cgroup v1's
#: name=systemd one.
CGROUP_HIERARCHIES = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))


def is_cgroup_hierarchy(path):
    """Whether ``path`` is the root of a mounted cgroup hierarchy (a hybrid machine's /sys/fs/cgroup
    is a tmpfs holding them)."""
    return os.path.ismount(path) and (path / "cgroup.procs").exists()


def image_key(suite, mirror):
    digest = hashlib.sha256()
    for part in (CTIMAGE.read_bytes(), suite.encode(), mirror.encode(), " ".join(PREFETCH_PACKAGES).encode()):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def ensure_image(cache_dir, suite, log=print):
    """Return the cached root directory for ``suite``, building it first if needed."""
    mirror = host_mirror()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / ("ct-%s-%s" % (suite, image_key(suite, mirror)))
    with open(cache_dir / ("ct-%s.lock" % suite), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per suite; the others wait and reuse
        if (final / "rootfs" / "etc" / "os-release").exists():
            return final / "rootfs"
        building = cache_dir / (final.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        log("building the %s container root in %s (~3 min, cached afterwards)" % (suite, final))
        subprocess.run([str(CTIMAGE), str(building), suite, mirror, host_mirror("/debian-security")]
                       + PREFETCH_PACKAGES, check=True, timeout=IMAGE_BUILD_TIMEOUT_S)
        os.rename(building, final)
    return final / "rootfs"


class ContainerError(RuntimeError):
    pass


def ensure_layer(cache_dir, suite, name, script, log=print):
    """Return [layer, root]: the cached root of ``suite`` with a layer on top that a container run of
    SCRIPT (bash, as root) left behind, building it first if needed. The layer is that run's overlay
    upper directory (whiteouts and all), used as a read-only lower layer from then on; its key adds
    SCRIPT to the root's."""
    root = ensure_image(cache_dir, suite, log)
    cache_dir = Path(cache_dir)
    key = hashlib.sha256((root.parent.name + "\0" + script).encode()).hexdigest()[:16]
    final = cache_dir / ("%s-layer-%s-%s" % (root.parent.name, name, key))
    with open(cache_dir / ("ct-%s.lock" % suite), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "upper").is_dir():
            return [final / "upper", root]
        building = cache_dir / (final.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        log("building the %s layer %s on the %s root (cached afterwards)" % (name, final, suite))
        ct = Container([root], building, share=ROOT, name="ledd-layer")
        try:
            ct.start()
            ct.check(script, timeout=IMAGE_BUILD_TIMEOUT_S)
        finally:
            ct.stop()
        shutil.rmtree(building / "work", ignore_errors=True)
        shutil.rmtree(building / "merged", ignore_errors=True)
        os.rename(building, final)
    return [final / "upper", root]


class Container:
    """One scenario's Pi: an overlay on the cached root (and layers: ``lower`` is a path or a list, top
    first), booted with systemd-nspawn."""

    def __init__(self, lower, workdir, share, name="ledd-ct", network="private"):
        self.lower = [Path(p) for p in (lower if isinstance(lower, list) else [lower])]
        self.workdir = Path(workdir)
        self.share = Path(share)
        self.name = name
        self.network = network        # "private": loopback only; "host": the host's network
        self.upper = self.workdir / "upper"
        self.merged = self.workdir / "merged"
        self.console_log = self.workdir / "console.log"
        self.proc = None
        self.init_pid = None
        self.boots = 0
        self.mounted = False
        self.cgroups = None

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        for d in (self.upper, self.workdir / "work", self.merged):
            d.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        "lowerdir=%s,upperdir=%s,workdir=%s" % (":".join(map(str, self.lower)), self.upper,
                                                                 self.workdir / "work"),
                        str(self.merged)], check=True)
        self.mounted = True
        # The image's lists were fresh when it was built: say so again, as apt.systemd.daily would.
        stamp = self.merged / APT_STAMP.lstrip("/")
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        # apt's daily jobs would race the scenario's apt runs for apt's lock at a random moment (their
        # timers are persistent and have never run in this root, so they fire soon after boot): off.
        for timer in QUIET_TIMERS:
            link = self.merged / "etc/systemd/system" / timer
            if not link.is_symlink():
                link.symlink_to("/dev/null")
        self._boot()
        return self

    def _boot(self):
        self.boots += 1
        cmd = ["systemd-nspawn", "-D", str(self.merged), "-b", "--register=no", "--keep-unit",
               "--console=pipe", "--machine=%s" % self.name, "--hostname=%s" % self.name,
               "--bind-ro=%s:%s" % (self.share, SHARE)]
        if self.network == "private":
            cmd.append("--private-network")
        self.console = open(self.console_log, "ab")
        self.console.write(b"\n=== boot %d ===\n" % self.boots)
        self.console.flush()
        self._own_cgroup()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=self._join_own_cgroups)
        self.init_pid = self._find_init()
        # systemd answers once it has set up its own manager; wait until the boot has settled.
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            rc, out = self.run("systemctl is-system-running", timeout=10, log=False)
            if out.strip() in ("running", "degraded"):
                return
            if self.proc.poll() is not None:
                raise ContainerError("systemd-nspawn exited with %s:\n%s" % (self.proc.returncode,
                                                                            self.console_tail()))
            if time.monotonic() > deadline:
                raise ContainerError("the container did not finish booting (%s):\n%s"
                                     % (out.strip(), self.console_tail()))
            time.sleep(0.1)

    def _own_cgroup(self):
        """Fresh cgroups for this container, one per hierarchy (see CGROUP_HIERARCHIES): made once,
        removed on stop(). A list: its nspawn joins each of them before it starts."""
        if self.cgroups is None:
            name = "ledd-ct-%s-%d" % (self.name, os.getpid())
            self.cgroups = [base / name for base in CGROUP_HIERARCHIES if is_cgroup_hierarchy(base)]
            for cgroup in self.cgroups:
                cgroup.mkdir(exist_ok=True)
        return self.cgroups

    def _join_own_cgroups(self):
        """In nspawn's child before exec: move this process into each of the container's cgroups."""
        for cgroup in self.cgroups:
            (cgroup / "cgroup.procs").write_text("%d\n" % os.getpid())

    def _remove_cgroups(self):
        """Remove the container's cgroup trees, deepest first (the container's systemd made the rest)."""
        for cgroup in self.cgroups or ():
            for top, dirs, _ in os.walk(cgroup, topdown=False):
                for d in dirs:
                    try:
                        os.rmdir(os.path.join(top, d))
                    except OSError:
                        pass
            try:
                os.rmdir(cgroup)
            except OSError:
                pass
        self.cgroups = None

    def _find_init(self):
        """The container's PID 1 as the host sees it: the child of systemd-nspawn."""
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ContainerError("systemd-nspawn exited with %s:\n%s" % (self.proc.returncode,
                                                                            self.console_tail()))
            try:
                children = Path("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)).read_text().split()
            except OSError:
                children = []
            for child in children:
                try:
                    if Path("/proc/%s/comm" % child).read_text().strip() == "systemd":
                        return int(child)
                except OSError:
                    pass
            time.sleep(0.05)
        raise ContainerError("no systemd in the container:\n" + self.console_tail())

    def restart(self):
        """A reboot: the container's systemd powers off, and the same overlay boots again."""
        self._log("$ (reboot)\n")
        self.run("systemctl poweroff", timeout=10, log=False)
        try:
            self.proc.wait(BOOT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ContainerError("the container did not power off within %ss" % BOOT_TIMEOUT_S)
        self.console.close()
        self._boot()

    def stop(self):
        """Power off (SIGRTMIN+4 to its systemd, as machinectl poweroff does), kill nspawn by its PID if it
        ignores that, and unmount the overlay."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    os.kill(self.init_pid, signal.SIGRTMIN + 4)
                    self.proc.wait(30)
                except (OSError, subprocess.TimeoutExpired, TypeError):
                    pass
        finally:
            if self.proc is not None:
                if self.proc.poll() is None:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
                self.console.close()
            if self.mounted:
                subprocess.run(["umount", str(self.merged)], check=False)
                self.mounted = False
            self._remove_cgroups()

    def remove(self):
        """Delete the overlay's upper layer (the scenario's changes) once it is unmounted."""
        if not self.mounted:
            shutil.rmtree(self.workdir / "upper", ignore_errors=True)
            shutil.rmtree(self.workdir / "work", ignore_errors=True)

    # -- commands -------------------------------------------------------------
    def nsenter(self, *namespaces):
        return ["nsenter", "-t", str(self.init_pid)] + list(namespaces or ["-a"])

    def run(self, script, timeout=120, log=True, env=None):
        """Run a bash script as root in the container (its namespaces, its root); (status, output)."""
        cmd = self.nsenter() + ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"] + (env or []) + ["bash", "-c", script]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=timeout)
            rc, out = proc.returncode, proc.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired as e:
            rc, out = 124, (e.stdout or b"").decode(errors="replace") + "\n(timed out after %ss)" % timeout
        if log:
            self._log("$ %s\n[exit %s]\n%s\n" % (script.strip(), rc, out))
        return rc, out

    def check(self, script, timeout=120):
        rc, out = self.run(script, timeout)
        if rc != 0:
            raise ContainerError("container command failed (exit %d):\n%s\n--- output ---\n%s" % (rc, script, out))
        return out

    def spawn(self, script, log_name):
        """Start a bash script in the container in a session and process group of its own, with SIGINT
        at its default (a background job of a non-interactive shell would start with it ignored, and
        bash cannot trap a signal that was ignored when it started); its output goes to LOG_NAME in the
        container's /root. Returns the Popen of nsenter, whose child group is the script's."""
        cmd = self.nsenter() + ["env", "--default-signal=INT", "-i",
                                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "HOME=/root", "LANG=C.UTF-8", "TERM=dumb", "bash", "-c",
                                "exec >/root/%s 2>&1; %s" % (log_name, script)]
        self._log("$ (background) %s\n" % script)
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)

    def http(self, url, *curl_args, timeout=20):
        """The host's curl in the container's network namespace: (HTTP status, body); status 0 when
        nothing answered."""
        cmd = self.nsenter("-n") + ["curl", "-sS", "-g", "--max-time", str(timeout), "-o", "-",
                                    "-w", "\n%{http_code}"] + list(curl_args) + [url]
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
        body, _, code = proc.stdout.decode(errors="replace").rpartition("\n")
        self._log("$ curl %s %s\n[HTTP %s] %s\n" % (" ".join(map(shlex.quote, curl_args)), url, code,
                                                    body[:300]))
        return int(code or 0), body

    def _log(self, text):
        with open(self.workdir / "commands.log", "a") as log:
            log.write("%.1f %s" % (time.monotonic(), text))

    # -- after a failure ------------------------------------------------------
    def console_tail(self, lines=60):
        try:
            return "\n".join(self.console_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no console log)"

    def journal(self, lines=250):
        if self.proc is None or self.proc.poll() is not None:
            return "(the container is not running)"
        return self.run("journalctl --no-pager -o short-monotonic | tail -n %d" % lines, timeout=30, log=False)[1]

    def keep_logs(self, dest):
        """Keep the console, every command, the journal and deploy.sh's log under ``dest``."""
        dest = Path(dest)
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for name in ("console.log", "commands.log"):
            if (self.workdir / name).exists():
                shutil.copy(self.workdir / name, dest / name)
        if self.proc is not None and self.proc.poll() is None:
            (dest / "journal.log").write_text(self.run("journalctl --no-pager -o short-monotonic", timeout=60,
                                                       log=False)[1])
        for inside in ("var/log/ledd-deploy.log", "root"):
            src = self.merged / inside if self.mounted else self.upper / inside
            if src.is_file():
                shutil.copy(src, dest / src.name)
            elif src.is_dir():
                for f in src.glob("*.log"):
                    shutil.copy(f, dest / f.name)

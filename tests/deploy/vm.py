"""The virtual Pi: a Debian bookworm VM under qemu (TCG) for tests/deploy/test_vm.py.

The base image (debootstrap + systemd + the stock kernel + a test agent) is
built once by ``vmimage.sh`` and cached under ``$LEDD_CACHE_DIR``, keyed by a
hash of everything that goes into it; every run boots a throwaway qcow2
overlay on top of it, so the cached image is never modified.

The host talks to the guest over three channels:
  * the first serial port: the console, logged to ``console.log``;
  * the second serial port: ``guest-agent.sh``, which runs bash scripts as
    root and returns their status and output (``VM.run``);
  * slirp's ``hostfwd``: the guest's port 80 on 127.0.0.1:<free port>.
The checkout is shared read-only over 9p (tag ``src``), and a scratch
directory read-write (tag ``xfer``) for kernel modules and results. The guest
reaches the host's loopback at 10.0.2.2 (slirp), e.g. a test's MQTT broker.

``VM.reboot`` reboots the guest on the same disk: qemu runs with
``-no-reboot``, so the guest's reboot ends it, and the same overlay boots again.
"""

import base64
import fcntl
import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VMIMAGE = HERE / "vmimage.sh"
AGENT = HERE / "guest-agent.sh"

DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: What deploy.sh installs on plain Debian, installed in the image: under TCG their dpkg runs took most of
#: deploy.sh's 11.5 of the scenario's 14 minutes, and the container Pis prove that apt step at native speed (vmimage.sh).
INSTALL_PACKAGES = ["gcc", "make", "libc6-dev", "python3", "python3-gpiozero", "python3-requests",
                    "apache2-utils", "python3-paho-mqtt"]
#: ... but the web server only downloaded: the virtual Pi is a Pi without one, and deploy.sh installs it.
PREFETCH_PACKAGES = ["lighttpd"]
IMAGE_BUILD_TIMEOUT_S = 1800
BOOT_TIMEOUT_S = 300
MEMORY_MB = 1024


def host_mirror(suffix="/debian"):
    """The Debian mirror the host's apt uses (slirp NATs the guest to it), else deb.debian.org.

    ``suffix="/debian-security"`` gives the security archive the same way.
    """
    texts = []
    for path in [Path("/etc/apt/sources.list")] + sorted(Path("/etc/apt/sources.list.d").glob("*")):
        try:
            texts.append(path.read_text())
        except OSError:
            pass
    for text in texts:
        for uri in re.findall(r"(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)(\S+)", text, re.M):
            if uri.startswith("http") and uri.rstrip("/").endswith(suffix):
                return uri.rstrip("/")
    return DEFAULT_MIRROR.replace("/debian", suffix)


def kernel_version():
    """The ABI version linux-image-amd64 depends on today, e.g. ``6.1.0-56-amd64``."""
    out = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True,
                         check=True).stdout
    match = re.search(r"Depends: linux-image-(\S+-amd64)", out)
    if not match:
        raise RuntimeError("cannot resolve linux-image-amd64's kernel version:\n" + out)
    return match.group(1)


def image_key(kver, mirror):
    digest = hashlib.sha256()
    for part in (VMIMAGE.read_bytes(), AGENT.read_bytes(), kver.encode(), mirror.encode(),
                 ",".join(INSTALL_PACKAGES).encode(), ",".join(PREFETCH_PACKAGES).encode()):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def ensure_image(cache_dir, kver=None, mirror=None, log=print):
    """Return the cached base image directory for ``kver``, building it first if needed."""
    kver = kver or kernel_version()
    mirror = mirror or host_mirror()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / ("vpi-%s-%s" % (kver, image_key(kver, mirror)))
    with open(cache_dir / "vpi.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; the others wait and reuse
        if (final / "rootfs.ext4").exists():
            return final
        building = cache_dir / (final.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        log("building the virtual Pi base image in %s (~5-10 min, cached afterwards)" % final)
        subprocess.run([str(VMIMAGE), str(building), kver, mirror, host_mirror("/debian-security"),
                        ",".join(INSTALL_PACKAGES), ",".join(PREFETCH_PACKAGES)],
                       check=True, timeout=IMAGE_BUILD_TIMEOUT_S)
        os.rename(building, final)
    return final


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AgentError(RuntimeError):
    pass


class VM:
    """One boot of the virtual Pi on a fresh overlay of ``image``."""

    def __init__(self, image, workdir, share=ROOT, http_port=None, guest_ports=(8080, 8081, 443)):
        self.image = Path(image)
        self.workdir = Path(workdir)
        self.share = Path(share)
        self.xfer = self.workdir / "xfer"
        self.http_port = http_port or free_port()
        #: guest port -> host port on 127.0.0.1, for sites deploy.sh puts on other ports than 80.
        self.ports = {80: self.http_port, **{port: free_port() for port in guest_ports}}
        self.console_log = self.workdir / "console.log"
        self.proc = None
        self.agent = None
        self._buf = b""
        self._ids = 0

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.xfer.mkdir(exist_ok=True)
        self.overlay = self.workdir / "overlay.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                        str(self.image / "rootfs.ext4"), str(self.overlay)], check=True)
        self.agent_sock = self.workdir / "agent.sock"
        self.monitor_sock = self.workdir / "monitor.sock"
        self.boots = 1
        self._launch()
        return self

    def _launch(self):
        """Start qemu on the overlay and wait for the guest agent."""
        for sock in (self.agent_sock, self.monitor_sock):
            if sock.exists():
                sock.unlink()
        cmd = [
            "qemu-system-x86_64", "-accel", "tcg", "-cpu", "qemu64", "-smp", "1", "-m", str(MEMORY_MB),
            "-display", "none", "-no-reboot",
            "-kernel", str(self.image / "vmlinuz"), "-initrd", str(self.image / "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0 systemd.show_status=1",
            # cache=unsafe: the overlay is thrown away, so guest flushes need not reach the disk.
            "-drive", "file=%s,if=virtio,format=qcow2,cache=unsafe" % self.overlay,
            "-netdev", "user,id=n0," + ",".join("hostfwd=tcp:127.0.0.1:%d-:%d" % (host, guest)
                                                 for guest, host in sorted(self.ports.items())),
            "-device", "virtio-net-pci,netdev=n0",
            "-virtfs", "local,path=%s,mount_tag=src,security_model=none,readonly=on" % self.share,
            "-virtfs", "local,path=%s,mount_tag=xfer,security_model=none" % self.xfer,
            "-serial", "file:%s" % self.console_log,
            "-serial", "unix:%s,server=on,wait=off" % self.agent_sock,
            "-monitor", "unix:%s,server=on,wait=off" % self.monitor_sock,
        ]
        self.qemu_log = open(self.workdir / "qemu.log", "ab")
        self._buf = b""
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.qemu_log, stderr=subprocess.STDOUT)
        self._connect_agent()

    def reboot(self, timeout=BOOT_TIMEOUT_S):
        """``systemctl reboot`` in the guest, then boot the same disk again (the agent answers again)."""
        self._ids += 1
        payload = base64.b64encode(b"systemctl reboot").decode()
        self.agent.sendall(("RUN r%d 60 %s\n" % (self._ids, payload)).encode())
        self._log("$ systemctl reboot\n")
        try:
            self.proc.wait(timeout)  # -no-reboot: the guest's reboot ends qemu
        except subprocess.TimeoutExpired:
            raise AgentError("the guest did not reboot within %ss" % timeout)
        self.agent.close()
        self.qemu_log.close()
        # Each boot's console in its own file: console-boot1.log, ...; console.log is the current one.
        self.console_log.rename(self.workdir / ("console-boot%d.log" % self.boots))
        self.boots += 1
        self._launch()

    def _connect_agent(self):
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while not self.agent_sock.exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise AgentError("qemu did not create its agent socket")
            time.sleep(0.1)
        # qemu creates the socket file a moment before it listens on it: retry a refused connect.
        while True:
            self.agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.agent.connect(str(self.agent_sock))
                break
            except (ConnectionRefusedError, FileNotFoundError):
                self.agent.close()
                self._check_alive()
                if time.monotonic() > deadline:
                    raise AgentError("qemu's agent socket refused connections for %ss" % BOOT_TIMEOUT_S)
                time.sleep(0.1)
        # The agent starts late in boot; ping until it answers.
        while True:
            self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AgentError("the guest agent did not answer within %ss" % BOOT_TIMEOUT_S)
            try:
                rc, out = self.run("echo pong", timeout=5, wait=min(5, remaining))
                if rc == 0 and out.strip() == "pong":
                    return
            except (AgentError, TimeoutError):
                pass

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise AgentError("qemu exited with %s" % self.proc.returncode)

    def run(self, script, timeout=120, wait=None):
        """Run a bash script as root in the guest; return (exit status, combined output)."""
        self._ids += 1
        rid = "r%d" % self._ids
        payload = base64.b64encode(script.encode()).decode()
        self.agent.sendall(("RUN %s %d %s\n" % (rid, timeout, payload)).encode())
        deadline = time.monotonic() + (wait if wait is not None else timeout + 15)
        while True:
            line = self._readline(deadline)
            parts = line.split(" ")
            if parts[0] == "DONE" and len(parts) >= 3 and parts[1] == rid:
                out = base64.b64decode(parts[3]).decode(errors="replace") if len(parts) > 3 else ""
                self._log("$ %s\n[exit %s]\n%s\n" % (script.strip(), parts[2], out))
                return int(parts[2]), out

    def _log(self, text):
        """Every command and its output, for reading after a failure (workdir/agent.log)."""
        with open(self.workdir / "agent.log", "a") as log:
            log.write("%.1f %s" % (time.monotonic(), text))

    def check(self, script, timeout=120):
        """Like run(), but raise with the output unless the script exits 0."""
        rc, out = self.run(script, timeout)
        if rc != 0:
            raise AgentError("guest command failed (exit %d):\n%s\n--- output ---\n%s" % (rc, script, out))
        return out

    def _readline(self, deadline):
        while b"\n" not in self._buf:
            self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no answer from the guest agent")
            self.agent.settimeout(min(remaining, 1.0))
            try:
                chunk = self.agent.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise AgentError("agent socket closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode(errors="replace").strip("\r\0 ")

    def powerdown(self, timeout=90):
        """ACPI power button over the monitor; kill qemu if the guest ignores it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mon:
                mon.connect(str(self.monitor_sock))
                mon.sendall(b"system_powerdown\n")
                self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self.agent:
                self.agent.close()
            self.qemu_log.close()

    def keep_logs(self, dest):
        """Copy the console, agent and qemu logs to ``dest`` (outlives pytest's tmp dir rotation)."""
        dest = Path(dest)
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for name in ["console.log", "agent.log", "qemu.log"] + sorted(
                p.name for p in self.workdir.glob("console-boot*.log")):
            if (self.workdir / name).exists():
                shutil.copy(self.workdir / name, dest / name)

    def console(self, tail=200):
        try:
            lines = self.console_log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no console log)"
        return "\n".join(lines[-tail:])

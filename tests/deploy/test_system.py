"""deploy.sh meeting the system it runs on: Raspberry Pi OS's own udev rule, no udevd (a
container), no IPv6, no ss, a taken redirect port, the lock, and the health check's user.

Functions are called from a sourced deploy.sh in a scratch root, with system commands replaced
by logging stand-ins where they would change the machine.
"""

import os
import socket
import stat

import pytest

from deployutil import ROOT, deploy_var, fake_commands, sourced

RPI_OS_RULE = 'SUBSYSTEM=="gpio", GROUP="gpio", MODE="0660"\n'  # /usr/lib/udev/rules.d/99-com.rules


def test_raspberry_pi_os_own_gpio_rule_is_recognised(tmp_path):
    """Raspberry Pi OS grants group gpio the chips by a rule that never says 'gpiochip'."""
    rules = tmp_path / "root/usr/lib/udev/rules.d"
    rules.mkdir(parents=True)
    (rules / "99-com.rules").write_text('SUBSYSTEM=="input", GROUP="input", MODE="0660"\n' + RPI_OS_RULE)
    proc = sourced("MODE=stage\ninstall_udev_rule\n", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "udev: the system already grants GPIO access (%s/99-com.rules)" % rules in proc.stdout
    assert not (tmp_path / "root" / deploy_var("UDEV_RULE").lstrip("/")).exists()


def test_plain_debian_gets_our_rule(tmp_path):
    rules = tmp_path / "root/usr/lib/udev/rules.d"
    rules.mkdir(parents=True)
    (rules / "50-udev-default.rules").write_text('SUBSYSTEM=="input", GROUP="input"\n# SUBSYSTEM=="gpio", GROUP="gpio"\n')
    proc = sourced("MODE=stage\ninstall_udev_rule\n", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "root" / deploy_var("UDEV_RULE").lstrip("/")).read_bytes() == \
        (ROOT / "systemd/60-ledd-gpio.rules").read_bytes()


def test_no_udevd_is_a_warning_not_a_failure(tmp_path):
    """In a container udev is installed but no udevd runs: `udevadm control` fails there."""
    path = fake_commands(tmp_path, udevadm='[ "$1" = control ] && exit 1; exit 0')
    proc = sourced("set -E; trap 'echo ERR-TRAP' ERR\nMODE=install\ninstall_udev_rule\necho done\n", tmp_path,
                   PATH=path)
    assert proc.returncode == 0 and "done" in proc.stdout and "ERR-TRAP" not in proc.stdout, proc.stderr
    assert "no udevd answers" in proc.stderr
    assert (tmp_path / "calls").read_text() == "udevadm control --reload\n"


@pytest.mark.parametrize("switch, ipv6", [("0\n", True), ("1\n", False), (None, False)])
def test_ipv6_sockets_only_where_the_kernel_has_ipv6(tmp_path, switch, ipv6):
    if switch is not None:
        (tmp_path / "disable_ipv6").write_text(switch)
    proc = sourced("IPV6_SWITCH=%s/disable_ipv6 PORT=443 TLS=self-signed OPT_REDIRECT_PORT=80\nrender_site\n"
                   % tmp_path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ('"[::]:443"' in proc.stdout) == ipv6 and ('"[::]:80"' in proc.stdout) == ipv6
    assert '"0.0.0.0:80"' in proc.stdout


@pytest.fixture
def listening():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_taken_redirect_port_names_the_redirect_and_its_option(tmp_path, listening):
    proc = sourced("PORT=8443 TLS=self-signed OPT_REDIRECT_PORT=%d\npreflight\n" % listening, tmp_path)
    assert proc.returncode == 1
    assert "port %d (plain HTTP redirecting to HTTPS) is in use by" % listening in proc.stderr
    assert "--redirect-port " in proc.stderr and "--redirect-port off" in proc.stderr
    assert "--port" not in proc.stderr


def test_without_ss_a_taken_port_is_still_found(tmp_path, listening):
    bare = tmp_path / "bare"  # every command of the system but ss
    bare.mkdir()
    for directory in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for name in os.listdir(directory) if os.path.isdir(directory) else ():
            if name != "ss" and not (bare / name).exists():
                (bare / name).symlink_to(os.path.join(directory, name))
    proc = sourced("command -v ss && exit 9\nPORT=%d TLS=off\npreflight\n" % listening, tmp_path, PATH=str(bare))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "port %d is in use by a program (install iproute2 for ss to name it)" % listening in proc.stderr


def test_the_lock_is_where_only_root_can_create_it():
    """In the world-writable /run/lock any user could create the lock file first and block deploy.sh."""
    parent = os.path.dirname(deploy_var("LOCK_FILE"))
    st = os.stat(parent)
    assert st.st_uid == 0 and not st.st_mode & stat.S_IWOTH, parent


def test_the_health_check_runs_as_the_web_user(tmp_path):
    """A re-run that kept the password proves the dashboard by ledd's answer over the FIFOs to
    ledd-web (as root they answer whatever their group and mode)."""
    path = fake_commands(tmp_path, setpriv="")
    proc = sourced("PORT=80 TLS=off AUTH=basic KNOWN_PASSWORD=\nstep_health\n", tmp_path, PATH=path)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith("setpriv --reuid=ledd-web --regid=ledd-web --init-groups -- /usr/bin/python3 -B "
                               "-m ledd.health"), calls


# --- the self-signed certificate ----------------------------------------------------------------

def openssl(*args):
    import subprocess
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def test_the_tls_key_is_kept_and_known_addresses_keep_the_certificate(tmp_path):
    """A new address adds itself to a new certificate with the same key; moving back to an address
    the certificate already names changes nothing (every DHCP change made a new key and fingerprint)."""
    addresses = tmp_path / "addresses"
    path = fake_commands(tmp_path, hostname='[ "$1" = -I ] && cat %s || echo pi' % addresses)
    tls = tmp_path / "root" / deploy_var("TLS_DIR").lstrip("/")

    def run(addr):
        addresses.write_text(addr + "\n")
        proc = sourced("TLS=self-signed\nstep_tls\n", tmp_path, PATH=path)
        assert proc.returncode == 0, proc.stderr
        return (tls / "key.pem").read_bytes(), (tls / "cert.pem").read_bytes()

    key1, cert1 = run("192.168.1.20")
    key2, cert2 = run("192.168.1.31")
    assert key2 == key1 and cert2 != cert1
    names = openssl("x509", "-in", str(tls / "cert.pem"), "-noout", "-ext", "subjectAltName")
    assert "IP Address:192.168.1.20" in names and "IP Address:192.168.1.31" in names and "DNS:pi.local" in names
    assert run("192.168.1.20") == (key2, cert2)
    assert oct((tls / "key.pem").stat().st_mode & 0o777) == "0o640"


# --- Raspberry Pi OS ---------------------------------------------------------------------------

CONFIG_TXT = """# Raspberry Pi OS's /boot/firmware/config.txt, as an owner left it
dtparam=audio=on
#dtparam=i2c_arm=on
dtparam=spi=on
dtoverlay=w1-gpio
[pi4]
dtoverlay=gpio-shutdown,gpio_pin=22
"""


def test_pins_config_txt_gives_to_the_kernel_are_named_before_anything_changes(tmp_path):
    (tmp_path / "config.txt").write_text(CONFIG_TXT)
    proc = sourced('BOOT_CONFIGS=("%s/nothing" "%s/config.txt")\ncheck_boot_config\n' % (tmp_path, tmp_path),
                   tmp_path, LEDD_LED_PINS="red:4,green:27")
    assert proc.returncode == 0, proc.stderr
    warnings = [l for l in proc.stderr.splitlines() if "warning: GPIO" in l]
    assert len(warnings) == 2, proc.stderr
    assert "GPIO 4 (led red in /etc/ledd/ledd.conf) is taken by 'dtoverlay=w1-gpio' in %s/config.txt" % tmp_path \
        in warnings[0]
    assert "GPIO 22 (button button" in warnings[1] and "dtoverlay=gpio-shutdown,gpio_pin=22" in warnings[1]


def test_the_default_pins_live_beside_spi_i2c_and_the_uart(tmp_path):
    (tmp_path / "config.txt").write_text("dtparam=spi=on\ndtparam=i2c_arm=on\nenable_uart=1\n")
    proc = sourced('BOOT_CONFIGS=("%s/config.txt")\ncheck_boot_config\n' % tmp_path, tmp_path)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr


def test_an_existing_gpio_group_is_used_and_never_counted_as_ours(tmp_path):
    """Raspberry Pi OS has group gpio: deploy.sh must not create, journal or later delete it."""
    path = fake_commands(tmp_path, getent='[ "$1" = group ] && [ "$2" = gpio ] && echo "gpio:x:997:" && exit 0; exit 2',
                         groupadd="", useradd="", usermod="", gpasswd="")
    proc = sourced("journal_begin\nunset SUDO_USER\nstep_users\ncat \"$RUN_JOURNAL\"\n", tmp_path, PATH=path)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text()
    assert "groupadd" not in calls and "useradd --system --user-group --groups gpio" in calls
    assert "group\tgpio" not in proc.stdout and "group\tledd" in proc.stdout
    assert not (tmp_path / "root" / deploy_var("GPIO_GROUP_MARKER").lstrip("/")).exists()


# --- --uninstall --------------------------------------------------------------------------------

def test_uninstall_disables_every_unit_the_journal_says_deploy_sh_enabled(tmp_path):
    """ledd-mqtt.service was enabled by an install with --mqtt: --uninstall must disable it before
    its unit file goes, or its multi-user.target.wants/ link stays behind, dangling."""
    units = tmp_path / "units"
    units.mkdir()
    for unit in ("ledd.service", "ledd-web.service", "ledd-mqtt.service"):
        (units / unit).write_text("[Unit]\n")
    journal = tmp_path / "installed.journal"
    journal.write_text("enable\tledd.service\nenable\tledd-web.service\nenable\tledd-mqtt.service\n")
    path = fake_commands(tmp_path, systemctl='case "$1" in is-enabled) exit 0 ;; is-active) exit 3 ;; esac')
    proc = sourced("UNIT_DIR=%s JOURNAL_COPY=%s\nstop_our_units\n" % (units, journal), tmp_path, PATH=path)
    assert proc.returncode == 0, proc.stderr
    disabled = [line for line in (tmp_path / "calls").read_text().splitlines() if "disable" in line]
    assert disabled == ["systemctl disable --now --quiet %s" % unit
                        for unit in ("ledd-mqtt.service", "ledd-web.service", "ledd.service")], disabled

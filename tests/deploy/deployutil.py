"""Helpers shared by the deploy tests: where things are and how deploy.sh installs them."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy.sh"
UNIT = ROOT / "systemd" / "ledd.service"


def deploy_var(name):
    """A layout variable of deploy.sh (e.g. LEDD_SBIN), read from the script itself."""
    match = re.search(r"^%s=(\S+)" % re.escape(name), DEPLOY.read_text(), re.M)
    assert match, "deploy.sh defines no %s" % name
    value = match.group(1)
    # Expand references to earlier variables ($CONF_DIR/ledd.conf).
    return re.sub(r"\$(\w+)", lambda m: deploy_var(m.group(1)), value)


def unit_settings(text=None):
    """The unit's settings as {key: [values]} (systemd allows repeated keys)."""
    settings = {}
    for line in (text if text is not None else UNIT.read_text()).splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def run_deploy(*args, env=None, timeout=300, check=False):
    proc = subprocess.run([str(DEPLOY), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError("deploy.sh %s failed (%d):\n%s\n%s" % (" ".join(args), proc.returncode,
                                                                   proc.stdout, proc.stderr))
    return proc


def sourced(script, tmp_path, timeout=60, **env):
    """Run ``script`` in bash after sourcing deploy.sh (it only defines functions then), with a
    scratch TMP_DIR, DESTDIR and LOG_FILE under tmp_path."""
    import os
    prelude = ('. "%s"\nTMP_DIR=%s/tmp; mkdir -p "$TMP_DIR"\nDESTDIR=%s/root; mkdir -p "$DESTDIR"\n'
               'LOG_FILE=%s/deploy.log\n' % (DEPLOY, tmp_path, tmp_path, tmp_path))
    return subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **env))


def fake_commands(tmp_path, **scripts):
    """A PATH whose first directory holds shell scripts standing in for commands (name=body; '_' in
    a name stands for '-'); each logs its command line to tmp_path/calls."""
    import os
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    for name, body in scripts.items():
        name = name.replace("_", "-")
        path = fake / name
        path.write_text('#!/bin/sh\necho "%s $*" >>%s/calls\n%s\n' % (name, tmp_path, body))
        path.chmod(0o755)
    return "%s:%s" % (fake, os.environ["PATH"])

"""The factory's entry point for an interpreter that did not pip-install this project.

gpiozero finds pin factories through the ``gpiozero_pin_factories`` entry
point. For the system interpreter (deploy.sh) or a virtualenv,
``python3 -m ledd.gpiozero_factory --register [SITE_DIR]`` writes that entry
point as a small ``ledd_gpiozero-<version>.dist-info`` plus a ``.pth`` that puts
the tree holding ``ledd/`` on ``sys.path``; ``--unregister`` removes both.
gpiozero 1.6 (pkg_resources) and 2.x (importlib.metadata) both read them.
"""

import argparse
import os
import shutil
import site

import ledd
from ledd import defaults

__all__ = ["register", "unregister", "main"]

DIST_NAME = "ledd_gpiozero"
ENTRY_POINT = "ledd.gpiozero_factory:LeddFactory"


def register(site_dir, home=None):
    """Write the entry point (dist-info) and a .pth that puts ``home`` on sys.path."""
    home = os.path.abspath(home or os.path.dirname(os.path.dirname(os.path.abspath(ledd.__file__))))
    unregister(site_dir)
    info = os.path.join(site_dir, "%s-%s.dist-info" % (DIST_NAME, ledd.__version__))
    os.makedirs(info, exist_ok=True)
    files = {
        "METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: ledd's gpiozero pin factory\n"
                    % (DIST_NAME.replace("_", "-"), ledd.__version__),
        "entry_points.txt": "[%s]\n%s = %s\n" % (defaults.GPIOZERO_ENTRY_GROUP, defaults.GPIOZERO_FACTORY_NAME,
                                                 ENTRY_POINT),
        "INSTALLER": "ledd\n",
    }
    for name, text in files.items():
        with open(os.path.join(info, name), "w", encoding="utf-8") as f:
            f.write(text)
    with open(os.path.join(info, "RECORD"), "w", encoding="utf-8") as f:
        f.writelines("%s/%s,,\n" % (os.path.basename(info), name) for name in list(files) + ["RECORD"])
    with open(os.path.join(site_dir, DIST_NAME + ".pth"), "w", encoding="utf-8") as f:
        f.write(home + "\n")
    return info


def unregister(site_dir):
    """Remove what :func:`register` wrote (any version); returns the paths removed."""
    removed = []
    if not os.path.isdir(site_dir):
        return removed
    for name in sorted(os.listdir(site_dir)):
        path = os.path.join(site_dir, name)
        if name.startswith(DIST_NAME + "-") and name.endswith(".dist-info"):
            shutil.rmtree(path)
            removed.append(path)
        elif name == DIST_NAME + ".pth":
            os.unlink(path)
            removed.append(path)
    return removed


def default_site_dir():
    return site.getsitepackages()[0]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m ledd.gpiozero_factory",
        description="Register ledd's gpiozero pin factory (GPIOZERO_PIN_FACTORY=ledd) with an interpreter.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--register", metavar="SITE_DIR", nargs="?", const="",
                       help="write the entry point and a .pth into SITE_DIR (default: %s)" % default_site_dir())
    group.add_argument("--unregister", metavar="SITE_DIR", nargs="?", const="", help="remove them again")
    parser.add_argument("--home", help="the tree that holds the ledd package (default: this one)")
    args = parser.parse_args(argv)
    if args.register is not None:
        info = register(args.register or default_site_dir(), args.home)
        print("registered the gpiozero pin factory 'ledd': %s" % info)
    else:
        removed = unregister(args.unregister or default_site_dir())
        print("removed %s" % (", ".join(removed) or "nothing (not registered)"))
    return 0

"""ledd-mqtt: bridge ledd to an MQTT broker (see docs/mqtt.md).

    ledd-mqtt [-c /etc/ledd/mqtt.conf] [-r RUNTIME_DIR] [-v]
    ledd-mqtt --check-config [-c FILE]

Exit status: 0 clean stop or valid config, 1 invalid config (one
``file:line: problem`` line on stderr) or a missing paho-mqtt, 2 bad usage.
Logs go to stderr, with syslog priority prefixes when stderr is the journal.
"""

import argparse
import logging
import os
import sys

from ledd import __version__, defaults
from ledd.mqtt import config as mqtt_config

EXIT_OK, EXIT_CONFIG, EXIT_USAGE = 0, 1, 2
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    """``<N>message``: journald reads the priority from the prefix."""

    def format(self, record):
        return "<%d>%s" % (_PRIORITY.get(record.levelno, 6), super().format(record))


def setup_logging(verbose):
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("ledd-mqtt: %(levelname)s: %(message)s"))
    root = logging.getLogger("ledd-mqtt")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="ledd-mqtt", description="Bridge ledd's LEDs and buttons to an MQTT broker.")
    parser.add_argument("-c", "--config", metavar="FILE", default=defaults.MQTT_CONFIG_PATH,
                        help="configuration file (default %(default)s)")
    parser.add_argument("-r", "--runtime-dir", metavar="DIR",
                        help="ledd's runtime directory (default: $%s, the file's runtime_dir, or %s)"
                             % (defaults.RUNTIME_DIR_ENV, defaults.RUNTIME_DIR))
    parser.add_argument("--check-config", action="store_true", help="check the configuration and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    parser.add_argument("-V", "--version", action="version", version="ledd-mqtt %s" % __version__)
    return parser.parse_args(argv)


def main(argv=None):
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code else EXIT_OK
    setup_logging(args.verbose)
    try:
        cfg = mqtt_config.load(args.config)
        password = cfg.password()
    except mqtt_config.ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    if args.check_config:
        print("%s: ok (broker %s, topics under %s/, discovery %s)" % (
            args.config, cfg.url, cfg.base_topic, "on" if cfg.discovery else "off"))
        return EXIT_OK
    # Precedence as for ledd: flag > environment > file > default.
    runtime_dir = args.runtime_dir or os.environ.get(defaults.RUNTIME_DIR_ENV) or cfg.runtime_dir or defaults.RUNTIME_DIR
    try:
        from ledd.mqtt.bridge import Bridge
    except ImportError as err:
        print("ledd-mqtt: paho-mqtt is missing (%s): apt-get install python3-paho-mqtt" % err, file=sys.stderr)
        return EXIT_CONFIG
    try:
        bridge = Bridge(cfg, password=password, runtime_dir=runtime_dir)
    except (OSError, ValueError) as err:  # a CA, certificate or key file TLS cannot use
        print("%s: TLS setup failed: %s" % (args.config, err), file=sys.stderr)
        return EXIT_CONFIG
    bridge.install_signal_handlers()
    return bridge.run()

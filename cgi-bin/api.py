#!/usr/bin/python3 -IS
"""CGI for /api/state, /api/leds[/<id>], /api/buttons/<id> (lighttpd.conf aliases /api/ here).

The logic is ledd.web (bytecode cached); the ledd package is found next to this
script's real path, never through site-packages (-I -S: fastest start-up).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from ledd.web import main  # noqa: E402

main()

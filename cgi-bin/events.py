#!/usr/bin/python3 -IS
"""CGI for /api/events (Server-Sent Events); the logic is ledd.web_events.

The ledd package is found next to this script's real path (-I -S: no site-packages).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from ledd.web_events import main  # noqa: E402

main()

#!/usr/bin/python3 -IS
"""CGI for /api/state, /api/leds[/<id>], /api/buttons/<id> (lighttpd.conf aliases /api/ here).

Also lighttpd's error handler (JSON under /api/) and the answer (421) to every
URL of a Host lighttpd does not serve: see lighttpd.conf.

The logic is ledd.web.api (bytecode cached). The ledd package is found next to this
script (deploy.sh copies the tree whole), never through site-packages
(-I -S: fastest start-up).
"""
import sys

# The tree that holds cgi-bin/ also holds ledd/. Found from the script's own
# path by hand: os.path would cost this request about a millisecond.
sys.path.insert(0, __file__.rpartition("/cgi-bin/")[0] or ".")
from ledd.web.api import main  # noqa: E402

main()

#!/usr/bin/python3 -IS
"""CGI for /api/events (Server-Sent Events); the logic is ledd.web.events.

The ledd package is found next to this script (deploy.sh copies the tree
whole), never through site-packages (-I -S).
"""
import sys

# The tree that holds cgi-bin/ also holds ledd/. Found from the script's own
# path by hand: os.path would cost this request about a millisecond.
sys.path.insert(0, __file__.rpartition("/cgi-bin/")[0] or ".")
from ledd.web.events import main  # noqa: E402

main()

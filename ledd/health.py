"""The install's health check: ``python3 -m ledd.health --url http://127.0.0.1/api/state``.

deploy.sh runs it after starting ledd and ledd-web: it asks for the state
through the web server until the API answers with ledd's state (or the time
is up), and prints one line saying what answered. The password comes on
stdin (never argv or the environment, where ``ps`` could see it). When the
password is not known (a re-run that kept it), a 401 from the web server
plus an answer from ledd over its FIFOs counts as healthy.
"""

import argparse
import base64
import json
import ssl
import sys
import time
import urllib.error
import urllib.request

from ledd import defaults


def _request(url, login, password, context):
    req = urllib.request.Request(url)
    if password:
        token = base64.b64encode(("%s:%s" % (login, password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(req, timeout=5, context=context) as resp:
        return json.loads(resp.read())


def _ssl_context(args):
    if not args.url.startswith("https:"):
        return None
    if args.insecure:
        return ssl._create_unverified_context()
    context = ssl.create_default_context(cafile=args.cafile)
    context.check_hostname = True
    return context


def _fifo_state(runtime_dir):
    from ledd.client import Client
    return json.loads(Client(runtime_dir).request("STATE"))


def check(args, password):
    """Return (ok, message)."""
    context = _ssl_context(args)
    deadline = time.monotonic() + args.timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            state = _request(args.url, args.login, password, context)
            return True, ("the API answers through the web server: backend %s, %d LEDs, %d buttons"
                          % (state["backend"], len(state["leds"]), len(state["buttons"])))
        except urllib.error.HTTPError as e:
            last = "HTTP %d: %s" % (e.code, e.read(300).decode(errors="replace"))
            if e.code == 401 and not password and not args.no_auth:
                try:
                    state = _fifo_state(args.runtime_dir)
                except Exception as err:  # ledd not up yet: try again
                    last = "401 from the web server, and ledd: %s" % err
                else:
                    return True, ("the web server asks for the password (kept from an earlier run); "
                                  "ledd answers on its FIFOs: backend %s" % state["backend"])
        except Exception as e:  # connection refused while the server restarts, bad JSON...
            last = "%s: %s" % (type(e).__name__, e)
        time.sleep(1)
    return False, "no healthy answer within %ss; last: %s" % (args.timeout, last)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m ledd.health", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--login", default="ledd")
    parser.add_argument("--no-auth", action="store_true", help="the site has no password")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--runtime-dir", default=defaults.RUNTIME_DIR)
    parser.add_argument("--cafile", help="the CA (self-signed certificate) for https")
    parser.add_argument("--insecure", action="store_true", help="https without certificate checks")
    args = parser.parse_args(argv)
    password = "" if args.no_auth else sys.stdin.readline().rstrip("\n")
    ok, message = check(args, password)
    print(message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

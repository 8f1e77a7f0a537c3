"""Waiting in tests: poll for a condition instead of sleeping a fixed time.

A fixed ``time.sleep(N)`` is either too long (every run pays N) or, on a
loaded machine, too short (the test fails for no fault of the code). So the
suite waits for what it needs to see::

    from waiting import wait_for
    state = wait_for(lambda: client.state()["leds"][0]["level"] == 1, what="LED 1 on")

``wait_for`` returns the condition's first truthy value as soon as there is
one; the timeout only bounds a failure, so it can be generous. When it runs
out, the AssertionError says what the test waited for, how long, and the last
value the condition gave (or the exception it raised), which is usually the
clue. ``holds_for`` is the opposite check, for tests about time itself: the
condition stays true for a whole period ("nothing more follows").

Every test folder imports this module by name (tests/ is on pytest's path
through tests/conftest.py).
"""

import time

#: Default bound of a wait: long enough for a busy two-core machine, paid only when a test fails.
WAIT_S = 10.0
#: How often a condition is polled.
POLL_S = 0.02


class WaitTimeout(AssertionError):
    """A condition a test waited for did not hold in time."""


def wait_for(condition, timeout=WAIT_S, what="condition", interval=POLL_S, ignore=(), sleep=time.sleep):
    """Poll ``condition()`` until it returns something truthy, and return that.

    ``what`` names the condition in the failure message; it may be a callable,
    called only then (e.g. to attach a log as it is at the timeout). ``ignore``
    is a tuple of exception types that mean "not yet" (e.g. OSError while a
    server starts); any other exception propagates. ``sleep`` passes the time
    between polls (a Playwright page's wait_for_timeout lets its handlers run).
    Raises WaitTimeout naming ``what`` and the last value seen when ``timeout``
    seconds pass.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            last = condition()
        except ignore as err:
            last = err
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise WaitTimeout("timed out after %ss waiting for %s; last seen: %r"
                              % (timeout, what() if callable(what) else what, last))
        sleep(interval)


def holds_for(condition, seconds, what="condition", interval=POLL_S):
    """Check that ``condition()`` stays truthy for ``seconds`` (a test about time itself)."""
    deadline = time.monotonic() + seconds
    while True:
        last = condition()
        if not last:
            raise AssertionError("%s stopped holding %.2fs before the end of %ss; last seen: %r"
                                 % (what, deadline - time.monotonic(), seconds, last))
        if time.monotonic() >= deadline:
            return last
        time.sleep(interval)

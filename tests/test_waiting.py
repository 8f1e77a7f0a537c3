"""The suite's one wait helper (tests/waiting.py): it returns as soon as it can, and a timeout says why."""

import time

import pytest

from waiting import WaitTimeout, holds_for, wait_for


def test_returns_the_first_truthy_value_at_once():
    calls = []
    start = time.monotonic()
    assert wait_for(lambda: calls.append(1) or len(calls) >= 3 and "done", what="three calls") == "done"
    assert len(calls) == 3 and time.monotonic() - start < 1


def test_a_timeout_names_what_it_waited_for_and_the_last_value():
    values = iter(range(1000))
    with pytest.raises(WaitTimeout) as err:
        wait_for(lambda: next(values) < 0 or [], timeout=0.1, what="a negative number")
    assert "waiting for a negative number" in str(err.value) and "last seen: []" in str(err.value)
    assert isinstance(err.value, AssertionError)


def test_a_callable_what_is_evaluated_only_at_the_timeout():
    log = []
    with pytest.raises(WaitTimeout, match="the log: late line"):
        wait_for(lambda: log.append("late line") and False, timeout=0.05, what=lambda: "the log: " + log[-1])


def test_ignored_exceptions_mean_not_yet_and_show_as_the_last_value():
    with pytest.raises(WaitTimeout, match="ConnectionRefusedError"):
        wait_for(lambda: (_ for _ in ()).throw(ConnectionRefusedError()), timeout=0.05, ignore=(OSError,))
    with pytest.raises(KeyError):
        wait_for(lambda: {}["x"], timeout=0.05, ignore=(OSError,))


def test_holds_for_fails_as_soon_as_the_condition_breaks():
    start = time.monotonic()
    with pytest.raises(AssertionError, match="quiet stopped holding"):
        holds_for(lambda: time.monotonic() - start < 0.05, 5, what="quiet")
    assert time.monotonic() - start < 1
    assert holds_for(lambda: "yes", 0.05) == "yes"

"""The reference client's wait for the reply lock: bounded, in the main thread and in others."""

import fcntl
import os
import signal
import threading
import time

import pytest

from ledd.client import DaemonTimeout


def hold_reply_lock(ledd):
    fd = os.open(str(ledd.runtime_dir / "ledd.reply"), os.O_RDONLY | os.O_NONBLOCK)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_main_thread_wait_ends_at_the_deadline_and_restores_sigalrm(ledd):
    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGALRM, mine)
    fd = hold_reply_lock(ledd)
    try:
        start = time.monotonic()
        with pytest.raises(DaemonTimeout):
            ledd.client(timeout=0.3).state()
        assert 0.25 < time.monotonic() - start < 1.5
        assert signal.getsignal(signal.SIGALRM) is mine
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        os.close(fd)
        signal.signal(signal.SIGALRM, previous)
    assert ledd.client().state()["backend"] == "sim"


def test_other_thread_wait_ends_at_the_deadline(ledd):
    fd = hold_reply_lock(ledd)
    outcome = []

    def worker():
        try:
            ledd.client(timeout=0.3).state()
            outcome.append("answered")
        except DaemonTimeout:
            outcome.append("timeout")

    try:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(5)
    finally:
        os.close(fd)
    assert outcome == ["timeout"]


def test_lock_released_mid_wait_is_taken_at_once(ledd):
    fd = hold_reply_lock(ledd)
    timer = threading.Timer(0.2, os.close, (fd,))
    timer.start()
    start = time.monotonic()
    assert ledd.client(timeout=2).state()["backend"] == "sim"
    assert time.monotonic() - start < 1.5
    timer.join()

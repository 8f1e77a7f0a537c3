"""The factory's one watcher: a ``WATCH`` subscription kept in a gpiozero thread.

Every event (ledd's whole state, after each change) goes into the factory's
cache; a button's edge fires its pin's ``when_changed`` from this thread, as
gpiozero's native factories fire theirs from a thread of their own.
"""

import json
import os
import select
import threading

from gpiozero.threads import GPIOThread

from ledd import defaults
from ledd.client import LeddError, Watcher

__all__ = ["EventThread"]


class EventThread(GPIOThread):
    """Holds one WATCH subscription; feeds the cache and fires when_changed.

    Sleeps in poll() on the event FIFO and a wake-up pipe. When ledd goes, it
    re-subscribes every ``GPIOZERO_RECONNECT_S`` until ledd is back (the only
    periodic wake-up, and only while ledd is down).
    """

    def __init__(self, factory):
        super().__init__(target=self._run)
        self.name = "ledd-events"
        self.factory = factory
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    def join(self, timeout=None):
        """Wake the poll first: gpiozero's exit handler sets ``stopping`` and joins."""
        self.stopping.set()
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass
        if threading.current_thread() is not self:
            super().join(timeout)
        if not self.is_alive() and self._wake_w >= 0:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    def _run(self):
        factory = self.factory
        while not self.stopping.is_set():
            try:
                watcher = Watcher(factory.client)
            except LeddError:
                factory.connected.clear()
                self.stopping.wait(defaults.GPIOZERO_RECONNECT_S)
                continue
            try:
                factory.load_settings()  # a new ledd may have a new config
                self._follow(watcher)
            except LeddError:
                pass  # EOF: ledd stopped or dropped us; subscribe again
            finally:
                factory.connected.clear()
                watcher.close()

    def _follow(self, watcher):
        poller = select.poll()
        poller.register(watcher.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        first = True
        while not self.stopping.is_set():
            while True:
                line = watcher.next_event(0)
                if line is None:
                    break
                self.factory.dispatch(json.loads(line), reconnected=first)
                if first:
                    first = False
                    self.factory.connected.set()
            poller.poll()

"""Publishing from a background thread, for a process that answers producers (the API).

operations.submit() answers once the messages are committed (invariant 1 needs nothing more), and hands what it
created to this relay, which publishes in the background: everything handed over while it was busy goes out in one
broker round trip and one dispatch record per queue. Under load that spreads a publish over many requests instead
of charging every request one, and a slow or absent broker never holds an answer up.

Nothing here can lose a message: a message the relay has not published yet (the process was killed, the broker is
away) is committed and undispatched, so the sweeper publishes it (dispatch_due), as it would after a crash between
commit and publish anywhere else. stop() publishes what is left; the Hub that owns the relay (wa_queue/hub.py)
calls it when it closes and at interpreter exit.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime

from wa_queue.models import Message, utcnow

log = logging.getLogger(__name__)

Publish = Callable[..., object]  # Publisher.publish(messages, queue, now=...); its result is not needed here


class Relay:
    def __init__(self, publish: Publish, *, gather_s: float = 0.1) -> None:
        self._publish = publish
        self._gather_s = gather_s
        self._lock = threading.Lock()
        self._pending: dict[str, list[Message]] = {}
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def put(self, queue: str, messages: list[Message]) -> None:
        """Hand committed messages over for publishing to `queue`; returns at once."""
        if not messages:
            return
        with self._lock:
            self._pending.setdefault(queue, []).extend(messages)
            self._idle.clear()
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                # Started in the process that uses it (a gunicorn worker, after the fork).
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="waq-relay", daemon=True)
                self._thread.start()
        self._wake.set()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything handed over so far has been published (or given up to the sweeper)."""
        return self._idle.wait(timeout)

    def stop(self) -> None:
        """Publish what is left, in this thread."""
        self._flush(utcnow())

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # A moment (gather_s) to gather what concurrent requests commit meanwhile: every publish also writes a
            # dispatch record, and writes queue for the store's one write lock (nothing a WhatsApp send notices).
            time.sleep(self._gather_s)
            self._wake.clear()
            self._flush(utcnow())

    def _flush(self, now: datetime) -> None:
        with self._lock:
            batch, self._pending = self._pending, {}
        for queue, messages in batch.items():
            try:
                self._publish(messages, queue, now=now)
            except Exception as exc:  # noqa: BLE001 - committed and undispatched: the sweeper publishes them
                log.warning("relay: %d message(s) for %s not published: %s", len(messages), queue, exc)
        with self._lock:
            if not self._pending:
                self._idle.set()

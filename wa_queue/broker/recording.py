"""A publisher for unit tests: it records what it was asked to publish instead of reaching a broker.

Same port as CeleryPublisher (publisher.Publisher), and held to the same contract (tests/contract/
test_publisher.py): it records the dispatch in the store it was given, and a refusing one (`refuse = True`)
returns False, raises nothing and records nothing."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from datetime import datetime

from wa_queue.models import Message, utcnow
from wa_queue.store import MessageStore


@dataclasses.dataclass(frozen=True)
class Published:
    ids: list[str]
    queue: str
    countdown: float | None


class RecordingPublisher:
    def __init__(self, store: MessageStore | None = None, *, epoch: str = "recording", refuse: bool = False,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.epoch = epoch
        self.refuse = refuse
        self.clock = clock
        self.published: list[Published] = []
        self._lock = threading.Lock()

    def publish(self, messages: Iterable[Message], queue: str, *, countdown: float | None = None,
                now: datetime | None = None) -> bool:
        messages = list(messages)
        if not messages:
            return True
        if self.refuse:
            return False
        with self._lock:
            self.published.append(Published([m.id for m in messages], queue, countdown))
        if self.store is not None:
            self.store.mark_dispatched([m.id for m in messages], now=now or self.clock(), epoch=self.epoch,
                                       queue=queue)
        return True

    def queue_length(self, queue: str) -> int:
        """Everything published to `queue` so far (nothing consumes it)."""
        with self._lock:
            return sum(len(p.ids) for p in self.published if p.queue == queue)

    def current_epoch(self, fresh: bool = False) -> str:
        return self.epoch

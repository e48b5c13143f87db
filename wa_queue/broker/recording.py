"""A publisher for unit tests: it records what it was asked to publish instead of reaching a broker.

Same port as CeleryPublisher (publisher.Publisher), and held to the same contract (tests/contract/
test_publisher.py): it records the dispatch in the store it was given, and a refusing one (`refuse = True`)
returns False, raises nothing and records nothing."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from datetime import datetime

from wa_queue.models import Message, plain, utcnow
from wa_queue.store import MessageStore


@dataclasses.dataclass(frozen=True)
class Published:
    ids: list[str]
    queue: str
    countdown: float | None
    priorities: list[str] = dataclasses.field(default_factory=list)
    front: bool = False


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
                now: datetime | None = None, front: bool = False) -> bool:
        messages = list(messages)
        if not messages:
            return True
        if self.refuse:
            return False
        with self._lock:
            self.published.append(Published([m.id for m in messages], queue, countdown,
                                            [plain(m.priority) for m in messages], front))
        if self.store is not None:
            self.store.mark_dispatched([m.id for m in messages], now=now or self.clock(), epoch=self.epoch,
                                       queue=queue)
        return True

    def queue_length(self, queue: str, priorities: Iterable[str] | None = None) -> int:
        """Everything published to `queue` so far (nothing consumes it), of these priorities when given."""
        wanted = None if priorities is None else set(priorities)
        with self._lock:
            return sum(1 for p in self.published if p.queue == queue
                       for priority in p.priorities if wanted is None or priority in wanted)

    def current_epoch(self, fresh: bool = False) -> str:
        return self.epoch

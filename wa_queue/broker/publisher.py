"""Publishing send tasks to the broker, after the store has committed them (invariant 1).

`Publisher` is the port; `CeleryPublisher` the one the processes use (Celery's queues on Redis, through the
hand-made kombu envelope of envelope.py); wa_queue/broker/recording.py the one unit tests use.
tests/contract/test_publisher.py runs the same tests against both."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from wa_queue import names
from wa_queue.broker.envelope import Envelopes
from wa_queue.broker.epoch import BrokerEpoch
from wa_queue.models import Message, plain, utcnow
from wa_queue.store import MessageStore

if TYPE_CHECKING:
    import redis
    from celery import Celery

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, messages: Iterable[Message], queue: str, *, countdown: float | None = None,
                now: datetime | None = None, front: bool = False) -> bool:
        """Publish one send task per message to `queue` (after `countdown` seconds) at its message's priority, then
        record the dispatch in the store (the epoch and the queue). `front`: ahead of the tasks of the same
        priority already waiting (a message handed back keeps its place; on Redis, the only broker that honours it).
        False when the broker refused them: nothing recorded, nothing raised (the store keeps them and the sweeper
        publishes them later). Publishing nothing is True."""

    def queue_length(self, queue: str, priorities: Iterable[str] | None = None) -> int:
        """Tasks waiting in a queue: of every priority, or of these (names.PRIORITY_STEPS' keys)."""

    def current_epoch(self, fresh: bool = False) -> str:
        """The broker's epoch (epoch.py); `fresh` bypasses any cache."""


class CeleryPublisher:
    """Send tasks onto Celery's queues. Holds the broker's epoch and the envelope templates of its Celery app."""

    def __init__(self, store: MessageStore, celery: Celery, client: redis.Redis, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.celery = celery
        self.client = client
        self.clock = clock
        self.epoch = BrokerEpoch(client)
        self.envelopes = Envelopes(celery)
        self._redis = str(celery.conf.broker_url).startswith(("redis://", "rediss://"))

    def queue_length(self, queue: str, priorities: Iterable[str] | None = None) -> int:
        """kombu's Redis transport keeps each queue as one list per priority step (names.priority_list)."""
        keys = [names.priority_list(queue, p) for p in (names.PRIORITY_STEPS if priorities is None else priorities)]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.llen(key)
        return sum(int(n) for n in pipe.execute())

    def current_epoch(self, fresh: bool = False) -> str:
        return self.epoch.current(fresh=fresh)

    def publish(self, messages: Iterable[Message], queue: str, *, countdown: float | None = None,
                now: datetime | None = None, front: bool = False) -> bool:
        """Called only after the messages are committed (invariant 1). A crash between the two steps leaves the
        dispatch unrecorded, and the sweeper publishes again: at worst a duplicate task, which the claim makes
        harmless."""
        messages = list(messages)
        if not messages:
            return True
        try:
            epoch = self.epoch.current()
        except Exception as exc:  # noqa: BLE001 - a broker outage must not fail an enqueue that is already committed
            log.warning("broker unreachable while publishing %d message(s): %s; the sweeper will retry",
                        len(messages), exc)
            return False
        try:
            if self._redis:
                self.envelopes.push(self.client, messages, queue, countdown, front=front)
            else:
                for message in messages:
                    # exchange='' with routing_key=queue: kombu's Redis transport pushes straight onto the queue's
                    # list instead of looking up exchange bindings, which a FLUSHALL would have erased.
                    self.celery.send_task(names.TASK_SEND, args=[message.id, message.attempts], queue=queue,
                                          exchange="", routing_key=queue, countdown=countdown,
                                          priority=names.PRIORITY_STEPS.get(plain(message.priority),
                                                                        names.PRIORITY_STEPS["normal"]))
        except Exception as exc:  # noqa: BLE001 - the store keeps them: the sweeper republishes what did not go out
            log.warning("publish of %d message(s) to %s failed: %s; the sweeper will retry", len(messages), queue,
                        exc)
            return False
        self.store.mark_dispatched([m.id for m in messages], now=now or self.clock(), epoch=epoch, queue=queue)
        return True


def queue_for(session: str | None) -> str:
    return names.session_queue(session) if session else names.DEFAULT_QUEUE

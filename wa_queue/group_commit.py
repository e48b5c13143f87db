"""Group commit: requests from concurrent threads share one store commit and one broker round trip.

An API worker serves several requests at once (gunicorn threads). Alone, each would pay its own durable commit and its
own broker round trip, and the threads would queue one by one for the store's single writer. Here the first caller
becomes the leader: it takes every request queued so far, runs them as one batch, hands each caller its own result, and
wakes the rest; whoever arrived meanwhile forms the next batch. A caller alone pays one lock round and nothing else.
With a `finish` step (message_commit: the fsync, then the hand-over to the publisher) the next batch starts as soon as
this one has committed, while this one's finish runs. Nobody answers before the batch that holds its request has
committed and finished (invariant 1 holds).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from wa_queue.broker.publisher import queue_for
from wa_queue.models import Message, NewMessage
from wa_queue.sessions import is_available

if TYPE_CHECKING:
    from wa_queue.hub import Hub

P = TypeVar("P")
R = TypeVar("R")


class _Slot(Generic[P, R]):
    __slots__ = ("payload", "result", "error", "wake", "lead")

    def __init__(self, payload: P) -> None:
        self.payload = payload
        self.result: R | None = None
        self.error: BaseException | None = None
        # Released when done, or when this slot is to lead the next batch. A bare lock, made only for a caller
        # that has to wait: an Event (a Condition around a lock) costs more on every request.
        self.wake: threading.Lock | None = None
        self.lead = False


class GroupCommit(Generic[P, R]):
    """`run(payload)` returns `work([...payloads])[i]` for its own payload; `work` sees batches in arrival order.

    `work` returns one result per payload, in order; a result that is an Exception is raised in its caller only.
    An exception raised by `work` itself fails every caller of that batch (nothing of it was committed, if `work`
    runs it in one transaction). `finish(results)`, when given, runs after `work` once the next batch may start
    (its leader commits meanwhile); the callers are answered when it returns, and fail if it raises."""

    def __init__(self, work: Callable[[list[P]], list[R | Exception]], *,
                 finish: Callable[[list[R | Exception]], None] | None = None, max_batch: int = 64) -> None:
        self._work = work
        self._finish = finish
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot[P, R]] = []
        self._busy = False

    def run(self, payload: P) -> R:
        slot: _Slot[P, R] = _Slot(payload)
        with self._lock:
            if self._busy:
                slot.wake = threading.Lock()
                slot.wake.acquire()
                self._queue.append(slot)
            else:
                self._busy = slot.lead = True
        if slot.wake is not None:
            slot.wake.acquire()  # each waiter on its own lock: a finished batch wakes only its own callers
        if slot.lead:
            with self._lock:
                batch, self._queue = [slot, *self._queue[:self._max_batch - 1]], self._queue[self._max_batch - 1:]
            self._lead(batch)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(self, batch: list[_Slot[P, R]]) -> None:
        handed_over = False
        try:
            results = self._work([s.payload for s in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"group commit: {len(results)} results for {len(batch)} requests")
            # The next batch may commit now: overlapping it with this one's fsync (finish) is what keeps the
            # store busy when an fsync takes longer than a commit.
            self._hand_over()
            handed_over = True
            if self._finish is not None:
                self._finish(results)
            for slot, result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    slot.error = result
                else:
                    slot.result = result
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch, the leader included
            for slot in batch:
                slot.error = exc
        finally:
            if not handed_over:
                self._hand_over()
            for slot in batch[1:]:
                slot.wake.release()  # type: ignore[union-attr]

    def _hand_over(self) -> None:
        """The oldest waiter leads the next batch; with nobody waiting, the next caller will."""
        with self._lock:
            if self._queue:
                successor = self._queue.pop(0)
                successor.lead = True
                successor.wake.release()  # type: ignore[union-attr]
            else:
                self._busy = False


def message_commit(hub: Hub) -> GroupCommit[list[NewMessage], list[tuple[Message, bool]]]:
    """The Hub's group commit of messages (operations.submit): concurrent calls share a commit and a publish."""
    return GroupCommit(lambda groups: _commit_groups(hub, groups), finish=lambda results: _finish_groups(hub, results))


def _commit_groups(hub: Hub, groups: list[list[NewMessage]]) -> list[list[tuple[Message, bool]] | Exception]:
    """The group commit's batch: one transaction for every caller's messages, each key's daily quota counted in it
    (a group over its key's quota gets QuotaExceeded, nothing of it stored). Not yet durable: _finish_groups."""
    settings = hub.settings
    owners = {new.enqueued_by for news in groups for new in news if new.enqueued_by is not None}
    quotas = {name: settings.daily_quota_for(name) for name in owners}
    return hub.store.insert_groups(groups, hub.clock(), durable=False,
                                   quotas={name: q for name, q in quotas.items() if q > 0})


def _finish_groups(hub: Hub, results: list[list[tuple[Message, bool]] | Exception]) -> None:
    """While the next batch commits: make this one durable (an fsync shared with other batches), then publish
    what it created, one publish per queue (replays were published before), here or by the background publisher.
    A message scheduled for later is not published: the store keeps it, and the sweeper publishes it when it falls
    due (a broker countdown past the visibility timeout is delivered twice, kombu issue 337)."""
    hub.store.make_durable()
    now = hub.clock()
    by_queue: dict[str, list[Message]] = {}
    available: dict[str, bool] = {}
    for result in results:
        if isinstance(result, Exception):
            continue
        for message, created in result:
            if created and message.next_attempt_at <= now:
                by_queue.setdefault(_initial_queue(hub, message, available, now), []).append(message)
    relay = hub.relay
    for queue, messages in by_queue.items():
        if relay is not None:
            relay.put(queue, messages)
        else:
            hub.publisher.publish(messages, queue, now=now)


def _initial_queue(hub: Hub, message: Message, available: dict[str, bool], now: datetime) -> str:
    """The producer's session when it can send now; otherwise any session. `available` caches it per batch."""
    session = message.session
    if not session:
        return queue_for(None)
    if session not in available:
        available[session] = is_available(hub.store.get_session(session), hub.settings, now)
    return queue_for(session if available[session] else None)

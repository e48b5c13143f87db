"""Beat's jobs and a starting worker's clean-up: what makes lost and stuck work come back."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta

from wa_queue import names, procs, sessions
from wa_queue.broker.publisher import Publisher, queue_for
from wa_queue.models import Message
from wa_queue.settings import Settings
from wa_queue.store import MessageStore

log = logging.getLogger(__name__)

_BATCH = 500
_MAX_BATCHES = 200  # per queue and job run: a larger backlog is finished by the next runs


@dataclasses.dataclass
class SweepReport:
    republished: int = 0
    rerouted: int = 0
    recovered: int = 0


def expire_due(store: MessageStore, now: datetime, *, on_change: Callable[[Message], None] | None = None) -> int:
    """End `expired` every pending or paused message past its expires_at that is not in doubt (a doubt is settled by
    the session that clicked, at its next claim). Returns how many; `on_change` gets each (its status callback)."""
    count = 0
    for _ in range(_MAX_BATCHES):
        batch = store.list_expiring(now=now, limit=_BATCH)
        done = [m for m in (store.expire(m.id, owner=None, now=now) for m in batch) if m is not None]
        for message in done:
            if on_change is not None:
                on_change(message)
        count += len(done)
        if len(batch) < _BATCH:
            break
    if count:
        log.info("expiry sweep: %d message(s) expired unsent", count)
    return count


def dispatch_due(store: MessageStore, settings: Settings, now: datetime, *, publisher: Publisher) -> SweepReport:
    """Publish every due pending message whose task the broker no longer holds (invariant 2)."""
    report = SweepReport()
    epoch = publisher.current_epoch(fresh=True)
    for _ in range(1000):  # bounded: a huge backlog is finished by the next sweeps
        batch = store.list_undispatched(now=now, epoch=epoch, limit=_BATCH)
        if not batch:
            break
        published = _republish(store, settings, now, batch, publisher)
        report.republished += published
        if published < len(batch):
            break  # the broker refused some: the next sweep tries again
    report.republished += republish_overdue(store, settings, now, publisher=publisher)
    report.rerouted = reroute_from_dead_sessions(store, settings, now, publisher=publisher)
    if report.republished:
        log.info("dispatch sweep: republished %d message(s)", report.republished)  # the epoch logs a new epoch
    return report


def _by_target_queue(
    store: MessageStore, settings: Settings, now: datetime, messages: list[Message]
) -> dict[str, list[Message]]:
    available = {
        name for name in settings.sessions if sessions.is_available(store.get_session(name), settings, now)
    }
    grouped: dict[str, list[Message]] = {}
    for message in messages:
        preferred = message.doubt_session or message.session
        queue = queue_for(preferred if preferred in available else None)
        grouped.setdefault(queue, []).append(message)
    return grouped


def republish_overdue(store: MessageStore, settings: Settings, now: datetime, *, publisher: Publisher) -> int:
    """A task can also vanish without the broker losing its data: a worker SIGKILLed while it held a task it had
    not yet claimed, or a countdown retry, leaves it unacked until the visibility timeout (hours). A message long
    overdue whose queue is empty cannot be waiting in that queue, so it is published again; if its task does turn
    up later, the claim makes it a no-op. A queue with a backlog is left alone: its messages are waiting their turn."""
    grace = now - timedelta(seconds=settings.redispatch_after_s)
    again = 0
    for queue in store.dispatch_queues():
        if publisher.queue_length(queue) != 0:
            continue
        moved = _drain(store, queue, now=grace, dispatched_before=grace,
                       publish_batch=lambda batch: _republish(store, settings, now, batch, publisher))
        if moved:
            log.info("republished %d overdue message(s) whose queue %s is empty", moved, queue)
        again += moved
    return again


def reroute_from_dead_sessions(store: MessageStore, settings: Settings, now: datetime, *,
                               publisher: Publisher) -> int:
    """Messages waiting in the queue of a session that cannot send (or is no longer configured) go to one that can."""
    moved = 0
    stale = now - timedelta(seconds=settings.health_interval_s)
    for queue in store.dispatch_queues():
        if not queue.startswith(names.SESSION_QUEUE_PREFIX):
            continue
        name = queue[len(names.SESSION_QUEUE_PREFIX):]
        if name in settings.sessions and sessions.is_available(store.get_session(name), settings, now):
            continue
        target = sessions.pick_session(store, settings, now, exclude=name)
        count = _drain(store, queue, now=now, dispatched_before=stale,
                       publish_batch=_to_queue(publisher, queue_for(target), now))
        if count:
            log.info("rerouted %d message(s) from unavailable session %s to %s", count, name, target or "any session")
        moved += count
    return moved


def recover_stuck(store: MessageStore, settings: Settings, now: datetime, *, publisher: Publisher) -> int:
    """processing with an expired lease -> pending, then published again (invariant 4)."""
    recovered = []
    for message in store.list_expired_leases(now=now):
        back = store.recover(message.id, owner=message.lease_owner or "", now=now, reason="lease expired")
        if back is not None:
            recovered.append(back)
    _republish(store, settings, now, recovered, publisher)
    return len(recovered)


def free_own_leases(store: MessageStore, settings: Settings, session: str, hostname: str, now: datetime, *,
                    publisher: Publisher) -> int:
    """A starting worker gives back the leases of dead worker processes of its session on this host; a live
    process's leases are never taken."""
    recovered = []
    for message in store.list_leases(owner_prefix=f"{session}/{hostname}/"):
        pid = int((message.lease_owner or "0").rsplit("/", 1)[-1] or 0)
        if pid and procs.alive(pid) and pid != os.getpid():  # a zombie's leases are free
            continue
        back = store.recover(message.id, owner=message.lease_owner or "", now=now, reason="worker restarted")
        if back is not None:
            recovered.append(back)
    _republish(store, settings, now, recovered, publisher)
    return len(recovered)


def republish_queue(store: MessageStore, settings: Settings, queue: str, now: datetime, *,
                    publisher: Publisher) -> int:
    """A worker that was SIGKILLed may have held a reserved task the broker will not give back before its
    visibility timeout: at start, publish due messages last sent to our queue again (duplicates are no-ops)."""
    return _drain(store, queue, now=now, dispatched_before=now, publish_batch=_to_queue(publisher, queue, now))


def _drain(store: MessageStore, queue: str, *, now: datetime, dispatched_before: datetime,
           publish_batch: Callable[[list[Message]], int]) -> int:
    """Publish, a batch at a time, the due pending messages last sent to `queue` before `dispatched_before`; each
    publish records a new dispatch at a later time, which takes the batch out of the next query. Stops when the
    broker refuses a batch (the next run tries again)."""
    total = 0
    for _ in range(_MAX_BATCHES):
        batch = store.list_dispatched_to(queue, now=now, dispatched_before=dispatched_before, limit=_BATCH)
        published = publish_batch(batch) if batch else 0
        total += published
        if published < _BATCH:
            break
    return total


def archive_failed(store: MessageStore, settings: Settings, now: datetime) -> int:
    moved = store.archive_failed(older_than=now - timedelta(days=settings.archive_after_days), now=now)
    if moved:
        log.info("archived %d failed message(s) older than %d days", moved, settings.archive_after_days)
    return moved


def _to_queue(publisher: Publisher, queue: str, now: datetime) -> Callable[[list[Message]], int]:
    return lambda batch: len(batch) if publisher.publish(batch, queue, now=now) else 0


def _republish(store: MessageStore, settings: Settings, now: datetime, messages: list[Message],
               publisher: Publisher) -> int:
    """Publish each message to its preferred session's queue when that session can send, else to any; returns how
    many the broker took."""
    return sum(len(group) for queue, group in _by_target_queue(store, settings, now, messages).items()
               if publisher.publish(group, queue, now=now))

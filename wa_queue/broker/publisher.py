"""Publishing send tasks to the broker, after the store has committed them (invariant 1)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from wa_queue import names, runtime
from wa_queue.broker.envelope import push_redis
from wa_queue.broker.epoch import current_epoch
from wa_queue.models import Message, utcnow
from wa_queue.settings import get_settings

log = logging.getLogger(__name__)


def queue_length(queue: str) -> int:
    """Tasks waiting in a queue (kombu's Redis transport keeps each queue as a list under its name)."""
    return int(runtime.broker_redis().llen(queue))


def publish(messages: Iterable[Message], queue: str, *, countdown: float | None = None,
            now: datetime | None = None) -> bool:
    """Publish one send task per message to `queue`, then record the dispatch in the store. False when the broker
    refused them (logged; the store keeps them and the sweeper publishes them later).

    Called only after the messages are committed (invariant 1). A crash between the two steps leaves the dispatch
    unrecorded, and the sweeper publishes again: at worst a duplicate task, which the claim makes harmless."""
    messages = list(messages)
    if not messages:
        return True
    app = runtime.celery()
    try:
        epoch = current_epoch()
    except Exception as exc:  # noqa: BLE001 - a broker outage must not fail an enqueue that is already committed
        log.warning("broker unreachable while publishing %d message(s): %s; the sweeper will retry", len(messages),
                    exc)
        return False
    try:
        if get_settings().broker_url.startswith(("redis://", "rediss://")):
            push_redis(app, messages, queue, countdown)
        else:
            for message in messages:
                # exchange='' with routing_key=queue: kombu's Redis transport pushes straight onto the queue's
                # list instead of looking up exchange bindings, which a FLUSHALL would have erased.
                app.send_task(names.TASK_SEND, args=[message.id, message.attempts], queue=queue, exchange="",
                              routing_key=queue, countdown=countdown)
    except Exception as exc:  # noqa: BLE001 - the store keeps them: the sweeper republishes what did not go out
        log.warning("publish of %d message(s) to %s failed: %s; the sweeper will retry", len(messages), queue, exc)
        return False
    runtime.store().mark_dispatched([m.id for m in messages], now=now or utcnow(), epoch=epoch, queue=queue)
    return True


def queue_for(session: str | None) -> str:
    return names.session_queue(session) if session else names.DEFAULT_QUEUE

"""Publishing send tasks, and noticing when the broker lost them.

The broker may forget everything (invariant 2). Each publish records the broker's current *epoch*, a random id kept
in a key of the broker's own Redis. When Redis is flushed or restarts empty the key goes with the queued tasks, the
sweeper sees it missing, starts a new epoch, and republishes every due pending message recorded under another one.
Backlogged messages still queued in a live broker keep their epoch and are not published twice.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from wa_queue import names, runtime
from wa_queue.models import Message, utcnow
from wa_queue.settings import get_settings

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

_EPOCH_CACHE_S = 5.0
_epoch_cache: list[object] = [None, 0.0]


def current_epoch(*, fresh: bool = False) -> str:
    """The broker epoch, created when missing, cached a few seconds (a stale value only causes a harmless extra
    publish). Anyone may create it: what matters is that tasks recorded under an older epoch are republished."""
    cached, at = _epoch_cache
    if cached and not fresh and time.monotonic() - float(at) < _EPOCH_CACHE_S:  # type: ignore[arg-type]
        return str(cached)
    client = runtime.broker_redis()
    value = client.get(names.BROKER_EPOCH_KEY)
    if value is None:
        client.set(names.BROKER_EPOCH_KEY, uuid.uuid4().hex, nx=True)
        value = client.get(names.BROKER_EPOCH_KEY)
        log.warning("new broker epoch: the broker is new or lost its data; older tasks will be republished")
    epoch = value.decode() if isinstance(value, bytes) else str(value)
    _epoch_cache[0], _epoch_cache[1] = epoch, time.monotonic()
    return epoch


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
            _push_redis(app, messages, queue, countdown)
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


_templates: dict[tuple[int, str], str] = {}
_FIELDS = ("@@TASK_ID@@", "@@ARGSREPR@@", "@@BODY@@", "@@TAG@@")
_EMBED_JSON = json.dumps({"callbacks": None, "errbacks": None, "chain": None, "chord": None})


def _template(app: Celery, queue: str, countdown: float | None) -> str:
    """The JSON of a whole kombu envelope for a send task to `queue`, as a str.format() template with the fields
    that differ per message: {task_id}, {argsrepr}, {body} and {tag}. Celery makes the task message itself
    (amqp.as_task_v2); without a countdown it never changes, so it is made once per app and queue; with one, the
    ETA differs each time."""
    key = (id(app), queue)
    if countdown is None and key in _templates:
        return _templates[key]
    message = app.amqp.as_task_v2(uuid.uuid4().hex, names.TASK_SEND, args=["", 0], countdown=countdown)
    task_id, argsrepr, body, tag = _FIELDS
    headers = {**message.headers, "id": task_id, "root_id": task_id, "argsrepr": argsrepr}
    envelope = {
        "body": body, "content-encoding": "utf-8", "content-type": "application/json", "headers": headers,
        "properties": {
            "correlation_id": task_id, "reply_to": message.properties.get("reply_to"), "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0, "body_encoding": "base64",
            "delivery_tag": tag,
        },
    }
    names_of = dict(zip(_FIELDS, ("{task_id}", "{argsrepr}", "{body}", "{tag}"), strict=True))
    parts = re.split("(" + "|".join(_FIELDS) + ")", json.dumps(envelope))
    template = "".join(names_of[part] if i % 2 else part.replace("{", "{{").replace("}", "}}")
                       for i, part in enumerate(parts))
    if countdown is None:
        _templates[key] = template
    return template


def _push_redis(app: Celery, messages: list[Message], queue: str, countdown: float | None) -> None:
    """Tasks in one Redis round trip, in the exact envelope kombu's Redis transport writes.

    Celery's send_task costs 0.6-1.4 ms a message (routing, entity declaration, a Redis client per call): it was
    most of an API enqueue and capped batched enqueues at a third of their goal. The envelope is made once by
    Celery itself and filled in with each message's task id, arguments and delivery tag (serialising the whole
    envelope per message was a tenth of an API enqueue); workers cannot tell the difference, which the pipeline
    tests check by consuming them."""
    fill = _template(app, queue, countdown).format
    envelopes = []
    for message in messages:
        task_id, tag = _uuid4_pair()
        args = [message.id, message.attempts]
        body = f"[{json.dumps(args)}, {{}}, {_EMBED_JSON}]"
        envelopes.append(fill(task_id=task_id, argsrepr=json.dumps(repr(args))[1:-1], tag=tag,
                              body=base64.b64encode(body.encode()).decode()))
    runtime.broker_redis().lpush(queue, *envelopes)


def _uuid4_pair() -> tuple[str, str]:
    """Two random (version 4) UUID strings, the task id and the delivery tag, from one urandom call: uuid.uuid4()
    twice was a third of the cost of an envelope."""
    raw = bytearray(os.urandom(32))
    for offset in (0, 16):
        raw[offset + 6] = raw[offset + 6] & 0x0F | 0x40  # version 4
        raw[offset + 8] = raw[offset + 8] & 0x3F | 0x80  # variant 0b10
    h = raw.hex()
    return (f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
            f"{h[32:40]}-{h[40:44]}-{h[44:48]}-{h[48:52]}-{h[52:64]}")


def queue_for(session: str | None) -> str:
    return names.session_queue(session) if session else names.DEFAULT_QUEUE

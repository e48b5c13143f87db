"""Send tasks written straight into kombu's Redis queues, in the envelope kombu's Redis transport itself writes.

tests/unit/test_envelope.py compares it with what Celery's send_task produces, so a Celery or kombu upgrade that
changes the format fails there."""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from wa_queue import names
from wa_queue.models import Message, plain

if TYPE_CHECKING:
    import redis
    from celery import Celery

_FIELDS = ("@@TASK_ID@@", "@@ARGSREPR@@", "@@BODY@@", "@@TAG@@")
_EMBED_JSON = json.dumps({"callbacks": None, "errbacks": None, "chain": None, "chord": None})


class Envelopes:
    """The envelopes of one Celery app's send tasks. Keeps the template of each queue (made by Celery itself) for
    the life of the publisher that owns it."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery
        self._templates: dict[tuple[str, str], str] = {}

    def template(self, queue: str, countdown: float | None, priority: str = "normal") -> str:
        """The JSON of a whole kombu envelope for a send task to `queue`, as a str.format() template with the
        fields that differ per message: {task_id}, {argsrepr}, {body} and {tag}. Celery makes the task message
        itself (amqp.as_task_v2); without a countdown it never changes, so it is made once per queue and priority;
        with one, the ETA differs each time. The priority is the task's kombu priority step (names.PRIORITY_STEPS),
        which a restored unacked task goes back under."""
        if countdown is None:
            cached = self._templates.get((queue, priority))
            if cached is not None:
                return cached
        message = self.celery.amqp.as_task_v2(uuid.uuid4().hex, names.TASK_SEND, args=["", 0], countdown=countdown)
        task_id, argsrepr, body, tag = _FIELDS
        headers = {**message.headers, "id": task_id, "root_id": task_id, "argsrepr": argsrepr}
        envelope = {
            "body": body, "content-encoding": "utf-8", "content-type": "application/json", "headers": headers,
            "properties": {
                "correlation_id": task_id, "reply_to": message.properties.get("reply_to"), "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue}, "priority": names.PRIORITY_STEPS[priority],
                "body_encoding": "base64",
                "delivery_tag": tag,
            },
        }
        names_of = dict(zip(_FIELDS, ("{task_id}", "{argsrepr}", "{body}", "{tag}"), strict=True))
        parts = re.split("(" + "|".join(_FIELDS) + ")", json.dumps(envelope))
        template = "".join(names_of[part] if i % 2 else part.replace("{", "{{").replace("}", "}}")
                           for i, part in enumerate(parts))
        if countdown is None:
            self._templates[(queue, priority)] = template
        return template

    def push(self, client: redis.Redis, messages: list[Message], queue: str, countdown: float | None, *,
             front: bool = False) -> None:
        """Tasks in one Redis round trip, in the exact envelope kombu's Redis transport writes, each on the list of
        its priority (names.priority_list). kombu pushes on the left and takes from the right; `front` pushes on the
        right, so the tasks are the next their list gives (a message handed back keeps its place in line).

        Celery's send_task pays routing, entity declaration and a Redis client per call, work that is the same for every
        message of a queue (BENCHMARKS.md, figures behind other choices). The envelope is made once by Celery itself and
        filled in with each message's task id, arguments and delivery tag (serialising the whole envelope per message
        costs more than the fill); workers cannot tell the difference, which the pipeline tests check by consuming
        them."""
        by_list: dict[str, list[str]] = {}
        lanes: dict[object, tuple[Callable[..., str], list[str]]] = {}  # the message's priority -> (fill, its list)
        for message in messages:
            lane = lanes.get(message.priority)
            if lane is None:
                priority = plain(message.priority)
                priority = priority if priority in names.PRIORITY_STEPS else "normal"  # a value this code does not know
                lane = lanes[message.priority] = (self.template(queue, countdown, priority).format,
                                                  by_list.setdefault(names.priority_list(queue, priority), []))
            fill, envelopes = lane
            task_id, tag = _uuid4_pair()
            args = [message.id, message.attempts]
            body = f"[{json.dumps(args)}, {{}}, {_EMBED_JSON}]"
            envelopes.append(fill(task_id=task_id, argsrepr=json.dumps(repr(args))[1:-1], tag=tag,
                                  body=base64.b64encode(body.encode()).decode()))
        if len(by_list) == 1:
            key, envelopes = next(iter(by_list.items()))
            (client.rpush if front else client.lpush)(key, *(reversed(envelopes) if front else envelopes))
            return
        pipe = client.pipeline(transaction=False)
        for key, envelopes in by_list.items():
            (pipe.rpush if front else pipe.lpush)(key, *(reversed(envelopes) if front else envelopes))
        pipe.execute()


def _uuid4_pair() -> tuple[str, str]:
    """Two random (version 4) UUID strings, the task id and the delivery tag, from one urandom call: a system call
    per envelope rather than two, on the path of every enqueue (BENCHMARKS.md, figures behind other choices)."""
    raw = bytearray(os.urandom(32))
    for offset in (0, 16):
        raw[offset + 6] = raw[offset + 6] & 0x0F | 0x40  # version 4
        raw[offset + 8] = raw[offset + 8] & 0x3F | 0x80  # variant 0b10
    h = raw.hex()
    return (f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
            f"{h[32:40]}-{h[40:44]}-{h[44:48]}-{h[48:52]}-{h[52:64]}")

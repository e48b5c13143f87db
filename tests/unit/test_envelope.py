"""The kombu envelope that the publisher builds by hand (envelope.Envelopes.push) against the one Celery's own send_task
writes for the same task to the same queue, both read back from a real redis-server. Every field must match except
those that are random per message (task id, delivery tag) or depend on the moment (the ETA): a Celery or kombu
upgrade that changes the format fails here before workers meet an envelope they cannot read."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import pytest

from wa_queue import names
from wa_queue.broker import envelope
from wa_queue.hub import default_hub
from wa_queue.models import Message, NewMessage, Priority, utcnow

QUEUE = names.session_queue("primary")
TASK_ID = "11111111-2222-4333-8444-555555555555"


def _pop(client: Any, queue: str) -> dict[str, Any]:
    raw = client.rpop(queue)
    assert raw is not None, f"nothing was published to {queue}"
    assert client.llen(queue) == 0
    return json.loads(raw)


def _by_hand(message: Message, countdown: float | None) -> dict[str, Any]:
    envelope.Envelopes(default_hub().celery).push(default_hub().broker, [message], QUEUE, countdown)
    return _pop(default_hub().broker, names.priority_list(QUEUE, message.priority.value))  # type: ignore[union-attr]


def _by_celery(message: Message, countdown: float | None) -> dict[str, Any]:
    """kombu's own Redis put: the list of the priority step, chosen by the transport from the task's priority."""
    default_hub().celery.send_task(names.TASK_SEND, args=[message.id, message.attempts], queue=QUEUE, exchange="",
                                   routing_key=QUEUE, countdown=countdown, task_id=TASK_ID,
                                   priority=names.PRIORITY_STEPS[message.priority.value])  # type: ignore[union-attr]
    return _pop(default_hub().broker, names.priority_list(QUEUE, message.priority.value))  # type: ignore[union-attr]


# Known, harmless differences, each checked for what it is rather than ignored:
# - reply_to: send_task names the publishing thread's oid (where a result would go); no result is ever read for a send
#   task, and the hand-made envelope leaves it empty.
# - ignore_result: send_task writes None, as_task_v2 (which makes the template) False; the worker reads both as
#   "not ignored" and the task itself is declared ignore_result=True.
KNOWN = {("properties", "reply_to"), ("headers", "ignore_result")}


def _comparable(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope with its per-message random values replaced by markers, and its body decoded."""
    out = json.loads(json.dumps(envelope))
    assert isinstance(out["properties"]["reply_to"], str)
    assert not out["headers"]["ignore_result"]
    for part, key in KNOWN:
        out[part][key] = "<known>"
    task_id = out["headers"]["id"]
    assert out["headers"]["root_id"] == task_id and out["properties"]["correlation_id"] == task_id
    for holder, key in ((out["headers"], "id"), (out["headers"], "root_id"), (out["properties"], "correlation_id"),
                        (out["properties"], "delivery_tag")):
        holder[key] = "<random>"
    if out["headers"].get("eta"):
        out["headers"]["eta"] = datetime.fromisoformat(out["headers"]["eta"])  # compared with a tolerance below
    assert out["properties"]["body_encoding"] == "base64"
    out["body"] = json.loads(base64.b64decode(out["body"]))
    return out


@pytest.mark.parametrize("priority", [p.value for p in Priority])
@pytest.mark.parametrize("countdown", [None, 300.0], ids=["now", "countdown"])
def test_the_hand_made_envelope_is_the_one_celery_writes(waq_env: dict[str, str], countdown: float | None,
                                                         priority: str) -> None:
    message, _ = default_hub().store.insert(NewMessage(phone="+14155550123", text="hi", priority=Priority(priority)),
                                            utcnow())
    ours, celerys = _comparable(_by_hand(message, countdown)), _comparable(_by_celery(message, countdown))
    if countdown is not None:
        # Both ETAs are "now + countdown" as each saw it: seconds apart at most, in the same time zone form.
        assert abs((ours["headers"].pop("eta") - celerys["headers"].pop("eta")).total_seconds()) < 60
    assert ours == celerys
    assert ours["body"][0] == [message.id, message.attempts]
    assert ours["headers"]["task"] == names.TASK_SEND


def test_a_difference_is_seen(waq_env: dict[str, str]) -> None:
    """The comparison is not vacuous: a message with other arguments gives another envelope."""
    first, _ = default_hub().store.insert(NewMessage(phone="+14155550123", text="a"), utcnow())
    second, _ = default_hub().store.insert(NewMessage(phone="+14155550124", text="b"), utcnow())
    assert _comparable(_by_hand(first, None)) != _comparable(_by_celery(second, None))

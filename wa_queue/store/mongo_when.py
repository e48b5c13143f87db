"""The MongoDB store's transitions and reads of when and what first: expiry, cancel, a batch's pause and resume,
and the batch queries. A part of MongoStore (wa_queue/store/mongo.py), which gives it `messages`, the table's
transition (`_transition`), `_find` and `get`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.collection import Collection

from wa_queue.models import Message, MessageStatus
from wa_queue.store import lifecycle
from wa_queue.store.base import BatchRow
from wa_queue.store.common import batch_rows, cancel_text
from wa_queue.store.mongo_codec import DUE, EXPIRING, from_db, status_filter, to_db


class MongoWhen:
    """Expiry, cancel, pause and resume, and the batches, over the store's transitions."""

    messages: Collection
    _transition: Callable[..., Any]
    _find: Callable[..., list[Message]]
    get: Callable[[str], Message]

    def expire(self, message_id: str, *, owner: str | None, now: datetime) -> Message | None:
        return self._transition(lifecycle.EXPIRE.write(owner=owner is not None), message_id, now, owner=owner)

    def expire_unsent(self, message_id: str, *, owner: str, now: datetime) -> Message | None:
        return self._transition(lifecycle.EXPIRE_UNSENT.write(), message_id, now, owner=owner)

    def list_expiring(self, *, now: datetime, limit: int = 1000) -> list[Message]:
        # Served by the (status, expires_at) index.
        return self._find({**EXPIRING, "expires_at": {"$lte": to_db(now)}}, [("expires_at", ASCENDING)], limit)

    def cancel(self, message_id: str, *, now: datetime, actor: str) -> Message | None:
        message = self._transition(lifecycle.CANCEL.write(), message_id, now, error_text=cancel_text(actor))
        if message is None:
            self.get(message_id)  # NotFound when absent
        return message

    def pause(self, message_id: str, *, now: datetime, reason: str) -> Message | None:
        return self._transition(lifecycle.PAUSE.write(), message_id, now, error_text=reason)

    def resume(self, message_id: str, *, now: datetime, reason: str) -> Message | None:
        return self._transition(lifecycle.RESUME.write(), message_id, now, error_text=reason)

    def list_batches(self, *, limit: int = 50) -> list[BatchRow]:
        # Counts by one $group; each batch's first enqueue by one look-up each (FerretDB has no $min accumulator).
        groups = list(self.messages.aggregate([
            {"$match": {"batch": {"$ne": None}}},
            {"$group": {"_id": {"batch": "$batch", "status": "$status"}, "n": {"$sum": 1}}},
        ]))
        started = {}
        for name in {g["_id"]["batch"] for g in groups}:
            first = self.messages.find_one({"batch": name}, {"created_at": 1}, sort=[("created_at", ASCENDING)])
            started[name] = from_db(first["created_at"]) if first else None
        return batch_rows([(g["_id"]["batch"], g["_id"]["status"], g["n"], started[g["_id"]["batch"]])
                           for g in groups if started.get(g["_id"]["batch"]) is not None], limit)

    def batches_waiting_on(self, session: str) -> list[str]:
        return sorted(n for n in self.messages.distinct("batch", {**DUE, "session": session}) if n is not None)

    def batch_messages(self, batch: str, *, statuses: tuple[MessageStatus, ...] | None = None) -> list[Message]:
        query = {"batch": batch, **(status_filter(statuses) if statuses else {})}
        return self._find(query, [("_id", ASCENDING)])

    # ---- operator side ---------------------------------------------------------------------------------------

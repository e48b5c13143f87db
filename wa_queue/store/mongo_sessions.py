"""The MongoDB store's session records and number checks: the documents a session worker keeps of itself (state,
pacing slot, warm-up) and the cache of whether a number is on WhatsApp. A part of MongoStore (wa_queue/store/mongo.py),
which gives it its collections, apart from the messages' writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection

from wa_queue.store.base import SessionRecord
from wa_queue.store.common import check_session_fields
from wa_queue.store.mongo_codec import from_db, session_from_doc, session_sets, to_db
from wa_queue.store.mongo_schema import backfill_first_send_day


class MongoSessionRecords:
    """Session records and number checks over the store's collections."""

    messages: Collection
    sessions: Collection
    number_checks: Collection

    def get_session(self, name: str) -> SessionRecord:
        doc = self.sessions.find_one({"_id": name})
        if doc is not None and "first_send_day" not in doc:
            doc = backfill_first_send_day(self.messages, self.sessions, doc)
        return SessionRecord(name) if doc is None else session_from_doc(doc)

    def update_session(self, name: str, **fields: Any) -> SessionRecord:
        check_session_fields(fields)
        fields.setdefault("updated_at", datetime.now(UTC))
        doc = self.sessions.find_one_and_update({"_id": name}, {"$set": session_sets(fields)}, upsert=True,
                                                return_document=ReturnDocument.AFTER)
        return session_from_doc(doc)

    def reserve_send_slot(self, name: str, *, now: datetime, next_send_at: datetime) -> datetime | None:
        self.sessions.update_one({"_id": name}, {"$setOnInsert": {"next_send_at": None}}, upsert=True)
        free = {"_id": name, "$or": [{"next_send_at": None}, {"next_send_at": {"$lte": to_db(now)}}]}
        if self.sessions.find_one_and_update(free, {"$set": {"next_send_at": to_db(next_send_at)}}) is not None:
            return None
        doc = self.sessions.find_one({"_id": name}) or {}
        return from_db(doc.get("next_send_at"))

    def get_number_check(self, phone: str) -> bool | None:
        doc = self.number_checks.find_one({"_id": phone})
        return None if doc is None else bool(doc["registered"])

    def set_number_check(self, phone: str, registered: bool, *, now: datetime) -> None:
        self.number_checks.update_one({"_id": phone}, {"$set": {"registered": registered, "checked_at": to_db(now)}},
                                      upsert=True)

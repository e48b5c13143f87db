"""The MongoDB store's suppression list: one document per number (`_id`: the number). A part of MongoStore
(wa_queue/store/mongo.py), which gives it `db`; the mark's check of the list is in MongoStore.mark_sending."""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from wa_queue.models import Suppression
from wa_queue.names import SUPPRESSIONS
from wa_queue.store.mongo_codec import from_db, to_db


def _suppression(doc: dict[str, Any]) -> Suppression:
    return Suppression(phone=doc["_id"], since=from_db(doc["since"]), by=doc["by"],  # type: ignore[arg-type]
                       session=doc.get("session"), word=doc.get("word"))


class MongoSuppressions:
    db: Database

    def add_suppression(self, suppression: Suppression) -> bool:
        # An upsert that only inserts: the first entry of a number stays (when, from where, by whom).
        result = self.db[SUPPRESSIONS].update_one(
            {"_id": suppression.phone},
            {"$setOnInsert": {"since": to_db(suppression.since), "by": suppression.by, "session": suppression.session,
                              "word": suppression.word}}, upsert=True)
        return result.upserted_id is not None

    def remove_suppression(self, phone: str) -> bool:
        return self.db[SUPPRESSIONS].delete_one({"_id": phone}).deleted_count == 1

    def get_suppression(self, phone: str) -> Suppression | None:
        doc = self.db[SUPPRESSIONS].find_one({"_id": phone})
        return _suppression(doc) if doc is not None else None

    def list_suppressions(self, *, limit: int = 100, offset: int = 0) -> tuple[list[Suppression], int]:
        docs = self.db[SUPPRESSIONS].find({}).sort([("since", DESCENDING), ("_id", 1)]).skip(offset).limit(limit)
        return [_suppression(d) for d in docs], self.db[SUPPRESSIONS].count_documents({})

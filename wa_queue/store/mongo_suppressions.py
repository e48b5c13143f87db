"""The MongoDB store's suppression list: one document per number (`_id`: the number), and its log of changes. A part
of MongoStore (wa_queue/store/mongo.py), which gives it `db`; the mark's check of the list is in
MongoStore.mark_sending."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from wa_queue.models import OptChange, Suppression, SuppressionChange
from wa_queue.names import SUPPRESSION_LOG, SUPPRESSIONS
from wa_queue.store.mongo_codec import from_db, to_db


def _suppression(doc: dict[str, Any]) -> Suppression:
    return Suppression(phone=doc["_id"], since=from_db(doc["since"]), by=doc["by"],  # type: ignore[arg-type]
                       session=doc.get("session"), word=doc.get("word"))


def _change(doc: dict[str, Any]) -> SuppressionChange:
    return SuppressionChange(phone=doc["phone"], change=OptChange(doc["change"]), at=from_db(doc["at"]),  # type: ignore
                             by=doc["by"], session=doc.get("session"), word=doc.get("word"))


class MongoSuppressions:
    db: Database

    def add_suppression(self, suppression: Suppression) -> bool:
        # An upsert that only inserts: the first entry of a number stays (when, from where, by whom). The list is
        # what every check reads, so it is written first; the log line follows (a crash between the two loses the
        # line, never the entry: the MongoDB store uses no multi-document transactions).
        s = suppression
        result = self.db[SUPPRESSIONS].update_one(
            {"_id": s.phone},
            {"$setOnInsert": {"since": to_db(s.since), "by": s.by, "session": s.session, "word": s.word}}, upsert=True)
        if result.upserted_id is None:
            return False
        self._log(s.phone, OptChange.OUT, s.since, s.by, s.session, s.word)
        return True

    def remove_suppression(self, phone: str, *, by: str, at: datetime) -> bool:
        if self.db[SUPPRESSIONS].delete_one({"_id": phone}).deleted_count != 1:
            return False
        self._log(phone, OptChange.IN, at, by, None, None)
        return True

    def _log(self, phone: str, change: OptChange, at: datetime, by: str, session: str | None,
             word: str | None) -> None:
        self.db[SUPPRESSION_LOG].insert_one({"phone": phone, "change": change.value, "at": to_db(at), "by": by,
                                             "session": session, "word": word})

    def get_suppression(self, phone: str) -> Suppression | None:
        doc = self.db[SUPPRESSIONS].find_one({"_id": phone})
        return _suppression(doc) if doc is not None else None

    def list_suppressions(self, *, limit: int = 100, offset: int = 0) -> tuple[list[Suppression], int]:
        docs = self.db[SUPPRESSIONS].find({}).sort([("since", DESCENDING), ("_id", 1)]).skip(offset).limit(limit)
        return [_suppression(d) for d in docs], self.db[SUPPRESSIONS].count_documents({})

    def suppression_log(self, *, phone: str | None = None, limit: int = 100, offset: int = 0
                        ) -> tuple[list[SuppressionChange], int]:
        query = {"phone": phone} if phone else {}
        docs = self.db[SUPPRESSION_LOG].find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).skip(offset) \
            .limit(limit)
        return [_change(d) for d in docs], self.db[SUPPRESSION_LOG].count_documents(query)

"""The MongoDB store's replies: the inbound collection, whose `_id` is the (session, chat, wa_id) key, so a second
insert of one reply fails on the primary key whatever process makes it. A part of MongoStore
(wa_queue/store/mongo.py), which gives it `db`."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from wa_queue.models import ChatNote, InboundMessage, OptChange
from wa_queue.names import CHAT_NOTES, INBOUND, MESSAGES
from wa_queue.store.mongo_codec import from_db, to_db


def inbound_key(session: str, chat: str, wa_id: str) -> str:
    return json.dumps([session, chat, wa_id], ensure_ascii=False)


def chat_note_key(session: str, key: str) -> str:
    """A chat note's `_id`: one note per session and chat."""
    return json.dumps([session, key], ensure_ascii=False)


def _inbound(doc: dict[str, Any]) -> InboundMessage:
    return InboundMessage(id=doc["id"], session=doc["session"], chat=doc["chat"], wa_id=doc["wa_id"],
                          text=doc["text"], phone=doc.get("phone"), received_at=from_db(doc["received_at"]),
                          shown_at=from_db(doc["shown_at"]) if doc.get("shown_at") else None,  # type: ignore
                          reply_to=doc.get("reply_to"), opt=OptChange(doc["opt"]) if doc.get("opt") else None)


class MongoInbound:
    db: Database

    def record_inbound(self, inbound: InboundMessage) -> bool:
        try:
            self.db[INBOUND].insert_one({
                "_id": inbound_key(inbound.session, inbound.chat, inbound.wa_id), "id": inbound.id,
                "session": inbound.session, "chat": inbound.chat,
                "wa_id": inbound.wa_id, "text": inbound.text, "phone": inbound.phone,
                "received_at": to_db(inbound.received_at),
                "shown_at": to_db(inbound.shown_at) if inbound.shown_at else None, "reply_to": inbound.reply_to,
                "opt": inbound.opt.value if inbound.opt else None})
        except DuplicateKeyError:
            return False
        return True

    def note_chat(self, note: ChatNote) -> None:
        self.db[CHAT_NOTES].update_one(
            {"_id": chat_note_key(note.session, note.key)},
            {"$set": {"session": note.session, "key": note.key, "chat": note.chat, "phone": note.phone,
                      "unread": note.unread, "at": to_db(note.at), "done": False}}, upsert=True)  # `seen` stays

    def chat_notes(self, session: str) -> list[ChatNote]:
        docs = self.db[CHAT_NOTES].find({"session": session, "done": False}).sort([("at", ASCENDING),
                                                                                    ("_id", ASCENDING)])
        return [ChatNote(session=session, chat=d.get("chat"), phone=d.get("phone"), unread=d["unread"],
                         at=from_db(d["at"]), seen=d.get("seen")) for d in docs]  # type: ignore[arg-type]

    def settle_chat_notes(self, session: str, seen: Mapping[str, str], done: Collection[str]) -> None:
        for key, row in seen.items():  # mostly one: the chat read
            self.db[CHAT_NOTES].update_one({"_id": chat_note_key(session, key)}, {"$set": {"seen": row}})
        if done:
            self.db[CHAT_NOTES].update_many({"session": session, "key": {"$in": list(done)}}, {"$set": {"done": True}})

    def inbound_recorded(self, session: str, chat: str, wa_id: str) -> bool:
        return self.db[INBOUND].count_documents({"_id": inbound_key(session, chat, wa_id)}, limit=1) == 1

    def list_inbound(self, *, phone: str | None = None, session: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, limit: int = 100, offset: int = 0
                     ) -> tuple[list[InboundMessage], int]:
        where: dict[str, Any] = {}
        if phone is not None:
            where["phone"] = phone
        if session is not None:
            where["session"] = session
        if since is not None or until is not None:
            where["received_at"] = {**({"$gte": to_db(since)} if since else {}),
                                    **({"$lt": to_db(until)} if until else {})}
        docs = self.db[INBOUND].find(where).sort([("received_at", DESCENDING), ("id", DESCENDING)])
        return [_inbound(d) for d in docs.skip(offset).limit(limit)], self.db[INBOUND].count_documents(where)

    def last_sent_to(self, phone: str) -> str | None:
        doc = self.db[MESSAGES].find_one({"phone": phone, "sent_at": {"$ne": None}}, {"_id": 1},
                                         sort=[("sent_at", DESCENDING)])
        return doc["_id"] if doc else None

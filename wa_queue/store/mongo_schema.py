"""The MongoDB store's indexes, created when a store opens, and the upgrade of documents an earlier version wrote."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure

from wa_queue.models import chat_key
from wa_queue.names import CHAT_NOTES, INBOUND, MEDIA_UPLOADS, OPEN_CHATS, SUPPRESSION_LOG, SUPPRESSIONS
from wa_queue.store.mongo_codec import from_db
from wa_queue.store.mongo_inbound import chat_note_key

NOT_IMPLEMENTED = 238  # the server's error code for an option or command it lacks
ARCHIVE_FAILED_INDEX = [("status", ASCENDING), ("failed_at", DESCENDING), ("_id", DESCENDING)]
INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("idempotency_key", ASCENDING)], {"unique": True, "sparse": True}),  # the key is left out when None
    ([("status", ASCENDING), ("next_attempt_at", ASCENDING)], {}),
    ([("status", ASCENDING), ("lease_expires_at", ASCENDING)], {}),
    ([("lease_owner", ASCENDING)], {"sparse": True}),
    ([("sent_by", ASCENDING), ("sent_at", ASCENDING)], {}),
    ([("sent_at", ASCENDING)], {"sparse": True}),
    ([("status", ASCENDING), ("failed_at", DESCENDING), ("_id", DESCENDING)], {}),
    ([("status", ASCENDING), ("created_at", ASCENDING)], {}),
    ([("status", ASCENDING), ("dispatch_queue", ASCENDING), ("dispatched_at", ASCENDING)], {}),
    # The first count of a day for the mark's gates (lifecycle.MARK_SENDING): a recipient's sends, and marked clicks.
    ([("phone", ASCENDING), ("sent_at", ASCENDING)], {}),
    ([("sending_session", ASCENDING), ("sending_at", ASCENDING)], {}),
    ([("phone", ASCENDING), ("sending_at", ASCENDING)], {}),
    # The batch page's counts, and the expiry sweep's pending messages past their expires_at.
    ([("batch", ASCENDING), ("status", ASCENDING)], {"sparse": True}),
    ([("status", ASCENDING), ("expires_at", ASCENDING)], {}),
    # The media collector's question: does a message still name this file?
    ([("media.sha256", ASCENDING)], {"sparse": True}),
]


def create_indexes(messages: Collection, archive: Collection, send_counts: Collection,
                   enqueue_counts: Collection) -> bool:
    """Create every index (idempotent). True when the server expires the gate and quota counters itself (a TTL
    index on `expires`); False when it cannot, and the adapter sweeps them."""
    for keys, options in INDEXES:
        messages.create_index(keys, **options)
    archive.create_index([("archived_at", ASCENDING)])
    archive.create_index(ARCHIVE_FAILED_INDEX)  # list_archived(), like list_failed() on messages
    archive.create_index([("media.sha256", ASCENDING)], sparse=True)
    messages.database[MEDIA_UPLOADS].create_index([("sha256", ASCENDING), ("created_at", ASCENDING)])
    enqueue_counts.create_index([("day", ASCENDING)])  # quota_used(): today's counters
    messages.database[SUPPRESSIONS].create_index([("since", ASCENDING)])  # list_suppressions(), newest first
    messages.database[SUPPRESSION_LOG].create_index([("phone", ASCENDING), ("at", ASCENDING)])  # suppression_log()
    messages.database[INBOUND].create_index([("received_at", ASCENDING)])  # list_inbound()
    messages.database[INBOUND].create_index([("phone", ASCENDING), ("received_at", ASCENDING)])
    messages.database[CHAT_NOTES].create_index([("session", ASCENDING), ("done", ASCENDING), ("at", ASCENDING)])
    move_chat_notes(messages.database)
    return _ttl_index(send_counts, "expires") & _ttl_index(enqueue_counts, "expires")


def move_chat_notes(db: Database) -> None:
    """Move the one note per session an earlier version kept (open_chats, `_id` the session) into chat_notes: a note
    there may be the only pointer to replies a killed worker left unrecorded. Each is upserted before it is deleted,
    so stores opening together, or a crash in between, move each note once."""
    for doc in db[OPEN_CHATS].find():
        key = chat_key(doc.get("chat"), doc.get("phone"))
        db[CHAT_NOTES].update_one(
            {"_id": chat_note_key(doc["_id"], key)},
            {"$setOnInsert": {"session": doc["_id"], "key": key, "chat": doc.get("chat"), "phone": doc.get("phone"),
                              "unread": doc["unread"], "at": doc["at"], "done": False}}, upsert=True)
        db[OPEN_CHATS].delete_one({"_id": doc["_id"]})


def _ttl_index(collection: Collection, field: str) -> bool:
    """A TTL index on `field` (expire at its date), or a plain one where the server has no TTL indexes: False then.
    FerretDB 1.x answers NotImplemented (238) for expireAfterSeconds (docs/testing.md, the MongoDB store in the
    tests)."""
    try:
        collection.create_index([(field, ASCENDING)], expireAfterSeconds=0)
        return True
    except OperationFailure as exc:
        if exc.code != NOT_IMPLEMENTED:
            raise
    collection.create_index([(field, ASCENDING)])
    return False


def backfill_first_send_day(messages: Collection, sessions: Collection, doc: dict[str, Any]) -> dict[str, Any]:
    """A session record written before the warm-up ramp (no first_send_day field, not even null): its ramp starts
    on the UTC date of its earliest sent message (the store does not know WAQ_TIMEZONE; a day off at most), so a
    number in use does not fall back to the ramp's first cap. Once per record, on its first read."""
    first = messages.find_one({"sent_by": doc["_id"], "sent_at": {"$ne": None}}, {"sent_at": 1},
                              sort=[("sent_by", ASCENDING), ("sent_at", ASCENDING)])
    day = from_db(first["sent_at"]).date().isoformat() if first else None  # type: ignore[union-attr]
    found = sessions.find_one_and_update({"_id": doc["_id"], "first_send_day": {"$exists": False}},
                                         {"$set": {"first_send_day": day}}, return_document=ReturnDocument.AFTER)
    return found or sessions.find_one({"_id": doc["_id"]}) or doc

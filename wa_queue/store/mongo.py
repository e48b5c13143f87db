"""MongoDB message store (pymongo; mongomock in tests). For many machines sharing one store.

This module is the adapter: each MessageStore call as the operations it needs. The client and its durable options
are mongo_client.py's; documents, filters and the transitions' updates, mongo_codec.py's; indexes, mongo_schema.py's.

- Each transition is one find_one_and_update whose filter is the compare-and-set (mongo_codec.py); a write whose
  values come from the row reads it first, and a lost race re-reads, like any optimistic write.
- count_by_status() runs one count per status on the (status, ...) indexes: index-only counts, always exact (a
  separate counters collection could drift, as Mongo cannot update two documents atomically without a replica set).
- insert_many() cannot be a transaction without a replica set: it validates every item first, then inserts, and
  deletes what it inserted when the insert fails, so nothing stays behind.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn

from bson.errors import InvalidDocument
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from wa_queue import errors, quota
from wa_queue.errors import InvalidTransition, NotFound, StoreError
from wa_queue.models import Category, Message, MessageStatus, NewMessage, SessionStatus, blocked_by_opt_out
from wa_queue.names import ARCHIVE, ENQUEUE_COUNTS, MESSAGES, NUMBER_CHECKS, SEND_COUNTS, SESSIONS, SUPPRESSIONS
from wa_queue.store import lifecycle, mongo_client
from wa_queue.store.base import MessageStore, status_keys
from wa_queue.store.common import lookup_keys, operator_sent_text, opted_out_text, picture_text, plan_inserts
from wa_queue.store.mongo_codec import (
    DUE,
    FAILED,
    FILTERS,
    LEASED,
    READS,
    conditions_filter,
    failed_filter,
    from_db,
    from_doc,
    status_filter,
    to_db,
    to_doc,
    transition_update,
    value_of,
)
from wa_queue.store.mongo_inbound import MongoInbound
from wa_queue.store.mongo_media import MongoMedia
from wa_queue.store.mongo_quota import QuotaCounters
from wa_queue.store.mongo_schema import create_indexes
from wa_queue.store.mongo_sessions import MongoSessionRecords
from wa_queue.store.mongo_suppressions import MongoSuppressions
from wa_queue.store.mongo_when import MongoWhen

ARCHIVE_BATCH = 1_000
CAS_RETRIES = 8  # re-reads when the row's session changed between the read and the write (very rare)
COUNTER_KEEP = timedelta(days=3)  # a gate's daily counter outlives its day (a recipient's day can exceed 24 h)
GATE_COUNTERS = "gate_counters"  # a message's field: the send_counts documents its marks took a unit of
_MOCK_CLIENT: Any = None


def _key_taken(exc: PyMongoError) -> bool:
    """A duplicate key (code 11000) and nothing else: a write-concern error also arrives as a BulkWriteError."""
    if isinstance(exc, DuplicateKeyError):
        return True
    details = getattr(exc, "details", None) or {}
    errors = details.get("writeErrors") or []
    return bool(errors) and all(e.get("code") == 11000 for e in errors) and not details.get("writeConcernErrors")


class _LostLease(Exception):
    """The mark's CAS failed after its gates were taken (internal: they are given back)."""


class MongoStore(MongoSessionRecords, MongoWhen, MongoMedia, MongoSuppressions, MongoInbound, MessageStore):
    def __init__(self, db: Database) -> None:
        self.db = db
        self.messages = db[MESSAGES]
        self.archive = db[ARCHIVE]
        self.sessions = db[SESSIONS]
        self.number_checks = db[NUMBER_CHECKS]
        self.send_counts = db[SEND_COUNTS]
        self._sweep_counters = not create_indexes(self.messages, self.archive, self.send_counts, db[ENQUEUE_COUNTS])
        self.quota = QuotaCounters(db[ENQUEUE_COUNTS], sweep=self._sweep_counters)

    @classmethod
    def from_url(cls, url: str) -> MongoStore:
        """mongodb://host:port/dbname (pymongo) or mongomock://anything/dbname (in-memory, for tests)."""
        name = mongo_client.db_name(url)
        if url.startswith("mongomock://"):
            import mongomock

            # One in-memory server per process, so two opens of one URL see the same data (as with a real server).
            global _MOCK_CLIENT
            _MOCK_CLIENT = _MOCK_CLIENT or mongomock.MongoClient(tz_aware=True)
            return cls(_MOCK_CLIENT[name])
        return cls(mongo_client.make_client(url)[name])

    def close(self) -> None:
        if self.db.client is not _MOCK_CLIENT:  # the shared in-memory server outlives one store
            self.db.client.close()

    def ping(self) -> None:
        mongo_client.ping(self.db)

    # ---- producer side ---------------------------------------------------------------------------------------
    def insert(self, new: NewMessage, now: datetime, *, quotas: Mapping[str, int] | None = None
               ) -> tuple[Message, bool]:
        return self.insert_many([new], now, quotas=quotas)[0]

    def insert_many(self, news: list[NewMessage], now: datetime, *, quotas: Mapping[str, int] | None = None,
                    _retry: bool = True) -> list[tuple[Message, bool]]:
        now = to_db(now).replace(tzinfo=UTC)  # type: ignore[union-attr]
        results, made = self._plan_inserts(news, now)
        if not made:
            return results
        docs = [to_doc(message) for message in made]
        taken = self.quota.take(quota.needs(made, quotas), quotas or {}, now)  # first: see mongo_quota.py
        try:
            self.messages.insert_many(docs, ordered=True)
        except (BulkWriteError, DuplicateKeyError) as exc:
            if not _key_taken(exc):
                return self._undo_insert(docs, exc, taken)  # a write-concern timeout, not a conflict
            # No multi-document transaction without a replica set: undo by hand, so nothing stays behind.
            self.messages.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
            self.quota.give_back(taken)
            if not _retry:
                raise
            return self.insert_many(news, now, quotas=quotas, _retry=False)  # a concurrent insert took a key: a replay
        except (PyMongoError, InvalidDocument) as exc:
            return self._undo_insert(docs, exc, taken)
        return results

    def _undo_insert(self, docs: list[dict], exc: Exception, taken: list[tuple[str, int]]) -> NoReturn:
        """Anything but a key conflict (a document BSON refuses, a dropped connection, a majority not reached in
        time): undo what got in, as far as the server lets us, then report it. A producer's retry with its
        idempotency key finds the message if the undo could not remove it. The quota's units are given back only
        when the undo succeeded: otherwise the messages may be stored."""
        with contextlib.suppress(PyMongoError):
            self.messages.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
            self.quota.give_back(taken)
        raise StoreError(f"MongoDB refused the insert: {exc}") from None

    def quota_used(self, now: datetime) -> dict[str, int]:
        return self.quota.used_on(now)

    def _plan_inserts(self, news: list[NewMessage], now: datetime) -> tuple[list[tuple[Message, bool]], list[Message]]:
        """Validate everything before writing anything: replays, conflicts (raised here), and the documents."""
        keys = lookup_keys(news)
        # No keys, no look-up: a round trip saved, and on FerretDB a scan of the whole collection (docs/testing.md).
        found = self.messages.find({"idempotency_key": {"$in": keys}}) if keys else ()
        known = {doc["idempotency_key"]: from_doc(doc) for doc in found}
        return plan_inserts(news, known, now)

    def get(self, message_id: str) -> Message:
        doc = self.messages.find_one({"_id": message_id})
        if doc is None:
            raise NotFound(message_id)
        return from_doc(doc)

    # ---- delivery side ---------------------------------------------------------------------------------------
    def _transition(self, write: lifecycle.Write, message_id: str, now: datetime, *,
                    guard: dict[str, Any] | None = None, inc: int = 1, also: dict[str, Any] | None = None,
                    **args: Any) -> Message | None:
        """The table's transition as one find_one_and_update whose filter is the compare-and-set. Values taken from
        the row (and Once fields) are read first, and the filter then requires them unchanged: a lost race re-reads.
        `args` are the transition's arguments, encoded for MongoDB; `also`, update operators of this adapter's own
        fields, outside the table."""
        where = {**FILTERS[write], **(guard or {}), **conditions_filter(write.transition.conditions, now)}
        if write.owner:
            where["lease_owner"] = args["owner"]
        columns = READS[write]
        for _ in range(CAS_RETRIES if columns else 1):
            seen: dict[str, Any] = {}
            if columns:
                # With Once fields, the whole document: it is the answer when there is nothing new to write.
                projection = None if write.transition.once else dict.fromkeys(columns, 1)
                found = self.messages.find_one({"_id": message_id, **where}, projection)
                if found is None:
                    return None
                seen = {column: found.get(column) for column in columns}
            planned = transition_update(write, where, now, args, seen, inc=inc, also=also)
            if planned is None:
                return from_doc(found)  # nothing new to record
            cas, update = planned
            doc = self.messages.find_one_and_update({"_id": message_id, **cas}, update,
                                                    return_document=ReturnDocument.AFTER)
            if doc is not None:
                return from_doc(doc)
        return None

    def claim(
        self, message_id: str, *, owner: str, session: str, now: datetime, lease_s: float, attempts: int | None = None
    ) -> Message | None:
        guard: dict[str, Any] = {"next_attempt_at": {"$lte": to_db(now)}}
        if attempts is not None:
            guard["attempts"] = attempts
        return self._transition(lifecycle.CLAIM.write(), message_id, now, owner=owner, guard=guard, session=session,
                                lease_expires_at=to_db(now + timedelta(seconds=lease_s)))

    def extend_lease(self, message_id: str, *, owner: str, now: datetime, lease_s: float) -> bool:
        # Not a change of the message (no history, updated_at kept): a plain conditional update.
        write = lifecycle.EXTEND_LEASE.write()
        args = {"lease_expires_at": to_db(now + timedelta(seconds=lease_s))}
        sets = {field: value_of(source, now, args, {}) for field, source in write.sets}
        result = self.messages.update_one({"_id": message_id, **FILTERS[write], "lease_owner": owner},
                                          {"$set": sets})
        return result.matched_count == 1

    def mark_sending(
        self, message_id: str, *, owner: str, now: datetime, session_cap: int | None = None,
        session_day_start: datetime | None = None, recipient_limit: int | None = None,
        recipient_day_start: datetime | None = None, first_send_day: date | None = None,
        picture: Sequence[str] | None = None, opt_out_scope: str = "all",
    ) -> bool:
        """Without multi-document transactions, each gate is a counter document per key and day, taken by a
        conditional $inc (n below the limit) before the mark and given back when the gate after it or the mark
        fails: two workers cannot both take the last unit. The counter starts at the day's count of the messages
        (the first mark of the day seeds it), and then counts every mark of the day, also one whose attempt later
        proved that nothing was clicked (a limit reached early, never passed). The message keeps the counters it took
        a unit of (GATE_COUNTERS, written by the mark itself), so marking it again (a doubt its session could not
        settle) takes no second unit: one message, one send of the day, as SQLite's count has it."""
        write = lifecycle.MARK_SENDING.write()
        args: dict[str, Any] = {"session_cap": session_cap, "session_day_start": session_day_start,
                                "recipient_limit": recipient_limit, "recipient_day_start": recipient_day_start,
                                "first_send_day": first_send_day}
        gates, once = write.transition.gated(args)
        if not gates and not once:
            marked = self._transition(write, message_id, now, owner=owner, picture=picture_text(picture))
            if marked is not None and blocked_by_opt_out(marked.category, opt_out_scope):
                self._refuse_if_suppressed(marked.id, marked.phone, owner=owner, now=now)
            return marked is not None
        where = {**FILTERS[write], **conditions_filter(write.transition.conditions, now)}
        doc = self.messages.find_one({"_id": message_id, **where, "lease_owner": owner})
        if doc is None:
            return False
        taken: list[str] = []
        held = set(doc.get(GATE_COUNTERS) or ())
        try:
            for gate in gates:
                since = args[gate.since.name]
                if since is None:
                    raise ValueError(f"{gate.limit.name} needs {gate.since.name}")
                key, limit = doc.get(gate.key.columns[0]), args[gate.limit.name]
                counter = self._gate_counter(gate, key, since, message_id)
                if counter in held:
                    continue  # an earlier mark of this message took its unit of this day
                if self.send_counts.find_one_and_update({"_id": counter, "n": {"$lt": limit}},
                                                        {"$inc": {"n": 1}}) is None:
                    raise getattr(errors, gate.refusal)(
                        f"{gate.name} reached: {limit} for {key} since {from_db(to_db(since)).isoformat()}")
                taken.append(counter)
            also = {"$addToSet": {GATE_COUNTERS: {"$each": taken}}} if taken else None
            if self._transition(write, message_id, now, owner=owner, picture=picture_text(picture), also=also) is None:
                raise _LostLease
        except BaseException as exc:
            for counter in taken:
                self.send_counts.update_one({"_id": counter}, {"$inc": {"n": -1}})
            if isinstance(exc, _LostLease):
                return False
            raise
        session = doc.get("claimed_by")
        if once and session is not None:
            self.get_session(session)  # a record from before the ramp gets its first_send_day first
            self.sessions.update_one({"_id": session}, {"$setOnInsert": {"status": SessionStatus.UNKNOWN.value}},
                                     upsert=True)
            for field, value in once.items():
                self.sessions.update_one({"_id": session, field: None}, {"$set": {field: value.isoformat()}})
        if blocked_by_opt_out(doc.get("category") or Category.TRANSACTIONAL.value, opt_out_scope):
            self._refuse_if_suppressed(message_id, doc["phone"], owner=owner, now=now)
        return True

    def _refuse_if_suppressed(self, message_id: str, phone: str, *, owner: str, now: datetime) -> None:
        """The mark's check of the suppression list, read after the mark (no transaction spans the two
        collections): an entry recorded before the mark is seen here, so its message is cancelled unclicked; one
        recorded after it came after the click's mark, which is the moment a send is decided. A process that dies in
        between leaves the message marked, in doubt: its chat is read before anything else (the doubt rule)."""
        if self.db[SUPPRESSIONS].find_one({"_id": phone}, {"_id": 1}) is None:
            return
        cancelled = self.cancel_opted_out(message_id, owner=owner, now=now, error_text=opted_out_text(phone))
        raise errors.OptedOut(opted_out_text(phone), cancelled=cancelled)

    def _gate_counter(self, gate: lifecycle.Gate, key: str, since: datetime, message_id: str) -> str:
        """The counter document's id for the gate, key and day, made with the day's count when missing."""
        since_db = to_db(since)
        counter = f"{gate.name}|{key}|{since_db.isoformat()}"  # type: ignore[union-attr]
        if self.send_counts.find_one({"_id": counter}, {"_id": 1}) is None:
            sent = self.messages.count_documents({gate.sent_key: key, "sent_at": {"$gte": since_db}})
            clicked = self.messages.count_documents({
                gate.sending_key: key, "sending_at": {"$gte": since_db},
                "status": {"$ne": lifecycle.RECORD_SENT.to.value}, "_id": {"$ne": message_id}})  # type: ignore
            # The TTL monitor reads the server's clock: kept from the later of the day's start and now.
            wall = to_db(datetime.now(UTC))
            with contextlib.suppress(DuplicateKeyError):  # another worker seeded it first: theirs stands
                keep_from = max(since_db, wall)  # type: ignore[type-var]
                self.send_counts.insert_one({"_id": counter, "n": sent + clicked, "expires": keep_from + COUNTER_KEEP})
            if self._sweep_counters:  # no TTL monitor (FerretDB): each new day's counter removes the expired ones
                self.send_counts.delete_many({"expires": {"$lt": wall}})
        return counter

    def cancel_opted_out(self, message_id: str, *, owner: str, now: datetime, error_text: str) -> Message | None:
        return self._transition(lifecycle.CANCEL_OPTED_OUT.write(), message_id, now, owner=owner,
                                error_text=error_text)

    def defer(
        self, message_id: str, *, owner: str, now: datetime, next_attempt_at: datetime, reason: str, error_class: str,
    ) -> Message | None:
        return self._transition(lifecycle.DEFER.write(), message_id, now, owner=owner, error_class=error_class,
                                error_text=reason, next_attempt_at=to_db(next_attempt_at))

    def record_sent(
        self, message_id: str, *, owner: str, now: datetime, session: str, wa_id: str | None
    ) -> Message | None:
        return self._transition(lifecycle.RECORD_SENT.write(), message_id, now, owner=owner, session=session,
                                wa_id=wa_id)

    def record_retry(
        self, message_id: str, *, owner: str, now: datetime, next_attempt_at: datetime, error_class: str,
        error_text: str, keep_doubt: bool = False,
    ) -> Message | None:
        return self._transition(lifecycle.RECORD_RETRY.write(keep_doubt=keep_doubt), message_id, now, owner=owner,
                                error_class=error_class, error_text=error_text,
                                next_attempt_at=to_db(next_attempt_at))

    def record_failed(
        self, message_id: str, *, owner: str | None, now: datetime, error_class: str, error_text: str,
        count_attempt: bool = True,
    ) -> Message | None:
        return self._transition(lifecycle.RECORD_FAILED.write(owner=owner is not None), message_id, now, owner=owner,
                                error_class=error_class, error_text=error_text, inc=1 if count_attempt else 0)

    def release(
        self, message_id: str, *, owner: str, now: datetime, reason: str, error_class: str | None = None,
        next_attempt_at: datetime | None = None, session: str | None = ...,  # type: ignore[assignment]
        keep_doubt: bool = False,
    ) -> Message | None:
        write = lifecycle.RELEASE.write(keep_doubt=keep_doubt, optional=session is not ...)
        return self._transition(write, message_id, now, owner=owner, error_class=error_class, error_text=reason,
                                next_attempt_at=to_db(next_attempt_at or now), session=session)

    def mark_dispatched(self, message_ids: list[str], *, now: datetime, epoch: str | None, queue: str) -> None:
        self.messages.update_many({"_id": {"$in": message_ids}}, {"$set": {
            "dispatched_at": to_db(now), "dispatch_epoch": epoch, "dispatch_queue": queue}})

    def clear_dispatch(self, message_ids: list[str]) -> None:
        self.messages.update_many({"_id": {"$in": message_ids}}, {"$set": {"dispatch_epoch": None}})

    def list_undispatched(self, *, now: datetime, epoch: str, limit: int) -> list[Message]:
        query = {**DUE, "next_attempt_at": {"$lte": to_db(now)},
                 "dispatch_epoch": {"$ne": epoch}}  # $ne also matches null
        return self._find(query, [("next_attempt_at", ASCENDING)], limit)

    def dispatch_queues(self) -> list[str]:
        # distinct() with the status prefix of the (status, dispatch_queue, dispatched_at) index, which MongoDB can
        # answer with a DISTINCT_SCAN (a seek per queue); not checked against a real mongod here.
        return sorted(q for q in self.messages.distinct("dispatch_queue", dict(DUE)) if q)

    def list_dispatched_to(
        self, queue: str, *, now: datetime, dispatched_before: datetime, limit: int
    ) -> list[Message]:
        query = {**DUE, "dispatch_queue": queue,
                 "dispatched_at": {"$lt": to_db(dispatched_before)}, "next_attempt_at": {"$lte": to_db(now)}}
        return self._find(query, [("dispatched_at", ASCENDING)], limit)

    def list_expired_leases(self, *, now: datetime, limit: int = 1000) -> list[Message]:
        query = {**LEASED, "lease_expires_at": {"$lte": to_db(now)}}
        return self._find(query, [("lease_expires_at", ASCENDING)], limit)

    def list_leases(self, *, owner_prefix: str) -> list[Message]:
        query = {"lease_owner": {"$regex": "^" + re.escape(owner_prefix)}, **LEASED}
        return self._find(query)

    def recover(self, message_id: str, *, owner: str, now: datetime, reason: str) -> Message | None:
        return self._transition(lifecycle.RECOVER.write(), message_id, now, owner=owner, error_text=reason)

    def _find(self, query: dict, sort: list | None = None, limit: int = 0, skip: int = 0,
              collection: Collection | None = None) -> list[Message]:
        cursor = (self.messages if collection is None else collection).find(query)
        if sort:
            cursor = cursor.sort(sort)
        return [from_doc(doc) for doc in cursor.skip(skip).limit(limit)]

    def count_by_status(self) -> dict[str, int]:
        counts = status_keys()
        for status in counts:
            counts[status] = self.messages.count_documents({"status": status})
        return counts

    def list_failed(
        self, *, offset: int = 0, limit: int = 50, session: str | None = None, error: str | None = None
    ) -> tuple[list[Message], int]:
        return self._failed_page(self.messages, offset=offset, limit=limit, session=session, error=error)

    def _failed_page(self, collection: Collection, *, offset: int, limit: int, session: str | None,
                     error: str | None) -> tuple[list[Message], int]:
        """list_failed() and list_archived(): one filter, newest failed first, on the (status, failed_at, _id) index."""
        query = failed_filter(session, error)
        page = self._find(query, [("failed_at", DESCENDING), ("_id", DESCENDING)], limit, offset, collection)
        return page, collection.count_documents(query)

    def retry_failed(self, message_id: str, *, now: datetime) -> Message:
        return self._operator(lifecycle.RETRY_FAILED, message_id, now)

    def mark_sent_by_operator(self, message_id: str, *, now: datetime, actor: str, note: str | None = None) -> Message:
        return self._operator(lifecycle.MARK_SENT_BY_OPERATOR, message_id, now,
                              error_text=operator_sent_text(actor, note))

    def _operator(self, transition: lifecycle.Transition, message_id: str, now: datetime, **params: Any) -> Message:
        """An operator's transition: NotFound / InvalidTransition when the table does not allow it."""
        message = self._transition(transition.write(), message_id, now, **params)
        if message is None:
            self._raise_not_from(transition.from_statuses, message_id)
        return message

    def _raise_not_from(self, statuses: tuple[MessageStatus, ...], message_id: str) -> NoReturn:
        doc = self.messages.find_one({"_id": message_id}, {"status": 1})
        if doc is None:
            raise NotFound(message_id)
        allowed = " or ".join(status.value for status in statuses)
        raise InvalidTransition(f"message {message_id} is {doc['status']}, not {allowed}")

    def retry_all_failed(self, *, now: datetime, session: str | None = None) -> list[str]:
        ids = [doc["_id"] for doc in self.messages.find(failed_filter(session), {"_id": 1})]
        write = lifecycle.RETRY_FAILED.write()
        return [mid for mid in ids if self._transition(write, mid, now) is not None]

    def delete(self, message_id: str) -> None:
        where = status_filter(lifecycle.DELETE.from_statuses)
        if self.messages.delete_one({"_id": message_id, **where}).deleted_count:
            return
        self._raise_not_from(lifecycle.DELETE.from_statuses, message_id)

    def archive_failed(self, *, older_than: datetime, now: datetime) -> int:
        query = {**status_filter(lifecycle.ARCHIVE.from_statuses), "failed_at": {"$lt": to_db(older_than)}}
        moved = 0
        while True:
            docs = list(self.messages.find(query).limit(ARCHIVE_BATCH))
            if not docs:
                return moved
            # Copy first (upsert: a crash after the copy just copies again), then delete: never dropped.
            for doc in docs:
                self.archive.replace_one({"_id": doc["_id"]}, {**doc, "archived_at": to_db(now)}, upsert=True)
            result = self.messages.delete_many({"_id": {"$in": [d["_id"] for d in docs]}, **query})
            moved += result.deleted_count

    def get_archived(self, message_id: str) -> Message:
        doc = self.archive.find_one({"_id": message_id})
        if doc is None:
            raise NotFound(message_id)
        return from_doc(doc)

    def list_archived(
        self, *, offset: int = 0, limit: int = 50, session: str | None = None, error: str | None = None
    ) -> tuple[list[Message], int]:
        return self._failed_page(self.archive, offset=offset, limit=limit, session=session, error=error)

    def sends_since(self, session: str, since: datetime) -> int:
        return self.messages.count_documents({"sent_by": session, "sent_at": {"$gte": to_db(since)}})

    def wa_ids_sent(self, phone: str, *, session: str, since: datetime) -> set[str]:
        query = {"phone": phone, "sent_at": {"$gte": to_db(since)}, "sent_by": session, "wa_id": {"$ne": None}}
        return {doc["wa_id"] for doc in self.messages.find(query, {"wa_id": 1, "_id": 0})}

    def sends_per_hour(self, *, since: datetime) -> list[tuple[datetime, int]]:
        # Grouped here rather than by $dateTrunc (MongoDB 5+, not in mongomock): a day of sends is small.
        hours: Counter[datetime] = Counter()
        for doc in self.messages.find({"sent_at": {"$gte": to_db(since)}}, {"sent_at": 1, "_id": 0}):
            hours[from_db(doc["sent_at"]).replace(minute=0, second=0, microsecond=0)] += 1  # type: ignore[union-attr]
        return sorted(hours.items())

    def oldest_pending(self) -> Message | None:
        found = self._find(dict(DUE), [("created_at", ASCENDING)], 1)
        return found[0] if found else None

    def count_failed_since(self, since: datetime) -> int:
        # Served by the (status, failed_at, _id) index.
        query = {**FAILED, "failed_at": {"$gte": to_db(since)}}
        return self.messages.count_documents(query)

    def oldest_due(self, *, now: datetime) -> Message | None:
        # Served by the (status, next_attempt_at) index.
        found = self._find({**DUE, "next_attempt_at": {"$lte": to_db(now)}},
                           [("next_attempt_at", ASCENDING)], 1)
        return found[0] if found else None

    def record_receipt(
        self, message_id: str, *, now: datetime, delivered_at: datetime | None = None, read_at: datetime | None = None
    ) -> Message | None:
        return self._transition(lifecycle.RECORD_RECEIPT.write(), message_id, now, delivered_at=to_db(delivered_at),
                                read_at=to_db(read_at))

    def record_callback_refused(self, message_id: str, *, now: datetime, error_class: str,
                                error_text: str) -> Message | None:
        return self._transition(lifecycle.RECORD_CALLBACK_REFUSED.write(), message_id, now, error_class=error_class,
                                error_text=error_text)

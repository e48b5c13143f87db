"""The MongoDB store's documents: Message and SessionRecord <-> document, and a transition as filter and update.

Datetimes are BSON dates, which keep milliseconds: every time is cut to the millisecond before it is written or
returned, so what a call returns equals what a later get() reads. They are sent naive-UTC (what BSON means) and turned
back into tz-aware UTC on read, whatever the client's tz_aware setting.

Each transition is one find_one_and_update whose filter is the compare-and-set (status, lease_owner, attempts), its
filter and update document built from the transition table (lifecycle.py). Values the write takes from the row
(a history entry naming the row's own session, claimed_by) are read first, and the filter then requires them
unchanged, so the entry can never name the wrong session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any

from wa_queue.models import (
    HistoryEntry,
    HistoryEvent,
    MediaRef,
    Message,
    MessageStatus,
    SessionStatus,
    parse_stored,
    plain,
)
from wa_queue.send_window import parse_window
from wa_queue.store import lifecycle
from wa_queue.store.base import SessionRecord
from wa_queue.store.common import DATETIME_FIELDS, MESSAGE_FIELDS, SESSION_DATETIME_FIELDS


def to_db(value: datetime | None) -> datetime | None:
    """tz-aware (or naive UTC) -> naive UTC cut to the millisecond, as BSON keeps it."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def from_db(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def history_doc(now: datetime, event: HistoryEvent | str, session: str | None, error_class: str | None = None,
                error_text: str | None = None) -> dict[str, Any]:
    return {"at": to_db(now), "event": plain(event), "session": session, "error_class": error_class,
            "error_text": error_text}


def to_doc(message: Message) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": message.id}
    for name in MESSAGE_FIELDS[1:]:
        value = getattr(message, name)
        doc[name] = to_db(value) if name in DATETIME_FIELDS else value
    doc["status"] = message.status.value
    doc["priority"] = plain(message.priority)
    doc["category"] = plain(message.category)
    doc["send_window"] = message.send_window.to_dict() if message.send_window is not None else None
    # As JSON text, the form SQLite keeps: metadata is returned as given and never queried, and a sub-document could
    # not hold every JSON object (BSON refuses a NUL in a key; a key starting with '$' is an operator to MongoDB).
    doc["metadata"] = json.dumps(message.metadata) if message.metadata is not None else None
    doc["media"] = message.media.to_dict() if message.media is not None else None
    doc["history"] = [history_doc(e.at, e.event, e.session, e.error_class, e.error_text) for e in message.history]
    if message.idempotency_key is None:
        del doc["idempotency_key"]  # absent, not null: the sparse unique index skips it
    return doc


def from_doc(doc: dict[str, Any]) -> Message:
    data = {name: doc.get(name) for name in MESSAGE_FIELDS[1:]}
    for name in DATETIME_FIELDS:
        data[name] = from_db(data[name])
    data["status"] = MessageStatus(data["status"])
    data["attempts"] = data["attempts"] or 0
    data["send_window"] = parse_window(data["send_window"]) if data["send_window"] is not None else None
    if isinstance(data["metadata"], str):  # else a sub-document, written before metadata was kept as text: as it is
        data["metadata"] = json.loads(data["metadata"])
    data["media"] = MediaRef.from_dict(data["media"]) if data["media"] is not None else None
    data["history"] = tuple(
        HistoryEntry(from_db(e["at"]), e["event"], e.get("session"), e.get("error_class"), e.get("error_text"))
        for e in doc.get("history", [])
    )
    return Message(id=doc["_id"], **data)


def session_from_doc(doc: dict[str, Any]) -> SessionRecord:
    data = {key: value for key, value in doc.items() if key != "_id"}
    for name in SESSION_DATETIME_FIELDS:
        data[name] = from_db(data.get(name))
    if data.get("first_send_day") is not None:
        data["first_send_day"] = date.fromisoformat(data["first_send_day"])
    if "status" in data:
        data["status"] = parse_stored(SessionStatus, data["status"])
    return SessionRecord(name=doc["_id"], **data)


def session_sets(fields: dict[str, Any]) -> dict[str, Any]:
    """update_session's fields as the $set of a session document."""
    if "status" in fields:
        fields = {**fields, "status": plain(fields["status"])}
    sets = {k: to_db(v) if k in SESSION_DATETIME_FIELDS else v for k, v in fields.items()}
    if isinstance(sets.get("first_send_day"), date):
        sets["first_send_day"] = sets["first_send_day"].isoformat()  # BSON has no date without a time
    return sets


def status_filter(statuses: tuple[MessageStatus, ...]) -> dict[str, Any]:
    if len(statuses) == 1:
        return {"status": statuses[0].value}
    return {"status": {"$in": [status.value for status in statuses]}}


def _row_columns(write: lifecycle.Write) -> tuple[str, ...]:
    """The columns a transition reads before its write: those its values come from, and its Once fields."""
    sources = [source for _, source in write.sets] + [write.transition.history_session]
    columns = [column for source in sources if isinstance(source, lifecycle.Row) for column in source.columns]
    return tuple(dict.fromkeys(columns + list(write.transition.once)))


# Built once from the table: each transition's status filter, and what it reads first (empty: a single CAS).
FILTERS: Mapping[lifecycle.Write, Mapping[str, Any]] = MappingProxyType({
    write: MappingProxyType(status_filter(transition.from_statuses))
    for transition in lifecycle.TRANSITIONS for write in transition.writes.values()
})
READS: Mapping[lifecycle.Write, tuple[str, ...]] = MappingProxyType({w: _row_columns(w) for w in FILTERS})
# What the read queries select, from the table's status groups (spread into each query: read-only here).
DUE = MappingProxyType(status_filter(lifecycle.DUE))
LEASED = MappingProxyType(status_filter(lifecycle.LEASED))
FAILED = MappingProxyType(status_filter(lifecycle.OPERATOR_CASES))


def conditions_filter(conditions: tuple[lifecycle.Condition, ...], now: datetime | None) -> dict[str, Any]:
    """Conditions (lifecycle.Condition, a transition's) as filter terms, under one $and so that none replaces a term
    of the same field elsewhere in the filter. `now` is needed only by Later and Reached."""
    terms: list[dict[str, Any]] = []
    for condition in conditions:
        field = condition.field
        if isinstance(condition, lifecycle.IsNull):
            terms.append({field: None})
        elif isinstance(condition, lifecycle.Differs):
            terms.append({field: {"$ne": condition.value}})  # a missing or null field matches too
        elif isinstance(condition, lifecycle.Later):
            terms.append({"$or": [{field: None}, {field: {"$gt": to_db(now)}}]})
        elif isinstance(condition, lifecycle.Reached):
            terms.append({field: {"$lte": to_db(now)}})
        else:
            raise TypeError(f"no filter for {condition!r}")
    return {"$and": terms} if terms else {}


# The expiry sweep's look-up: pending or paused, and not in doubt.
EXPIRING = MappingProxyType({**status_filter(lifecycle.EXPIRING), **conditions_filter(lifecycle.NOT_IN_DOUBT, None)})


def failed_filter(session: str | None, error: str | None = None) -> dict[str, Any]:
    """The query of the failed-message pages and of retry-all: failed or unverified, and, when given, the session
    that held it and a part of its last error."""
    parts: list[dict[str, Any]] = [dict(FAILED)]  # alone, it is the query: a dict of its own
    if session is not None:
        parts.append({"$or": [{"claimed_by": session}, {"sent_by": session}, {"session": session}]})
    if error is not None:
        pattern = re.escape(error)
        parts.append({"$or": [{"last_error_class": {"$regex": pattern}}, {"last_error_text": {"$regex": pattern}}]})
    return parts[0] if len(parts) == 1 else {"$and": parts}


def value_of(source: lifecycle.Source, now: datetime, args: dict[str, Any], seen: dict[str, Any]) -> Any:
    """A lifecycle source's value: the clock, an argument, a constant, or the row as read before the write."""
    if source is lifecycle.NOW:
        return to_db(now)
    if isinstance(source, lifecycle.Arg):
        return args[source.name]
    if isinstance(source, lifecycle.Const):
        return source.value
    if isinstance(source, lifecycle.Row):
        return next((seen[c] for c in source.columns if seen.get(c) is not None), None)
    raise TypeError(f"no value for {source!r}")


def transition_update(write: lifecycle.Write, where: dict[str, Any], now: datetime, args: dict[str, Any],
                      seen: dict[str, Any], *, inc: int, also: dict[str, Any] | None
                      ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The compare-and-set filter and the update document of `write`, given the row's columns READS[write] as read
    (`seen`); None when its Once fields have nothing new to record. `where` is the filter without the row's values;
    `args` are the transition's arguments, encoded for MongoDB; `also`, update operators of the adapter's own fields,
    outside the table."""
    transition = write.transition
    sets: dict[str, Any] = {}
    cas = dict(where)
    for field, source in write.sets:
        if isinstance(source, lifecycle.Once):
            if args[source.name] is not None and seen[field] is None:
                sets[field], cas[field] = args[source.name], None  # the filter: still unset
            continue
        sets[field] = value_of(source, now, args, seen)
    if transition.once and not any(field in sets for field in transition.once):
        return None
    sets.update(dict.fromkeys(write.clears))
    cas.update((column, seen[column]) for column in READS[write] if column not in transition.once)
    session = value_of(transition.history_session, now, args, seen)
    entry = history_doc(now, transition.event, session, args.get("error_class"),  # type: ignore[arg-type]
                        args.get("error_text"))
    update: dict[str, Any] = {"$set": {**sets, "updated_at": to_db(now)}, "$push": {"history": entry}, **(also or {})}
    if transition.uses_attempt and inc:
        update["$inc"] = {"attempts": inc}
    return cas, update

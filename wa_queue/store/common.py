"""Helpers shared by the store adapters: field lists, building a new Message, idempotency checks."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from wa_queue.errors import IdempotencyConflict, StoreError, ValidationError
from wa_queue.models import HistoryEntry, HistoryEvent, Message, NewMessage, new_message_id
from wa_queue.store.base import BatchRow, SessionRecord
from wa_queue.store.lifecycle import INSERT_EVENT, INSERT_STATUS

MESSAGE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Message))
DATETIME_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(Message) if "datetime" in str(f.type))
SESSION_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SessionRecord))
SESSION_DATETIME_FIELDS: frozenset[str] = frozenset(
    f.name for f in dataclasses.fields(SessionRecord) if "datetime" in str(f.type)
)
MAX_OPERATOR_NOTE = 500  # characters; the note is kept in the message's history
MAX_ACTOR = 200


def picture_text(picture: Sequence[str] | None) -> str | None:
    """A chat's picture (mark_sending's `picture`) as the sending_picture field keeps it: a JSON list, in both
    adapters (one encoding, decoded by Message.picture)."""
    return None if picture is None else json.dumps([str(i) for i in picture])


def utc(value: datetime) -> datetime:
    """Normalise to tz-aware UTC; a naive value is taken as UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def build_message(new: NewMessage, now: datetime) -> Message:
    if now.tzinfo is not UTC:
        now = utc(now)
    return Message(
        id=new_message_id(), phone=new.phone, text=new.text, status=INSERT_STATUS, created_at=now,
        updated_at=now, next_attempt_at=max(now, utc(new.send_at)) if new.send_at else now, session=new.session,
        idempotency_key=new.idempotency_key,
        # Only a replay with the same key compares it (replay_or_conflict); a message without a key never needs it.
        content_hash=new.content_hash() if new.idempotency_key is not None else None,
        callback_url=new.callback_url, metadata=new.metadata, send_window=new.send_window, enqueued_by=new.enqueued_by,
        send_at=utc(new.send_at) if new.send_at else None, expires_at=utc(new.expires_at) if new.expires_at else None,
        priority=new.priority, batch=new.batch, media=new.media, category=new.category,
        history=(HistoryEntry(at=now, event=INSERT_EVENT, session=new.session),),
    )


def lookup_keys(news: list[NewMessage]) -> list[str]:
    """The idempotency keys an insert of `news` looks up: each one's, and its older form (owners.py)."""
    keys = [n.idempotency_key for n in news if n.idempotency_key]
    return keys + [n.legacy_idempotency_key for n in news if n.idempotency_key and n.legacy_idempotency_key]


def plan_inserts(
    news: list[NewMessage], known: dict[str, Message], now: datetime
) -> tuple[list[tuple[Message, bool]], list[Message]]:
    """(message, created) per item, and the new messages to write, in order. `known` maps the idempotency keys
    already stored to their messages; a key repeated inside `news` is a replay or a conflict too (`known` grows).
    Raises IdempotencyConflict before anything is written."""
    results: list[tuple[Message, bool]] = []
    made: list[Message] = []
    for new in news:
        key = new.idempotency_key
        existing = known.get(key) if key is not None else None
        if existing is None and new.legacy_idempotency_key is not None:
            older = known.get(new.legacy_idempotency_key)
            existing = older if older is not None and older.enqueued_by is None else None  # owners.py: old rows only
        if existing is not None:
            results.append(replay_or_conflict(existing, new))
            continue
        message = build_message(new, now)
        if key is not None:
            known[key] = message
        results.append((message, True))
        made.append(message)
    return results, made


def replay_or_conflict(existing: Message, new: NewMessage) -> tuple[Message, bool]:
    """The answer for a second insert with a used idempotency key."""
    if existing.content_hash != new.content_hash():
        raise IdempotencyConflict(f"idempotency key {new.idempotency_key!r} is used by other content")
    return existing, False


def check_session_fields(fields: dict) -> None:
    unknown = set(fields) - set(SESSION_FIELDS) | ({"name"} & set(fields))
    if unknown:
        raise StoreError(f"unknown or read-only session fields: {sorted(unknown)}")


def history_entry(now: datetime, event: HistoryEvent, session: str | None, error_class: str | None = None,
                  error_text: str | None = None) -> dict:
    return HistoryEntry(utc(now), event, session, error_class, error_text).to_dict()


def batch_rows(groups: list[tuple[str, str, int, datetime]], limit: int) -> list[BatchRow]:
    """(batch, status, count, first enqueue) groups -> list_batches()' rows, the most recently started first."""
    counts: dict[str, dict[str, int]] = {}
    started: dict[str, datetime] = {}
    for name, status, n, first in groups:
        counts.setdefault(name, {})[status] = n
        started[name] = min(started.get(name, first), first)
    names = sorted(counts, key=lambda name: (started[name], name), reverse=True)[:limit]
    return [BatchRow(name, counts[name], started[name]) for name in names]


def opted_out_text(phone: str) -> str:
    """The error text of a message the mark cancelled: its number is on the suppression list."""
    return f"not sent: {phone} is on the suppression list (opted out); nothing was clicked"


def cancel_text(actor: str) -> str:
    """The history text of cancel(): who cancelled. Checked before any write, like operator_sent_text."""
    if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_ACTOR:
        raise ValidationError(f"actor must be 1-{MAX_ACTOR} characters", "actor")
    return f"cancelled by {actor.strip()}"


def operator_sent_text(actor: str, note: str | None) -> str:
    """The history text of mark_sent_by_operator(): who decided, and why when they said. Checked before any write,
    so the API and the CLI get a ValidationError naming the field."""
    if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_ACTOR:
        raise ValidationError(f"actor must be 1-{MAX_ACTOR} characters", "actor")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_OPERATOR_NOTE):
        raise ValidationError(f"note must be a string of at most {MAX_OPERATOR_NOTE} characters", "note")
    text = f"marked as sent by operator {actor.strip()}"
    return f"{text}: {note.strip()}" if note and note.strip() else text

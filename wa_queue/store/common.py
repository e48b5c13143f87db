"""Helpers shared by the store adapters: field lists, building a new Message, idempotency checks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from wa_queue.errors import IdempotencyConflict, StoreError
from wa_queue.models import HistoryEntry, Message, MessageStatus, NewMessage, new_message_id
from wa_queue.store.base import SessionRecord

MESSAGE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Message))
DATETIME_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(Message) if "datetime" in str(f.type))
SESSION_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SessionRecord))
SESSION_DATETIME_FIELDS: frozenset[str] = frozenset(
    f.name for f in dataclasses.fields(SessionRecord) if "datetime" in str(f.type)
)


def utc(value: datetime) -> datetime:
    """Normalise to tz-aware UTC; a naive value is taken as UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def build_message(new: NewMessage, now: datetime) -> Message:
    if now.tzinfo is not UTC:
        now = utc(now)
    return Message(
        id=new_message_id(), phone=new.phone, text=new.text, status=MessageStatus.PENDING, created_at=now,
        updated_at=now, next_attempt_at=now, session=new.session, idempotency_key=new.idempotency_key,
        content_hash=new.content_hash(), callback_url=new.callback_url, metadata=new.metadata,
        history=(HistoryEntry(at=now, event="enqueued", session=new.session),),
    )


def replay_or_conflict(existing: Message, new: NewMessage) -> tuple[Message, bool]:
    """The answer for a second insert with a used idempotency key."""
    if existing.content_hash != new.content_hash():
        raise IdempotencyConflict(f"idempotency key {new.idempotency_key!r} is used by other content")
    return existing, False


def check_session_fields(fields: dict) -> None:
    unknown = set(fields) - set(SESSION_FIELDS) | ({"name"} & set(fields))
    if unknown:
        raise StoreError(f"unknown or read-only session fields: {sorted(unknown)}")


def history_entry(now: datetime, event: str, session: str | None, error_class: str | None = None,
                  error_text: str | None = None) -> dict:
    return HistoryEntry(utc(now), event, session, error_class, error_text).to_dict()

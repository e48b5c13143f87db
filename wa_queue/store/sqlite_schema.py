"""The SQLite store's schema and its row codecs: tables, indexes, triggers, migrations, and Message <-> row.

Datetimes are INTEGER microseconds since the Unix epoch (UTC): sortable, compact, exact round trip. History is a JSON
array column. Status counts live in a tiny table kept by triggers, in the same transaction as the change, so
count_by_status() reads a few rows. This module owns what the file looks like; sqlite_connection.py the connections,
sqlite_statements.py the transitions' SQL, sqlite.py the adapter.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from typing import Any

from wa_queue.models import (
    Category,
    HistoryEntry,
    MediaRef,
    Message,
    MessageStatus,
    Priority,
    SessionStatus,
    parse_stored,
    plain,
)
from wa_queue.names import (
    ARCHIVE,
    CHAT_NOTES,
    ENQUEUE_COUNTS,
    INBOUND,
    MEDIA_UPLOADS,
    MESSAGES,
    NUMBER_CHECKS,
    OPEN_CHATS,
    SESSIONS,
    STATUS_COUNTS,
    SUPPRESSION_LOG,
    SUPPRESSIONS,
)
from wa_queue.send_window import SendWindow, parse_window
from wa_queue.store.base import SessionRecord
from wa_queue.store.common import DATETIME_FIELDS, MESSAGE_FIELDS, SESSION_DATETIME_FIELDS, SESSION_FIELDS, utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COLS = ", ".join(MESSAGE_FIELDS)
SESSION_COLS = ", ".join(SESSION_FIELDS)
# What new_row fills:
_NEW_COLUMNS = ("id", "phone", "text", "status", "created_at", "updated_at", "next_attempt_at", "attempts", "session",
                "idempotency_key", "content_hash", "callback_url", "metadata", "history", "send_window", "enqueued_by")
# ... and for a message scheduled, expiring, not of normal priority, in a batch, with a file or of the marketing
# category: a NULL priority reads as normal, a NULL category as transactional.
_WHEN_COLUMNS = ("send_at", "expires_at", "priority", "batch", "media", "category")
INSERT_CHUNK = 500  # rows per INSERT statement: its parameters, one per column of each row, stay below SQLite's limit


@functools.lru_cache(maxsize=128)
def insert_sql(rows: int, when: bool = False) -> str:
    """The INSERT of `rows` new rows: new_row's values, with the when-columns or without."""
    columns = _NEW_COLUMNS + (_WHEN_COLUMNS if when else ())
    marks = f"({', '.join('?' * len(columns))})"
    return f"INSERT INTO {MESSAGES} ({', '.join(columns)}) VALUES {', '.join([marks] * rows)}"


WHEN_ROW_LENGTH = len(_NEW_COLUMNS) + len(_WHEN_COLUMNS)


_COLUMN_TYPES = {"attempts": "INTEGER NOT NULL DEFAULT 0", "history": "TEXT NOT NULL DEFAULT '[]'"}
_NOT_NULL = {"id", "phone", "text", "status", "created_at", "updated_at", "next_attempt_at"}


def _column_def(name: str) -> str:
    sql_type = _COLUMN_TYPES.get(name) or ("INTEGER" if name in DATETIME_FIELDS else "TEXT")
    if name == "id":
        sql_type += " PRIMARY KEY"
    elif name in _NOT_NULL:
        sql_type += " NOT NULL"
    return f"{name} {sql_type}"


def _column_defs() -> str:
    return ", ".join(_column_def(name) for name in MESSAGE_FIELDS)


# Columns added after the first release: a file made by an earlier version gains them when opened (nullable, so
# ALTER TABLE ADD COLUMN needs no rewrite). Reads name their columns (COLS), so the column order does not matter.
ADDED_COLUMNS = ("last_attempt_at", "send_window", "sending_picture", "enqueued_by", "send_at", "expires_at",
                 "priority", "batch", "expired_at", "cancelled_at", "media", "category")
# The same for the sessions table: name -> column definition.
ADDED_SESSION_COLUMNS = {"last_error": "TEXT", "last_error_at": "INTEGER", "last_error_hint": "TEXT",
                         "first_send_day": "TEXT", "warmup_skipped": "INTEGER NOT NULL DEFAULT 0",
                         "page_clock_offset_s": "REAL"}
# When first_send_day is added to a file whose sessions already sent, each session's ramp starts on the UTC date of
# its earliest sent message (the store does not know WAQ_TIMEZONE; a day off at most), so a number in use does not
# fall back to the ramp's first cap on upgrade.
BACKFILL_FIRST_SEND_DAY = (
    f"UPDATE {SESSIONS} SET first_send_day = (SELECT date(min(sent_at) / 1000000, 'unixepoch') FROM {MESSAGES} "
    f"WHERE sent_by = {SESSIONS}.name AND sent_at IS NOT NULL) WHERE first_send_day IS NULL")


def add_column_sql(table: str, name: str) -> str:
    return f"ALTER TABLE {table} ADD COLUMN {_column_def(name)}"


_STATUS_ROWS = ", ".join(f"('{s.value}', 0)" for s in MessageStatus)
# Every index costs each insert (index upkeep is a large part of an insert). An index that only finds rows past
# some state is partial, so a new (pending) message skips it; each query that uses one states its condition.
INDEXES = {
    "ix_msg_idem": f"CREATE UNIQUE INDEX ix_msg_idem ON {MESSAGES}(idempotency_key) WHERE idempotency_key IS NOT NULL",
    "ix_msg_due": f"CREATE INDEX ix_msg_due ON {MESSAGES}(status, next_attempt_at)",
    "ix_msg_undispatched": f"CREATE INDEX ix_msg_undispatched ON {MESSAGES}(status, dispatch_epoch, next_attempt_at)",
    "ix_msg_lease": f"CREATE INDEX ix_msg_lease ON {MESSAGES}(status, lease_expires_at) "
                    "WHERE lease_expires_at IS NOT NULL",
    "ix_msg_owner": f"CREATE INDEX ix_msg_owner ON {MESSAGES}(lease_owner) WHERE lease_owner IS NOT NULL",
    "ix_msg_sent_by": f"CREATE INDEX ix_msg_sent_by ON {MESSAGES}(sent_by, sent_at) WHERE sent_by IS NOT NULL",
    "ix_msg_sent_at": f"CREATE INDEX ix_msg_sent_at ON {MESSAGES}(sent_at) WHERE sent_at IS NOT NULL",
    # The mark's daily counts (lifecycle.MARK_SENDING's gates): a recipient's sends, and the marked clicks not known
    # sent of a session and of a recipient (few rows: sent messages leave them).
    "ix_msg_phone_sent": f"CREATE INDEX ix_msg_phone_sent ON {MESSAGES}(phone, sent_at) WHERE sent_at IS NOT NULL",
    "ix_msg_doubt_session": f"CREATE INDEX ix_msg_doubt_session ON {MESSAGES}(sending_session, sending_at) "
                            "WHERE sending_at IS NOT NULL AND status <> 'sent'",
    "ix_msg_doubt_phone": f"CREATE INDEX ix_msg_doubt_phone ON {MESSAGES}(phone, sending_at) "
                          "WHERE sending_at IS NOT NULL AND status <> 'sent'",
    "ix_msg_failed": f"CREATE INDEX ix_msg_failed ON {MESSAGES}(status, failed_at, id) WHERE status = 'failed'",
    "ix_msg_created": f"CREATE INDEX ix_msg_created ON {MESSAGES}(status, created_at)",
    # The batch page's counts, and the expiry sweep's pending messages past their expires_at.
    "ix_msg_batch": f"CREATE INDEX ix_msg_batch ON {MESSAGES}(batch, status) WHERE batch IS NOT NULL",
    "ix_msg_expiry": f"CREATE INDEX ix_msg_expiry ON {MESSAGES}(status, expires_at) WHERE expires_at IS NOT NULL",
    # The media collector's question: does a message still name this file (media.py)?
    "ix_msg_media": f"CREATE INDEX ix_msg_media ON {MESSAGES}(json_extract(media, '$.sha256')) "
                    "WHERE media IS NOT NULL",
    "ix_msg_queue": f"CREATE INDEX ix_msg_queue ON {MESSAGES}(dispatch_queue, dispatched_at) "
                    "WHERE status = 'pending' AND dispatch_queue IS NOT NULL",
}
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {MESSAGES} ({_column_defs()});
CREATE TABLE IF NOT EXISTS {ARCHIVE} ({_column_defs()}, archived_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ix_archive_failed ON {ARCHIVE}(status, failed_at, id);
CREATE TABLE IF NOT EXISTS {STATUS_COUNTS} (status TEXT PRIMARY KEY, n INTEGER NOT NULL);
INSERT OR IGNORE INTO {STATUS_COUNTS} VALUES {_STATUS_ROWS};
CREATE TRIGGER IF NOT EXISTS tr_msg_ins AFTER INSERT ON {MESSAGES} BEGIN
  UPDATE {STATUS_COUNTS} SET n = n + 1 WHERE status = NEW.status; END;
CREATE TRIGGER IF NOT EXISTS tr_msg_del AFTER DELETE ON {MESSAGES} BEGIN
  UPDATE {STATUS_COUNTS} SET n = n - 1 WHERE status = OLD.status; END;
CREATE TRIGGER IF NOT EXISTS tr_msg_upd AFTER UPDATE OF status ON {MESSAGES} WHEN OLD.status <> NEW.status BEGIN
  UPDATE {STATUS_COUNTS} SET n = n - 1 WHERE status = OLD.status;
  UPDATE {STATUS_COUNTS} SET n = n + 1 WHERE status = NEW.status; END;
CREATE TABLE IF NOT EXISTS {SESSIONS} (
  name TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'unknown', number TEXT, next_send_at INTEGER,
  reconnect_attempts INTEGER NOT NULL DEFAULT 0, next_reconnect_at INTEGER, needs_operator INTEGER NOT NULL DEFAULT 0,
  restart_requested INTEGER NOT NULL DEFAULT 0, heartbeat_at INTEGER, updated_at INTEGER,
  last_error TEXT, last_error_at INTEGER, last_error_hint TEXT);
CREATE TABLE IF NOT EXISTS {NUMBER_CHECKS} (phone TEXT PRIMARY KEY, registered INTEGER NOT NULL, checked_at INTEGER);
CREATE TABLE IF NOT EXISTS {MEDIA_UPLOADS} (id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
  mimetype TEXT NOT NULL, filename TEXT NOT NULL, kind TEXT NOT NULL, created_at INTEGER NOT NULL, enqueued_by TEXT);
CREATE INDEX IF NOT EXISTS ix_upload_sha ON {MEDIA_UPLOADS}(sha256, created_at);
CREATE INDEX IF NOT EXISTS ix_upload_created ON {MEDIA_UPLOADS}(created_at);
CREATE TABLE IF NOT EXISTS {ENQUEUE_COUNTS} (key_name TEXT NOT NULL, day TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (key_name, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {SUPPRESSIONS} (phone TEXT PRIMARY KEY, since INTEGER NOT NULL, by_whom TEXT NOT NULL,
  session TEXT, word TEXT);
CREATE INDEX IF NOT EXISTS ix_suppression_since ON {SUPPRESSIONS}(since);
CREATE TABLE IF NOT EXISTS {SUPPRESSION_LOG} (seq INTEGER PRIMARY KEY AUTOINCREMENT, phone TEXT NOT NULL,
  change TEXT NOT NULL, at INTEGER NOT NULL, by_whom TEXT NOT NULL, session TEXT, word TEXT);
CREATE INDEX IF NOT EXISTS ix_suppression_log_phone ON {SUPPRESSION_LOG}(phone, seq);
CREATE TABLE IF NOT EXISTS {INBOUND} (id TEXT PRIMARY KEY, session TEXT NOT NULL, chat TEXT NOT NULL,
  wa_id TEXT NOT NULL, text TEXT NOT NULL, phone TEXT, received_at INTEGER NOT NULL, shown_at INTEGER,
  reply_to TEXT, opt TEXT, UNIQUE (session, chat, wa_id));
CREATE INDEX IF NOT EXISTS ix_inbound_received ON {INBOUND}(received_at);
CREATE TABLE IF NOT EXISTS {CHAT_NOTES} (session TEXT NOT NULL, key TEXT NOT NULL, chat TEXT, phone TEXT,
  unread INTEGER NOT NULL, at INTEGER NOT NULL, seen TEXT, done INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (session, key));
CREATE INDEX IF NOT EXISTS ix_inbound_phone ON {INBOUND}(phone, received_at);
"""


def create_schema(conn: sqlite3.Connection) -> None:
    """Create or upgrade the file's tables and indexes. Idempotent; under SQLite's write lock (BEGIN IMMEDIATE), so
    processes opening the file together do not race."""
    try:
        conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA}")
        _migrate_columns(conn)
        _migrate_indexes(conn)
        _migrate_chat_notes(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _migrate_columns(conn: sqlite3.Connection) -> None:
    """Add the columns a file made by an earlier version lacks: ADDED_COLUMNS to the messages and archive,
    ADDED_SESSION_COLUMNS to the sessions."""
    for table in (MESSAGES, ARCHIVE):
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name in ADDED_COLUMNS:
            if name not in present:
                conn.execute(add_column_sql(table, name))
    present = {row[1] for row in conn.execute(f"PRAGMA table_info({SESSIONS})")}
    for name, sql_type in ADDED_SESSION_COLUMNS.items():
        if name not in present:
            conn.execute(f"ALTER TABLE {SESSIONS} ADD COLUMN {name} {sql_type}")
            if name == "first_send_day":
                conn.execute(BACKFILL_FIRST_SEND_DAY)


def _migrate_chat_notes(conn: sqlite3.Connection) -> None:
    """Move the one note per session of a file made before chat_notes (open_chats) into chat_notes: a note there
    may be the only pointer to replies a killed worker left unrecorded."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (OPEN_CHATS,)).fetchone():
        conn.execute(f"INSERT OR IGNORE INTO {CHAT_NOTES} (session, key, chat, phone, unread, at) SELECT session, "
                     "CASE WHEN chat IS NOT NULL THEN 'chat:' || chat ELSE 'phone:' || phone END, chat, phone, unread, "
                     f"at FROM {OPEN_CHATS}")
        conn.execute(f"DROP TABLE {OPEN_CHATS}")


def _migrate_indexes(conn: sqlite3.Connection) -> None:
    """Create missing indexes and rebuild those defined differently by an earlier version (once per file)."""
    existing = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                 (MESSAGES,)).fetchall())
    for name, sql in INDEXES.items():
        if name in existing and " ".join((existing[name] or "").split()) == sql:
            continue
        conn.execute(f"DROP INDEX IF EXISTS {name}")
        conn.execute(sql)


def to_us(value: datetime | None) -> int | None:
    """tz-aware datetime -> integer microseconds since the epoch (UTC)."""
    if value is None:
        return None
    return (utc(value) - EPOCH) // timedelta(microseconds=1)


def from_us(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)


def row_to_message(row: tuple) -> Message:
    data = dict(zip(MESSAGE_FIELDS, row, strict=True))
    for name in DATETIME_FIELDS:
        data[name] = from_us(data[name])
    data["status"] = MessageStatus(data["status"])
    data["metadata"] = json.loads(data["metadata"]) if data["metadata"] is not None else None
    data["history"] = tuple(HistoryEntry.from_dict(item) for item in json.loads(data["history"]))
    data["send_window"] = window_from_text(data["send_window"])
    data["media"] = MediaRef.from_dict(json.loads(data["media"])) if data["media"] is not None else None
    return Message(**data)


def window_to_text(window: SendWindow | None) -> str | None:
    """The stored form of a send window: JSON {"start": "HH:MM", "end": "HH:MM"}, or NULL."""
    return None if window is None else json.dumps(window.to_dict())


def window_from_text(text: str | None) -> SendWindow | None:
    return None if text is None else parse_window(json.loads(text))


def day_to_text(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def day_from_text(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def new_row(message: Message, now_us: int | None, histories: dict[str | None, str]) -> tuple:
    """Hot path of inserts: the values of _NEW_COLUMNS only. The rest of a new row is NULL, and binding those too
    would slow every insert (BENCHMARKS.md, the store's choices). `histories` caches the one-entry history JSON
    per session: within a batch it differs only by session."""
    history = histories.get(message.session)
    if history is None:
        history = histories[message.session] = json.dumps([entry.to_dict() for entry in message.history])
    row = (message.id, message.phone, message.text, message.status.value, now_us, now_us, now_us, 0, message.session,
           message.idempotency_key, message.content_hash, message.callback_url,
           json.dumps(message.metadata) if message.metadata is not None else None, history,
           window_to_text(message.send_window), message.enqueued_by)
    if (message.send_at is None and message.expires_at is None and message.batch is None
            and message.priority is Priority.NORMAL and message.media is None
            and message.category is Category.TRANSACTIONAL):
        return row  # most messages: the when-columns stay NULL, unbound
    due_us = now_us if message.send_at is None else max(now_us or 0, to_us(message.send_at))  # type: ignore[type-var]
    return (*row[:6], due_us, *row[7:], to_us(message.send_at), to_us(message.expires_at), plain(message.priority),
            message.batch, json.dumps(message.media.to_dict()) if message.media is not None else None,
            None if message.category is Category.TRANSACTIONAL else plain(message.category))


def row_to_session(row: tuple) -> SessionRecord:
    """A sessions row, its columns SESSION_COLS, as a SessionRecord."""
    data = dict(zip(SESSION_FIELDS, row, strict=True))
    for field in SESSION_DATETIME_FIELDS:
        data[field] = from_us(data[field])
    data["needs_operator"] = bool(data["needs_operator"])
    data["restart_requested"] = bool(data["restart_requested"])
    data["warmup_skipped"] = bool(data["warmup_skipped"])
    data["first_send_day"] = day_from_text(data["first_send_day"])
    data["status"] = parse_stored(SessionStatus, data["status"])
    return SessionRecord(**data)


def session_values(fields: dict[str, Any]) -> dict[str, Any]:
    """update_session's fields as the sessions table stores them."""
    if "status" in fields:
        fields = {**fields, "status": plain(fields["status"])}
    values = {k: to_us(v) if k in SESSION_DATETIME_FIELDS else v for k, v in fields.items()}
    if "first_send_day" in values:
        values["first_send_day"] = day_to_text(values["first_send_day"])
    return values

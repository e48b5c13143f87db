"""A SQLite file made by an earlier version (no last_attempt_at column) gains the column when opened, keeps its
messages, and records the claim time in it from then on."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from tests.helpers.constants import NOW
from wa_queue.models import NewMessage
from wa_queue.names import ARCHIVE, MESSAGES, SESSIONS
from wa_queue.store.sqlite import SQLiteStore


def _columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_an_earlier_file_gains_last_attempt_at(tmp_path: Path) -> None:
    path = tmp_path / "waq.db"
    store = SQLiteStore(str(path))
    message, _ = store.insert(NewMessage(phone="+14155550123", text="hi"), NOW)
    store.close()
    with sqlite3.connect(path) as conn:  # what an earlier version's file looks like
        for table in (MESSAGES, ARCHIVE):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN last_attempt_at")
    assert "last_attempt_at" not in _columns(path, MESSAGES)

    store = SQLiteStore(str(path))
    try:
        assert {"last_attempt_at"} <= _columns(path, MESSAGES) & _columns(path, ARCHIVE)
        assert store.get(message.id).last_attempt_at is None
        claimed = store.claim(message.id, owner="w", session="primary", now=NOW + timedelta(seconds=1), lease_s=60)
        assert claimed is not None and claimed.last_attempt_at == NOW + timedelta(seconds=1)
        store.record_failed(message.id, owner="w", now=NOW, error_class="E", error_text="x")
        assert store.archive_failed(older_than=NOW + timedelta(days=1), now=NOW) == 1  # the archive has it too
        assert store.get_archived(message.id).last_attempt_at == NOW + timedelta(seconds=1)
    finally:
        store.close()
    SQLiteStore(str(path)).close()  # opening again changes nothing
    assert {"last_attempt_at"} <= _columns(path, MESSAGES)


def test_an_earlier_file_gains_the_session_error_columns(tmp_path: Path) -> None:
    path = tmp_path / "waq.db"
    store = SQLiteStore(str(path))
    store.update_session("primary", status="closed")
    store.close()
    with sqlite3.connect(path) as conn:  # an earlier version's sessions table
        for name in ("last_error", "last_error_at", "last_error_hint"):
            conn.execute(f"ALTER TABLE {SESSIONS} DROP COLUMN {name}")
    store = SQLiteStore(str(path))
    try:
        assert {"last_error", "last_error_at", "last_error_hint"} <= _columns(path, SESSIONS)
        assert store.get_session("primary").status == "closed" and store.get_session("primary").last_error is None
        record = store.update_session("primary", last_error="boom", last_error_at=NOW, last_error_hint="fix it")
        assert (record.last_error, record.last_error_at, record.last_error_hint) == ("boom", NOW, "fix it")
    finally:
        store.close()


def test_an_earlier_file_gains_the_warmup_and_window_columns(tmp_path: Path) -> None:
    """Upgrading: a session that already sent starts its ramp on the (UTC) date of its earliest send, not on the
    next one (its cap does not fall back to the first step); one that never sent has no first-send day."""
    from datetime import date

    path = tmp_path / "waq.db"
    store = SQLiteStore(str(path))
    message, _ = store.insert(NewMessage(phone="+14155550123", text="hi"), NOW)
    store.claim(message.id, owner="w", session="primary", now=NOW, lease_s=60)
    store.record_sent(message.id, owner="w", now=NOW - timedelta(days=9), session="primary", wa_id=None)
    store.update_session("primary", status="connected")
    store.update_session("idle", status="connected")
    store.close()
    with sqlite3.connect(path) as conn:  # an earlier version's file
        for name in ("first_send_day", "warmup_skipped"):
            conn.execute(f"ALTER TABLE {SESSIONS} DROP COLUMN {name}")
        for table in (MESSAGES, ARCHIVE):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN send_window")
    store = SQLiteStore(str(path))
    try:
        assert {"first_send_day", "warmup_skipped"} <= _columns(path, SESSIONS)
        assert "send_window" in _columns(path, MESSAGES) & _columns(path, ARCHIVE)
        assert store.get_session("primary").first_send_day == date(2024, 4, 22)
        assert store.get_session("idle").first_send_day is None
        assert store.get_session("primary").warmup_skipped is False
        assert store.get(message.id).send_window is None
    finally:
        store.close()

"""The SQLite store's session records and number checks: the rows a session worker keeps of itself (state, pacing
slot, warm-up) and the cache of whether a number is on WhatsApp. A part of SQLiteStore (wa_queue/store/sqlite.py),
which gives it `db`, apart from the messages' transactions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wa_queue.names import NUMBER_CHECKS, SESSIONS
from wa_queue.store import sqlite_statements as statements
from wa_queue.store.base import SessionRecord
from wa_queue.store.common import check_session_fields
from wa_queue.store.sqlite_connection import SQLiteConnections
from wa_queue.store.sqlite_schema import SESSION_COLS, from_us, row_to_session, session_values, to_us


class SQLiteSessionRecords:
    """Session records and number checks over the store's connections."""

    db: SQLiteConnections

    def get_session(self, name: str) -> SessionRecord:
        row = self.db.get().execute(f"SELECT {SESSION_COLS} FROM {SESSIONS} WHERE name = ?", (name,)).fetchone()
        return SessionRecord(name) if row is None else row_to_session(row)

    def update_session(self, name: str, **fields: Any) -> SessionRecord:
        check_session_fields(fields)
        fields.setdefault("updated_at", datetime.now(UTC))
        values = session_values(fields)
        with self.db.transaction() as conn:
            conn.execute(statements.session_upsert_sql(tuple(values)), {"name": name, **values})
            return self.get_session(name)

    def reserve_send_slot(self, name: str, *, now: datetime, next_send_at: datetime) -> datetime | None:
        with self.db.transaction() as conn:
            conn.execute(f"INSERT OR IGNORE INTO {SESSIONS} (name) VALUES (?)", (name,))
            cur = conn.execute(
                f"UPDATE {SESSIONS} SET next_send_at = ? "
                "WHERE name = ? AND (next_send_at IS NULL OR next_send_at <= ?)",
                (to_us(next_send_at), name, to_us(now)),
            )
            if cur.rowcount == 1:
                return None
            row = conn.execute(f"SELECT next_send_at FROM {SESSIONS} WHERE name = ?", (name,)).fetchone()
            return from_us(row[0])

    def get_number_check(self, phone: str) -> bool | None:
        sql = f"SELECT registered FROM {NUMBER_CHECKS} WHERE phone = ?"
        row = self.db.get().execute(sql, (phone,)).fetchone()
        return None if row is None else bool(row[0])

    def set_number_check(self, phone: str, registered: bool, *, now: datetime) -> None:
        # Unsynced: a cached answer; lost in a power cut, the number is only checked again.
        with self.db.unsynced() as conn:
            conn.execute(
                f"INSERT INTO {NUMBER_CHECKS} (phone, registered, checked_at) VALUES (?, ?, ?) "
                "ON CONFLICT(phone) DO UPDATE SET registered = excluded.registered, checked_at = excluded.checked_at",
                (phone, int(registered), to_us(now)),
            )

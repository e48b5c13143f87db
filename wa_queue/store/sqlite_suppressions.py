"""The SQLite store's suppression list: numbers nothing is sent to. A part of SQLiteStore (wa_queue/store/sqlite.py),
which gives it `db`; the mark's check of the list is in SQLiteStore.mark_sending, inside the mark's own transaction."""

from __future__ import annotations

import sqlite3

from wa_queue.models import Suppression
from wa_queue.names import SUPPRESSIONS
from wa_queue.store.sqlite_connection import SQLiteConnections
from wa_queue.store.sqlite_schema import from_us, to_us

_COLUMNS = "phone, since, by_whom, session, word"
SUPPRESSED_SQL = f"SELECT 1 FROM {SUPPRESSIONS} WHERE phone = ?"


def _row(row: tuple) -> Suppression:
    return Suppression(phone=row[0], since=from_us(row[1]), by=row[2], session=row[3], word=row[4])  # type: ignore


def suppressed(conn: sqlite3.Connection, phone: str) -> bool:
    """Whether the number is on the list, read on `conn` (inside the caller's transaction)."""
    return conn.execute(SUPPRESSED_SQL, (phone,)).fetchone() is not None


class SQLiteSuppressions:
    db: SQLiteConnections

    def add_suppression(self, suppression: Suppression) -> bool:
        # Durable before the answer: a STOP must not come back after a power cut.
        with self.db.transaction_synced_after(one_statement=True) as conn:
            return conn.execute(
                f"INSERT OR IGNORE INTO {SUPPRESSIONS} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (suppression.phone, to_us(suppression.since), suppression.by, suppression.session,
                 suppression.word)).rowcount == 1

    def remove_suppression(self, phone: str) -> bool:
        with self.db.transaction_synced_after(one_statement=True) as conn:
            return conn.execute(f"DELETE FROM {SUPPRESSIONS} WHERE phone = ?", (phone,)).rowcount == 1

    def get_suppression(self, phone: str) -> Suppression | None:
        row = self.db.get().execute(f"SELECT {_COLUMNS} FROM {SUPPRESSIONS} WHERE phone = ?", (phone,)).fetchone()
        return _row(row) if row is not None else None

    def list_suppressions(self, *, limit: int = 100, offset: int = 0) -> tuple[list[Suppression], int]:
        conn = self.db.get()
        rows = conn.execute(f"SELECT {_COLUMNS} FROM {SUPPRESSIONS} ORDER BY since DESC, phone LIMIT ? OFFSET ?",
                            (limit, offset)).fetchall()
        return [_row(r) for r in rows], conn.execute(f"SELECT COUNT(*) FROM {SUPPRESSIONS}").fetchone()[0]

"""The SQLite store's suppression list: numbers nothing is sent to, and its log of changes. A part of SQLiteStore
(wa_queue/store/sqlite.py), which gives it `db`; the mark's check of the list is in SQLiteStore.mark_sending, inside
the mark's own transaction."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from wa_queue.models import OptChange, Suppression, SuppressionChange
from wa_queue.names import SUPPRESSION_LOG, SUPPRESSIONS
from wa_queue.store.sqlite_connection import SQLiteConnections
from wa_queue.store.sqlite_schema import from_us, to_us

_COLUMNS = "phone, since, by_whom, session, word"
_LOG_COLUMNS = "phone, change, at, by_whom, session, word"
SUPPRESSED_SQL = f"SELECT 1 FROM {SUPPRESSIONS} WHERE phone = ?"


def _row(row: tuple) -> Suppression:
    return Suppression(phone=row[0], since=from_us(row[1]), by=row[2], session=row[3], word=row[4])  # type: ignore


def _change(row: tuple) -> SuppressionChange:
    return SuppressionChange(phone=row[0], change=OptChange(row[1]), at=from_us(row[2]),  # type: ignore[arg-type]
                             by=row[3], session=row[4], word=row[5])


def suppressed(conn: sqlite3.Connection, phone: str) -> bool:
    """Whether the number is on the list, read on `conn` (inside the caller's transaction)."""
    return conn.execute(SUPPRESSED_SQL, (phone,)).fetchone() is not None


def _log(conn: sqlite3.Connection, phone: str, change: OptChange, at: datetime, by: str, session: str | None,
         word: str | None) -> None:
    conn.execute(f"INSERT INTO {SUPPRESSION_LOG} ({_LOG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                 (phone, change.value, to_us(at), by, session, word))


class SQLiteSuppressions:
    db: SQLiteConnections

    def add_suppression(self, suppression: Suppression) -> bool:
        # Durable before the answer: a STOP must not come back after a power cut. The entry and its log line are one
        # transaction.
        s = suppression
        with self.db.transaction_synced_after() as conn:
            added = conn.execute(f"INSERT OR IGNORE INTO {SUPPRESSIONS} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                                 (s.phone, to_us(s.since), s.by, s.session, s.word)).rowcount == 1
            if added:
                _log(conn, s.phone, OptChange.OUT, s.since, s.by, s.session, s.word)
            return added

    def remove_suppression(self, phone: str, *, by: str, at: datetime) -> bool:
        with self.db.transaction_synced_after() as conn:
            removed = conn.execute(f"DELETE FROM {SUPPRESSIONS} WHERE phone = ?", (phone,)).rowcount == 1
            if removed:
                _log(conn, phone, OptChange.IN, at, by, None, None)
            return removed

    def get_suppression(self, phone: str) -> Suppression | None:
        row = self.db.get().execute(f"SELECT {_COLUMNS} FROM {SUPPRESSIONS} WHERE phone = ?", (phone,)).fetchone()
        return _row(row) if row is not None else None

    def list_suppressions(self, *, limit: int = 100, offset: int = 0) -> tuple[list[Suppression], int]:
        conn = self.db.get()
        rows = conn.execute(f"SELECT {_COLUMNS} FROM {SUPPRESSIONS} ORDER BY since DESC, phone LIMIT ? OFFSET ?",
                            (limit, offset)).fetchall()
        return [_row(r) for r in rows], conn.execute(f"SELECT COUNT(*) FROM {SUPPRESSIONS}").fetchone()[0]

    def suppression_log(self, *, phone: str | None = None, limit: int = 100, offset: int = 0
                        ) -> tuple[list[SuppressionChange], int]:
        conn = self.db.get()
        where, args = ("WHERE phone = ?", (phone,)) if phone else ("", ())
        rows = conn.execute(f"SELECT {_LOG_COLUMNS} FROM {SUPPRESSION_LOG} {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                            (*args, limit, offset)).fetchall()
        total = conn.execute(f"SELECT COUNT(*) FROM {SUPPRESSION_LOG} {where}", args).fetchone()[0]
        return [_change(r) for r in rows], total

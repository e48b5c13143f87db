"""The SQLite store's daily quota counters (wa_queue/quota.py): one row per API key and UTC day (the table:
sqlite_schema.py), taken inside the insert's own BEGIN IMMEDIATE transaction, so that no other writer can count
between the check and the insert. A row costs one read and one write per insert of a key with a quota, where counting
the key's messages of the day would cost more as the quota grows. A key's older days are removed when its first row
of a day is written."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime

from wa_queue import quota
from wa_queue.names import ENQUEUE_COUNTS

_READ = f"SELECT n FROM {ENQUEUE_COUNTS} WHERE key_name = ? AND day = ?"
_FORGET = f"DELETE FROM {ENQUEUE_COUNTS} WHERE key_name = ? AND day < ?"
_NEW = f"INSERT INTO {ENQUEUE_COUNTS} (key_name, day, n) VALUES (?, ?, ?)"
_ADD = f"UPDATE {ENQUEUE_COUNTS} SET n = n + ? WHERE key_name = ? AND day = ?"


def take(conn: sqlite3.Connection, needs: Mapping[str, int], quotas: Mapping[str, int], now: datetime) -> None:
    """Count `needs` (key -> new messages) against today's quotas, or QuotaExceeded with nothing written. The
    caller holds the write transaction, and undoes these rows with the messages when the insert fails."""
    day = quota.day_of(now).isoformat()
    used = {}
    for name, count in needs.items():
        row = conn.execute(_READ, (name, day)).fetchone()
        used[name] = None if row is None else row[0]
        quota.check(name, used[name] or 0, count, quotas[name], now)
    for name, count in needs.items():
        if used[name] is None:
            conn.execute(_FORGET, (name, day))
            conn.execute(_NEW, (name, day, count))
        else:
            conn.execute(_ADD, (count, name, day))


def used_on(conn: sqlite3.Connection, now: datetime) -> dict[str, int]:
    """Each counted key's messages of the UTC day of `now`."""
    day = quota.day_of(now).isoformat()
    return dict(conn.execute(f"SELECT key_name, n FROM {ENQUEUE_COUNTS} WHERE day = ?", (day,)).fetchall())

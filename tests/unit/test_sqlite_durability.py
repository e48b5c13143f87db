"""SQLite durability rules (store/sqlite.py): what is fsynced, when, and under which lock."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wa_queue.models import NewMessage
from wa_queue.store import sqlite as sqlite_store
from wa_queue.store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[SQLiteStore, list[str]]:
    store = SQLiteStore(str(tmp_path / "waq.db"))
    events: list[str] = []
    real_flock, real_fsync = sqlite_store.fcntl.flock, os.fsync

    def flock(fd: int, op: int) -> None:
        events.append("lock" if op == sqlite_store.fcntl.LOCK_EX else "unlock")
        real_flock(fd, op)

    def fsync(fd: int) -> None:
        events.append("fsync " + os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(sqlite_store.fcntl, "flock", flock)
    monkeypatch.setattr(sqlite_store.os, "fsync", fsync)
    return store, events


def _synchronous(store: SQLiteStore) -> int:
    return store._conn().execute("PRAGMA synchronous").fetchone()[0]


def test_an_insert_is_fsynced_after_the_write_lock_is_released(traced: tuple[SQLiteStore, list[str]]) -> None:
    store, events = traced
    results = store.insert_groups([[NewMessage(phone="+14155550123", text="a")], [NewMessage(phone="+14155550124",
                                                                                           text="b")]], NOW)
    assert len(results) == 2
    assert events == ["lock", "unlock", "fsync waq.db-wal"]  # one commit, one fsync, outside the lock
    events.clear()
    store.insert_many([NewMessage(phone="+14155550125", text="c", idempotency_key="k")], NOW)  # the keyed path too
    assert events == ["lock", "unlock", "fsync waq.db-wal"]
    assert _synchronous(store) == 2  # FULL again for everything else on this connection


def test_the_claim_and_the_sent_record_leave_the_connection_on_full(traced: tuple[SQLiteStore, list[str]]) -> None:
    store, _ = traced
    message, _ = store.insert(NewMessage(phone="+14155550123", text="a"), NOW)
    assert store.claim(message.id, owner="w", session="primary", now=NOW, lease_s=60) is not None
    assert _synchronous(store) == 2
    assert store.mark_sending(message.id, owner="w", now=NOW)
    assert store.record_sent(message.id, owner="w", now=NOW, session="primary", wa_id="x") is not None
    assert _synchronous(store) == 2
    assert store.get(message.id).sent_by == "primary"

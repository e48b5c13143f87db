"""SQLite durability rules (store/sqlite.py, sqlite_connection.py): what is fsynced, when, and under which lock."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wa_queue.models import NewMessage
from wa_queue.store import sqlite_connection
from wa_queue.store.shared_fsync import SharedFsync
from wa_queue.store.sqlite import SQLiteStore
from wa_queue.store.sqlite_schema import INDEXES

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[SQLiteStore, list[str]]:
    store = SQLiteStore(str(tmp_path / "waq.db"))
    events: list[str] = []
    real_flock, real_fsync = sqlite_connection.fcntl.flock, os.fsync

    def flock(fd: int, op: int) -> None:
        events.append("lock" if op == sqlite_connection.fcntl.LOCK_EX else "unlock")
        real_flock(fd, op)

    def fsync(fd: int) -> None:
        events.append("fsync " + os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(sqlite_connection.fcntl, "flock", flock)
    monkeypatch.setattr(sqlite_connection.os, "fsync", fsync)
    return store, events


def _synchronous(store: SQLiteStore) -> int:
    return store.db.get().execute("PRAGMA synchronous").fetchone()[0]


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


def test_threads_share_fsyncs_and_each_waits_for_one_begun_after_its_commit(tmp_path: Path) -> None:
    """SharedFsync: an fsync covers only the commits completed before it began, and whoever needs durability while
    one runs waits for it and then, if it began too early, for the next."""
    import threading

    began: list[int] = []
    release = threading.Event()
    calls = [0]

    def fsync() -> None:
        calls[0] += 1
        began.append(calls[0])
        if calls[0] == 1:
            assert release.wait(10)

    sync = SharedFsync(fsync)
    sync.committed()
    first = threading.Thread(target=sync.wait)
    first.start()
    while not began:
        pass
    sync.committed()  # after the running fsync began: it does not cover this one
    waiters = [threading.Thread(target=sync.wait) for _ in range(3)]
    for thread in waiters:
        thread.start()
    release.set()
    for thread in [first, *waiters]:
        thread.join(10)
    assert calls[0] == 2  # three waiters shared the second fsync
    sync.wait()  # nothing committed since: no fsync
    assert calls[0] == 2


def test_a_failed_fsync_raises_and_the_next_wait_tries_again(tmp_path: Path) -> None:
    outcomes = [OSError("EIO"), None]

    def fsync() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    sync = SharedFsync(fsync)
    sync.committed()
    with pytest.raises(OSError, match="EIO"):
        sync.wait()
    sync.wait()
    assert outcomes == []


def test_a_forked_child_does_not_wait_for_its_parents_fsync() -> None:
    """A gunicorn worker is forked from a process that may have an fsync running in another thread: the child
    inherits a SharedFsync that says "running" with no thread left to finish it, and must start afresh."""
    import threading

    parent = os.getpid()
    running, release = threading.Event(), threading.Event()
    child_fsyncs: list[int] = []

    def fsync() -> None:
        if os.getpid() == parent:
            running.set()
            assert release.wait(10)
        else:
            child_fsyncs.append(os.getpid())

    sync = SharedFsync(fsync)
    sync.committed()
    holder = threading.Thread(target=sync.wait)
    holder.start()
    assert running.wait(10)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: commit, wait for durability, report how many fsyncs it ran
        try:
            sync.committed()
            sync.wait()
            os.write(write_end, str(len(child_fsyncs)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        import select

        ready, _, _ = select.select([read_end], [], [], 10)
        answer = os.read(read_end, 16).decode() if ready else "hung"
    finally:
        release.set()
        holder.join(10)
        if answer == "hung":
            os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(read_end)
    assert answer == "1"  # the child ran its own fsync instead of waiting forever for the parent's


def test_an_insert_left_to_make_durable_is_fsynced_by_it(traced: tuple[SQLiteStore, list[str]]) -> None:
    store, events = traced
    store.insert_groups([[NewMessage(phone="+14155550123", text="a")]], NOW, durable=False)
    assert events == ["lock", "unlock"]
    store.make_durable()
    assert events == ["lock", "unlock", "fsync waq.db-wal"]
    store.make_durable()  # nothing new: no second fsync
    assert events == ["lock", "unlock", "fsync waq.db-wal"]


def test_indexes_of_an_older_version_are_rebuilt_on_open(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    SQLiteStore(str(path)).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX ix_msg_failed")
    conn.execute("CREATE INDEX ix_msg_failed ON messages(status, failed_at, id)")  # the definition before partials
    conn.execute("DROP INDEX ix_msg_due")
    conn.commit()
    conn.close()
    store = SQLiteStore(str(path))
    found = dict(store.db.get().execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'").fetchall())
    assert found["ix_msg_failed"] == INDEXES["ix_msg_failed"]
    assert found["ix_msg_due"] == INDEXES["ix_msg_due"]
    assert "WHERE status = 'failed'" in found["ix_msg_failed"]

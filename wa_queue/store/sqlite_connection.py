"""The SQLite store's connections: one per thread and per process, its pragmas, the write lock and the commits.

Connections run WAL with synchronous=FULL. Write transactions queue on a file lock (<db>.wlock) before BEGIN
IMMEDIATE. A durable write commits without its own fsync and fsyncs the WAL after the lock is released
(`transaction_synced_after`), so the next writer commits meanwhile and the threads waiting for durability share one
fsync (shared_fsync.py). Writes that are harmless to lose in a power cut commit `unsynced`, and the next FULL commit
syncs them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator

from wa_queue.errors import StoreError
from wa_queue.store.shared_fsync import SharedFsync

BUSY_TIMEOUT_MS = 30_000
# SQLite's default page cache (2 MB) is too small for the random-key indexes of a large store: lookups then read
# from the file (BENCHMARKS.md, the store's choices).
CACHE_KIB = 65_536


class SQLiteConnections:
    """The connections of one SQLiteStore to its file, and the transactions over them."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._fds: list[int] = []
        self._all_lock = threading.Lock()
        self._wal_sync = SharedFsync(self._fsync_wal)

    def get(self) -> sqlite3.Connection:
        """This thread's connection (a connection inherited through fork is never reused)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # a committed message survives a power cut, not just a crash
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        # Opened per thread and per process: flock excludes other open files, and one inherited through fork is not.
        self._local.lockfd = os.open(self.path + ".wlock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._local.conn, self._local.pid = conn, os.getpid()
        with self._all_lock:
            self._all.append(conn)
            self._fds.append(self._local.lockfd)
        return conn

    @contextlib.contextmanager
    def transaction(self, *, one_statement: bool = False) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock up front, so read-then-write sequences cannot interleave.
        `one_statement`: the body runs a single statement, atomic on its own, so it runs without BEGIN and COMMIT
        (two calls fewer holding the write lock)."""
        conn = self.get()
        if conn.in_transaction:
            yield conn  # nested use joins the outer transaction
            return
        # Writers queue on a file lock first. SQLite's own busy handler polls with growing sleeps, so a waiting
        # writer can sleep long past the release of a lock held briefly; flock wakes the next writer as soon as it
        # is free (BENCHMARKS.md, the store's choices), and the kernel drops it with a killed process. Autocommit
        # transitions skip it: they keep SQLite's busy timeout.
        fd = self._local.lockfd
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if one_statement:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if conn.in_transaction:
                conn.execute("COMMIT")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def transaction_synced_after(self, *, one_statement: bool = False, durable: bool = True
                                 ) -> Iterator[sqlite3.Connection]:
        """A transaction as durable as a FULL commit whose fsync happens after the write lock is released.

        The commit itself skips its sync (synchronous=NORMAL: the WAL frames are written, not flushed), then the WAL
        file is fsynced: the frames, with everything written before them, are then on disk, as FULL would have left
        them. Outside the lock, the next writer commits meanwhile, and threads waiting for durability share one
        fsync (make_durable). `durable=False` leaves that fsync to the caller's make_durable()."""
        with self.unsynced(), self.transaction(one_statement=one_statement) as conn:
            yield conn
        if not conn.in_transaction:  # a joined outer transaction's commit decides
            self._wal_sync.committed()
            if durable:
                self.make_durable()

    def make_durable(self) -> None:
        """Everything this process committed before the call is on disk when it returns (one shared WAL fsync)."""
        self._wal_sync.wait()

    def _fsync_wal(self) -> None:
        """fsync the WAL: every commit written to it so far is durable. A WAL that is gone was checkpointed, and a
        checkpoint syncs the database file before it restarts or removes the WAL."""
        try:
            fd = os.open(self.path + "-wal", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def unsynced(self) -> Iterator[sqlite3.Connection]:
        """Commits inside skip their own fsync (WAL, synchronous=NORMAL): a crashed process still cannot lose them,
        only a power cut can, and the next FULL commit on this file syncs the WAL with them in it. For writes whose
        loss in a power cut is harmless (see the callers), never for one that guards a send."""
        conn = self.get()
        if conn.in_transaction:
            yield conn  # inside an outer transaction its commit decides
            return
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield conn
        finally:
            conn.execute("PRAGMA synchronous = FULL")

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
            fds, self._fds = self._fds, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._local = threading.local()

    def ping(self) -> None:
        try:
            self.get().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path} unreachable: {exc}") from exc

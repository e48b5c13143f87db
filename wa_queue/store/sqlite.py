"""SQLite message store: one file, WAL mode, safe for many processes on one machine and many threads per process.

The schema, its indexes and the row codecs live in sqlite_schema.py; the shared WAL fsync in shared_fsync.py.
History is a JSON array column, appended with json_insert() in the same UPDATE that changes the state, so every
transition is one atomic statement (UPDATE ... WHERE <CAS> RETURNING), built at import from the transition table
(lifecycle.py). Status counts live in a tiny table kept by triggers, in the same transaction as the change:
count_by_status() reads 4 rows.

Durability: connections run synchronous=FULL. Inserts are fsynced before they return, after the write lock is
released (_tx_synced_after). The claim, number checks, dispatch records and record_sent commit unsynced: each is
harmless to lose in a power cut (see each one), and the next FULL commit syncs them. Write transactions queue on a
file lock (<db>.wlock) before BEGIN IMMEDIATE.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from wa_queue import errors
from wa_queue.errors import IdempotencyConflict, InvalidTransition, NotFound, StoreError, ValidationError
from wa_queue.models import Message, MessageStatus, NewMessage, SessionStatus, parse_stored, plain
from wa_queue.names import ARCHIVE, MESSAGES, NUMBER_CHECKS, SESSIONS, STATUS_COUNTS
from wa_queue.private import private_file
from wa_queue.store import lifecycle
from wa_queue.store.base import MessageStore, SessionRecord, status_keys
from wa_queue.store.common import (
    SESSION_DATETIME_FIELDS,
    SESSION_FIELDS,
    check_session_fields,
    lookup_keys,
    operator_sent_text,
    picture_text,
    plan_inserts,
    utc,
)
from wa_queue.store.shared_fsync import SharedFsync
from wa_queue.store.sqlite_schema import (
    ADDED_COLUMNS,
    ADDED_SESSION_COLUMNS,
    BACKFILL_FIRST_SEND_DAY,
    COLS,
    INDEXES,
    INSERT_CHUNK,
    SCHEMA,
    add_column_sql,
    day_from_text,
    day_to_text,
    from_us,
    insert_sql,
    new_row,
    row_to_message,
    to_us,
)

BUSY_TIMEOUT_MS = 30_000
HOUR_US = 3_600_000_000
CACHE_KIB = 65_536
ARCHIVE_BATCH = 5_000  # rows moved per transaction, so the archive job never holds the write lock for long
KEY_CHUNK = 500  # idempotency keys looked up per query (below SQLite's variable limit)
_SENTINEL: Any = ...


# Appends one history entry; `{session}` is a parameter or a column (columns read the row's old values).
_HISTORY = (
    "history = json_insert(history, '$[#]', json_object('at', :at, 'event', :event, 'session', {session}, "
    "'error_class', :error_class, 'error_text', :error_text))"
)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _status_sql(statuses: tuple[MessageStatus, ...]) -> str:
    """The guard on the status; one status as `status = '...'`, the form the partial indexes' WHERE is written in."""
    if len(statuses) == 1:
        return f"status = {_literal(statuses[0].value)}"
    return f"status IN ({', '.join(_literal(s.value) for s in statuses)})"


def _value_sql(source: lifecycle.Source) -> str:
    """A lifecycle source as SQL: parameters by name, columns read the row as it was before the UPDATE."""
    if source is lifecycle.NOW:
        return ":now"
    if isinstance(source, lifecycle.Arg):
        return f":{source.name}"
    if isinstance(source, lifecycle.Const):
        return _literal(source.value)
    if isinstance(source, lifecycle.Row):
        return source.columns[0] if len(source.columns) == 1 else f"coalesce({', '.join(source.columns)})"
    raise TypeError(f"no SQL for {source!r}")


def _set_sql(write: lifecycle.Write) -> str:
    """The SET list of a transition: its fields set and cleared, the attempt, updated_at and the history entry."""
    transition = write.transition
    parts = [f"{field} = coalesce({field}, :{source.name})" if isinstance(source, lifecycle.Once)
             else f"{field} = {_value_sql(source)}" for field, source in write.sets]
    parts += [f"{field} = NULL" for field in write.clears]
    if transition.uses_attempt:
        parts.append("attempts = attempts + :inc")
    if transition.event is not None:
        parts += ["updated_at = :now", _HISTORY.format(session=_value_sql(transition.history_session))]
    return ", ".join(parts)


def _guard_sql(write: lifecycle.Write) -> str:
    """The compare-and-set: the table's from-statuses, the lease owner, and something new for Once fields."""
    transition = write.transition
    guards = [_status_sql(transition.from_statuses)]
    if write.owner:
        guards.append("lease_owner = :owner")
    if transition.once:
        sources = dict(write.sets)
        guards.append("(" + " OR ".join(f"(:{sources[field].name} IS NOT NULL AND {field} IS NULL)"  # type: ignore
                                         for field in transition.once) + ")")
    return " AND ".join(guards)


# What the read queries select, from the table's status groups.
_DUE = _status_sql(lifecycle.DUE)
_LEASED = _status_sql(lifecycle.LEASED)
_FAILED = _status_sql(lifecycle.OPERATOR_CASES)

_CLAIM_DUE = "next_attempt_at <= :now"  # the claim's own guards beside the table's
_CLAIM_AT = "attempts = :attempts"


def _update_sql(write: lifecycle.Write, *extra: str) -> tuple[str, str]:
    """The UPDATE of one transition by id, without and with RETURNING the row."""
    sql = f"UPDATE {MESSAGES} SET {_set_sql(write)} WHERE id = :id AND {' AND '.join((_guard_sql(write), *extra))}"
    return sql, f"{sql} RETURNING {COLS}"


# Every transition's statements, built once: keyed by the Write (hashed by identity).
_UPDATES: Mapping[lifecycle.Write, tuple[str, str]] = MappingProxyType({
    write: _update_sql(write, *((_CLAIM_DUE,) if transition is lifecycle.CLAIM else ()))
    for transition in lifecycle.TRANSITIONS for write in transition.writes.values()
})
_CLAIM_WRITE = lifecycle.CLAIM.write()
_CLAIM_AT_SQL = _update_sql(_CLAIM_WRITE, _CLAIM_DUE, _CLAIM_AT)
_RETRY_ALL_SET = _set_sql(lifecycle.RETRY_FAILED.write())
# The mark's gates (lifecycle.Gate): the row's keys read under the write lock, then each gate's count of the day.
_MARK_WRITE = lifecycle.MARK_SENDING.write()
_MARK_KEYS = tuple(dict.fromkeys(("claimed_by", *(gate.key.columns[0] for gate in lifecycle.MARK_SENDING.gates))))
_MARK_KEYS_SQL = f"SELECT {', '.join(_MARK_KEYS)} FROM {MESSAGES} WHERE id = :id AND {_guard_sql(_MARK_WRITE)}"
_NOT_SENT = f"status <> {_literal(lifecycle.RECORD_SENT.to.value)}"  # type: ignore[union-attr]


def _gate_sql(gate: lifecycle.Gate) -> str:
    # Each part is one range on a partial index (ix_msg_sent_by, ix_msg_phone_sent, ix_msg_doubt_*), whose WHERE the
    # terms imply.
    return (f"SELECT (SELECT count(*) FROM {MESSAGES} WHERE {gate.sent_key} = :key AND sent_at >= :since) + "
            f"(SELECT count(*) FROM {MESSAGES} WHERE {gate.sending_key} = :key AND sending_at >= :since "
            f"AND {_NOT_SENT} AND id <> :id)")


_GATES: Mapping[lifecycle.Gate, str] = MappingProxyType({g: _gate_sql(g) for g in lifecycle.MARK_SENDING.gates})
_SESSION_ONCE_SQL: Mapping[str, str] = MappingProxyType({
    field: f"UPDATE {SESSIONS} SET {field} = coalesce({field}, ?) WHERE name = ?"
    for field, _ in lifecycle.MARK_SENDING.session_once})
_DELETE_SQL = f"DELETE FROM {MESSAGES} WHERE id = ? AND {_status_sql(lifecycle.DELETE.from_statuses)}"
_ARCHIVE_IDS_SQL = (f"SELECT id FROM {MESSAGES} WHERE {_status_sql(lifecycle.ARCHIVE.from_statuses)} "
                    "AND failed_at < ? LIMIT ?")


class SQLiteStore(MessageStore):
    def __init__(self, path: str) -> None:
        self.path = path
        private_file(path)  # 0600, and so its -wal and -shm (private.py)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._fds: list[int] = []
        self._all_lock = threading.Lock()
        self._wal_sync = SharedFsync(self._fsync_wal)
        self._create_schema()

    def _create_schema(self) -> None:
        """Idempotent; under the write lock so processes opening the file together do not race."""
        conn = self._conn()
        try:
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA}")
            self._migrate_columns(conn)
            self._migrate_indexes(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @staticmethod
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

    @staticmethod
    def _migrate_indexes(conn: sqlite3.Connection) -> None:
        """Create missing indexes and rebuild those defined differently by an earlier version (once per file)."""
        existing = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                     (MESSAGES,)).fetchall())
        for name, sql in INDEXES.items():
            if name in existing and " ".join((existing[name] or "").split()) == sql:
                continue
            conn.execute(f"DROP INDEX IF EXISTS {name}")
            conn.execute(sql)

    # ---- connections and transactions ------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """One connection per thread and per process (a connection inherited through fork is never reused)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # a committed message survives a power cut, not just a crash
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")  # the default 2 MB thrashes on random-key indexes at 1M rows
        # Opened per thread and per process: flock excludes other open files, and one inherited through fork is not.
        self._local.lockfd = os.open(self.path + ".wlock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._local.conn, self._local.pid = conn, os.getpid()
        with self._all_lock:
            self._all.append(conn)
            self._fds.append(self._local.lockfd)
        return conn

    @contextlib.contextmanager
    def _tx(self, *, one_statement: bool = False) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock up front, so read-then-write sequences cannot interleave.
        `one_statement`: the body runs a single statement, atomic on its own, so it runs without BEGIN and COMMIT
        (two calls fewer holding the write lock)."""
        conn = self._conn()
        if conn.in_transaction:
            yield conn  # nested use joins the outer transaction
            return
        # Writers queue on a file lock first. SQLite's own busy handler polls with sleeps of 1, 2, 5, 10... ms, so
        # under contention (API threads in two processes) a write waited milliseconds for a lock held a fraction
        # of one; flock wakes the next writer as soon as it is free (bench/api.py: +30% enqueues/s), and the kernel
        # drops it with a killed process. Autocommit transitions skip it: they keep SQLite's busy timeout.
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
    def _tx_synced_after(self, *, one_statement: bool = False, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction as durable as a FULL commit whose fsync happens after the write lock is released.

        The commit itself skips its sync (synchronous=NORMAL: the WAL frames are written, not flushed), then the WAL
        file is fsynced: the frames, with everything written before them, are then on disk, as FULL would have left
        them. Outside the lock, the next writer commits meanwhile, and threads waiting for durability share one
        fsync (make_durable). `durable=False` leaves that fsync to the caller's make_durable()."""
        with self._unsynced(), self._tx(one_statement=one_statement) as conn:
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
    def _unsynced(self) -> Iterator[sqlite3.Connection]:
        """Commits inside skip their own fsync (WAL, synchronous=NORMAL): a crashed process still cannot lose them,
        only a power cut can, and the next FULL commit on this file syncs the WAL with them in it. For writes whose
        loss in a power cut is harmless (see the callers), never for one that guards a send."""
        conn = self._conn()
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
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path} unreachable: {exc}") from exc

    # ---- producer side ---------------------------------------------------------------------------------------
    def insert(self, new: NewMessage, now: datetime) -> tuple[Message, bool]:
        return self.insert_many([new], now)[0]

    def insert_many(self, news: list[NewMessage], now: datetime) -> list[tuple[Message, bool]]:
        if not any(n.idempotency_key for n in news):
            return self._insert_keyless([news], now)[0]
        with self._tx_synced_after() as conn:
            return self._insert(conn, news, now)

    def insert_groups(
        self, groups: list[list[NewMessage]], now: datetime, *, durable: bool = True
    ) -> list[list[tuple[Message, bool]] | Exception]:
        """One transaction (one fsync) for all groups; a savepoint each, so a group's error undoes only its rows."""
        if not any(n.idempotency_key for news in groups for n in news):
            return self._insert_keyless(groups, now, durable=durable)  # type: ignore[return-value]
        results: list[list[tuple[Message, bool]] | Exception] = []
        with self._tx_synced_after(durable=durable) as conn:
            for news in groups:
                conn.execute("SAVEPOINT grp")
                try:
                    results.append(self._insert(conn, news, now))
                except (IdempotencyConflict, ValidationError) as exc:
                    conn.execute("ROLLBACK TO grp")
                    results.append(exc)
                conn.execute("RELEASE grp")
        return results

    def _insert_keyless(
        self, groups: list[list[NewMessage]], now: datetime, *, durable: bool = True
    ) -> list[list[tuple[Message, bool]]]:
        """Without idempotency keys nothing depends on what is stored, so messages and rows are made before the
        write lock, which then covers one multi-row INSERT (counted by its trigger), without BEGIN and COMMIT up to
        INSERT_CHUNK rows. Every writer waits on that lock, and a holder that has to win the GIL back between
        statements holds it for longer (API threads, bench/api.py)."""
        now_us, histories = to_us(now), {}
        results: list[list[tuple[Message, bool]]] = []
        rows: list[tuple] = []
        for news in groups:
            planned, made = plan_inserts(news, {}, now)
            results.append(planned)
            rows.extend(new_row(message, now_us, histories) for message in made)
        with self._tx_synced_after(one_statement=len(rows) <= INSERT_CHUNK, durable=durable) as conn:
            self._write_rows(conn, rows)
        return results

    def _insert(self, conn: sqlite3.Connection, news: list[NewMessage], now: datetime) -> list[tuple[Message, bool]]:
        known = self._by_keys(conn, lookup_keys(news))
        results, made = plan_inserts(news, known, now)
        now_us, histories = to_us(now), {}
        self._write_rows(conn, [new_row(message, now_us, histories) for message in made])
        return results

    @staticmethod
    def _write_rows(conn: sqlite3.Connection, rows: list[tuple]) -> None:
        # Many rows per statement: one call into SQLite instead of one per row, each of which has to win the GIL
        # back while holding the write lock (API threads), and a quarter less time per row for bulk inserts.
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start:start + INSERT_CHUNK]
            conn.execute(insert_sql(len(chunk)), list(itertools.chain.from_iterable(chunk)))

    def _by_keys(self, conn: sqlite3.Connection, keys: list[str]) -> dict[str, Message]:
        found: dict[str, Message] = {}
        for start in range(0, len(keys), KEY_CHUNK):
            chunk = keys[start:start + KEY_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for row in conn.execute(f"SELECT {COLS} FROM {MESSAGES} WHERE idempotency_key IN ({marks})", chunk):
                message = row_to_message(row)
                found[message.idempotency_key] = message  # type: ignore[index]
        return found

    def get(self, message_id: str) -> Message:
        row = self._conn().execute(f"SELECT {COLS} FROM {MESSAGES} WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFound(message_id)
        return row_to_message(row)

    # ---- delivery side ---------------------------------------------------------------------------------------
    def _transition(self, write: lifecycle.Write, message_id: str, *, now: datetime, row: bool = True,
                    sql: tuple[str, str] | None = None, **params: Any) -> Message | bool | None:
        """One atomic compare-and-set, the table's UPDATE: change the row only if its guard holds, append history,
        return the new row (or True when the caller needs no row: reading it back is a large part of a delivery's
        store time). `params` are the transition's arguments, encoded for SQLite."""
        event = write.transition.event
        values = {"id": message_id, "now": to_us(now), "at": utc(now).isoformat(),
                  "event": event.value if event is not None else None, "error_class": None, "error_text": None,
                  "inc": 1, **params}
        plain_sql, returning_sql = sql or _UPDATES[write]
        if not row:
            return True if self._conn().execute(plain_sql, values).rowcount == 1 else None
        rows = self._conn().execute(returning_sql, values).fetchall()  # the autocommit ends with it
        return row_to_message(rows[0]) if rows else None

    def claim(
        self, message_id: str, *, owner: str, session: str, now: datetime, lease_s: float, attempts: int | None = None
    ) -> Message | None:
        # Unsynced: a claim lost in a power cut leaves the message pending with nothing sent (mark_sending, which
        # guards the send, is a FULL commit and syncs this one with it). Saves an fsync per delivered message.
        with self._unsynced():
            return self._transition(  # type: ignore[return-value]
                _CLAIM_WRITE, message_id, now=now, sql=_CLAIM_AT_SQL if attempts is not None else None, owner=owner,
                session=session, lease_expires_at=to_us(now + timedelta(seconds=lease_s)), attempts=attempts,
            )

    def extend_lease(self, message_id: str, *, owner: str, now: datetime, lease_s: float) -> bool:
        return self._transition(lifecycle.EXTEND_LEASE.write(), message_id, now=now, row=False, owner=owner,
                                lease_expires_at=to_us(now + timedelta(seconds=lease_s))) is not None

    def mark_sending(
        self, message_id: str, *, owner: str, now: datetime, session_cap: int | None = None,
        session_day_start: datetime | None = None, recipient_limit: int | None = None,
        recipient_day_start: datetime | None = None, first_send_day: date | None = None,
        picture: Sequence[str] | None = None,
    ) -> bool:
        args: dict[str, Any] = {"session_cap": session_cap, "session_day_start": session_day_start,
                                "recipient_limit": recipient_limit, "recipient_day_start": recipient_day_start,
                                "first_send_day": first_send_day}
        gates, once = lifecycle.MARK_SENDING.gated(args)
        if not gates and not once:
            return self._transition(_MARK_WRITE, message_id, now=now, owner=owner, row=False,
                                    picture=picture_text(picture)) is not None
        # BEGIN IMMEDIATE: every other writer waits, so the counts cannot change between them and the mark.
        with self._tx() as conn:
            row = conn.execute(_MARK_KEYS_SQL, {"id": message_id, "owner": owner}).fetchone()
            if row is None:
                return False
            keys = dict(zip(_MARK_KEYS, row, strict=True))
            for gate in gates:
                key, limit, since = keys[gate.key.columns[0]], args[gate.limit.name], args[gate.since.name]
                if since is None:
                    raise ValueError(f"{gate.limit.name} needs {gate.since.name}")
                used = conn.execute(_GATES[gate], {"key": key, "since": to_us(since), "id": message_id}).fetchone()[0]
                if used >= limit:
                    raise getattr(errors, gate.refusal)(
                        f"{gate.name} reached: {used} of {limit} for {key} since {utc(since).isoformat()}")
            if self._transition(_MARK_WRITE, message_id, now=now, owner=owner, row=False,
                                picture=picture_text(picture)) is None:
                return False
            if once and keys["claimed_by"] is not None:
                conn.execute(f"INSERT OR IGNORE INTO {SESSIONS} (name) VALUES (?)", (keys["claimed_by"],))
                for field, value in once.items():
                    conn.execute(_SESSION_ONCE_SQL[field], (day_to_text(value), keys["claimed_by"]))
        return True

    def defer(
        self, message_id: str, *, owner: str, now: datetime, next_attempt_at: datetime, reason: str, error_class: str,
    ) -> Message | None:
        return self._transition(  # type: ignore[return-value]
            lifecycle.DEFER.write(), message_id, now=now, owner=owner, error_class=error_class, error_text=reason,
            next_attempt_at=to_us(next_attempt_at),
        )

    def record_sent(
        self, message_id: str, *, owner: str, now: datetime, session: str, wa_id: str | None
    ) -> Message | None:
        # Unsynced, like the claim: mark_sending (FULL) is what keeps a send from happening twice. Lost in a power
        # cut, this leaves the message "sending", in doubt, and its next attempt finds it in the chat and records it
        # sent without sending again (the path a SIGKILL between click and record takes). The next FULL commit
        # (the next send's mark_sending) syncs it anyway. Saves the second of a delivery's two fsyncs.
        with self._unsynced():
            return self._transition(lifecycle.RECORD_SENT.write(), message_id, now=now, owner=owner,  # type: ignore
                                    session=session, wa_id=wa_id)

    def record_retry(
        self, message_id: str, *, owner: str, now: datetime, next_attempt_at: datetime, error_class: str,
        error_text: str, keep_doubt: bool = False,
    ) -> Message | None:
        return self._transition(  # type: ignore[return-value]
            lifecycle.RECORD_RETRY.write(keep_doubt=keep_doubt), message_id, now=now, owner=owner,
            next_attempt_at=to_us(next_attempt_at), error_class=error_class, error_text=error_text,
        )

    def record_failed(
        self, message_id: str, *, owner: str | None, now: datetime, error_class: str, error_text: str,
        count_attempt: bool = True,
    ) -> Message | None:
        return self._transition(  # type: ignore[return-value]
            lifecycle.RECORD_FAILED.write(owner=owner is not None), message_id, now=now, owner=owner,
            error_class=error_class, error_text=error_text, inc=1 if count_attempt else 0,
        )

    def release(
        self, message_id: str, *, owner: str, now: datetime, reason: str, error_class: str | None = None,
        next_attempt_at: datetime | None = None, session: str | None = _SENTINEL, keep_doubt: bool = False,
    ) -> Message | None:
        return self._transition(  # type: ignore[return-value]
            lifecycle.RELEASE.write(keep_doubt=keep_doubt, optional=session is not _SENTINEL), message_id, now=now,
            owner=owner, error_class=error_class, error_text=reason, next_attempt_at=to_us(next_attempt_at or now),
            session=None if session is _SENTINEL else session,
        )

    def mark_dispatched(self, message_ids: list[str], *, now: datetime, epoch: str | None, queue: str) -> None:
        if not message_ids:
            return
        # Unsynced: losing it in a power cut only makes the sweeper publish the message again, which the claim makes
        # harmless. It halves the fsyncs of an enqueue.
        # One statement per chunk rather than one per row, and without BEGIN/COMMIT when one chunk holds them all:
        # fewer calls holding the write lock (see _write_rows).
        with self._unsynced(), self._tx(one_statement=len(message_ids) <= KEY_CHUNK) as tx:
            for start in range(0, len(message_ids), KEY_CHUNK):
                chunk = message_ids[start:start + KEY_CHUNK]
                tx.execute(f"UPDATE {MESSAGES} SET dispatched_at = ?, dispatch_epoch = ?, dispatch_queue = ? "
                           f"WHERE id IN ({', '.join('?' * len(chunk))})", (to_us(now), epoch, queue, *chunk))

    def clear_dispatch(self, message_ids: list[str]) -> None:
        with self._tx() as conn:
            conn.executemany(f"UPDATE {MESSAGES} SET dispatch_epoch = NULL WHERE id = ?", [(m,) for m in message_ids])

    def list_undispatched(self, *, now: datetime, epoch: str, limit: int) -> list[Message]:
        # Three index ranges on (status, dispatch_epoch, next_attempt_at): NULL, below and above `epoch`. A single
        # `epoch IS NULL OR epoch <> ?` would walk every due message already dispatched in this epoch.
        part = (
            f"SELECT * FROM (SELECT {COLS} FROM {MESSAGES} INDEXED BY ix_msg_undispatched "
            f"WHERE {_DUE} AND {{cond}} "
                "AND next_attempt_at <= :now ORDER BY next_attempt_at LIMIT :limit)")
        conds = ("dispatch_epoch IS NULL", "dispatch_epoch < :epoch", "dispatch_epoch > :epoch")
        sql = " UNION ALL ".join(part.format(cond=c) for c in conds) + " ORDER BY next_attempt_at LIMIT :limit"
        rows = self._conn().execute(sql, {"now": to_us(now), "epoch": epoch, "limit": limit}).fetchall()
        return [row_to_message(r) for r in rows]

    def dispatch_queues(self) -> list[str]:
        # A skip scan by hand: each query seeks to the first entry past the last queue found.
        queues: list[str] = []
        conn = self._conn()
        while True:
            row = conn.execute(
                f"SELECT dispatch_queue FROM {MESSAGES} INDEXED BY ix_msg_queue WHERE {_DUE} "
                "AND dispatch_queue > ? ORDER BY dispatch_queue LIMIT 1", (queues[-1] if queues else "",)).fetchone()
            if row is None:
                return queues
            queues.append(row[0])

    def list_dispatched_to(
        self, queue: str, *, now: datetime, dispatched_before: datetime, limit: int
    ) -> list[Message]:
        return self._select(
            f"{_DUE} AND dispatch_queue = ? AND dispatched_at < ? AND next_attempt_at <= ? "
            "ORDER BY dispatched_at LIMIT ?", (queue, to_us(dispatched_before), to_us(now), limit),
            indexed_by="ix_msg_queue")

    def list_expired_leases(self, *, now: datetime, limit: int = 1000) -> list[Message]:
        return self._select(f"{_LEASED} AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT ?",
                            (to_us(now), limit))

    def list_leases(self, *, owner_prefix: str) -> list[Message]:
        # A range on the owner index, then an exact prefix test (the range alone is enough for ordinary text).
        return self._select(
            f"lease_owner IS NOT NULL AND lease_owner >= ? AND lease_owner < ? AND {_LEASED} "
            "AND substr(lease_owner, 1, ?) = ?",
            (owner_prefix, owner_prefix + "\U0010ffff", len(owner_prefix), owner_prefix),
        )

    def recover(self, message_id: str, *, owner: str, now: datetime, reason: str) -> Message | None:
        return self._transition(lifecycle.RECOVER.write(), message_id, now=now, owner=owner,  # type: ignore
                                error_text=reason)

    def _select(self, where: str, params: tuple | dict, table: str = MESSAGES, indexed_by: str | None = None
                ) -> list[Message]:
        index = f" INDEXED BY {indexed_by}" if indexed_by else ""
        rows = self._conn().execute(f"SELECT {COLS} FROM {table}{index} WHERE {where}", params).fetchall()
        return [row_to_message(r) for r in rows]

    # ---- operator side ---------------------------------------------------------------------------------------
    def count_by_status(self) -> dict[str, int]:
        counts = status_keys()
        counts.update(dict(self._conn().execute(f"SELECT status, n FROM {STATUS_COUNTS}").fetchall()))
        return counts

    @staticmethod
    def _failed_filter(session: str | None, error: str | None = None) -> tuple[str, dict[str, Any]]:
        where = _FAILED
        if session is not None:
            where += " AND (claimed_by = :fs OR sent_by = :fs OR session = :fs)"
        if error is not None:
            where += " AND (instr(last_error_class, :fe) > 0 OR instr(last_error_text, :fe) > 0)"
        return where, {"fs": session, "fe": error}

    def list_failed(
        self, *, offset: int = 0, limit: int = 50, session: str | None = None, error: str | None = None
    ) -> tuple[list[Message], int]:
        return self._failed_page(MESSAGES, offset=offset, limit=limit, session=session, error=error)

    def _failed_page(self, table: str, *, offset: int, limit: int, session: str | None, error: str | None
                     ) -> tuple[list[Message], int]:
        """list_failed() and list_archived(): one filter, newest failed first (ix_msg_failed / ix_archive_failed)."""
        where, params = self._failed_filter(session, error)
        conn = self._conn()
        total = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]
        page = self._select(f"{where} ORDER BY failed_at DESC, id DESC LIMIT :limit OFFSET :offset",
                            {**params, "limit": limit, "offset": offset}, table=table)
        return page, total

    def retry_failed(self, message_id: str, *, now: datetime) -> Message:
        return self._operator(lifecycle.RETRY_FAILED, message_id, now=now)

    def mark_sent_by_operator(self, message_id: str, *, now: datetime, actor: str, note: str | None = None) -> Message:
        return self._operator(lifecycle.MARK_SENT_BY_OPERATOR, message_id, now=now,
                              error_text=operator_sent_text(actor, note))

    def _operator(self, transition: lifecycle.Transition, message_id: str, *, now: datetime, **params: Any) -> Message:
        """An operator's transition: one CAS on the status, NotFound / InvalidTransition otherwise."""
        with self._tx():
            message = self._transition(transition.write(), message_id, now=now, **params)
            if message is None:
                self._raise_not_from(transition.from_statuses, message_id)
        return message  # type: ignore[return-value]

    def _raise_not_from(self, statuses: tuple[MessageStatus, ...], message_id: str) -> None:
        row = self._conn().execute(f"SELECT status FROM {MESSAGES} WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFound(message_id)
        raise InvalidTransition(f"message {message_id} is {row[0]}, not {' or '.join(s.value for s in statuses)}")

    def retry_all_failed(self, *, now: datetime, session: str | None = None) -> list[str]:
        where, params = self._failed_filter(session)
        values = {"now": to_us(now), "at": utc(now).isoformat(), "event": lifecycle.RETRY_FAILED.event.value,
                  "error_class": None, "error_text": None, **params}  # type: ignore[union-attr]
        sql = f"UPDATE {MESSAGES} SET {_RETRY_ALL_SET} WHERE {where} RETURNING id"
        with self._tx() as conn:
            return [row[0] for row in conn.execute(sql, values).fetchall()]

    def delete(self, message_id: str) -> None:
        with self._tx() as conn:
            if conn.execute(_DELETE_SQL, (message_id,)).rowcount:
                return
            self._raise_not_from(lifecycle.DELETE.from_statuses, message_id)

    def archive_failed(self, *, older_than: datetime, now: datetime) -> int:
        moved = 0
        while True:
            with self._tx() as conn:
                ids = [r[0] for r in conn.execute(_ARCHIVE_IDS_SQL, (to_us(older_than), ARCHIVE_BATCH))]
                if not ids:
                    return moved
                marks = ", ".join("?" * len(ids))
                # Copy, then delete, in one transaction: a message is never in neither table.
                conn.execute(f"INSERT INTO {ARCHIVE} ({COLS}, archived_at) SELECT {COLS}, ? FROM {MESSAGES} "
                             f"WHERE id IN ({marks})", (to_us(now), *ids))
                conn.execute(f"DELETE FROM {MESSAGES} WHERE id IN ({marks})", ids)
                moved += len(ids)

    def get_archived(self, message_id: str) -> Message:
        found = self._select("id = ?", (message_id,), table=ARCHIVE)
        if not found:
            raise NotFound(message_id)
        return found[0]

    def list_archived(
        self, *, offset: int = 0, limit: int = 50, session: str | None = None, error: str | None = None
    ) -> tuple[list[Message], int]:
        return self._failed_page(ARCHIVE, offset=offset, limit=limit, session=session, error=error)

    def sends_since(self, session: str, since: datetime) -> int:
        sql = f"SELECT count(*) FROM {MESSAGES} WHERE sent_by = ? AND sent_at >= ?"
        return self._conn().execute(sql, (session, to_us(since))).fetchone()[0]

    def wa_ids_sent(self, phone: str, *, session: str, since: datetime) -> set[str]:
        sql = (f"SELECT wa_id FROM {MESSAGES} INDEXED BY ix_msg_phone_sent WHERE phone = ? AND sent_at >= ? "
               "AND sent_at IS NOT NULL AND sent_by = ? AND wa_id IS NOT NULL")
        return {row[0] for row in self._conn().execute(sql, (phone, to_us(since), session))}

    def sends_per_hour(self, *, since: datetime) -> list[tuple[datetime, int]]:
        sql = (f"SELECT sent_at / {HOUR_US} AS hour, count(*) FROM {MESSAGES} "
               "WHERE sent_at IS NOT NULL AND sent_at >= ? GROUP BY hour ORDER BY hour")
        rows = self._conn().execute(sql, (to_us(since),)).fetchall()
        return [(from_us(hour * HOUR_US), n) for hour, n in rows]  # type: ignore[misc]

    def oldest_pending(self) -> Message | None:
        found = self._select(f"{_DUE} ORDER BY created_at LIMIT 1", ())
        return found[0] if found else None

    def count_failed_since(self, since: datetime) -> int:
        sql = f"SELECT count(*) FROM {MESSAGES} INDEXED BY ix_msg_failed WHERE {_FAILED} AND failed_at >= ?"
        return self._conn().execute(sql, (to_us(since),)).fetchone()[0]

    def oldest_due(self, *, now: datetime) -> Message | None:
        found = self._select(f"{_DUE} AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT 1",
                             (to_us(now),), indexed_by="ix_msg_due")
        return found[0] if found else None

    def record_receipt(
        self, message_id: str, *, now: datetime, delivered_at: datetime | None = None, read_at: datetime | None = None
    ) -> Message | None:
        message = self._transition(lifecycle.RECORD_RECEIPT.write(), message_id, now=now,
                                   delivered_at=to_us(delivered_at), read_at=to_us(read_at))
        if message is not None:
            return message
        try:
            current = self.get(message_id)
        except NotFound:
            return None
        return current if current.status in lifecycle.RECORD_RECEIPT.from_statuses else None  # nothing new to record

    def record_callback_refused(self, message_id: str, *, now: datetime, error_class: str,
                                error_text: str) -> Message | None:
        return self._transition(lifecycle.RECORD_CALLBACK_REFUSED.write(), message_id, now=now,  # type: ignore[return-value]
                                error_class=error_class, error_text=error_text)

    # ---- sessions and number checks --------------------------------------------------------------------------
    def get_session(self, name: str) -> SessionRecord:
        cols = ", ".join(SESSION_FIELDS)
        row = self._conn().execute(f"SELECT {cols} FROM {SESSIONS} WHERE name = ?", (name,)).fetchone()
        if row is None:
            return SessionRecord(name)
        data = dict(zip(SESSION_FIELDS, row, strict=True))
        for field in SESSION_DATETIME_FIELDS:
            data[field] = from_us(data[field])
        data["needs_operator"] = bool(data["needs_operator"])
        data["restart_requested"] = bool(data["restart_requested"])
        data["warmup_skipped"] = bool(data["warmup_skipped"])
        data["first_send_day"] = day_from_text(data["first_send_day"])
        data["status"] = parse_stored(SessionStatus, data["status"])
        return SessionRecord(**data)

    def update_session(self, name: str, **fields: Any) -> SessionRecord:
        check_session_fields(fields)
        fields.setdefault("updated_at", datetime.now(UTC))
        if "status" in fields:
            fields["status"] = plain(fields["status"])
        values = {k: to_us(v) if k in SESSION_DATETIME_FIELDS else v for k, v in fields.items()}
        if "first_send_day" in values:
            values["first_send_day"] = day_to_text(values["first_send_day"])
        cols = ", ".join(["name", *values])
        marks = ", ".join(f":{k}" for k in ["name", *values])
        updates = ", ".join(f"{k} = excluded.{k}" for k in values)
        with self._tx() as conn:
            conn.execute(f"INSERT INTO {SESSIONS} ({cols}) VALUES ({marks}) ON CONFLICT(name) DO UPDATE SET {updates}",
                         {"name": name, **values})
            return self.get_session(name)

    def reserve_send_slot(self, name: str, *, now: datetime, next_send_at: datetime) -> datetime | None:
        with self._tx() as conn:
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
        row = self._conn().execute(f"SELECT registered FROM {NUMBER_CHECKS} WHERE phone = ?", (phone,)).fetchone()
        return None if row is None else bool(row[0])

    def set_number_check(self, phone: str, registered: bool, *, now: datetime) -> None:
        # Unsynced: a cached answer; lost in a power cut, the number is only checked again.
        with self._unsynced() as conn:
            conn.execute(
                f"INSERT INTO {NUMBER_CHECKS} (phone, registered, checked_at) VALUES (?, ?, ?) "
                "ON CONFLICT(phone) DO UPDATE SET registered = excluded.registered, checked_at = excluded.checked_at",
                (phone, int(registered), to_us(now)),
            )

"""SQLite message store: one file, WAL mode, safe for many processes on one machine and many threads per process.

This module is the adapter: each MessageStore call as the transaction it needs. The file's tables, migrations and
row codecs are sqlite_schema.py's; the statements built from the transition table, sqlite_statements.py's; the
connections, the write lock and the commits, sqlite_connection.py's. Inserts are fsynced before they return; the
claim, number checks, dispatch records and record_sent commit unsynced, each harmless to lose in a power cut (see
each one), and the next FULL commit syncs them.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from wa_queue import errors, quota
from wa_queue.errors import IdempotencyConflict, InvalidTransition, NotFound, QuotaExceeded, ValidationError
from wa_queue.models import Category, Message, MessageStatus, NewMessage, blocked_by_opt_out
from wa_queue.names import ARCHIVE, MESSAGES, SESSIONS, STATUS_COUNTS
from wa_queue.private import private_file
from wa_queue.store import lifecycle, sqlite_quota
from wa_queue.store import sqlite_statements as statements
from wa_queue.store.base import MessageStore, status_keys
from wa_queue.store.common import (
    lookup_keys,
    operator_sent_text,
    opted_out_text,
    picture_text,
    plan_inserts,
    utc,
)
from wa_queue.store.sqlite_connection import SQLiteConnections
from wa_queue.store.sqlite_inbound import SQLiteInbound
from wa_queue.store.sqlite_media import SQLiteMedia
from wa_queue.store.sqlite_schema import (
    COLS,
    INSERT_CHUNK,
    WHEN_ROW_LENGTH,
    create_schema,
    day_to_text,
    from_us,
    insert_sql,
    new_row,
    row_to_message,
    to_us,
)
from wa_queue.store.sqlite_sessions import SQLiteSessionRecords
from wa_queue.store.sqlite_statements import DUE, FAILED, LEASED
from wa_queue.store.sqlite_suppressions import SQLiteSuppressions, suppressed
from wa_queue.store.sqlite_when import SQLiteWhen

HOUR_US = 3_600_000_000
ARCHIVE_BATCH = 5_000  # rows moved per transaction, so the archive job never holds the write lock for long
KEY_CHUNK = 500  # idempotency keys looked up per query (below SQLite's variable limit)
_SENTINEL: Any = ...


class SQLiteStore(SQLiteSessionRecords, SQLiteWhen, SQLiteMedia, SQLiteSuppressions, SQLiteInbound, MessageStore):
    def __init__(self, path: str) -> None:
        self.path = path
        private_file(path)  # 0600, and so its -wal and -shm (private.py)
        self.db = SQLiteConnections(path)
        create_schema(self.db.get())

    def make_durable(self) -> None:
        """Everything this process committed before the call is on disk when it returns (one shared WAL fsync)."""
        self.db.make_durable()

    def close(self) -> None:
        self.db.close()

    def ping(self) -> None:
        self.db.ping()

    # ---- producer side ---------------------------------------------------------------------------------------
    def insert(self, new: NewMessage, now: datetime, *, quotas: Mapping[str, int] | None = None
               ) -> tuple[Message, bool]:
        return self.insert_many([new], now, quotas=quotas)[0]

    def insert_many(self, news: list[NewMessage], now: datetime, *, quotas: Mapping[str, int] | None = None
                    ) -> list[tuple[Message, bool]]:
        if not any(n.idempotency_key for n in news):
            result = self._insert_keyless([news], now, quotas=quotas)[0]
            if isinstance(result, Exception):
                raise result
            return result
        with self.db.transaction_synced_after() as conn:
            return self._insert(conn, news, now, quotas)

    def insert_groups(
        self, groups: list[list[NewMessage]], now: datetime, *, durable: bool = True,
        quotas: Mapping[str, int] | None = None,
    ) -> list[list[tuple[Message, bool]] | Exception]:
        """One transaction (one fsync) for all groups; a savepoint each, so a group's error undoes only its rows."""
        if not any(n.idempotency_key for news in groups for n in news):
            return self._insert_keyless(groups, now, durable=durable, quotas=quotas)
        results: list[list[tuple[Message, bool]] | Exception] = []
        with self.db.transaction_synced_after(durable=durable) as conn:
            for news in groups:
                conn.execute("SAVEPOINT grp")
                try:
                    results.append(self._insert(conn, news, now, quotas))
                except (IdempotencyConflict, ValidationError, QuotaExceeded) as exc:
                    conn.execute("ROLLBACK TO grp")
                    results.append(exc)
                conn.execute("RELEASE grp")
        return results

    def _insert_keyless(
        self, groups: list[list[NewMessage]], now: datetime, *, durable: bool = True,
        quotas: Mapping[str, int] | None = None,
    ) -> list[list[tuple[Message, bool]] | Exception]:
        """Without idempotency keys nothing depends on what is stored, so messages and rows are made before the
        write lock, which then covers one multi-row INSERT (counted by its trigger), without BEGIN and COMMIT up to
        INSERT_CHUNK rows. Every writer waits on that lock, and a holder that has to win the GIL back between
        statements holds it for longer (API threads, bench/api.py). A key with a quota needs its counter in the same
        transaction: then BEGIN and COMMIT are back, and a group over its quota is left out with its error."""
        now_us, histories = to_us(now), {}
        results: list[list[tuple[Message, bool]] | Exception] = []
        planned_rows: list[list[tuple]] = []
        needs: list[dict[str, int]] = []
        for news in groups:
            planned, made = plan_inserts(news, {}, now)
            results.append(planned)
            planned_rows.append([new_row(message, now_us, histories) for message in made])
            needs.append(quota.needs(made, quotas))
        rows_count = sum(len(rows) for rows in planned_rows)
        one_statement = rows_count <= INSERT_CHUNK and not any(needs)
        with self.db.transaction_synced_after(one_statement=one_statement, durable=durable) as conn:
            rows: list[tuple] = []
            for index, group_rows in enumerate(planned_rows):
                if needs[index]:
                    try:
                        sqlite_quota.take(conn, needs[index], quotas or {}, now)
                    except QuotaExceeded as exc:
                        results[index] = exc
                        continue
                rows.extend(group_rows)
            self._write_rows(conn, rows)
        return results

    def _insert(self, conn: sqlite3.Connection, news: list[NewMessage], now: datetime,
                quotas: Mapping[str, int] | None) -> list[tuple[Message, bool]]:
        known = self._by_keys(conn, lookup_keys(news))
        results, made = plan_inserts(news, known, now)
        counted = quota.needs(made, quotas)
        if counted:
            sqlite_quota.take(conn, counted, quotas or {}, now)
        now_us, histories = to_us(now), {}
        self._write_rows(conn, [new_row(message, now_us, histories) for message in made])
        return results

    def quota_used(self, now: datetime) -> dict[str, int]:
        return sqlite_quota.used_on(self.db.get(), now)

    @staticmethod
    def _write_rows(conn: sqlite3.Connection, rows: list[tuple]) -> None:
        # Many rows per statement: one call into SQLite instead of one per row, each of which has to win the GIL
        # back while holding the write lock (API threads), and less time per row for bulk inserts (BENCHMARKS.md).
        # Rows with the when-columns (schedule, expiry, priority, batch) go in statements of their own.
        for when in (False, True):
            kind = [row for row in rows if (len(row) == WHEN_ROW_LENGTH) == when]
            for start in range(0, len(kind), INSERT_CHUNK):
                chunk = kind[start:start + INSERT_CHUNK]
                conn.execute(insert_sql(len(chunk), when), list(itertools.chain.from_iterable(chunk)))

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
        row = self.db.get().execute(f"SELECT {COLS} FROM {MESSAGES} WHERE id = ?", (message_id,)).fetchone()
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
        plain_sql, returning_sql = sql or statements.UPDATES[write]
        if not row:
            return True if self.db.get().execute(plain_sql, values).rowcount == 1 else None
        rows = self.db.get().execute(returning_sql, values).fetchall()  # the autocommit ends with it
        return row_to_message(rows[0]) if rows else None

    def claim(
        self, message_id: str, *, owner: str, session: str, now: datetime, lease_s: float, attempts: int | None = None
    ) -> Message | None:
        # Unsynced: a claim lost in a power cut leaves the message pending with nothing sent (mark_sending, which
        # guards the send, is a FULL commit and syncs this one with it). Saves an fsync per delivered message.
        with self.db.unsynced():
            return self._transition(  # type: ignore[return-value]
                statements.CLAIM_WRITE, message_id, now=now, owner=owner, session=session,
                sql=statements.CLAIM_AT_SQL if attempts is not None else None, attempts=attempts,
                lease_expires_at=to_us(now + timedelta(seconds=lease_s)),
            )

    def extend_lease(self, message_id: str, *, owner: str, now: datetime, lease_s: float) -> bool:
        return self._transition(lifecycle.EXTEND_LEASE.write(), message_id, now=now, row=False, owner=owner,
                                lease_expires_at=to_us(now + timedelta(seconds=lease_s))) is not None

    def mark_sending(
        self, message_id: str, *, owner: str, now: datetime, session_cap: int | None = None,
        session_day_start: datetime | None = None, recipient_limit: int | None = None,
        recipient_day_start: datetime | None = None, first_send_day: date | None = None,
        picture: Sequence[str] | None = None, opt_out_scope: str = "all",
    ) -> bool:
        args: dict[str, Any] = {"session_cap": session_cap, "session_day_start": session_day_start,
                                "recipient_limit": recipient_limit, "recipient_day_start": recipient_day_start,
                                "first_send_day": first_send_day}
        gates, once = lifecycle.MARK_SENDING.gated(args)
        # BEGIN IMMEDIATE: every other writer waits, so neither the suppression list nor the counts can change
        # between them and the mark. A number on the list: the message ends cancelled, nothing marked.
        opted_out: Message | None = None
        with self.db.transaction() as conn:
            keys_of = {"id": message_id, "owner": owner, "now": to_us(now)}
            row = conn.execute(statements.MARK_KEYS_SQL, keys_of).fetchone()
            if row is None:
                return False
            keys = dict(zip(statements.MARK_KEYS, row, strict=True))
            if blocked_by_opt_out(keys["category"] or Category.TRANSACTIONAL.value, opt_out_scope) \
                    and suppressed(conn, keys["phone"]):
                opted_out = self.cancel_opted_out(message_id, owner=owner, now=now,
                                                  error_text=opted_out_text(keys["phone"]))
            else:
                for gate in gates:
                    key, limit, since = keys[gate.key.columns[0]], args[gate.limit.name], args[gate.since.name]
                    if since is None:
                        raise ValueError(f"{gate.limit.name} needs {gate.since.name}")
                    counted = conn.execute(statements.GATES[gate],
                                           {"key": key, "since": to_us(since), "id": message_id})
                    used = counted.fetchone()[0]
                    if used >= limit:
                        raise getattr(errors, gate.refusal)(
                            f"{gate.name} reached: {used} of {limit} for {key} since {utc(since).isoformat()}")
                if self._transition(statements.MARK_WRITE, message_id, now=now, owner=owner, row=False,
                                    picture=picture_text(picture)) is None:
                    return False
                if once and keys["claimed_by"] is not None:
                    conn.execute(f"INSERT OR IGNORE INTO {SESSIONS} (name) VALUES (?)", (keys["claimed_by"],))
                    for field, value in once.items():
                        conn.execute(statements.SESSION_ONCE_SQL[field], (day_to_text(value), keys["claimed_by"]))
        if opted_out is not None:
            raise errors.OptedOut(opted_out.last_error_text or "", cancelled=opted_out)
        return True

    def cancel_opted_out(self, message_id: str, *, owner: str, now: datetime, error_text: str) -> Message | None:
        return self._transition(lifecycle.CANCEL_OPTED_OUT.write(), message_id, now=now, owner=owner,  # type: ignore
                                error_text=error_text)

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
        with self.db.unsynced():
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
        # harmless, and an enqueue then waits for one fsync instead of two.
        # One statement per chunk rather than one per row, and without BEGIN/COMMIT when one chunk holds them all:
        # fewer calls holding the write lock (see _write_rows).
        with self.db.unsynced(), self.db.transaction(one_statement=len(message_ids) <= KEY_CHUNK) as tx:
            for start in range(0, len(message_ids), KEY_CHUNK):
                chunk = message_ids[start:start + KEY_CHUNK]
                tx.execute(statements.dispatched_sql(len(chunk)), (to_us(now), epoch, queue, *chunk))

    def clear_dispatch(self, message_ids: list[str]) -> None:
        with self.db.transaction() as conn:
            conn.executemany(f"UPDATE {MESSAGES} SET dispatch_epoch = NULL WHERE id = ?", [(m,) for m in message_ids])

    def list_undispatched(self, *, now: datetime, epoch: str, limit: int) -> list[Message]:
        values = {"now": to_us(now), "epoch": epoch, "limit": limit}
        rows = self.db.get().execute(statements.UNDISPATCHED_SQL, values).fetchall()
        return [row_to_message(r) for r in rows]

    def dispatch_queues(self) -> list[str]:
        # A skip scan by hand: each query seeks to the first entry past the last queue found.
        queues: list[str] = []
        conn = self.db.get()
        while True:
            row = conn.execute(
                f"SELECT dispatch_queue FROM {MESSAGES} INDEXED BY ix_msg_queue WHERE {DUE} "
                "AND dispatch_queue > ? ORDER BY dispatch_queue LIMIT 1", (queues[-1] if queues else "",)).fetchone()
            if row is None:
                return queues
            queues.append(row[0])

    def list_dispatched_to(
        self, queue: str, *, now: datetime, dispatched_before: datetime, limit: int
    ) -> list[Message]:
        return self._select(
            f"{DUE} AND dispatch_queue = ? AND dispatched_at < ? AND next_attempt_at <= ? "
            "ORDER BY dispatched_at LIMIT ?", (queue, to_us(dispatched_before), to_us(now), limit),
            indexed_by="ix_msg_queue")

    def list_expired_leases(self, *, now: datetime, limit: int = 1000) -> list[Message]:
        return self._select(f"{LEASED} AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT ?",
                            (to_us(now), limit))

    def list_leases(self, *, owner_prefix: str) -> list[Message]:
        # A range on the owner index, then an exact prefix test (the range alone is enough for ordinary text).
        return self._select(
            f"lease_owner IS NOT NULL AND lease_owner >= ? AND lease_owner < ? AND {LEASED} "
            "AND substr(lease_owner, 1, ?) = ?",
            (owner_prefix, owner_prefix + "\U0010ffff", len(owner_prefix), owner_prefix),
        )

    def recover(self, message_id: str, *, owner: str, now: datetime, reason: str) -> Message | None:
        return self._transition(lifecycle.RECOVER.write(), message_id, now=now, owner=owner,  # type: ignore
                                error_text=reason)

    def _select(self, where: str, params: tuple | dict, table: str = MESSAGES, indexed_by: str | None = None
                ) -> list[Message]:
        index = f" INDEXED BY {indexed_by}" if indexed_by else ""
        rows = self.db.get().execute(f"SELECT {COLS} FROM {table}{index} WHERE {where}", params).fetchall()
        return [row_to_message(r) for r in rows]

    # ---- operator side ---------------------------------------------------------------------------------------
    def count_by_status(self) -> dict[str, int]:
        counts = status_keys()
        counts.update(dict(self.db.get().execute(f"SELECT status, n FROM {STATUS_COUNTS}").fetchall()))
        return counts

    def list_failed(
        self, *, offset: int = 0, limit: int = 50, session: str | None = None, error: str | None = None
    ) -> tuple[list[Message], int]:
        return self._failed_page(MESSAGES, offset=offset, limit=limit, session=session, error=error)

    def _failed_page(self, table: str, *, offset: int, limit: int, session: str | None, error: str | None
                     ) -> tuple[list[Message], int]:
        """list_failed() and list_archived(): one filter, newest failed first (ix_msg_failed / ix_archive_failed)."""
        where, params = statements.failed_filter(session, error)
        conn = self.db.get()
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
        with self.db.transaction():
            message = self._transition(transition.write(), message_id, now=now, **params)
            if message is None:
                self._raise_not_from(transition.from_statuses, message_id)
        return message  # type: ignore[return-value]

    def _raise_not_from(self, statuses: tuple[MessageStatus, ...], message_id: str) -> None:
        row = self.db.get().execute(f"SELECT status FROM {MESSAGES} WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFound(message_id)
        raise InvalidTransition(f"message {message_id} is {row[0]}, not {' or '.join(s.value for s in statuses)}")

    def retry_all_failed(self, *, now: datetime, session: str | None = None) -> list[str]:
        where, params = statements.failed_filter(session)
        values = {"now": to_us(now), "at": utc(now).isoformat(), "event": lifecycle.RETRY_FAILED.event.value,
                  "error_class": None, "error_text": None, **params}  # type: ignore[union-attr]
        sql = f"UPDATE {MESSAGES} SET {statements.RETRY_ALL_SET} WHERE {where} RETURNING id"
        with self.db.transaction() as conn:
            return [row[0] for row in conn.execute(sql, values).fetchall()]

    def delete(self, message_id: str) -> None:
        with self.db.transaction() as conn:
            if conn.execute(statements.DELETE_SQL, (message_id,)).rowcount:
                return
            self._raise_not_from(lifecycle.DELETE.from_statuses, message_id)

    def archive_failed(self, *, older_than: datetime, now: datetime) -> int:
        moved = 0
        while True:
            with self.db.transaction() as conn:
                ids = [r[0] for r in conn.execute(statements.ARCHIVE_IDS_SQL, (to_us(older_than), ARCHIVE_BATCH))]
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
        return self.db.get().execute(sql, (session, to_us(since))).fetchone()[0]

    def wa_ids_sent(self, phone: str, *, session: str, since: datetime) -> set[str]:
        sql = (f"SELECT wa_id FROM {MESSAGES} INDEXED BY ix_msg_phone_sent WHERE phone = ? AND sent_at >= ? "
               "AND sent_at IS NOT NULL AND sent_by = ? AND wa_id IS NOT NULL")
        return {row[0] for row in self.db.get().execute(sql, (phone, to_us(since), session))}

    def sends_per_hour(self, *, since: datetime) -> list[tuple[datetime, int]]:
        sql = (f"SELECT sent_at / {HOUR_US} AS hour, count(*) FROM {MESSAGES} "
               "WHERE sent_at IS NOT NULL AND sent_at >= ? GROUP BY hour ORDER BY hour")
        rows = self.db.get().execute(sql, (to_us(since),)).fetchall()
        return [(from_us(hour * HOUR_US), n) for hour, n in rows]  # type: ignore[misc]

    def oldest_pending(self) -> Message | None:
        found = self._select(f"{DUE} ORDER BY created_at LIMIT 1", ())
        return found[0] if found else None

    def count_failed_since(self, since: datetime) -> int:
        sql = f"SELECT count(*) FROM {MESSAGES} INDEXED BY ix_msg_failed WHERE {FAILED} AND failed_at >= ?"
        return self.db.get().execute(sql, (to_us(since),)).fetchone()[0]

    def oldest_due(self, *, now: datetime) -> Message | None:
        found = self._select(f"{DUE} AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT 1",
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

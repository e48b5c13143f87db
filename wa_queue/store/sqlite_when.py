"""The SQLite store's transitions and reads of when and what first: expiry, cancel, a batch's pause and resume, and
the batch queries. A part of SQLiteStore (wa_queue/store/sqlite.py), which gives it `db`, the table's transition
(`_transition`), `_select` and `get`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from wa_queue.models import Message, MessageStatus
from wa_queue.names import MESSAGES
from wa_queue.store import lifecycle
from wa_queue.store import sqlite_statements as statements
from wa_queue.store.base import BatchRow
from wa_queue.store.common import batch_rows, cancel_text
from wa_queue.store.sqlite_connection import SQLiteConnections
from wa_queue.store.sqlite_schema import from_us, to_us
from wa_queue.store.sqlite_statements import DUE


class SQLiteWhen:
    """Expiry, cancel, pause and resume, and the batches, over the store's transitions."""

    db: SQLiteConnections
    _transition: Callable[..., Any]
    _select: Callable[..., list[Message]]
    get: Callable[[str], Message]

    def expire(self, message_id: str, *, owner: str | None, now: datetime) -> Message | None:
        return self._transition(lifecycle.EXPIRE.write(owner=owner is not None), message_id, now=now,  # type: ignore
                                owner=owner)

    def expire_unsent(self, message_id: str, *, owner: str, now: datetime) -> Message | None:
        return self._transition(lifecycle.EXPIRE_UNSENT.write(), message_id, now=now, owner=owner)  # type: ignore

    def list_expiring(self, *, now: datetime, limit: int = 1000) -> list[Message]:
        return self._select(f"{statements.EXPIRING} AND expires_at <= ? ORDER BY expires_at LIMIT ?",
                            (to_us(now), limit), indexed_by="ix_msg_expiry")

    def cancel(self, message_id: str, *, now: datetime, actor: str) -> Message | None:
        text = cancel_text(actor)
        message = self._transition(lifecycle.CANCEL.write(), message_id, now=now, error_text=text)
        if message is None:
            self.get(message_id)  # NotFound when absent
        return message  # type: ignore[return-value]

    def pause(self, message_id: str, *, now: datetime, reason: str) -> Message | None:
        return self._transition(lifecycle.PAUSE.write(), message_id, now=now, error_text=reason)  # type: ignore

    def resume(self, message_id: str, *, now: datetime, reason: str) -> Message | None:
        return self._transition(lifecycle.RESUME.write(), message_id, now=now, error_text=reason)  # type: ignore

    def list_batches(self, *, limit: int = 50) -> list[BatchRow]:
        rows = self.db.get().execute(
            f"SELECT batch, status, count(*), min(created_at) FROM {MESSAGES} INDEXED BY ix_msg_batch "
            "WHERE batch IS NOT NULL GROUP BY batch, status").fetchall()
        return batch_rows([(batch, status, n, from_us(started)) for batch, status, n, started in rows], limit)

    def batches_waiting_on(self, session: str) -> list[str]:
        rows = self.db.get().execute(f"SELECT DISTINCT batch FROM {MESSAGES} WHERE batch IS NOT NULL AND {DUE} AND "
                                     "session = ? ORDER BY batch", (session,)).fetchall()
        return [row[0] for row in rows]

    def batch_messages(self, batch: str, *, statuses: tuple[MessageStatus, ...] | None = None) -> list[Message]:
        where = "batch = ?" + (f" AND {statements.status_sql(statuses)}" if statuses else "")
        return self._select(f"{where} ORDER BY id", (batch,), indexed_by="ix_msg_batch")

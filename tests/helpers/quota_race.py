"""A process of the SQLite quota race (tests/contract/test_store_quota.py): opens the store itself, waits for the
others, then enqueues one message at a time under one key's daily quota and reports how many were stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wa_queue.errors import QuotaExceeded
from wa_queue.models import NewMessage

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def enqueue_until_refused(path: str, key: str, quota: int, attempts: int, start: Any, racer: int) -> int:
    from wa_queue.store.sqlite import SQLiteStore

    store = SQLiteStore(path)
    stored = 0
    start.wait()
    for i in range(attempts):
        item = NewMessage(phone="+15550000001", text=f"race {racer}-{i}", enqueued_by=key)
        # Half the inserts take the keyed path (a transaction with a look-up), half the keyless one.
        if i % 2:
            item = NewMessage(phone=item.phone, text=item.text, enqueued_by=key, idempotency_key=f"{key} {racer}-{i}")
        try:
            store.insert_many([item, NewMessage(phone=item.phone, text=item.text + "b", enqueued_by=key)], NOW,
                              quotas={key: quota})
            stored += 2
        except QuotaExceeded:
            pass
    store.close()
    return stored

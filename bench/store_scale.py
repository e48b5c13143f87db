"""SQLite store at scale: fill N messages (default 1,000,000) with insert_many, then time the hot queries.

    python bench/store_scale.py --count 1000000 [--path /tmp/waq-scale.db]

Not run by the tests. Prints the insert rate and the median of each operation.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wa_queue.models import NewMessage
from wa_queue.store.sqlite import SQLiteStore

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BATCH = 10_000
SESSIONS = ("s1", "s2", "s3")


def fill(store: SQLiteStore, count: int) -> list[str]:
    """Insert `count` messages; then make ~1% sent and ~1% failed, so every index has something to find."""
    ids: list[str] = []
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        news = [NewMessage(phone=f"+1555{i:07d}", text=f"hello {i}", idempotency_key=f"k{i}")
                for i in range(start, min(count, start + BATCH))]
        ids += [m.id for m, _ in store.insert_many(news, NOW - timedelta(days=40))]
    elapsed = time.perf_counter() - started
    print(f"insert_many: {count} rows in {elapsed:.1f} s = {count / elapsed:,.0f} rows/s")
    for n, mid in enumerate(ids[: max(count // 50, 20)]):
        session = SESSIONS[n % 3]
        store.claim(mid, owner="bench", session=session, now=NOW - timedelta(days=35), lease_s=60)
        if n % 2:
            store.record_sent(mid, owner="bench", now=NOW - timedelta(minutes=n % 600), session=session, wa_id=None)
        else:
            store.record_failed(mid, owner="bench", now=NOW - timedelta(days=31 + n % 2), error_class="E",
                                error_text="x")
    return ids


def dispatch_all(store: SQLiteStore, ids: list[str]) -> None:
    """Record a dispatch of every message, to four queues in turn, as if all were published an hour ago."""
    queues = [f"wa.session.{s}" for s in SESSIONS] + ["wa.default"]
    started = time.perf_counter()
    for n, start in enumerate(range(0, len(ids), BATCH)):
        store.mark_dispatched(ids[start:start + BATCH], now=NOW - timedelta(hours=1), epoch="e", queue=queues[n % 4])
    print(f"mark_dispatched: {len(ids)} rows in {time.perf_counter() - started:.1f} s")


def median_ms(label: str, op: Callable[[], object], runs: int = 21) -> None:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        op()
        times.append((time.perf_counter() - started) * 1000)
    print(f"{label:<28} median {statistics.median(times):8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--path", default=None)
    args = parser.parse_args()
    path = args.path or str(Path(tempfile.mkdtemp()) / "waq-scale.db")
    store = SQLiteStore(path)
    ids = fill(store, args.count)
    print(store.count_by_status())
    median_ms("count_by_status", store.count_by_status)
    median_ms("list_failed page", lambda: store.list_failed(limit=50))
    median_ms("list_failed session filter", lambda: store.list_failed(limit=50, session="s1"))
    median_ms("sends_since", lambda: store.sends_since("s1", NOW - timedelta(days=1)))
    median_ms("sends_per_hour", lambda: store.sends_per_hour(since=NOW - timedelta(days=1)))
    median_ms("oldest_pending", store.oldest_pending)
    median_ms("list_undispatched 500", lambda: store.list_undispatched(now=NOW, epoch="e", limit=500))
    median_ms("list_expired_leases", lambda: store.list_expired_leases(now=NOW))
    dispatch_all(store, ids)
    median_ms("dispatch_queues", store.dispatch_queues)
    median_ms("list_dispatched_to 500", lambda: store.list_dispatched_to(
        "wa.session.s1", now=NOW, dispatched_before=NOW, limit=500))
    # The baseline list_dispatched_to spares recovery: every due pending message (up to 100,000), filtered by queue.
    median_ms("baseline: scan 100k, filter", lambda: [m for m in store.list_undispatched(
        now=NOW, epoch="", limit=100_000) if m.dispatch_queue == "wa.session.s1"], runs=5)
    pending = iter(ids[len(ids) // 2:])
    median_ms("claim", lambda: store.claim(next(pending), owner="b2", session="s1", now=NOW, lease_s=60), runs=101)
    median_ms("get", lambda: store.get(ids[-1]))
    started = time.perf_counter()
    moved = store.archive_failed(older_than=NOW - timedelta(days=30), now=NOW)
    print(f"archive_failed: {moved} moved in {(time.perf_counter() - started) * 1000:.0f} ms")
    store.close()
    print(f"database: {path}")


if __name__ == "__main__":
    main()

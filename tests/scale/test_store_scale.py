"""Store operations at scale, on every adapter: enqueue (insert_many), claim, count_by_status, a list_failed page and
archive_failed, with N messages. Correctness is asserted (counts, pages, exactly the old failed ones archived);
timings are printed only (run with -s to see them), never asserted: the machine is shared.

Default N keeps `make test` short (20,000 SQLite, 5,000 mongomock); `pytest tests/scale --long -s` runs 1,000,000
(SQLite) and 100,000 (mongomock). mongomock is an in-memory Python imitation: its timings say nothing about MongoDB.
A real MongoDB is used when WAQ_TEST_MONGO_URL is set.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from bench._stats import percentile
from tests.helpers.constants import NO_MESSAGES, NOW
from wa_queue.errors import NotFound
from wa_queue.models import MessageStatus, NewMessage
from wa_queue.store.base import MessageStore
from wa_queue.store.mongo import MongoStore
from wa_queue.store.sqlite import SQLiteStore

BATCH = 10_000
SESSIONS = ("s1", "s2", "s3")


@dataclass(frozen=True)
class Adapter:
    name: str
    open: Callable[[Path], MessageStore]
    default_n: int
    long_n: int
    worked: int = 2_000  # messages taken through claim -> sent/failed (one write each)
    keys: bool = True  # fill with idempotency keys (mongomock checks a unique index by scanning: quadratic)
    note: str = ""


def _mongo_url() -> str | None:
    return os.environ.get("WAQ_TEST_MONGO_URL") or None


def _real_mongo(tmp: Path) -> MongoStore:
    url = _mongo_url()
    store = MongoStore.from_url(url.rsplit("/", 1)[0] + f"/waq_scale_{uuid.uuid4().hex[:8]}")  # type: ignore[union-attr]
    store.ping()
    return store


ADAPTERS = [
    Adapter("sqlite", lambda tmp: SQLiteStore(str(tmp / "scale.db")), 20_000, 1_000_000),
    Adapter("mongomock", lambda tmp: MongoStore.from_url(f"mongomock://scale/waq_{uuid.uuid4().hex[:8]}"), 5_000,
            100_000, worked=40, keys=False, note="mongomock: in-memory Python imitation, NOT a performance "
                                                  "figure"),
    Adapter("mongodb", _real_mongo, 20_000, 1_000_000),
]


class Timer:
    def __init__(self, label: str) -> None:
        self.label = label
        self.lines: list[str] = []

    def once(self, what: str, op: Callable[[], object]) -> object:
        began = time.perf_counter()
        result = op()
        self.lines.append(f"{what:<34} {(time.perf_counter() - began) * 1000:10.1f} ms")
        return result

    def many(self, what: str, ops: list[Callable[[], object]]) -> list[object]:
        times, results = [], []
        for op in ops:
            began = time.perf_counter()
            results.append(op())
            times.append((time.perf_counter() - began) * 1000)
        self.lines.append(f"{what:<34} median {statistics.median(times):6.2f} ms, p99 "
                          f"{percentile(times, 0.99):6.2f} ms over {len(times)}")
        return results

    def print(self) -> None:
        print(f"\n---- {self.label}")
        for line in self.lines:
            print("  " + line)


@pytest.fixture
def open_adapter(tmp_path: Path) -> Iterator[Callable[[Adapter], MessageStore]]:
    opened: list[MessageStore] = []

    def open_(adapter: Adapter) -> MessageStore:
        if adapter.name == "mongodb":
            if not _mongo_url():
                print("\nreal MongoDB: not reachable (WAQ_TEST_MONGO_URL is not set); only mongomock ran")
                pytest.skip("WAQ_TEST_MONGO_URL is not set")
        store = adapter.open(tmp_path)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        if isinstance(store, MongoStore):
            store.db.client.drop_database(store.db.name)
        store.close()


def fill(store: MessageStore, n: int, timer: Timer, keys: bool) -> list[str]:
    """insert_many in batches of BATCH; every message created 40 days ago."""
    ids: list[str] = []
    began = time.perf_counter()
    for start in range(0, n, BATCH):
        news = [NewMessage(phone=f"+1555{i:07d}", text=f"hello {i}", idempotency_key=f"scale-{i}" if keys else None)
                for i in range(start, min(n, start + BATCH))]
        results = store.insert_many(news, NOW - timedelta(days=40))
        assert all(created for _, created in results)
        ids += [m.id for m, _ in results]
    elapsed = time.perf_counter() - began
    timer.lines.append(f"{'insert_many (batches of 10,000)':<34} {elapsed:10.1f} s = {n / elapsed:,.0f} msg/s")
    return ids


def run_scale(store: MessageStore, n: int, timer: Timer, adapter: Adapter) -> None:
    ids = fill(store, n, timer, adapter.keys)
    assert len(set(ids)) == n
    counts = timer.once("count_by_status", store.count_by_status)
    assert counts == {**NO_MESSAGES, "pending": n}

    # Work W messages: claim each (CAS), then 1/4 sent, 1/4 failed long ago, 1/4 failed recently, 1/4 left claimed.
    worked = ids[: min(n // 10, adapter.worked)]
    w = len(worked)
    claim_at = NOW - timedelta(days=35)
    claimed = timer.many("claim", [
        (lambda mid=mid, k=k: store.claim(mid, owner=f"w{k % 3}", session=SESSIONS[k % 3], now=claim_at, lease_s=60))
        for k, mid in enumerate(worked)])
    assert all(m is not None and m.status is MessageStatus.PROCESSING for m in claimed)
    assert store.claim(worked[0], owner="late", session="s1", now=claim_at, lease_s=60) is None  # taken: CAS fails
    sent, old_failed, new_failed = worked[0::4], worked[1::4], worked[2::4]
    for k, mid in enumerate(sent):
        assert store.record_sent(mid, owner=f"w{(4 * k) % 3}", now=NOW - timedelta(hours=1), session="s1", wa_id=None)
    for k, mid in enumerate(old_failed):
        assert store.record_failed(mid, owner=f"w{(4 * k + 1) % 3}", now=NOW - timedelta(days=31, minutes=k),
                                   error_class="PermanentSendError", error_text="not on WhatsApp")
    for k, mid in enumerate(new_failed):
        assert store.record_failed(mid, owner=f"w{(4 * k + 2) % 3}", now=NOW - timedelta(days=1, minutes=k),
                                   error_class="TransientSendError", error_text="timeout")
    failed = len(old_failed) + len(new_failed)
    processing = w - len(sent) - failed
    expected = {**NO_MESSAGES, "pending": n - w, "processing": processing, "sent": len(sent), "failed": failed}
    assert timer.once("count_by_status (after work)", store.count_by_status) == expected

    page, total = timer.once("list_failed page (50, newest first)", lambda: store.list_failed(limit=50))
    assert total == failed and len(page) == min(50, failed)
    assert [m.id for m in page] == (new_failed + old_failed)[: len(page)]  # newest failed_at first
    stamps = [m.failed_at for m in page]
    assert stamps == sorted(stamps, reverse=True) and all(m.status is MessageStatus.FAILED for m in page)
    last_page, _ = store.list_failed(offset=max(0, failed - 10), limit=50)
    assert len(last_page) == min(10, failed)
    _, filtered = timer.once("list_failed error filter", lambda: store.list_failed(limit=50, error="WhatsApp"))
    assert filtered == len(old_failed)

    moved = timer.once("archive_failed (older than 30 d)",
                       lambda: store.archive_failed(older_than=NOW - timedelta(days=30), now=NOW))
    assert moved == len(old_failed)
    assert store.count_by_status() == {**expected, "failed": len(new_failed)}
    assert store.list_failed(limit=1)[1] == len(new_failed)
    for mid in old_failed[:: max(1, len(old_failed) // 50)]:  # a sample: archived, intact, gone from the live table
        archived = store.get_archived(mid)
        assert archived.status is MessageStatus.FAILED and archived.last_error_class == "PermanentSendError"
        with pytest.raises(NotFound):
            store.get(mid)
    assert store.get(new_failed[0]).status is MessageStatus.FAILED
    with pytest.raises(NotFound):
        store.get_archived(new_failed[0])
    assert store.archive_failed(older_than=NOW - timedelta(days=30), now=NOW) == 0  # nothing left to move
    assert store.get(ids[-1]).status is MessageStatus.PENDING

    # Recovery's queries: every pending message published to one of two queues, the last few to a third; the
    # third queue's messages are found whatever the backlog ahead of them (a scan of due messages used to stop at
    # the first 100,000).
    pending = ids[w:]
    few, rest = pending[-7:], pending[:-7]
    step = min(5_000, max(1, len(rest) // 8))
    for k, start in enumerate(range(0, len(rest), step)):
        store.mark_dispatched(rest[start:start + step], now=NOW - timedelta(hours=2), epoch="e",
                              queue=f"wa.session.{SESSIONS[k % 2]}")
    store.mark_dispatched(few, now=NOW - timedelta(hours=1), epoch="e", queue="wa.session.s3")
    assert timer.once("dispatch_queues", store.dispatch_queues) == ["wa.session.s1", "wa.session.s2", "wa.session.s3"]
    found = timer.once("list_dispatched_to (a queue of 7)", lambda: store.list_dispatched_to(
        "wa.session.s3", now=NOW, dispatched_before=NOW, limit=500))
    assert sorted(m.id for m in found) == sorted(few)
    batch = timer.once("list_dispatched_to (500 of a big queue)", lambda: store.list_dispatched_to(
        "wa.session.s1", now=NOW, dispatched_before=NOW, limit=500))
    assert len(batch) == min(500, len(rest)) and {m.dispatch_queue for m in batch} == {"wa.session.s1"}


def _run(adapter: Adapter, n: int, open_adapter) -> None:  # noqa: ANN001
    store = open_adapter(adapter)
    timer = Timer(f"{adapter.name}, N = {n:,}" + (f" ({adapter.note})" if adapter.note else ""))
    try:
        run_scale(store, n, timer, adapter)
    finally:
        timer.print()


@pytest.mark.parametrize("adapter", ADAPTERS, ids=[a.name for a in ADAPTERS])
def test_store_scale(adapter: Adapter, open_adapter) -> None:  # noqa: ANN001
    _run(adapter, adapter.default_n, open_adapter)


@pytest.mark.long
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("adapter", ADAPTERS, ids=[a.name for a in ADAPTERS])
def test_store_scale_long(adapter: Adapter, open_adapter) -> None:  # noqa: ANN001
    _run(adapter, adapter.long_n, open_adapter)

"""The daily message quota per API key (wa_queue/quota.py), decided by every store adapter in the insert's own write:
a key's new messages of a UTC day never pass its quota, a request that would pass it stores nothing, replays count
nothing, a new UTC day starts again, and real processes racing on one SQLite file never exceed it."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from pathlib import Path

import pytest

from tests.contract.store.helpers import new, run_threads
from tests.helpers.constants import NOW
from tests.helpers.quota_race import enqueue_until_refused
from wa_queue.errors import QuotaExceeded
from wa_queue.store.base import MessageStore

SHOP = "shop"


def mine(i: int, key: str = SHOP, **kwargs: object):  # noqa: ANN201 - a NewMessage
    return new(i, enqueued_by=key, **kwargs)


def pending(store: MessageStore) -> int:  # noqa: F811
    return store.count_by_status()["pending"]


@pytest.mark.parametrize("keyed", [False, True], ids=["keyless", "idempotency-keyed"])
def test_the_quota_refuses_once_reached_and_stores_nothing(store: MessageStore, keyed: bool) -> None:  # noqa: F811
    def item(i: int):  # noqa: ANN202
        return mine(i, idempotency_key=f"{SHOP} k{i}") if keyed else mine(i)

    for i in range(3):
        assert store.insert(item(i), NOW, quotas={SHOP: 3})[1]
    with pytest.raises(QuotaExceeded) as refused:
        store.insert(item(3), NOW + timedelta(hours=1), quotas={SHOP: 3})
    exc = refused.value
    assert (exc.key_name, exc.quota, exc.used, exc.requested) == (SHOP, 3, 3, 1)
    assert exc.retry_after_s == pytest.approx(timedelta(hours=11).total_seconds())  # until the next UTC midnight
    assert pending(store) == 3
    assert store.quota_used(NOW) == {SHOP: 3}
    # Another key, a message without one and a key without a quota are not held back by shop's.
    store.insert(mine(10, key="crm"), NOW, quotas={SHOP: 3, "crm": 1})
    store.insert(new(11), NOW, quotas={SHOP: 3})
    store.insert_many([mine(12, key="free"), mine(13, key="free")], NOW, quotas={SHOP: 3})
    assert pending(store) == 7
    assert store.quota_used(NOW) == {SHOP: 3, "crm": 1}


@pytest.mark.parametrize("keyed", [False, True], ids=["keyless", "idempotency-keyed"])
def test_a_bulk_request_over_the_quota_is_refused_whole(store: MessageStore, keyed: bool) -> None:  # noqa: F811
    store.insert_many([mine(i) for i in range(3)], NOW, quotas={SHOP: 5})
    bulk = [mine(10 + i, idempotency_key=f"{SHOP} b {i}" if keyed else None) for i in range(3)]
    with pytest.raises(QuotaExceeded) as refused:
        store.insert_many(bulk, NOW, quotas={SHOP: 5})
    assert (refused.value.used, refused.value.requested) == (3, 3)
    assert pending(store) == 3  # nothing of the bulk request was written
    assert store.quota_used(NOW) == {SHOP: 3}
    assert len(store.insert_many(bulk[:2], NOW, quotas={SHOP: 5})) == 2  # exactly up to the quota
    assert store.quota_used(NOW) == {SHOP: 5}


def test_an_idempotent_replay_counts_nothing(store: MessageStore) -> None:  # noqa: F811
    first, created = store.insert(mine(1, idempotency_key="shop k"), NOW, quotas={SHOP: 2})
    for _ in range(3):
        assert store.insert(mine(1, idempotency_key="shop k"), NOW, quotas={SHOP: 2}) == (first, False)
    replayed = store.insert_many([mine(1, idempotency_key="shop k"), mine(2)], NOW, quotas={SHOP: 2})
    assert replayed[0] == (first, False) and replayed[1][1]  # only the new one took a unit
    assert store.quota_used(NOW) == {SHOP: 2}
    # Full: a replay is still answered, a new message is not.
    assert store.insert(mine(1, idempotency_key="shop k"), NOW, quotas={SHOP: 2}) == (first, False)
    with pytest.raises(QuotaExceeded):
        store.insert(mine(3), NOW, quotas={SHOP: 2})


def test_a_new_utc_day_starts_the_count_again(store: MessageStore) -> None:  # noqa: F811
    late = NOW.replace(hour=23, minute=59, second=59)
    store.insert_many([mine(1), mine(2)], late, quotas={SHOP: 2})
    with pytest.raises(QuotaExceeded) as refused:
        store.insert(mine(3), late, quotas={SHOP: 2})
    assert refused.value.retry_after_s == pytest.approx(1.0)
    midnight = late + timedelta(seconds=1)
    store.insert_many([mine(3), mine(4)], midnight, quotas={SHOP: 2})
    assert store.quota_used(midnight) == {SHOP: 2}
    assert store.quota_used(late) in ({SHOP: 2}, {})  # an adapter may forget a past day
    with pytest.raises(QuotaExceeded):
        store.insert(mine(5), midnight, quotas={SHOP: 2})
    assert pending(store) == 4


@pytest.mark.parametrize("keyed", [False, True], ids=["keyless", "idempotency-keyed"])
def test_insert_groups_refuses_only_the_group_over_the_quota(store: MessageStore, keyed: bool) -> None:  # noqa: F811
    key = (lambda g, i: f"{SHOP} g{g} {i}") if keyed else (lambda g, i: None)
    groups = [[mine(g * 10 + i, idempotency_key=key(g, i)) for i in range(size)]
              for g, size in enumerate((2, 2, 1))]
    groups.append([mine(90, key="crm")])
    results = store.insert_groups(groups, NOW, quotas={SHOP: 3})
    assert [created for _, created in results[0]] == [True, True]  # type: ignore[union-attr]
    assert isinstance(results[1], QuotaExceeded)  # 2 + 2 > 3: this group, whole
    assert results[2][0][1] is True  # type: ignore[index]  # 2 + 1 fits
    assert results[3][0][1] is True  # type: ignore[index]
    assert pending(store) == 4
    assert store.quota_used(NOW) == {SHOP: 3}


def test_concurrent_requests_never_pass_the_quota(store: MessageStore) -> None:  # noqa: F811
    results = run_threads(8, lambda t: [store.insert(mine(t * 100 + i), NOW, quotas={SHOP: 10})
                                        for i in range(3)])
    refused = sum(isinstance(r, QuotaExceeded) for r in results)
    assert refused >= 1
    assert pending(store) == 10
    assert store.quota_used(NOW) == {SHOP: 10}


def test_sqlite_processes_racing_on_one_file_never_pass_the_quota(tmp_path: Path) -> None:
    from wa_queue.store.sqlite import SQLiteStore

    path = str(tmp_path / "waq.db")
    SQLiteStore(path).close()  # the schema, before the racers open it
    quota, racers = 40, 4
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Manager().Barrier(racers)
    with spawn.Pool(racers) as pool:
        stored = pool.starmap(enqueue_until_refused, [(path, SHOP, quota, 20, start, r) for r in range(racers)])
    checker = SQLiteStore(path)
    assert sum(stored) == quota == pending(checker)  # 4 x 20 requests of 2 messages: the quota, exactly
    assert checker.quota_used(NOW) == {SHOP: quota}
    checker.close()


def test_mongo_gives_units_back_only_when_the_failed_insert_is_known_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Taken before the insert (no transaction): an insert that failed and was deleted gives its units back; one
    whose undo failed too may be stored, so its units stay taken (the count too high: fail closed)."""
    import uuid

    from pymongo.errors import AutoReconnect

    from wa_queue.errors import StoreError
    from wa_queue.store.mongo import MongoStore

    mongo = MongoStore.from_url(f"mongomock://localhost/waq_quota_{uuid.uuid4().hex[:12]}")

    def cut(*args: object, **kwargs: object) -> None:
        raise AutoReconnect("connection cut")

    monkeypatch.setattr(mongo.messages, "insert_many", cut)
    with pytest.raises(StoreError):
        mongo.insert_many([mine(1), mine(2)], NOW, quotas={SHOP: 5})
    assert mongo.quota_used(NOW) == {SHOP: 0}
    monkeypatch.setattr(mongo.messages, "delete_many", cut)
    with pytest.raises(StoreError):
        mongo.insert_many([mine(1), mine(2)], NOW, quotas={SHOP: 5})
    assert mongo.quota_used(NOW) == {SHOP: 2}
    mongo.close()

"""The store contract, what the sweepers read: dispatch records, broker epochs and the queues last published to."""

from __future__ import annotations

from datetime import datetime

from tests.contract.store.helpers import at, claimed, insert
from wa_queue.store.base import MessageStore


def test_dispatch_marking_and_epochs(store: MessageStore) -> None:
    a = insert(store, 1, now=at(2))
    b = insert(store, 2, now=at(1))
    later = insert(store, 3, now=at(500))
    busy = claimed(store, 4)

    def ids(epoch: str, now: datetime | None = None) -> list[str]:
        return [m.id for m in store.list_undispatched(now=now or at(10), epoch=epoch, limit=10)]

    assert ids("e1") == [b.id, a.id]  # processing and not-yet-due are left out; oldest due first
    assert busy.id not in ids("e1", at(1000))
    store.mark_dispatched([a.id, b.id], now=at(3), epoch="e1", queue="wa.default")
    loaded = store.get(a.id)
    assert (loaded.dispatched_at, loaded.dispatch_epoch, loaded.dispatch_queue) == (at(3), "e1", "wa.default")
    assert ids("e1") == []
    assert ids("e0") == [b.id, a.id] and ids("e2") == [b.id, a.id]  # the broker that held them is gone
    store.clear_dispatch([a.id])
    assert store.get(a.id).dispatch_epoch is None
    assert ids("e1") == [a.id]
    assert later.id in ids("e1", at(500))
    assert len(store.list_undispatched(now=at(1000), epoch="e9", limit=2)) == 2


def test_mark_dispatched_without_epoch(store: MessageStore) -> None:
    message = insert(store)
    store.mark_dispatched([message.id], now=at(1), epoch=None, queue="wa.session.s1")
    assert store.get(message.id).dispatch_queue == "wa.session.s1"
    assert [m.id for m in store.list_undispatched(now=at(1), epoch="e", limit=5)] == [message.id]


def test_dispatch_queues_and_messages_last_published_to_one(store: MessageStore) -> None:
    assert store.dispatch_queues() == []
    old, young, other = (insert(store, i) for i in range(3))
    not_due = insert(store, 3, now=at(500))  # a retry waiting for its time
    busy = claimed(store, 4)
    never = insert(store, 5)  # committed, never published: dispatch_due's business, not these queries'
    store.mark_dispatched([young.id], now=at(5), epoch="e1", queue="wa.session.s1")
    store.mark_dispatched([old.id, not_due.id], now=at(1), epoch="e1", queue="wa.session.s1")
    store.mark_dispatched([other.id], now=at(1), epoch="e1", queue="wa.default")
    store.mark_dispatched([busy.id], now=at(1), epoch="e1", queue="wa.session.s2")  # processing: left out
    assert store.dispatch_queues() == ["wa.default", "wa.session.s1"]

    def ids(queue: str, before: float, now: float = 50, limit: int = 10) -> list[str]:
        return [m.id for m in store.list_dispatched_to(queue, now=at(now), dispatched_before=at(before), limit=limit)]

    assert ids("wa.session.s1", before=10) == [old.id, young.id]  # oldest dispatch first; not_due is not due
    due_later = ids("wa.session.s1", before=10, now=600)
    assert set(due_later[:2]) == {old.id, not_due.id} and due_later[2:] == [young.id]  # the first two tie at 1 s
    assert ids("wa.session.s1", before=5) == [old.id]  # strictly before
    assert ids("wa.session.s1", before=10, limit=1) == [old.id]
    assert ids("wa.default", before=10) == [other.id]
    assert ids("wa.session.s2", before=10) == [] and ids("wa.nope", before=10) == []
    assert never.id not in ids("wa.session.s1", before=10)
    # Published again elsewhere: it leaves its old queue, and a queue with no pending message leaves the list.
    store.mark_dispatched([other.id], now=at(6), epoch="e1", queue="wa.session.s1")
    assert store.dispatch_queues() == ["wa.session.s1"]
    assert ids("wa.default", before=10) == []
    assert ids("wa.session.s1", before=10) == [old.id, young.id, other.id]
    assert ids("wa.session.s1", before=6) == [old.id, young.id]

"""The store contract for scheduled, expiring, cancelled and batched messages: the due time a send_at sets, the
expiry sweep's list, cancel racing the claim, and a batch's messages."""

from __future__ import annotations

from tests.contract.store.helpers import at, insert, run_threads
from wa_queue.models import MessageStatus, Priority
from wa_queue.store.base import MessageStore


def test_send_at_sets_the_due_time_and_is_kept(store: MessageStore) -> None:
    later = insert(store, 1, send_at=at(60), expires_at=at(120), priority=Priority.HIGH, batch="b1")
    past = insert(store, 2, send_at=at(-60))
    assert later.next_attempt_at == at(60) and past.next_attempt_at == at(0)
    stored = store.get(later.id)
    assert (stored.send_at, stored.expires_at, stored.priority, stored.batch) == (at(60), at(120), Priority.HIGH,
                                                                                  "b1")
    assert store.claim(later.id, owner="w", session="s1", now=at(59), lease_s=60) is None
    assert store.list_undispatched(now=at(59), epoch="e", limit=10) == [store.get(past.id)]
    assert store.claim(later.id, owner="w", session="s1", now=at(60), lease_s=60) is not None


def test_the_expiry_sweep_lists_what_is_past_its_expiry_and_not_in_doubt(store: MessageStore) -> None:
    soon = insert(store, 1, expires_at=at(10))
    later = insert(store, 2, expires_at=at(100))
    never = insert(store, 3)
    doubt = insert(store, 4, expires_at=at(10))
    store.claim(doubt.id, owner="w", session="s1", now=at(1), lease_s=60)
    assert store.mark_sending(doubt.id, owner="w", now=at(2))
    store.recover(doubt.id, owner="w", now=at(3), reason="worker died")
    paused = insert(store, 5, expires_at=at(5))
    assert store.pause(paused.id, now=at(1), reason="batch paused") is not None
    assert [m.id for m in store.list_expiring(now=at(10))] == [paused.id, soon.id]
    assert store.list_expiring(now=at(10), limit=1)[0].id == paused.id
    assert store.expire(soon.id, owner=None, now=at(10)) is not None
    assert store.expire(doubt.id, owner=None, now=at(10)) is None  # in doubt: settled first, never expired blind
    assert store.expire(later.id, owner=None, now=at(10)) is None  # not yet
    assert store.expire(never.id, owner=None, now=at(10 ** 6)) is None
    assert store.count_by_status()["expired"] == 1


def test_cancel_races_the_claim_and_exactly_one_wins(store: MessageStore) -> None:
    for i in range(20):
        message = insert(store, i)

        def race(n: int, message_id: str = message.id) -> object:
            if n == 0:
                return store.cancel(message_id, now=at(1), actor="op")
            return store.claim(message_id, owner=f"w{n}", session="s1", now=at(1), lease_s=60)

        results = run_threads(3, race)
        assert not any(isinstance(r, Exception) for r in results), results
        winners = [r for r in results if r is not None]
        assert len(winners) == 1, results
        final = store.get(message.id)
        assert final.status in (MessageStatus.CANCELLED, MessageStatus.PROCESSING)
        assert (final.status is MessageStatus.CANCELLED) == (results[0] is not None)


def test_cancel_refuses_what_is_held_sent_or_in_doubt(store: MessageStore) -> None:
    held = insert(store, 1)
    store.claim(held.id, owner="w", session="s1", now=at(1), lease_s=60)
    assert store.cancel(held.id, now=at(2), actor="op") is None
    assert store.mark_sending(held.id, owner="w", now=at(2))
    store.recover(held.id, owner="w", now=at(3), reason="worker died")
    assert store.get(held.id).in_doubt and store.cancel(held.id, now=at(4), actor="op") is None
    assert store.get(held.id).status is MessageStatus.PENDING


def test_a_batch_lists_its_messages_and_the_sessions_it_waits_on(store: MessageStore) -> None:
    a = insert(store, 1, batch="b1", session="s1")
    b = insert(store, 2, batch="b1")
    insert(store, 3, batch="b2", session="s2")
    insert(store, 4, session="s1")
    c = insert(store, 5, batch="b3", session="s1")
    store.cancel(c.id, now=at(1), actor="op")
    assert sorted(m.id for m in store.batch_messages("b1")) == sorted([a.id, b.id])  # one instant: either order
    assert [m.id for m in store.batch_messages("b1", statuses=(MessageStatus.PAUSED,))] == []
    assert store.batch_messages("none") == []
    assert store.batches_waiting_on("s1") == ["b1"]  # b3's only message is cancelled
    assert store.pause(a.id, now=at(2), reason="r") is not None
    assert store.batches_waiting_on("s1") == []
    assert [m.id for m in store.batch_messages("b1", statuses=(MessageStatus.PAUSED,))] == [a.id]


def test_list_batches_counts_each_batch_newest_first(store: MessageStore) -> None:
    insert(store, 1, batch="old", now=at(0))
    second = insert(store, 2, batch="old", now=at(5))
    insert(store, 3, batch="new", now=at(10))
    insert(store, 4, now=at(20))
    store.cancel(second.id, now=at(30), actor="op")
    rows = store.list_batches()
    assert [(r.name, r.counts, r.started_at) for r in rows] == [
        ("new", {"pending": 1}, at(10)), ("old", {"pending": 1, "cancelled": 1}, at(0))]
    assert [r.name for r in store.list_batches(limit=1)] == ["new"]


def test_the_mark_refuses_a_message_at_or_past_its_expiry(store: MessageStore) -> None:
    """The last write before the click decides expiry too, whatever the worker read before."""
    late = insert(store, 1, expires_at=at(10))
    store.claim(late.id, owner="w", session="s1", now=at(1), lease_s=60)
    assert store.mark_sending(late.id, owner="w", now=at(10)) is False
    assert store.get(late.id).sending_at is None  # nothing marked: nothing may be clicked
    on_time = insert(store, 2, expires_at=at(10))
    store.claim(on_time.id, owner="w", session="s1", now=at(1), lease_s=60)
    assert store.mark_sending(on_time.id, owner="w", now=at(9), session_cap=5, session_day_start=at(0)) is True
    gated = insert(store, 3, expires_at=at(10))
    store.claim(gated.id, owner="w", session="s1", now=at(1), lease_s=60)
    assert store.mark_sending(gated.id, owner="w", now=at(11), session_cap=5, session_day_start=at(0)) is False

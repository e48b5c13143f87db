"""The MessageStore contract: every adapter (SQLite, MongoDB over mongomock, a real server) passes the same tests.

The server is FerretDB, built and started by the suite (tests/helpers/ferretdb.py: backend "ferretdb"), or a real
MongoDB when WAQ_TEST_MONGO_URL (e.g. mongodb://localhost:27017) is set (backend "mongo"); each test gets a
throw-away database on it. Time is always passed in: nothing here sleeps.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers.constants import NOW, ROOT
from wa_queue.errors import IdempotencyConflict, InvalidTransition, NotFound, ValidationError
from wa_queue.models import Message, MessageStatus, NewMessage
from wa_queue.store import lifecycle
from wa_queue.store.base import MessageStore, SessionRecord
from wa_queue.store.common import picture_text


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def new(i: int = 0, **kwargs: object) -> NewMessage:
    return NewMessage(phone=f"+155500{i:05d}", text=f"hello {i}", **kwargs)  # type: ignore[arg-type]


def insert(store: MessageStore, i: int = 0, now: datetime = NOW, **kwargs: object) -> Message:
    return store.insert(new(i, **kwargs), now)[0]


def claimed(
    store: MessageStore, i: int = 0, owner: str = "s1/host/1", session: str = "s1", **kwargs: object
) -> Message:
    message = insert(store, i, **kwargs)
    result = store.claim(message.id, owner=owner, session=session, now=NOW, lease_s=60)
    assert result is not None
    return result


def failed(store: MessageStore, i: int = 0, now: datetime = NOW, error: str = "PermanentSendError",
           text: str = "bad number", session: str = "s1") -> Message:
    message = claimed(store, i, owner=f"{session}/h/1", session=session)
    result = store.record_failed(message.id, owner=f"{session}/h/1", now=now, error_class=error, error_text=text)
    assert result is not None
    return result


def events(message: Message) -> list[str]:
    return [entry.event for entry in message.history]


def run_threads(count: int, target: Callable[[int], object]) -> list[object]:
    results: list[object] = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


# ---- producer side -----------------------------------------------------------------------------------------------
def test_insert_stores_a_pending_message_that_round_trips(store: MessageStore) -> None:
    message, created = store.insert(new(1, session="s1", callback_url="http://cb", metadata={"a": [1, "x"]}), NOW)
    assert created
    assert message.status is MessageStatus.PENDING
    assert message.next_attempt_at == NOW and message.created_at == NOW and message.updated_at == NOW
    assert message.attempts == 0 and message.session == "s1" and message.metadata == {"a": [1, "x"]}
    assert events(message) == ["enqueued"]
    loaded = store.get(message.id)
    assert loaded == message
    assert loaded.created_at.tzinfo is not None and loaded.created_at.utcoffset() == timedelta(0)


def test_datetimes_round_trip_to_the_millisecond(store: MessageStore) -> None:
    now = NOW.replace(microsecond=123456)  # BSON dates keep milliseconds; SQLite keeps microseconds
    message = insert(store, now=now)
    loaded = store.get(message.id)
    assert loaded.created_at == message.created_at and loaded.history == message.history
    assert abs(loaded.created_at - now) < timedelta(milliseconds=1)


def test_get_unknown_raises_not_found(store: MessageStore) -> None:
    with pytest.raises(NotFound):
        store.get("nope")


def test_idempotency_replay_returns_the_first_message(store: MessageStore) -> None:
    first, created = store.insert(new(1, idempotency_key="k1"), NOW)
    again, created_again = store.insert(new(1, idempotency_key="k1"), at(5))
    assert created and not created_again
    assert again.id == first.id
    assert store.count_by_status()["pending"] == 1


def test_idempotency_conflict_on_other_content(store: MessageStore) -> None:
    store.insert(new(1, idempotency_key="k1"), NOW)
    with pytest.raises(IdempotencyConflict):
        store.insert(new(2, idempotency_key="k1"), NOW)
    assert store.count_by_status()["pending"] == 1


def test_the_owner_is_stored_and_read_back(store: MessageStore) -> None:
    # wa_queue/owners.py: the API key's name that enqueued it, in both inserts (with and without idempotency keys)
    owned = store.insert(new(1, enqueued_by="shop"), NOW)[0]
    keyed = store.insert(new(2, enqueued_by="shop", idempotency_key="shop k"), NOW)[0]
    bulk = store.insert_many([new(3, enqueued_by="crm"), new(4)], NOW)
    owners = [store.get(m.id).enqueued_by for m in (owned, keyed, bulk[0][0], bulk[1][0])]
    assert owners == ["shop", "shop", "crm", None]
    assert store.get(owned.id) == owned


def test_an_old_form_key_is_a_replay_only_of_an_ownerless_row(store: MessageStore) -> None:
    # A row of a version before owners (no owner, key "shop:k#0") is found by the new form's retry ...
    old = store.insert(new(1, idempotency_key="shop:k#0"), NOW)[0]
    retry = new(1, enqueued_by="shop", idempotency_key="shop k 0", legacy_idempotency_key="shop:k#0")
    again, created = store.insert(retry, at(5))
    assert again.id == old.id and not created
    # ... but a row written since, with an owner, is never taken for an old one.
    mine = store.insert(new(2, enqueued_by="shop", idempotency_key="shop:x#0"), NOW)[0]
    other, created = store.insert(new(2, enqueued_by="shop", idempotency_key="shop x 0",
                                      legacy_idempotency_key="shop:x#0"), NOW)
    assert created and other.id != mine.id


def test_concurrent_inserts_with_one_key_store_one(store: MessageStore) -> None:
    results = run_threads(8, lambda i: store.insert(new(1, idempotency_key="same"), NOW))
    assert all(isinstance(r, tuple) for r in results), results
    assert len({r[0].id for r in results}) == 1  # type: ignore[index]
    assert sum(r[1] for r in results) == 1  # type: ignore[index]
    assert store.count_by_status()["pending"] == 1


def test_insert_many_stores_all(store: MessageStore) -> None:
    results = store.insert_many([new(i) for i in range(50)], NOW)
    assert len(results) == 50 and all(created for _, created in results)
    assert store.count_by_status()["pending"] == 50
    assert store.get(results[7][0].id).text == "hello 7"


def test_insert_many_is_all_or_nothing(store: MessageStore) -> None:
    store.insert(new(1, idempotency_key="taken"), NOW)
    batch = [new(10), new(2, idempotency_key="taken"), new(11)]  # the second conflicts with the stored one
    with pytest.raises(IdempotencyConflict):
        store.insert_many(batch, NOW)
    assert store.count_by_status()["pending"] == 1


def test_insert_many_repeated_key_inside_the_batch(store: MessageStore) -> None:
    results = store.insert_many([new(1, idempotency_key="k"), new(1, idempotency_key="k")], NOW)
    assert results[0][1] and not results[1][1] and results[0][0].id == results[1][0].id
    with pytest.raises(IdempotencyConflict):
        store.insert_many([new(5), new(3, idempotency_key="j"), new(4, idempotency_key="j")], NOW)
    assert store.count_by_status()["pending"] == 1


def test_insert_groups_keeps_each_group_all_or_nothing_on_its_own(store: MessageStore) -> None:
    store.insert(new(1, idempotency_key="taken"), NOW)
    groups = [
        [new(10), new(11)],
        [new(12), new(2, idempotency_key="taken")],  # conflicts with the stored message: this group only fails
        [new(1, idempotency_key="taken")],  # a replay
        [new(13, idempotency_key="fresh")],
        [new(14, idempotency_key="fresh")],  # an earlier group of this call took the key: a conflict
        [new(13, idempotency_key="fresh")],  # and this one is a replay of it
    ]
    results = store.insert_groups(groups, NOW)
    assert len(results) == 6
    assert [created for _, created in results[0]] == [True, True]  # type: ignore[union-attr]
    assert isinstance(results[1], IdempotencyConflict)
    assert results[2][0][1] is False  # type: ignore[index]
    assert results[3][0][1] is True  # type: ignore[index]
    assert isinstance(results[4], IdempotencyConflict)
    assert results[5][0] == (results[3][0][0], False)  # type: ignore[index]
    assert store.count_by_status()["pending"] == 4  # taken + 10, 11 + fresh; nothing of group 1 stayed behind
    texts = {store.get(m.id).text for m, _ in results[0]}  # type: ignore[union-attr]
    assert texts == {"hello 10", "hello 11"}


def test_insert_groups_not_yet_durable_is_stored_and_made_durable(store: MessageStore) -> None:
    """durable=False (the API's group commit) stores as usual; make_durable() then returns once it is on disk."""
    results = store.insert_groups([[new(1)], [new(2), new(3)]], NOW, durable=False)
    store.make_durable()
    ids = [m.id for result in results for m, _ in result]  # type: ignore[union-attr]
    assert [store.get(i).text for i in ids] == ["hello 1", "hello 2", "hello 3"]
    assert store.count_by_status()["pending"] == 3


def test_insert_many_replay_of_stored_key(store: MessageStore) -> None:
    first = insert(store, 1, idempotency_key="k")
    results = store.insert_many([new(1, idempotency_key="k"), new(2)], NOW)
    assert results[0] == (first, False) and results[1][1]
    assert store.count_by_status()["pending"] == 2


# ---- claim and lease ---------------------------------------------------------------------------------------------
def test_claim_is_a_compare_and_set(store: MessageStore) -> None:
    message = insert(store)
    won = store.claim(message.id, owner="s1/h/1", session="s1", now=at(1), lease_s=30)
    assert won is not None and won.status is MessageStatus.PROCESSING
    assert won.lease_owner == "s1/h/1" and won.lease_expires_at == at(31) and won.claimed_by == "s1"
    assert won.updated_at == at(1)
    assert won.history[-1].event == "claimed" and won.history[-1].session == "s1"
    assert store.claim(message.id, owner="s2/h/2", session="s2", now=at(2), lease_s=30) is None
    assert store.get(message.id).lease_owner == "s1/h/1"


def test_claim_refuses_not_yet_due_and_wrong_attempts(store: MessageStore) -> None:
    message = insert(store, now=at(100))
    assert store.claim(message.id, owner="o", session="s1", now=at(99), lease_s=30) is None
    assert store.claim(message.id, owner="o", session="s1", now=at(100), lease_s=30, attempts=1) is None
    assert store.claim(message.id, owner="o", session="s1", now=at(100), lease_s=30, attempts=0) is not None


def test_claim_records_last_attempt_at(store: MessageStore) -> None:
    message = insert(store, 1)
    assert message.last_attempt_at is None and store.get(message.id).last_attempt_at is None
    first = store.claim(message.id, owner="w", session="s1", now=at(1), lease_s=60)
    assert first is not None and first.last_attempt_at == at(1) and store.get(message.id).last_attempt_at == at(1)
    store.record_retry(message.id, owner="w", now=at(2), next_attempt_at=at(10), error_class="TransientSendError",
                       error_text="later")
    assert store.get(message.id).last_attempt_at == at(1)  # waiting for its retry: still the last attempt's time
    assert store.claim(message.id, owner="w", session="s1", now=at(5), lease_s=60) is None  # not due: no attempt
    second = store.claim(message.id, owner="w", session="s1", now=at(11), lease_s=60)
    assert second is not None and second.last_attempt_at == at(11)
    sent = store.record_sent(message.id, owner="w", now=at(12), session="s1", wa_id=None)
    assert sent is not None and sent.last_attempt_at == at(11)


def test_claim_unknown_id_returns_none(store: MessageStore) -> None:
    assert store.claim("missing", owner="o", session="s1", now=NOW, lease_s=30) is None


def test_concurrent_claims_have_one_winner(store: MessageStore) -> None:
    message = insert(store)
    results = run_threads(8, lambda i: store.claim(message.id, owner=f"s{i}/h/{i}", session=f"s{i}", now=NOW,
                                                   lease_s=30))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and isinstance(winners[0], Message)
    assert store.get(message.id).lease_owner == winners[0].lease_owner


def test_extend_lease_only_by_owner(store: MessageStore) -> None:
    message = claimed(store, owner="w1")
    assert store.extend_lease(message.id, owner="w1", now=at(50), lease_s=60)
    assert store.get(message.id).lease_expires_at == at(110)
    assert not store.extend_lease(message.id, owner="w2", now=at(50), lease_s=600)
    assert store.get(message.id).lease_expires_at == at(110)


def test_mark_sending_only_by_owner(store: MessageStore) -> None:
    message = claimed(store, owner="w1", session="s1")
    assert not store.mark_sending(message.id, owner="w2", now=at(1))
    assert store.mark_sending(message.id, owner="w1", now=at(2))
    loaded = store.get(message.id)
    assert loaded.sending_at == at(2) and loaded.sending_session == "s1" and loaded.in_doubt
    assert loaded.history[-1].event == "sending" and loaded.history[-1].session == "s1"


def test_record_sent_only_by_owner(store: MessageStore) -> None:
    message = claimed(store, owner="w1", session="s1")
    assert store.record_sent(message.id, owner="w2", now=at(3), session="s1", wa_id="x") is None
    sent = store.record_sent(message.id, owner="w1", now=at(3), session="s1", wa_id="wa-1")
    assert sent is not None and sent.status is MessageStatus.SENT
    assert sent.sent_at == at(3) and sent.sent_by == "s1" and sent.wa_id == "wa-1"
    assert sent.lease_owner is None and sent.lease_expires_at is None and not sent.in_doubt
    assert events(sent) == ["enqueued", "claimed", "sent"] and sent.history[-1].session == "s1"
    assert store.record_sent(message.id, owner="w1", now=at(4), session="s1", wa_id="again") is None


def test_record_retry(store: MessageStore) -> None:
    message = claimed(store, owner="w1")
    store.mark_sending(message.id, owner="w1", now=at(1))
    assert store.record_retry(message.id, owner="w2", now=at(2), next_attempt_at=at(300), error_class="E",
                              error_text="t") is None
    retried = store.record_retry(message.id, owner="w1", now=at(2), next_attempt_at=at(300),
                                 error_class="TransientSendError", error_text="timeout")
    assert retried is not None and retried.status is MessageStatus.PENDING
    assert retried.attempts == 1 and retried.next_attempt_at == at(300)
    assert retried.last_error_class == "TransientSendError" and retried.last_error_text == "timeout"
    assert retried.lease_owner is None and retried.lease_expires_at is None and retried.sending_at is None
    last = retried.history[-1]
    assert (last.event, last.session, last.error_class, last.error_text) == ("retry", "s1", "TransientSendError",
                                                                             "timeout")
    assert store.claim(message.id, owner="w1", session="s1", now=at(299), lease_s=30) is None
    assert store.claim(message.id, owner="w1", session="s1", now=at(300), lease_s=30, attempts=0) is None
    assert store.claim(message.id, owner="w1", session="s1", now=at(300), lease_s=30, attempts=1) is not None


def test_record_retry_keeps_session_preference(store: MessageStore) -> None:
    message = insert(store, session="s1")
    store.claim(message.id, owner="w1", session="s2", now=NOW, lease_s=30)
    retried = store.record_retry(message.id, owner="w1", now=at(1), next_attempt_at=at(5), error_class="E",
                                 error_text="x")
    assert retried is not None and retried.session == "s1"


def test_record_failed(store: MessageStore) -> None:
    message = claimed(store, owner="w1")
    assert store.record_failed(message.id, owner="w2", now=at(1), error_class="E", error_text="x") is None
    done = store.record_failed(message.id, owner="w1", now=at(1), error_class="InvalidNumber", error_text="no wa")
    assert done is not None and done.status is MessageStatus.FAILED
    assert done.failed_at == at(1) and done.attempts == 1 and done.lease_owner is None
    last = done.history[-1]
    assert (last.event, last.session, last.error_class, last.error_text) == ("failed", "s1", "InvalidNumber", "no wa")
    assert store.record_failed(message.id, owner=None, now=at(2), error_class="E", error_text="x") is None


def test_record_failed_without_owner_and_without_attempt(store: MessageStore) -> None:
    message = claimed(store, owner="w1")
    done = store.record_failed(message.id, owner=None, now=at(1), error_class="E", error_text="x",
                               count_attempt=False)
    assert done is not None and done.status is MessageStatus.FAILED and done.attempts == 0
    pending = insert(store, 2)
    assert store.record_failed(pending.id, owner=None, now=at(1), error_class="E", error_text="x") is None


def test_release_without_session_change(store: MessageStore) -> None:
    message = insert(store, session="s1")
    store.claim(message.id, owner="w1", session="s1", now=NOW, lease_s=30)
    store.mark_sending(message.id, owner="w1", now=at(1))
    assert store.release(message.id, owner="w2", now=at(2), reason="x") is None
    released = store.release(message.id, owner="w1", now=at(2), reason="session unavailable",
                             error_class="SessionUnavailable")
    assert released is not None and released.status is MessageStatus.PENDING
    assert released.attempts == 0 and released.next_attempt_at == at(2) and released.session == "s1"
    assert released.lease_owner is None and released.sending_at is None
    last = released.history[-1]
    assert (last.event, last.session, last.error_class, last.error_text) == (
        "released", "s1", "SessionUnavailable", "session unavailable")


def test_release_keeping_the_doubt_of_an_earlier_click(store: MessageStore) -> None:
    message = insert(store, session="s1")
    store.claim(message.id, owner="w1", session="s1", now=NOW, lease_s=30)
    store.mark_sending(message.id, owner="w1", now=at(1))
    store.recover(message.id, owner="w1", now=at(2), reason="worker restarted")
    store.claim(message.id, owner="w2", session="s2", now=at(3), lease_s=30)
    released = store.release(message.id, owner="w2", now=at(4), reason="waiting", next_attempt_at=at(60),
                             keep_doubt=True)
    assert released is not None and released.status is MessageStatus.PENDING and released.lease_owner is None
    assert released.sending_at == at(1) and released.sending_session == "s1" and released.in_doubt
    assert released.next_attempt_at == at(60)


def test_release_with_session_change(store: MessageStore) -> None:
    message = insert(store, session="s1")
    store.claim(message.id, owner="w1", session="s1", now=NOW, lease_s=30)
    released = store.release(message.id, owner="w1", now=at(1), reason="cap", next_attempt_at=at(60), session="s2")
    assert released is not None and released.session == "s2" and released.next_attempt_at == at(60)
    store.claim(message.id, owner="w2", session="s2", now=at(60), lease_s=30)
    cleared = store.release(message.id, owner="w2", now=at(61), reason="any", session=None)
    assert cleared is not None and cleared.session is None


def test_expired_leases_and_recover_keeps_sending_at(store: MessageStore) -> None:
    message = claimed(store, owner="s1/hostA/10")  # lease: NOW .. NOW+60
    store.mark_sending(message.id, owner="s1/hostA/10", now=at(5))
    assert store.list_expired_leases(now=at(59)) == []
    assert [m.id for m in store.list_expired_leases(now=at(60))] == [message.id]
    assert store.recover(message.id, owner="someone-else", now=at(61), reason="x") is None
    back = store.recover(message.id, owner="s1/hostA/10", now=at(61), reason="lease expired")
    assert back is not None and back.status is MessageStatus.PENDING and back.attempts == 0
    assert back.sending_at == at(5) and back.sending_session == "s1" and back.in_doubt
    assert back.lease_owner is None
    assert back.history[-1].event == "recovered" and back.history[-1].session == "s1"
    assert store.list_expired_leases(now=at(1000)) == []
    assert store.recover(message.id, owner="s1/hostA/10", now=at(62), reason="again") is None


def test_list_expired_leases_limit(store: MessageStore) -> None:
    for i in range(5):
        claimed(store, i, owner=f"w{i}")
    assert len(store.list_expired_leases(now=at(60), limit=3)) == 3


def test_list_leases_by_owner_prefix(store: MessageStore) -> None:
    mine = claimed(store, 1, owner="s1/hostA/10")
    claimed(store, 2, owner="s1/hostA/11")
    claimed(store, 3, owner="s1/hostB/10")
    sent = claimed(store, 4, owner="s1/hostA/10")
    store.record_sent(sent.id, owner="s1/hostA/10", now=at(1), session="s1", wa_id=None)
    assert [m.id for m in store.list_leases(owner_prefix="s1/hostA/10")] == [mine.id]
    assert len(store.list_leases(owner_prefix="s1/hostA/")) == 2
    assert store.list_leases(owner_prefix="s2/") == []


# ---- dispatch ----------------------------------------------------------------------------------------------------
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


# ---- operator side -----------------------------------------------------------------------------------------------
def test_count_by_status_follows_every_transition(store: MessageStore) -> None:
    assert store.count_by_status() == {"pending": 0, "processing": 0, "sent": 0, "failed": 0}
    for i in range(3):
        insert(store, i)
    c = claimed(store, 10, owner="w")
    f = failed(store, 11)
    s = claimed(store, 12, owner="x")
    store.record_sent(s.id, owner="x", now=at(1), session="s1", wa_id=None)
    assert store.count_by_status() == {"pending": 3, "processing": 1, "sent": 1, "failed": 1}
    store.recover(c.id, owner="w", now=at(100), reason="r")
    store.retry_failed(f.id, now=at(2))
    assert store.count_by_status() == {"pending": 5, "processing": 0, "sent": 1, "failed": 0}
    f2 = failed(store, 13)
    store.delete(f2.id)
    assert store.count_by_status() == {"pending": 5, "processing": 0, "sent": 1, "failed": 0}


def test_list_failed_pages_and_filters(store: MessageStore) -> None:
    f1 = failed(store, 1, now=at(1), error="InvalidNumber", text="not on whatsapp", session="s1")
    f2 = failed(store, 2, now=at(2), error="TransientSendError", text="timeout x", session="s2")
    f3 = failed(store, 3, now=at(3), error="TransientSendError", text="element missing", session="s1")
    insert(store, 4)
    page, total = store.list_failed()
    assert [m.id for m in page] == [f3.id, f2.id, f1.id] and total == 3
    page, total = store.list_failed(offset=1, limit=1)
    assert [m.id for m in page] == [f2.id] and total == 3
    page, total = store.list_failed(session="s1")
    assert [m.id for m in page] == [f3.id, f1.id] and total == 2
    page, total = store.list_failed(error="TransientSendError")
    assert total == 2
    page, total = store.list_failed(error="timeout")
    assert [m.id for m in page] == [f2.id] and total == 1
    page, total = store.list_failed(session="s1", error="Invalid")
    assert [m.id for m in page] == [f1.id] and total == 1


def test_retry_failed_rules(store: MessageStore) -> None:
    f = failed(store, 1)
    store.mark_dispatched([f.id], now=at(1), epoch="e1", queue="q")
    again = store.retry_failed(f.id, now=at(5))
    assert again.status is MessageStatus.PENDING and again.attempts == 0 and again.next_attempt_at == at(5)
    assert again.last_error_class is None and again.last_error_text is None and again.failed_at is None
    assert again.dispatch_epoch is None and again.updated_at == at(5)
    assert again.history[-1].event == "requeued"
    with pytest.raises(InvalidTransition):
        store.retry_failed(f.id, now=at(6))
    with pytest.raises(NotFound):
        store.retry_failed("missing", now=at(6))


def test_retry_all_failed(store: MessageStore) -> None:
    f1 = failed(store, 1, session="s1")
    f2 = failed(store, 2, session="s2")
    f3 = failed(store, 3, session="s1")
    insert(store, 4)
    assert sorted(store.retry_all_failed(now=at(1), session="s1")) == sorted([f1.id, f3.id])
    assert store.get(f2.id).status is MessageStatus.FAILED
    assert store.retry_all_failed(now=at(2)) == [f2.id]
    assert store.count_by_status()["pending"] == 4 and store.retry_all_failed(now=at(3)) == []


def unverified(store: MessageStore, i: int = 0, clicked_by: str = "s2", failed_by: str = "s1") -> Message:
    """A send clicked by `clicked_by` whose worker died; `failed_by` could not read the chat and gave up."""
    message = insert(store, i)
    store.claim(message.id, owner="w2", session=clicked_by, now=at(1), lease_s=5)
    assert store.mark_sending(message.id, owner="w2", now=at(2))
    store.recover(message.id, owner="w2", now=at(10), reason="lease expired")  # keeps sending_at/sending_session
    store.claim(message.id, owner="w1", session=failed_by, now=at(11), lease_s=60)
    result = store.record_failed(message.id, owner="w1", now=at(12), error_class="OutcomeUnverified",
                                 error_text="chat could not be read", count_attempt=False)
    assert result is not None and result.claimed_by == failed_by and result.sending_session == clicked_by
    return result


def test_mark_sent_by_operator_credits_the_session_that_clicked(store: MessageStore) -> None:
    before = unverified(store, 1)
    sent = store.mark_sent_by_operator(before.id, now=at(20), actor="api:ops", note="  seen on the phone ")
    assert sent.status is MessageStatus.SENT and sent.sent_at == at(20) and sent.updated_at == at(20)
    assert sent.sent_by == "s2" and sent.wa_id is None and not sent.in_doubt
    # Kept for the record: why the operator had to decide, and when the click was.
    assert sent.failed_at == at(12) and sent.last_error_class == "OutcomeUnverified"
    assert sent.last_error_text == "chat could not be read" and sent.attempts == before.attempts
    assert sent.sending_at == at(2)
    last = sent.history[-1]
    assert (last.event, last.at, last.session, last.error_class) == ("sent", at(20), "s2", None)
    assert last.error_text == "marked as sent by operator api:ops: seen on the phone"
    assert sent.history[:-1] == before.history
    assert store.get(before.id) == sent


def test_mark_sent_by_operator_without_a_click_credits_the_claiming_session(store: MessageStore) -> None:
    f = failed(store, 1, session="s3")
    sent = store.mark_sent_by_operator(f.id, now=at(5), actor="cli:alice")
    assert sent.sent_by == "s3" and sent.history[-1].session == "s3"
    assert sent.history[-1].error_text == "marked as sent by operator cli:alice"
    assert store.mark_sent_by_operator(failed(store, 2).id, now=at(5), actor="x", note="").history[-1].error_text \
        == "marked as sent by operator x"


def test_mark_sent_by_operator_rules(store: MessageStore) -> None:
    pending = insert(store, 1)
    busy = claimed(store, 2, owner="w")
    done = claimed(store, 3, owner="x")
    store.record_sent(done.id, owner="x", now=at(1), session="s1", wa_id="wa-3")
    for message_id in (pending.id, busy.id, done.id):
        before = store.get(message_id)
        with pytest.raises(InvalidTransition):
            store.mark_sent_by_operator(message_id, now=at(2), actor="ops")
        assert store.get(message_id) == before
    with pytest.raises(NotFound):
        store.mark_sent_by_operator("missing", now=at(2), actor="ops")
    f = failed(store, 4)
    for kwargs in ({"actor": ""}, {"actor": "   "}, {"actor": "ops", "note": "n" * 501}):
        with pytest.raises(ValidationError):
            store.mark_sent_by_operator(f.id, now=at(2), **kwargs)  # type: ignore[arg-type]
    assert store.get(f.id) == f  # refused before anything was written
    store.mark_sent_by_operator(f.id, now=at(3), actor="ops", note="n" * 500)
    with pytest.raises(InvalidTransition):
        store.mark_sent_by_operator(f.id, now=at(4), actor="ops")  # once only
    with pytest.raises(InvalidTransition):
        store.retry_failed(f.id, now=at(4))
    with pytest.raises(InvalidTransition):
        store.delete(f.id)


def test_mark_sent_by_operator_moves_counts_and_counts_as_a_send(store: MessageStore) -> None:
    u = unverified(store, 1, clicked_by="s2", failed_by="s1")
    other = failed(store, 2)
    assert store.count_by_status() == {"pending": 0, "processing": 0, "sent": 0, "failed": 2}
    assert store.list_failed(error="OutcomeUnverified")[1] == 1
    store.mark_sent_by_operator(u.id, now=at(30), actor="ops")
    assert store.count_by_status() == {"pending": 0, "processing": 0, "sent": 1, "failed": 1}
    assert store.list_failed() == ([other], 1) and store.list_failed(error="OutcomeUnverified")[1] == 0
    # sends_since counts by sent_by and sent_at: the daily cap of the session that clicked includes it.
    assert store.sends_since("s2", at(0)) == 1 and store.sends_since("s1", at(0)) == 0
    assert store.sends_since("s2", at(31)) == 0
    assert store.sends_per_hour(since=at(-3600)) == [(NOW, 1)]
    assert store.archive_failed(older_than=at(10**6), now=at(10**6)) == 1  # only the one still failed
    assert store.get(u.id).status is MessageStatus.SENT


def test_mark_sent_and_retry_race_has_one_winner(store: MessageStore) -> None:
    f = failed(store, 1)

    def decide(i: int) -> Message:
        if i % 2:
            return store.retry_failed(f.id, now=at(5))
        return store.mark_sent_by_operator(f.id, now=at(5), actor=f"ops{i}")

    results = run_threads(6, decide)
    winners = [r for r in results if isinstance(r, Message)]
    assert len(winners) == 1, results
    assert all(isinstance(r, InvalidTransition) for r in results if r is not winners[0])
    final = store.get(f.id)
    assert final.status is winners[0].status and events(final)[-1] in ("sent", "requeued")
    assert events(final).count("sent") + events(final).count("requeued") == 1


def test_delete_rules(store: MessageStore) -> None:
    f = failed(store, 1)
    pending = insert(store, 2)
    with pytest.raises(InvalidTransition):
        store.delete(pending.id)
    store.delete(f.id)
    with pytest.raises(NotFound):
        store.get(f.id)
    with pytest.raises(NotFound):
        store.delete(f.id)
    assert store.get(pending.id).status is MessageStatus.PENDING


def test_archive_moves_old_failed_messages(store: MessageStore) -> None:
    old = failed(store, 1, now=at(-40 * 86400))
    recent = failed(store, 2, now=at(-1 * 86400))
    pending = insert(store, 3, now=at(-50 * 86400))
    assert store.archive_failed(older_than=at(-30 * 86400), now=NOW) == 1
    with pytest.raises(NotFound):
        store.get(old.id)
    archived = store.get_archived(old.id)
    assert archived.id == old.id and archived.status is MessageStatus.FAILED and archived.history == old.history
    assert store.get(recent.id).status is MessageStatus.FAILED
    assert store.get(pending.id).status is MessageStatus.PENDING
    with pytest.raises(NotFound):
        store.get_archived(recent.id)
    assert store.count_by_status()["failed"] == 1
    assert store.list_failed()[1] == 1
    assert store.archive_failed(older_than=at(-30 * 86400), now=NOW) == 0
    with pytest.raises(NotFound):
        store.retry_failed(old.id, now=NOW)


def test_list_archived_pages_and_filters_like_list_failed(store: MessageStore) -> None:
    assert store.list_archived() == ([], 0)
    a1 = failed(store, 1, now=at(-40 * 86400), error="InvalidNumber", text="not on whatsapp", session="s1")
    a2 = failed(store, 2, now=at(-39 * 86400), error="TransientSendError", text="timeout x", session="s2")
    a3 = failed(store, 3, now=at(-38 * 86400), error="TransientSendError", text="element missing", session="s1")
    recent = failed(store, 4, now=at(-1 * 86400), error="TransientSendError", text="timeout y", session="s1")
    assert store.archive_failed(older_than=at(-30 * 86400), now=NOW) == 3
    page, total = store.list_archived()
    assert [m.id for m in page] == [a3.id, a2.id, a1.id] and total == 3  # the recent failure is not archived
    assert page[0].status is MessageStatus.FAILED and page[0].history == a3.history
    page, total = store.list_archived(offset=1, limit=1)
    assert [m.id for m in page] == [a2.id] and total == 3
    page, total = store.list_archived(offset=5)
    assert page == [] and total == 3
    page, total = store.list_archived(session="s1")
    assert [m.id for m in page] == [a3.id, a1.id] and total == 2
    page, total = store.list_archived(error="TransientSendError")
    assert [m.id for m in page] == [a3.id, a2.id] and total == 2
    page, total = store.list_archived(error="timeout")
    assert [m.id for m in page] == [a2.id] and total == 1
    page, total = store.list_archived(session="s1", error="Invalid")
    assert [m.id for m in page] == [a1.id] and total == 1
    assert store.list_archived(session="nobody") == ([], 0)
    assert [m.id for m in store.list_failed()[0]] == [recent.id]
    with pytest.raises(NotFound):
        store.get_archived("no-such-id")
    with pytest.raises(NotFound):
        store.get_archived(recent.id)


def test_sends_since_and_per_hour(store: MessageStore) -> None:
    times = {"s1": [at(-7200), at(-3000), at(-60), at(30)], "s2": [at(-10)]}
    i = 0
    for session, stamps in times.items():
        for when in stamps:
            message = claimed(store, i, owner="w", session=session)
            store.record_sent(message.id, owner="w", now=when, session=session, wa_id=None)
            i += 1
    assert store.sends_since("s1", at(-3600)) == 3
    assert store.sends_since("s1", at(-3000)) == 3
    assert store.sends_since("s1", at(-2999)) == 2
    assert store.sends_since("s2", at(-3600)) == 1 and store.sends_since("s3", at(-3600)) == 0
    hours = store.sends_per_hour(since=at(-3 * 3600))
    assert hours == [(at(-7200), 1), (at(-3600), 3), (NOW, 1)]
    assert all(h.tzinfo is not None for h, _ in hours)


def test_wa_ids_sent_names_the_rows_other_messages_own(store: MessageStore) -> None:
    phone = "+15550009999"
    sends = [("s1", at(-600), "true_1@c.us_OLD"), ("s1", at(-10), "true_1@c.us_A"), ("s2", at(-5), "true_1@c.us_B"),
             ("s1", at(-1), None)]
    for i, (session, when, wa_id) in enumerate(sends):
        message = store.insert(NewMessage(phone=phone, text="same text"), NOW)[0]
        assert store.claim(message.id, owner="w", session=session, now=NOW, lease_s=60) is not None
        store.record_sent(message.id, owner="w", now=when, session=session, wa_id=wa_id)
    other = claimed(store, 7, owner="w", session="s1")
    store.record_sent(other.id, owner="w", now=at(-1), session="s1", wa_id="true_2@c.us_OTHERPHONE")
    assert store.wa_ids_sent(phone, session="s1", since=at(-60)) == {"true_1@c.us_A"}
    assert store.wa_ids_sent(phone, session="s1", since=at(-600)) == {"true_1@c.us_OLD", "true_1@c.us_A"}
    assert store.wa_ids_sent(phone, session="s2", since=at(-60)) == {"true_1@c.us_B"}
    assert store.wa_ids_sent(phone, session="s3", since=at(-600)) == set()


def test_oldest_pending(store: MessageStore) -> None:
    assert store.oldest_pending() is None
    insert(store, 1, now=at(10))
    oldest = insert(store, 2, now=at(5))
    busy = insert(store, 3, now=at(1))
    store.claim(busy.id, owner="w", session="s1", now=at(1), lease_s=5)
    found = store.oldest_pending()
    assert found is not None and found.id == oldest.id


def test_count_failed_since(store: MessageStore) -> None:
    assert store.count_failed_since(at(-3600)) == 0
    failed(store, 1, now=at(-7200))
    failed(store, 2, now=at(-60))
    failed(store, 3, now=NOW)
    insert(store, 4)  # pending: not counted
    assert store.count_failed_since(at(-3600)) == 2
    assert store.count_failed_since(NOW) == 1
    assert store.count_failed_since(at(1)) == 0
    assert store.count_failed_since(at(-10_000)) == 3


def test_oldest_due_skips_a_parked_older_message(store: MessageStore) -> None:
    assert store.oldest_due(now=NOW) is None
    parked = claimed(store, 1, owner="w", session="s1")  # created at NOW, waits for a retry an hour on
    store.record_retry(parked.id, owner="w", now=at(1), next_attempt_at=at(3600), error_class="TransientSendError",
                       error_text="later")
    overdue = insert(store, 2, now=at(10))
    later = insert(store, 3, now=at(20))
    store.claim(insert(store, 4, now=at(5)).id, owner="w2", session="s1", now=at(5), lease_s=60)  # processing
    found = store.oldest_due(now=at(60))
    assert found is not None and found.id == overdue.id  # the oldest pending by creation is parked, not due
    assert store.oldest_due(now=at(9)) is None  # the parked one is not due until at(3600)
    store.claim(overdue.id, owner="w3", session="s1", now=at(60), lease_s=60)
    found = store.oldest_due(now=at(60))
    assert found is not None and found.id == later.id


def test_record_receipt(store: MessageStore) -> None:
    pending = insert(store, 1)
    assert store.record_receipt(pending.id, now=at(1), delivered_at=at(1)) is None
    assert store.record_receipt("missing", now=at(1), delivered_at=at(1)) is None
    message = claimed(store, 2, owner="w", session="s1")
    store.record_sent(message.id, owner="w", now=at(1), session="s1", wa_id=None)
    first = store.record_receipt(message.id, now=at(2), delivered_at=at(2))
    assert first is not None and first.delivered_at == at(2) and first.read_at is None
    assert first.history[-1].event == "receipt" and first.history[-1].session == "s1"
    second = store.record_receipt(message.id, now=at(3), delivered_at=at(3), read_at=at(3))
    assert second is not None and second.delivered_at == at(2) and second.read_at == at(3)
    same = store.record_receipt(message.id, now=at(4), read_at=at(4))
    assert same is not None and same.read_at == at(3) and len(same.history) == len(second.history)


def test_history_tells_the_whole_story(store: MessageStore) -> None:
    message = insert(store, session="s1")
    store.claim(message.id, owner="w1", session="s1", now=at(1), lease_s=30)
    store.mark_sending(message.id, owner="w1", now=at(2))
    store.record_retry(message.id, owner="w1", now=at(3), next_attempt_at=at(4), error_class="TransientSendError",
                       error_text="t")
    store.claim(message.id, owner="w2", session="s2", now=at(4), lease_s=30)
    store.release(message.id, owner="w2", now=at(5), reason="cap", error_class="SessionUnavailable")
    store.claim(message.id, owner="w1", session="s1", now=at(6), lease_s=30)
    store.record_failed(message.id, owner="w1", now=at(7), error_class="InvalidNumber", error_text="x")
    store.retry_failed(message.id, now=at(8))
    final = store.get(message.id)
    assert events(final) == ["enqueued", "claimed", "sending", "retry", "claimed", "released", "claimed", "failed",
                             "requeued"]
    assert [e.at for e in final.history] == [NOW, *[at(i) for i in range(1, 9)]]
    assert [e.session for e in final.history][1:8] == ["s1", "s1", "s1", "s2", "s2", "s1", "s1"]


# ---- the lifecycle table against the adapter ---------------------------------------------------------------------
# Generated from wa_queue/store/lifecycle.py: every form of every transition is tried on a message in each status, so
# a new table entry (or a field added to one) is checked here without a new test.
TABLE_OWNER = "s1/h/1"
TABLE_AT = at(600)  # when the transition runs: after everything the set-up wrote
TABLE_ARGS: dict[str, object] = {
    "owner": TABLE_OWNER, "session": "s2", "wa_id": "wa-2", "lease_s": 90, "next_attempt_at": at(900),
    "error_class": "TransientSendError", "error_text": "try later", "reason": "moved", "actor": "op", "note": "seen",
    "delivered_at": at(700), "read_at": at(800), "older_than": at(601), "picture": ("row-a", "true_1@c.us_row-b"),
}
# Arguments the store keeps in another form than it takes them: the field holds this of the argument.
TABLE_STORED: dict[str, Callable[[object], object]] = {"picture": picture_text}  # type: ignore[dict-item]
TABLE_DERIVED: dict[str, Callable[[dict[str, object]], object]] = {
    "lease_expires_at": lambda kwargs: TABLE_AT + timedelta(seconds=kwargs["lease_s"]),  # type: ignore[arg-type]
}


def in_status(store: MessageStore, status: MessageStatus, i: int) -> Message:
    """A message in `status` with every field a transition may clear filled where that status allows: dispatched,
    claimed and clicked (lease held by TABLE_OWNER), then sent or failed."""
    message = insert(store, i, session="s1")
    store.mark_dispatched([message.id], now=at(1), epoch="e1", queue="wa.s1")
    if status is MessageStatus.PENDING:
        return store.get(message.id)
    assert store.claim(message.id, owner=TABLE_OWNER, session="s1", now=at(2), lease_s=60) is not None
    assert store.mark_sending(message.id, owner=TABLE_OWNER, now=at(3), picture=("row-0",))
    if status is MessageStatus.SENT:
        assert store.record_sent(message.id, owner=TABLE_OWNER, now=at(4), session="s1", wa_id="wa-1") is not None
    elif status is MessageStatus.FAILED:
        assert store.record_failed(message.id, owner=TABLE_OWNER, now=at(4), error_class="SendOutcomeUnknown",
                                   error_text="unread chat") is not None
    found = store.get(message.id)
    assert found.status is status
    return found


def table_call(store: MessageStore, method: str, message_id: str, kwargs: dict[str, object]) -> object:
    """The method's result, or None when it refused by raising InvalidTransition."""
    try:
        return getattr(store, method)(message_id, now=TABLE_AT, **kwargs)
    except InvalidTransition:
        return None


def table_kwargs(method: str, named: set[str], **options: object) -> dict[str, object]:
    """The method's required keyword arguments, those the table names as a source, and the variant's options."""
    parameters = inspect.signature(getattr(MessageStore, method)).parameters
    wanted = {name for name, p in parameters.items()
              if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty} | named
    return {name: TABLE_ARGS[name] for name in wanted & set(parameters) - {"now"}} | options


def table_value(source: lifecycle.Source, field: str, before: Message, kwargs: dict[str, object]) -> object:
    if source is lifecycle.NOW:
        return TABLE_AT
    if isinstance(source, lifecycle.Const):
        return source.value
    if isinstance(source, lifecycle.Row):
        return next((getattr(before, c) for c in source.columns if getattr(before, c) is not None), None)
    if isinstance(source, lifecycle.Once):
        return getattr(before, field) if getattr(before, field) is not None else kwargs[source.name]
    assert isinstance(source, lifecycle.Arg)
    if source.name in TABLE_STORED:
        return TABLE_STORED[source.name](kwargs[source.name])
    return kwargs[source.name] if source.name in kwargs else TABLE_DERIVED[source.name](kwargs)


TABLE_WRITES = [write for transition in lifecycle.TRANSITIONS for write in transition.writes.values()]


@pytest.mark.parametrize("write", TABLE_WRITES, ids=[write.key for write in TABLE_WRITES])
def test_every_transition_does_what_the_table_says(store: MessageStore, write: lifecycle.Write) -> None:
    transition = write.transition
    named = {source.name for _, source in write.sets if isinstance(source, lifecycle.Arg | lifecycle.Once)}
    options: dict[str, object] = {"keep_doubt": True} if write.key.count("+keep_doubt") else {}
    if not write.owner and transition.lease is not lifecycle.Lease.NONE:
        options["owner"] = None
    kwargs = table_kwargs(transition.method, named, **options)
    for i, status in enumerate(MessageStatus):
        before = in_status(store, status, i)
        result = table_call(store, transition.method, before.id, kwargs)
        after = store.get(before.id)
        if status not in transition.from_statuses:
            assert result in (None, False), (status, result)
            assert after == before, status  # a refused transition writes nothing
            continue
        assert result not in (None, False), status
        if isinstance(result, Message):
            assert result == after
        expected = {field: table_value(source, field, before, kwargs) for field, source in write.sets}
        expected |= dict.fromkeys(write.clears)
        if transition.uses_attempt:
            expected["attempts"] = before.attempts + 1
        if transition.event is not None:
            expected["updated_at"] = TABLE_AT
            expected["history"] = after.history  # checked below
        for field in dataclasses.fields(Message):
            assert getattr(after, field.name) == expected.get(field.name, getattr(before, field.name)), (status, field)
        if transition.event is not None:
            assert after.history[:-1] == before.history
            entry = after.history[-1]
            assert (entry.at, entry.event) == (TABLE_AT, transition.event)
            assert entry.session == table_value(transition.history_session, "", before, kwargs)


@pytest.mark.parametrize("removal", lifecycle.REMOVALS, ids=[removal.method for removal in lifecycle.REMOVALS])
def test_every_removal_takes_what_the_table_says(store: MessageStore, removal: lifecycle.Removal) -> None:
    for i, status in enumerate(MessageStatus):
        before = in_status(store, status, i)
        if removal.archived:  # every message whose failed_at is before older_than, this one alone here
            moved = store.archive_failed(older_than=TABLE_ARGS["older_than"], now=TABLE_AT)  # type: ignore[arg-type]
            assert moved == (status in removal.from_statuses), status
        elif status in removal.from_statuses:
            store.delete(before.id)
        else:
            with pytest.raises(InvalidTransition):
                store.delete(before.id)
        if status not in removal.from_statuses:
            assert store.get(before.id) == before, status
            continue
        with pytest.raises(NotFound):
            store.get(before.id)
        if removal.archived:
            assert store.get_archived(before.id) == before
        else:
            with pytest.raises(NotFound):
                store.get_archived(before.id)


# ---- sessions and number checks ----------------------------------------------------------------------------------
def test_sessions_default_and_upsert(store: MessageStore) -> None:
    assert store.get_session("s1") == SessionRecord("s1")
    record = store.update_session("s1", status="connected", heartbeat_at=at(1), needs_operator=True, number="+1")
    assert record.status == "connected" and record.heartbeat_at == at(1) and record.needs_operator is True
    record = store.update_session("s1", reconnect_attempts=2, next_reconnect_at=at(60), needs_operator=False)
    assert record.status == "connected" and record.number == "+1" and record.reconnect_attempts == 2
    assert record.next_reconnect_at == at(60) and record.needs_operator is False and record.restart_requested is False
    assert store.get_session("s1") == record
    assert store.update_session("s1", next_reconnect_at=None).next_reconnect_at is None
    assert store.get_session("s2").status == "unknown"


def test_session_last_error_set_read_and_cleared(store: MessageStore) -> None:
    assert store.get_session("s1").last_error is None
    record = store.update_session("s1", status="closed", last_error="net::ERR_NAME_NOT_RESOLVED", last_error_at=at(1),
                                  last_error_hint="cannot reach web.whatsapp.com: check the network")
    assert record.last_error == "net::ERR_NAME_NOT_RESOLVED" and record.last_error_at == at(1)
    assert record.last_error_hint == "cannot reach web.whatsapp.com: check the network"
    assert store.get_session("s1") == record
    assert store.update_session("s1", heartbeat_at=at(2)).last_error == "net::ERR_NAME_NOT_RESOLVED"  # kept
    cleared = store.update_session("s1", status="connected", last_error=None, last_error_at=None, last_error_hint=None)
    assert (cleared.last_error, cleared.last_error_at, cleared.last_error_hint) == (None, None, None)
    assert store.get_session("s1") == cleared


def test_reserve_send_slot(store: MessageStore) -> None:
    assert store.reserve_send_slot("s1", now=NOW, next_send_at=at(30)) is None
    assert store.get_session("s1").next_send_at == at(30)
    assert store.reserve_send_slot("s1", now=at(10), next_send_at=at(40)) == at(30)
    assert store.get_session("s1").next_send_at == at(30)
    assert store.reserve_send_slot("s1", now=at(30), next_send_at=at(60)) is None
    store.update_session("s2", status="connected")
    assert store.reserve_send_slot("s2", now=NOW, next_send_at=at(5)) is None
    assert store.get_session("s2").status == "connected"


def test_reserve_send_slot_is_atomic(store: MessageStore) -> None:
    results = run_threads(8, lambda i: store.reserve_send_slot("s1", now=NOW, next_send_at=at(30 + i)))
    assert sum(r is None for r in results) == 1, results
    assert all(isinstance(r, datetime) for r in results if r is not None)


def test_number_checks(store: MessageStore) -> None:
    assert store.get_number_check("+1555") is None
    store.set_number_check("+1555", True, now=NOW)
    assert store.get_number_check("+1555") is True
    store.set_number_check("+1555", False, now=at(1))
    assert store.get_number_check("+1555") is False


def test_ping_and_reopen(store: MessageStore, request: pytest.FixtureRequest) -> None:
    """What one store wrote, a store opened afresh on the same URL reads back once the first is closed. mongomock
    keeps no data outside its process: the adapter gives every open of one mongomock URL the same in-memory server,
    so there the new store is a new adapter on the same server (what a restarted worker would get in that process).
    The fixture's store stays open until the end of the test."""
    from wa_queue.store import open_store

    kind = request.node.callspec.params["store"]
    if kind == "sqlite":
        url = f"sqlite:///{store.path}"  # type: ignore[attr-defined]
    elif kind == "mongomock":
        url = f"mongomock://localhost/{store.db.name}"  # type: ignore[attr-defined]
    else:
        url = request.getfixturevalue("mongo_store_url")
    store.ping()
    first = open_store(url)
    first.ping()
    message = first.insert(new(1, session="s1", metadata={"k": "v"}), NOW)[0]
    session = first.update_session("s1", status="connected", heartbeat_at=NOW, number="+4915112345678")
    first.close()
    second = open_store(url)
    try:
        second.ping()
        assert second.get(message.id) == message
        assert second.get_session("s1") == session
        assert store.get(message.id) == message  # the same database the fixture opened
    finally:
        second.close()


# ---- SQLite across real processes --------------------------------------------------------------------------------
CLAIMER = """
import sys
from datetime import datetime, timezone
from wa_queue.store.sqlite import SQLiteStore
path, owner, ids_file = sys.argv[1:4]
store = SQLiteStore(path)
now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
sys.stdin.readline()  # both processes start claiming together
for mid in open(ids_file).read().split():
    if store.claim(mid, owner=owner, session=owner, now=now, lease_s=60) is not None:
        print(mid, flush=True)
"""


def test_sqlite_two_processes_claim_each_message_once(tmp_path: Path) -> None:
    from wa_queue.store.sqlite import SQLiteStore

    path = str(tmp_path / "waq.db")
    sqlite_store = SQLiteStore(path)
    ids = [m.id for m, _ in sqlite_store.insert_many([new(i) for i in range(200)], NOW)]
    (tmp_path / "ids").write_text("\n".join(ids))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, path, f"p{n}", str(tmp_path / "ids")], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for n in range(2)]
    for proc in procs:
        proc.stdin.write("go\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
    outputs = [proc.communicate(timeout=60)[0].split() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    claimed_ids = outputs[0] + outputs[1]
    assert sorted(claimed_ids) == sorted(ids)  # every message once, none twice
    for n, output in enumerate(outputs):
        assert all(sqlite_store.get(mid).lease_owner == f"p{n}" for mid in output)
    assert sqlite_store.count_by_status() == {"pending": 0, "processing": 200, "sent": 0, "failed": 0}
    sqlite_store.close()


# ---- issue 16: warm-up fields, send windows ------------------------------------------------------------------------
def test_session_warmup_fields_round_trip_and_operator_actions(store: MessageStore) -> None:
    from datetime import date

    from wa_queue import warmup

    assert (store.get_session("s1").first_send_day, store.get_session("s1").warmup_skipped) == (None, False)
    record = store.update_session("s1", first_send_day=date(2024, 4, 28))
    assert record.first_send_day == date(2024, 4, 28) and store.get_session("s1").first_send_day == date(2024, 4, 28)
    assert store.update_session("s1", **warmup.SKIP).warmup_skipped is True
    assert store.get_session("s1").warmup_skipped is True
    reset = store.update_session("s1", **warmup.RESET)
    assert (reset.first_send_day, reset.warmup_skipped) == (None, False)
    assert (store.get_session("s1").first_send_day, store.get_session("s1").warmup_skipped) == (None, False)


def test_send_window_is_stored_and_read_back(store: MessageStore) -> None:
    from wa_queue.send_window import parse_window

    window = parse_window("22:00-06:00")
    with_window = insert(store, 1, send_window=window)
    without = insert(store, 2)
    assert with_window.send_window == window and store.get(with_window.id).send_window == window
    assert store.get(without.id).send_window is None
    assert store.get(with_window.id).to_dict()["send_window"] == {"start": "22:00", "end": "06:00"}
    # The window is part of the content: a replay with another window is a conflict.
    keyed = NewMessage(phone="+15550000001", text="x", idempotency_key="k-window", send_window=window)
    store.insert(keyed, NOW)
    assert store.insert(keyed, NOW)[1] is False
    with pytest.raises(IdempotencyConflict):
        store.insert(dataclasses.replace(keyed, send_window=parse_window("08:00-21:00")), NOW)


# ---- issue 16: the mark's gates (generated from lifecycle.MARK_SENDING.gates) ---------------------------------------
GATES = lifecycle.MARK_SENDING.gates
GATE_PHONE = "+15550009999"


def gate_claimed(store: MessageStore, gate_key: str, i: int, other: bool = False) -> Message:
    """A claimed message; `other` changes the gate's key (the session for a session gate, else the phone)."""
    by_session = gate_key == "claimed_by"
    session = "s2" if other and by_session else "s1"
    message = store.insert(NewMessage(phone="+15550008888" if other and not by_session else GATE_PHONE,
                                      text=f"gate {i}"), NOW)[0]
    got = store.claim(message.id, owner=f"{session}/h/1", session=session, now=at(1), lease_s=600)
    assert got is not None
    return got


@pytest.mark.parametrize("gate", GATES, ids=[gate.name for gate in GATES])
def test_every_gate_of_the_mark_holds_its_limit(store: MessageStore, gate: lifecycle.Gate) -> None:
    from wa_queue import errors

    refusal = getattr(errors, gate.refusal)
    key = gate.key.columns[0]
    limits = {gate.limit.name: 2, gate.since.name: at(0)}
    a, b, c = (gate_claimed(store, key, i) for i in range(3))
    assert store.mark_sending(a.id, owner=a.lease_owner, now=at(2), **limits)  # type: ignore[arg-type]
    assert store.record_sent(a.id, owner=a.lease_owner, now=at(3), session="s1", wa_id=None)  # type: ignore
    assert store.mark_sending(b.id, owner=b.lease_owner, now=at(4), **limits)  # type: ignore[arg-type]
    before = store.get(c.id)
    with pytest.raises(refusal):  # a sent and b marked (its outcome may be a send): the limit of 2 is reached
        store.mark_sending(c.id, owner=c.lease_owner, now=at(5), **limits)  # type: ignore[arg-type]
    assert store.get(c.id) == before  # a refusal writes nothing
    # Another key is counted apart; a day that starts later counts nothing before it; no limit, no gate.
    d = gate_claimed(store, key, 3, other=True)
    assert store.mark_sending(d.id, owner=d.lease_owner, now=at(5), **limits)  # type: ignore[arg-type]
    later = {gate.limit.name: 2, gate.since.name: at(10)}
    assert store.mark_sending(c.id, owner=c.lease_owner, now=at(11), **later)  # type: ignore[arg-type]
    e = gate_claimed(store, key, 4)
    assert store.mark_sending(e.id, owner=e.lease_owner, now=at(12), **{gate.limit.name: 0})  # type: ignore
    # A lease not held is refused as before, the limit untouched.
    f = gate_claimed(store, key, 5, other=True)
    assert not store.mark_sending(f.id, owner="someone/else/1", now=at(13), **limits)  # type: ignore[arg-type]
    assert store.mark_sending(f.id, owner=f.lease_owner, now=at(13), **limits)  # type: ignore[arg-type]


@pytest.mark.parametrize("gate", GATES, ids=[gate.name for gate in GATES])
def test_concurrent_marks_never_pass_a_gate(store: MessageStore, gate: lifecycle.Gate, request: pytest.FixtureRequest
                                            ) -> None:
    """Eight workers mark eight messages of one key at once against a limit of 3: exactly 3 are marked."""
    if "mongomock" in request.node.callspec.id:
        pytest.skip("mongomock does not serialise concurrent writers as a server does")
    from wa_queue import errors

    messages = [gate_claimed(store, gate.key.columns[0], i) for i in range(8)]
    limits = {gate.limit.name: 3, gate.since.name: at(0)}
    results: list[object] = []
    start = threading.Barrier(len(messages))

    def mark(message: Message) -> None:
        start.wait()
        try:
            results.append(store.mark_sending(message.id, owner=message.lease_owner, now=at(2), **limits))  # type: ignore
        except getattr(errors, gate.refusal) as exc:
            results.append(exc)

    threads = [threading.Thread(target=mark, args=(m,)) for m in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 3 and len(results) == 8
    assert sum(store.get(m.id).sending_at is not None for m in messages) == 3


def test_the_first_mark_sets_the_first_send_day_once(store: MessageStore) -> None:
    from datetime import date

    from wa_queue import errors, warmup

    a, b, c = (claimed(store, i, owner=f"s1/h/{i}") for i in range(3))
    refused = {"session_cap": 1, "session_day_start": at(0), "first_send_day": date(2024, 5, 1)}
    assert store.mark_sending(a.id, owner="s1/h/0", now=at(2), first_send_day=date(2024, 5, 1))
    assert store.get_session("s1").first_send_day == date(2024, 5, 1)
    assert store.mark_sending(b.id, owner="s1/h/1", now=at(3), first_send_day=date(2024, 5, 2))
    assert store.get_session("s1").first_send_day == date(2024, 5, 1)  # the first one stays
    store.update_session("s1", **warmup.RESET)
    with pytest.raises(errors.DailyCapReached):  # a refused mark sets nothing
        store.mark_sending(c.id, owner="s1/h/2", now=at(4), **refused)  # type: ignore[arg-type]
    assert store.get_session("s1").first_send_day is None
    assert store.mark_sending(c.id, owner="s1/h/2", now=at(4), first_send_day=date(2024, 5, 3))
    assert store.get_session("s1").first_send_day == date(2024, 5, 3)


@pytest.mark.parametrize("gate", GATES, ids=[gate.name for gate in GATES])
def test_a_message_marked_again_takes_no_second_unit(store: MessageStore, gate: lifecycle.Gate) -> None:
    """A message in doubt that its session marks again (recovered, claimed, not found in the chat) is still one send
    of the day: the second mark takes no second unit of the gate (SQLite leaves the marked message out of the count;
    MongoDB's counter once took a unit per mark)."""
    limits = {gate.limit.name: 2, gate.since.name: at(0)}
    a, b = (gate_claimed(store, gate.key.columns[0], i) for i in range(2))
    assert store.mark_sending(a.id, owner=a.lease_owner, now=at(2), **limits)  # type: ignore[arg-type]
    assert store.recover(a.id, owner=a.lease_owner, now=at(3), reason="worker restarted")  # type: ignore[arg-type]
    again = store.claim(a.id, owner="s1/h/2", session="s1", now=at(4), lease_s=600)
    assert again is not None
    assert store.mark_sending(a.id, owner="s1/h/2", now=at(5), **limits)  # type: ignore[arg-type]
    assert store.mark_sending(b.id, owner=b.lease_owner, now=at(6), **limits)  # type: ignore[arg-type]


def test_expired_gate_counters_are_swept_where_the_server_has_no_ttl_index(store: MessageStore,
                                                                          request: pytest.FixtureRequest) -> None:
    """FerretDB 1.x has no TTL indexes (NotImplemented): the adapter then deletes the expired counters itself, each
    time it makes a new day's counter. Forced here on every MongoDB backend, so mongomock and MongoDB test it too."""
    if request.node.callspec.params["store"] == "sqlite":
        pytest.skip("SQLite counts in the mark's transaction: it keeps no counters")
    from wa_queue.store.mongo_codec import to_db

    if request.node.callspec.params["store"] == "ferretdb":
        assert store._sweep_counters  # type: ignore[attr-defined] - what the server answered at open
    store._sweep_counters = True  # type: ignore[attr-defined]
    counters = store.send_counts  # type: ignore[attr-defined]
    counters.insert_one({"_id": "old", "n": 1, "expires": to_db(datetime.now(UTC) - timedelta(days=1))})
    counters.insert_one({"_id": "live", "n": 1, "expires": to_db(datetime.now(UTC) + timedelta(days=1))})
    message = gate_claimed(store, "claimed_by", 1)
    assert store.mark_sending(message.id, owner=message.lease_owner, now=at(2), session_cap=5,  # type: ignore[arg-type]
                              session_day_start=at(0))
    left = {doc["_id"] for doc in counters.find({}, {"_id": 1})}
    assert "old" not in left and "live" in left and len(left) == 2, left

"""The store contract, what monitoring reads: sends per session and hour, oldest and due messages, receipts, history."""

from __future__ import annotations

from tests.contract.store.helpers import at, claimed, events, failed, insert
from tests.helpers.constants import NOW
from wa_queue.models import NewMessage
from wa_queue.store.base import MessageStore


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

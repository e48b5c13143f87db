"""The store contract, producer side: inserts, idempotency keys, batches and groups, what a message keeps."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from tests.contract.store.helpers import at, events, insert, new, run_threads
from tests.helpers.constants import NOW
from wa_queue.errors import IdempotencyConflict, NotFound
from wa_queue.models import MessageStatus, NewMessage
from wa_queue.store.base import MessageStore


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


def test_metadata_of_any_json_object_round_trips_as_given(store: MessageStore) -> None:
    """Keys a MongoDB sub-document could not hold ('$' first, a NUL, a dot) and JSON's other values come back as
    they went in, in their order."""
    metadata = {"$where": "1", "a\u0000b": {"c.d": [1.5, None, True, "\u00e9"], "$set": {}}, "": 0}
    message, _ = store.insert(new(1, metadata=metadata), NOW)
    loaded = store.get(message.id)
    assert loaded.metadata == metadata and list(loaded.metadata) == list(metadata)
    assert list(loaded.metadata["a\u0000b"]) == ["c.d", "$set"]


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

"""The store contract, the mark's gates (generated from lifecycle.MARK_SENDING.gates): daily limits in the store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from tests.contract.store.helpers import at, claimed
from tests.helpers.constants import NOW
from wa_queue.models import Message, NewMessage
from wa_queue.store import lifecycle
from wa_queue.store.base import MessageStore

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

"""The store contract, session records: upsert, last error, warm-up fields, pacing slots, number checks, reopening."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.contract.store.helpers import at, new, run_threads
from tests.helpers.constants import NOW
from wa_queue.store.base import MessageStore, SessionRecord


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

"""History events and session statuses are enums whose values are the strings stored: every member round-trips
through each store adapter as the same string, and a stored string the code does not know reads back as that plain
string instead of failing the read (models.parse_stored)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.constants import NOW
from wa_queue.models import HistoryEvent, Message, NewMessage, SessionStatus
from wa_queue.names import MESSAGES, SESSIONS
from wa_queue.sessions import is_available
from wa_queue.settings import Settings
from wa_queue.store.base import MessageStore

EVENT_VALUES = {"enqueued", "claimed", "sending", "sent", "retry", "released", "failed", "recovered", "requeued",
                "receipt", "deferred", "callback_refused", "expired", "cancelled", "paused", "resumed"}
STATUS_VALUES = {"unknown", "starting", "qr", "connected", "phone_disconnected", "logged_out", "closed",
                 "needs_operator", "banned"}


# The conftest's store fixture, on the adapters that need no server: the values are the same code on every adapter.
pytestmark = pytest.mark.parametrize("store", ["sqlite", "mongomock"], indirect=True)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def raw_history(store: MessageStore, message_id: str) -> list[dict[str, Any]]:
    """The history as the adapter stored it, read past the adapter's own decoding."""
    if hasattr(store, "messages"):
        return store.messages.find_one({"_id": message_id})["history"]  # type: ignore[attr-defined]
    conn = store.db.get()  # type: ignore[attr-defined]
    return json.loads(conn.execute(f"SELECT history FROM {MESSAGES} WHERE id = ?", (message_id,)).fetchone()[0])


def raw_status(store: MessageStore, name: str) -> Any:
    if hasattr(store, "sessions"):
        return store.sessions.find_one({"_id": name})["status"]  # type: ignore[attr-defined]
    conn = store.db.get()  # type: ignore[attr-defined]
    return conn.execute(f"SELECT status FROM {SESSIONS} WHERE name = ?", (name,)).fetchone()[0]


def claimed(store: MessageStore, message: Message, t: float) -> Message:
    got = store.claim(message.id, owner="w", session="primary", now=at(t), lease_s=60)
    assert got is not None
    return got


def every_event(store: MessageStore) -> list[str]:
    """Drive messages through every transition that writes history; returns their ids."""
    one, _ = store.insert(NewMessage(phone="+15550000001", text="a"), at(0))
    claimed(store, one, 1)
    assert store.mark_sending(one.id, owner="w", now=at(2))
    assert store.record_sent(one.id, owner="w", now=at(3), session="primary", wa_id="x") is not None
    assert store.record_receipt(one.id, now=at(4), delivered_at=at(4)) is not None
    assert store.record_callback_refused(one.id, now=at(5), error_class="OutboundRefused", error_text="loopback")

    two, _ = store.insert(NewMessage(phone="+15550000002", text="b"), at(0))
    claimed(store, two, 1)
    assert store.record_retry(two.id, owner="w", now=at(2), next_attempt_at=at(2), error_class="TransientSendError",
                              error_text="t") is not None
    claimed(store, two, 3)
    assert store.release(two.id, owner="w", now=at(4), reason="cap", error_class="DailyCapReached") is not None
    claimed(store, two, 5)
    assert store.defer(two.id, owner="w", now=at(5), next_attempt_at=at(5), reason="window",
                       error_class="SendWindowClosed") is not None
    claimed(store, two, 5)
    assert store.recover(two.id, owner="w", now=at(6), reason="lease expired") is not None
    claimed(store, two, 7)
    assert store.record_failed(two.id, owner="w", now=at(8), error_class="InvalidNumber", error_text="x") is not None
    store.retry_failed(two.id, now=at(9))
    claimed(store, two, 10)
    assert store.record_failed(two.id, owner="w", now=at(11), error_class="InvalidNumber", error_text="x")
    store.mark_sent_by_operator(two.id, now=at(12), actor="ops")

    three, _ = store.insert(NewMessage(phone="+15550000003", text="c", expires_at=at(20)), at(0))
    assert store.pause(three.id, now=at(1), reason="batch paused") is not None
    assert store.resume(three.id, now=at(2), reason="batch resumed") is not None
    assert store.expire(three.id, owner=None, now=at(21)) is not None
    four, _ = store.insert(NewMessage(phone="+15550000004", text="d"), at(0))
    assert store.cancel(four.id, now=at(1), actor="ops") is not None
    return [one.id, two.id, three.id, four.id]


def test_every_history_event_round_trips_as_its_string(store: MessageStore) -> None:
    assert {event.value for event in HistoryEvent} == EVENT_VALUES
    ids = every_event(store)
    written = set()
    for message_id in ids:
        entries = store.get(message_id).history
        stored = [entry["event"] for entry in raw_history(store, message_id)]
        assert all(type(event) is str for event in stored), stored  # plain strings in the store, not members
        assert [entry.event for entry in entries] == stored
        assert all(type(entry.event) is HistoryEvent for entry in entries)
        assert [entry.to_dict()["event"] for entry in entries] == stored
        assert all(type(entry.to_dict()["event"]) is str for entry in entries)
        written.update(stored)
    assert written == EVENT_VALUES  # every member is written by some transition, and nothing else is


def test_every_session_status_round_trips_as_its_string(store: MessageStore) -> None:
    assert store.get_session("never").status is SessionStatus.UNKNOWN
    for status in SessionStatus:
        store.update_session("primary", status=status)  # a member is stored as its value
        assert raw_status(store, "primary") == status.value and type(raw_status(store, "primary")) is str
        assert store.get_session("primary").status is status
        store.update_session("secondary", status=status.value)
        assert store.get_session("secondary").status is status
    assert {status.value for status in SessionStatus} == STATUS_VALUES


def test_unknown_stored_strings_read_back_as_plain_strings(store: MessageStore, tmp_path: Path) -> None:
    message, _ = store.insert(NewMessage(phone="+15550000003", text="c"), at(0))
    store.update_session("primary", status="connected", heartbeat_at=at(0))
    # What a newer version (or a hand edit) might have written.
    if hasattr(store, "messages"):
        store.messages.update_one({"_id": message.id}, {"$push": {"history": {  # type: ignore[attr-defined]
            "at": at(1), "event": "teleported", "session": None, "error_class": None, "error_text": None}}})
        store.sessions.update_one({"_id": "primary"}, {"$set": {"status": "hibernating"}})  # type: ignore[attr-defined]
    else:
        conn = store.db.get()  # type: ignore[attr-defined]
        with conn:
            conn.execute(f"UPDATE {MESSAGES} SET history = json_insert(history, '$[#]', json_object('at', ?, "
                         "'event', 'teleported')) WHERE id = ?", (at(1).isoformat(), message.id))
            conn.execute(f"UPDATE {SESSIONS} SET status = 'hibernating' WHERE name = 'primary'")
    last = store.get(message.id).history[-1]
    assert type(last.event) is str and last.event == "teleported" and last.to_dict()["event"] == "teleported"
    assert [e.event for e in store.get(message.id).history[:1]] == [HistoryEvent.ENQUEUED]
    record = store.get_session("primary")
    assert type(record.status) is str and record.status == "hibernating"
    settings = Settings.from_env({"WAQ_DATA_DIR": str(tmp_path)})
    assert not is_available(record, settings, at(1))  # an unknown status is never taken for connected
    assert is_available(store.update_session("primary", status=SessionStatus.CONNECTED), settings, at(1))

"""Replies on every adapter: recorded at most once per (session, chat, wa_id), however often or by however many
threads they are read; listed newest first with the phone, session and time filters; and the pointer to the last
message sent to the number; and each session's note of the chat its page has open (replaced, one per session)."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.store.helpers import at, claimed, run_threads
from tests.helpers.constants import NOW
from wa_queue.models import ChatNote, InboundMessage, OptChange
from wa_queue.store.base import MessageStore

PHONE = "+15550000001"


def reply(wa_id: str = "false_15550000001@c.us_3A01", seconds: float = 0, session: str = "s1",
          phone: str | None = PHONE, chat: str = PHONE, **kwargs: object) -> InboundMessage:
    return InboundMessage(session=session, chat=chat, wa_id=wa_id, text="thanks", phone=phone,
                          received_at=at(seconds), **kwargs)  # type: ignore[arg-type]


def test_a_reply_is_recorded_once_and_round_trips(store: MessageStore) -> None:
    first = reply(shown_at=NOW - timedelta(minutes=4), reply_to="m1", opt=OptChange.OUT)
    assert store.inbound_recorded("s1", PHONE, first.wa_id) is False
    assert store.record_inbound(first) is True
    assert store.inbound_recorded("s1", PHONE, first.wa_id) and not store.inbound_recorded("s2", PHONE, first.wa_id)
    assert store.record_inbound(reply(seconds=5)) is False  # the same row read again: a new id, still one
    assert store.record_inbound(reply(session="s2")) is True  # another session's chat is another key
    [got], total = store.list_inbound(session="s1")
    assert total == 1 and got.id == first.id and (got.text, got.phone, got.reply_to, got.opt) == (
        "thanks", PHONE, "m1", OptChange.OUT)
    assert abs(got.shown_at - (NOW - timedelta(minutes=4))) < timedelta(milliseconds=1)
    assert abs(got.received_at - NOW) < timedelta(milliseconds=1)


def test_concurrent_reads_of_one_row_record_it_once(store: MessageStore) -> None:
    results = run_threads(6, lambda i: store.record_inbound(reply(seconds=i)))
    assert results.count(True) == 1 and results.count(False) == 5
    assert store.list_inbound()[1] == 1


def test_listing_filters_pages_and_names_hidden_numbers(store: MessageStore) -> None:
    for i in range(5):
        store.record_inbound(reply(wa_id=f"w{i}", seconds=i * 60))
    store.record_inbound(reply(wa_id="lid1", seconds=600, phone=None, chat="Ana Lima"))
    page, total = store.list_inbound(limit=2)
    assert total == 6 and [r.wa_id for r in page] == ["lid1", "w4"] and page[0].phone is None
    assert [r.wa_id for r in store.list_inbound(limit=2, offset=2)[0]] == ["w3", "w2"]
    assert store.list_inbound(phone=PHONE)[1] == 5
    window, n = store.list_inbound(since=at(60), until=at(180))
    assert n == 2 and [r.wa_id for r in window] == ["w2", "w1"]
    assert store.list_inbound(session="other") == ([], 0)


def test_the_last_message_sent_to_a_number(store: MessageStore) -> None:
    assert store.last_sent_to(PHONE) is None
    ids = []
    for i, seconds in enumerate((10, 30, 20)):
        message = claimed(store, 1, owner=f"s1/h/{i}")
        assert store.record_sent(message.id, owner=f"s1/h/{i}", now=at(seconds), session="s1", wa_id=None)
        ids.append(message.id)
    claimed(store, 1, owner="s1/h/9")  # not sent: never the pointer
    assert store.last_sent_to(PHONE) == ids[1] and store.last_sent_to("+15550000999") is None


def test_a_sessions_chat_note_is_replaced_and_kept_apart_from_another_sessions(store: MessageStore) -> None:
    assert store.chat_note("s1") is None
    store.note_chat(ChatNote(session="s1", chat=None, phone=PHONE, unread=0, at=at(0)))
    store.note_chat(ChatNote(session="s2", chat="Ana (no number)", phone=None, unread=3, at=at(1)))
    first = store.chat_note("s1")
    assert (first.chat, first.phone, first.unread) == (None, PHONE, 0)
    store.note_chat(ChatNote(session="s1", chat="+1 555-000-0002", phone=None, unread=2, at=at(2)))
    got, other = store.chat_note("s1"), store.chat_note("s2")
    assert (got.chat, got.phone, got.unread) == ("+1 555-000-0002", None, 2)
    assert abs(got.at - at(2)) < timedelta(milliseconds=1)
    assert (other.chat, other.phone, other.unread) == ("Ana (no number)", None, 3)

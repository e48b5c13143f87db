"""Replies on every adapter: recorded at most once per (session, chat, wa_id), however often or by however many
threads they are read; listed newest first with the phone, session and time filters; and the pointer to the last
message sent to the number; and each session's notes of the chats its page opened (one per chat, oldest first,
taken off by name, each keeping the newest row seen)."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.store.helpers import at, claimed, run_threads
from tests.helpers.constants import NOW
from wa_queue.models import ChatNote, InboundMessage, OptChange, chat_key
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


def test_a_sessions_chat_notes_are_one_per_chat_oldest_first_and_kept_apart_from_another_sessions(
        store: MessageStore) -> None:
    assert store.chat_notes("s1") == []
    store.note_chat(ChatNote(session="s1", chat=None, phone=PHONE, unread=0, at=at(0)))
    store.note_chat(ChatNote(session="s2", chat="Ana (no number)", phone=None, unread=3, at=at(1)))
    store.note_chat(ChatNote(session="s1", chat="+1 555-000-0002", phone=None, unread=2, at=at(2)))
    store.note_chat(ChatNote(session="s1", chat=None, phone="+15550000003", unread=0, at=at(3)))
    got = store.chat_notes("s1")
    assert [(n.chat, n.phone, n.unread) for n in got] == [(None, PHONE, 0), ("+1 555-000-0002", None, 2),
                                                          (None, "+15550000003", 0)]
    assert abs(got[1].at - at(2)) < timedelta(milliseconds=1) and {n.session for n in got} == {"s1"}
    # The same chat noted again replaces its note (and moves it last: it is the chat opened last).
    store.note_chat(ChatNote(session="s1", chat=None, phone=PHONE, unread=1, at=at(4)))
    assert [(n.phone or n.chat, n.unread) for n in store.chat_notes("s1")] == [
        ("+1 555-000-0002", 2), ("+15550000003", 0), (PHONE, 1)]
    assert [(n.chat, n.unread) for n in store.chat_notes("s2")] == [("Ana (no number)", 3)]


def test_settling_chat_notes_keeps_what_was_seen_and_ends_those_done_of_that_session_only(
        store: MessageStore) -> None:
    for i, (chat, phone) in enumerate(((None, PHONE), ("Ana (no number)", None), (None, "+15550000003"))):
        store.note_chat(ChatNote(session="s1", chat=chat, phone=phone, unread=i, at=at(i)))
    store.note_chat(ChatNote(session="s2", chat=None, phone=PHONE, unread=0, at=at(5)))
    store.settle_chat_notes("s1", {chat_key(None, PHONE): "true_row_1", chat_key("Ana (no number)", None): "row_a"},
                            {chat_key(None, PHONE), chat_key(None, "+15550000003"), chat_key(None, "+1555999")})
    assert [(n.chat, n.unread, n.seen) for n in store.chat_notes("s1")] == [("Ana (no number)", 1, "row_a")]
    store.settle_chat_notes("s1", {}, set())
    assert len(store.chat_notes("s1")) == 1
    assert [(n.phone, n.seen) for n in store.chat_notes("s2")] == [(PHONE, None)]  # another session's: untouched
    # Noted again, a chat is pending again, with what was seen of it (a re-read counts from there).
    store.note_chat(ChatNote(session="s1", chat=None, phone=PHONE, unread=0, at=at(9)))
    assert [(n.phone or n.chat, n.seen) for n in store.chat_notes("s1")] == [("Ana (no number)", "row_a"),
                                                                             (PHONE, "true_row_1")]
    store.settle_chat_notes("s1", {chat_key(None, PHONE): "true_row_2"}, {chat_key("Ana (no number)", None)})
    assert [(n.phone, n.seen) for n in store.chat_notes("s1")] == [(PHONE, "true_row_2")]
    assert [n.phone for n in store.chat_notes("s2")] == [PHONE]

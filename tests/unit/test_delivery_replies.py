"""Delivery.read_replies, the pacing pause's and the idle health check's read: one read is judged on the whole
budget (a budget of exactly one read reads once), chats are read one at a time while a read fits and new replies keep
coming, replies already recorded stop the loop (the open chat returns them at every read), and a failure is logged
without reaching the send. With the store's chat notes, a reader that died between opening a chat (its badge gone) and
recording the replies finds them again, and so does the next read after a failed record; a note goes once its replies
are recorded and its chat has left the front."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.helpers.delivery import delivery_world
from wa_queue.inbound import StoreChatNotes
from wa_queue.transport.base import Reply
from wa_queue.transport.fake import FakeControl, FakeSender

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def env(tmp_path: Path):  # noqa: ANN201
    with delivery_world(tmp_path, T0, {"WAQ_CHAT_SETTLE_S": "0"}) as world:
        yield world


def counting(delivery) -> list[int]:  # noqa: ANN001 - how many reads the sender was asked for
    calls: list[int] = []
    real = delivery.sender.read_replies

    def read(max_chats: int = 1, again: bool = False) -> list[Reply]:
        calls.append(max_chats)
        return real(max_chats=max_chats, again=again)

    delivery.sender.read_replies = read
    return calls


def reply(settings, chat: str, n: int) -> None:  # noqa: ANN001
    FakeControl(settings.fake_control).add_reply("primary", chat=chat, wa_id=f"false_{chat}@c.us_{n}", text=f"r{n}",
                                                 phone="+" + chat)


def test_a_budget_of_one_read_reads_once_and_less_reads_nothing(env) -> None:  # noqa: ANN001
    settings, _, _, _, make = env
    delivery = make()
    seen: list[str] = []
    delivery.on_reply = lambda r: seen.append(r.text) or True
    calls = counting(delivery)
    reply(settings, "14155550001", 1)
    delivery.read_replies(delivery.reply_read_s * 0.99)
    assert calls == [] and seen == []
    delivery.read_replies(delivery.reply_read_s)  # the idle health check's budget: one read
    assert calls[:1] == [1] and seen == ["r1"]


def test_chats_are_read_one_at_a_time_while_new_replies_come(env) -> None:  # noqa: ANN001
    settings, _, _, _, make = env
    delivery = make()
    seen: list[str] = []
    delivery.on_reply = lambda r: seen.append(r.text) or True
    calls = counting(delivery)
    for n, chat in enumerate(("14155550001", "14155550002", "14155550003"), 1):
        reply(settings, chat, n)
    delivery.read_replies(60)
    assert sorted(seen) == ["r1", "r2", "r3"]
    assert calls == [1, 1, 1, 1]  # a chat a read, and one more that found nothing


def test_replies_recorded_before_end_the_loop(env) -> None:  # noqa: ANN001
    settings, _, _, _, make = env
    delivery = make()
    old = Reply(chat="14155550001", wa_id="false_14155550001@c.us_1", text="thanks", phone="+14155550001")
    # The open chat's reply, again and again.
    delivery.sender.read_replies = lambda max_chats=1, again=False: calls.append(max_chats) or [old]
    calls: list[int] = []
    delivery.on_reply = lambda r: False  # recorded before
    delivery.read_replies(60)
    assert calls == [1]


def test_a_failed_read_is_logged_and_ends_the_read(env, caplog) -> None:  # noqa: ANN001
    settings, _, _, _, make = env
    delivery = make()
    reply(settings, "14155550001", 1)

    def broken(r: Reply) -> bool:
        raise RuntimeError("store away")

    delivery.on_reply = broken
    with caplog.at_level(logging.WARNING):
        spent = delivery.read_replies(60)
    assert spent < 60 and "replies not read now: RuntimeError: store away" in caplog.text


def test_a_reader_killed_before_recording_finds_the_replies_again_through_the_note(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make = env
    reply(settings, "14155550001", 1)
    reply(settings, "14155550001", 2)
    first = make()
    first.sender.chat_notes = StoreChatNotes(store, "primary", clock)
    taken = first.sender.read_replies(max_chats=1)  # opened: the badge is gone; then the worker dies unrecorded
    assert [r.text for r in taken] == ["r1", "r2"]
    [note] = store.chat_notes("primary")
    assert (note.chat, note.unread) == ("14155550001", 2)
    unnoted = FakeSender("primary", settings.fake_log, settings.fake_control)  # without notes: lost
    unnoted.connect()
    assert unnoted.read_replies(max_chats=5) == []
    second = make()  # a new process, a new page
    second.sender.chat_notes = StoreChatNotes(store, "primary", clock)
    seen: list[str] = []
    second.on_reply = lambda r: seen.append(r.text) or True
    second.read_replies(60)
    assert seen == ["r1", "r2"]
    assert second.sender.read_replies(max_chats=5) == []  # read again once, not at every read
    assert [n.chat for n in store.chat_notes("primary")] == ["14155550001"]  # recorded, but still in front


def test_after_a_failed_record_the_next_read_reads_the_noted_chat_again(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make = env
    delivery = make()
    delivery.sender.chat_notes = StoreChatNotes(store, "primary", clock)
    delivery.read_replies(60)  # the new page's read of the note: none yet
    reply(settings, "14155550001", 1)
    failing = [True]

    def record(r: Reply) -> bool:
        if failing.pop() if failing else False:
            raise RuntimeError("store away")
        seen.append(r.text)
        return True

    seen: list[str] = []
    delivery.on_reply = record
    delivery.read_replies(60)
    assert seen == []
    delivery.read_replies(60)
    assert seen == ["r1"]


def test_a_send_notes_its_chat_before_opening_it(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make = env
    delivery = make()
    delivery.sender.chat_notes = StoreChatNotes(store, "primary", clock)
    delivery.sender.send("+14155550009", "hello", ref="m1")
    [note] = store.chat_notes("primary")
    assert (note.chat, note.phone, note.unread) == (None, "+14155550009", 0)


def test_a_chats_note_goes_only_once_its_replies_are_recorded_and_it_has_left_the_front(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make = env
    delivery = make()
    delivery.sender.chat_notes = StoreChatNotes(store, "primary", clock)
    delivery.read_replies(60)  # the new page's read of the notes: none yet
    delivery.sender.send("+14155550009", "hello", ref="m1")  # in front now
    reply(settings, "14155550001", 1)
    failing = [True]

    def record(r: Reply) -> bool:
        if failing.pop() if failing else False:
            raise RuntimeError("store away")
        return True

    delivery.on_reply = record
    delivery.read_replies(60)  # opens the list's chat, and cannot record its reply: nothing is forgotten
    assert sorted(n.phone or n.chat for n in store.chat_notes("primary")) == ["+14155550009", "14155550001"]
    delivery.read_replies(60)  # `again`: every note read again, recorded; the send's chat has left the front
    assert [n.chat for n in store.chat_notes("primary")] == ["14155550001"]
    delivery.sender.send("+14155550009", "again", ref="m2")
    assert sorted(n.phone or n.chat for n in store.chat_notes("primary")) == ["+14155550009", "14155550001"]
    delivery.read_replies(60)  # the list's chat was recorded before and is no longer in front
    assert [n.phone for n in store.chat_notes("primary")] == ["+14155550009"]

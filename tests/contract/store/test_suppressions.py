"""The suppression list on every adapter: entries kept once (the first says when, from where and by whom), paged
newest first, removed; and the mark's check of it: a message to a number on the list is never marked, it ends
cancelled with OptedOut, its lease and doubt gone, whatever gates the mark was given."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.contract.store.helpers import at, claimed, events, new, run_threads
from tests.helpers.constants import NOW
from wa_queue.errors import OptedOut
from wa_queue.models import Category, MessageStatus, Suppression
from wa_queue.store.base import MessageStore

PHONE = new(1).phone


def stop(phone: str = PHONE, seconds: float = 0, by: str = "s1") -> Suppression:
    return Suppression(phone=phone, since=at(seconds), by=by, session="s1", word="stop")


def test_an_entry_is_kept_once_listed_newest_first_and_removed(store: MessageStore) -> None:
    assert store.get_suppression(PHONE) is None and store.list_suppressions() == ([], 0)
    assert store.add_suppression(stop()) is True
    assert store.add_suppression(stop(seconds=60, by="ops")) is False  # the first entry stays
    got = store.get_suppression(PHONE)
    assert got is not None and (got.by, got.session, got.word) == ("s1", "s1", "stop")
    assert abs(got.since - NOW) < timedelta(milliseconds=1)
    for i in range(2, 5):
        store.add_suppression(Suppression(phone=new(i).phone, since=at(i), by="cli:ops"))
    page, total = store.list_suppressions(limit=2, offset=0)
    assert total == 4 and [s.phone for s in page] == [new(4).phone, new(3).phone]
    assert [s.phone for s in store.list_suppressions(limit=10, offset=2)[0]] == [new(2).phone, PHONE]
    assert store.remove_suppression(PHONE, by="key:ops", at=at(70)) is True
    assert store.remove_suppression(PHONE, by="key:ops", at=at(71)) is False
    assert store.get_suppression(PHONE) is None and store.list_suppressions()[1] == 3


def test_the_log_keeps_every_change_with_who_made_it_also_of_entries_gone(store: MessageStore) -> None:
    assert store.suppression_log() == ([], 0)
    store.add_suppression(stop())
    store.add_suppression(stop(seconds=5, by="ops"))  # already on the list: no change, no line
    store.add_suppression(Suppression(phone=new(2).phone, since=at(10), by="cli:ana"))
    store.remove_suppression(PHONE, by="key:ops", at=at(20))
    store.remove_suppression(PHONE, by="key:ops", at=at(21))  # not on it any more: no line
    store.add_suppression(stop(seconds=30, by="import:old.csv"))
    changes, total = store.suppression_log()
    assert total == 4
    assert [(c.phone, c.change.value, c.by) for c in changes] == [
        (PHONE, "out", "import:old.csv"), (PHONE, "in", "key:ops"), (new(2).phone, "out", "cli:ana"),
        (PHONE, "out", "s1")]
    assert changes[3].session == "s1" and changes[3].word == "stop" and changes[1].session is None
    assert abs(changes[1].at - at(20)) < timedelta(milliseconds=1)
    mine, total = store.suppression_log(phone=PHONE, limit=2, offset=1)
    assert total == 3 and [(c.change.value, c.by) for c in mine] == [("in", "key:ops"), ("out", "s1")]


@pytest.mark.parametrize("gated", [False, True], ids=["no gates", "gates"])
def test_the_mark_cancels_a_message_to_a_suppressed_number(store: MessageStore, gated: bool) -> None:
    message = claimed(store, 1)
    store.add_suppression(stop())
    limits = ({"session_cap": 10, "session_day_start": NOW - timedelta(hours=1), "recipient_limit": 5,
               "recipient_day_start": NOW - timedelta(hours=1), "first_send_day": date(2026, 1, 1)} if gated else {})
    with pytest.raises(OptedOut) as raised:
        store.mark_sending(message.id, owner="s1/host/1", now=at(1), picture=["A"], **limits)
    assert raised.value.field == "phone"
    after = store.get(message.id)
    assert raised.value.cancelled is not None and raised.value.cancelled.id == message.id
    assert after.status is MessageStatus.CANCELLED and after.last_error_class == "OptedOut"
    assert PHONE in (after.last_error_text or "") and after.cancelled_at is not None
    assert after.lease_owner is None and not after.in_doubt and events(after)[-1] == "cancelled"
    assert store.sends_since("s1", NOW - timedelta(hours=1)) == 0


def test_another_number_is_marked_and_a_removed_entry_lets_the_next_through(store: MessageStore) -> None:
    store.add_suppression(stop())
    other = claimed(store, 2)
    assert store.mark_sending(other.id, owner="s1/host/1", now=at(1)) is True
    store.remove_suppression(PHONE, by="ops", at=at(2))
    message = claimed(store, 1)
    assert store.mark_sending(message.id, owner="s1/host/1", now=at(2)) is True
    assert store.get(message.id).sending_at is not None


def test_a_mark_and_a_stop_racing_never_both_win(store: MessageStore) -> None:
    """Either the mark came first (the message is marked: its click was decided before the STOP) or the STOP did
    (the message is cancelled, never marked); never a mark after a STOP recorded."""
    for round_ in range(8):
        message = claimed(store, 100 + round_)
        entry = stop(phone=message.phone)
        outcome: dict[str, object] = {}

        def run(i: int, message=message, entry=entry, outcome=outcome) -> None:  # noqa: ANN001
            if i == 0:
                try:
                    outcome["marked"] = store.mark_sending(message.id, owner="s1/host/1", now=at(1))
                except OptedOut:
                    outcome["marked"] = False
            else:
                store.add_suppression(entry)

        run_threads(2, run)
        after = store.get(message.id)
        if outcome["marked"]:
            assert after.sending_at is not None and after.status is MessageStatus.PROCESSING
        else:
            assert after.status is MessageStatus.CANCELLED and after.sending_at is None


@pytest.mark.parametrize("gated", [False, True], ids=["no gates", "gates"])
def test_the_marks_check_follows_the_category_and_the_scope(store: MessageStore, gated: bool) -> None:
    limits = ({"session_cap": 10, "session_day_start": NOW - timedelta(hours=1), "recipient_limit": 5,
               "recipient_day_start": NOW - timedelta(hours=1)} if gated else {})
    store.add_suppression(stop())
    receipt = claimed(store, 1)  # transactional, the default
    ads = claimed(store, 1, category=Category.MARKETING)
    confirmation = claimed(store, 1, category=Category.OPT_OUT_REPLY)
    assert store.get(ads.id).category is Category.MARKETING and store.get(receipt.id).category is Category.TRANSACTIONAL
    assert store.mark_sending(receipt.id, owner="s1/host/1", now=at(1), opt_out_scope="marketing", **limits) is True
    with pytest.raises(OptedOut):
        store.mark_sending(ads.id, owner="s1/host/1", now=at(2), opt_out_scope="marketing", **limits)
    assert store.get(ads.id).status is MessageStatus.CANCELLED
    assert store.mark_sending(confirmation.id, owner="s1/host/1", now=at(3), **limits) is True  # scope all

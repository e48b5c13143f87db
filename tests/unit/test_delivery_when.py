"""Delivery and time: a message's expiry (at the claim, after the pacing pause, a doubt settled first), its
priority (a lower one gives its place up to a higher one waiting), and the window a high message may skip."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.helpers.constants import PHONE
from tests.helpers.delivery import delivery_world
from wa_queue import names
from wa_queue.models import MessageStatus, NewMessage, Priority
from wa_queue.send_window import parse_window
from wa_queue.transport.fake import read_log

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def env(tmp_path: Path):  # noqa: ANN201
    with delivery_world(tmp_path, T0, {"WAQ_MIN_DELAY_S": "25", "WAQ_MAX_DELAY_S": "40",
                                       "WAQ_SESSIONS": "primary,secondary"}) as world:
        yield world


def _new(store, **kwargs) -> str:  # noqa: ANN001
    return store.insert(NewMessage(phone=PHONE, text=kwargs.pop("text", "hello"), **kwargs), T0)[0].id


def test_a_message_claimed_after_its_expiry_ends_expired_unsent(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make = env
    changed = []
    mid = _new(store, expires_at=T0 + timedelta(seconds=10))
    clock.now = T0 + timedelta(seconds=10)
    delivery = make()
    delivery.on_change = changed.append
    outcome = delivery.process(mid, 0)
    message = store.get(mid)
    assert outcome.kind == "expired" and message.status is MessageStatus.EXPIRED
    assert message.expired_at == clock.now and message.lease_owner is None and message.attempts == 0
    assert [e.event for e in message.history] == ["enqueued", "claimed", "expired"]
    assert [m.status for m in changed] == [MessageStatus.EXPIRED]  # its callback
    assert read_log(settings.fake_log) == []


def test_a_message_that_expires_during_the_pacing_pause_is_never_clicked(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make = env
    store.update_session("primary", next_send_at=T0 + timedelta(seconds=30))  # the slot frees after its expiry
    mid = _new(store, expires_at=T0 + timedelta(seconds=20))
    assert make().process(mid, 0).kind == "expired"
    assert store.get(mid).status is MessageStatus.EXPIRED and clock.now >= T0 + timedelta(seconds=20)
    assert read_log(settings.fake_log) == []


def test_an_unexpired_message_is_sent(env) -> None:  # noqa: ANN001
    settings, store, _, _, make = env
    mid = _new(store, expires_at=T0 + timedelta(seconds=60))
    assert make().process(mid, 0).kind == "sent"
    assert [e["ref"] for e in read_log(settings.fake_log)] == [mid]


def test_a_message_in_doubt_at_its_expiry_is_settled_first_sent_if_the_chat_shows_it(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make = env
    mid = _new(store, expires_at=T0 + timedelta(seconds=60))
    first = make()
    store.claim(mid, owner=first.owner, session="primary", now=T0, lease_s=60)
    assert store.mark_sending(mid, owner=first.owner, now=T0)
    first.sender.send(PHONE, "hello", ref=mid)  # the click went out; the worker died before recording it
    store.recover(mid, owner=first.owner, now=T0, reason="worker died")
    clock.now = T0 + timedelta(seconds=120)  # past its expiry, still in doubt
    assert store.list_expiring(now=clock.now) == []  # the sweep leaves a doubt alone
    assert make().process(mid, 0).kind == "sent"  # found in the chat: recorded, not expired, not sent again
    assert store.get(mid).status is MessageStatus.SENT and len(read_log(settings.fake_log)) == 1


def test_a_doubt_the_chat_shows_unsent_expires_after_its_expiry(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make = env
    mid = _new(store, expires_at=T0 + timedelta(seconds=60))
    first = make()
    store.claim(mid, owner=first.owner, session="primary", now=T0, lease_s=60)
    assert store.mark_sending(mid, owner=first.owner, now=T0)  # marked, never clicked
    store.recover(mid, owner=first.owner, now=T0, reason="worker died")
    clock.now = T0 + timedelta(seconds=120)
    assert make().process(mid, 0).kind == "expired"
    message = store.get(mid)
    assert message.status is MessageStatus.EXPIRED and not message.in_doubt and message.sending_at is None
    assert read_log(settings.fake_log) == []


def test_a_normal_message_in_its_pause_gives_its_place_to_a_waiting_high_one(env) -> None:  # noqa: ANN001
    settings, store, _, recording, make = env
    store.update_session("primary", next_send_at=T0 + timedelta(seconds=30))
    normal = _new(store, text="campaign")
    high = store.insert(NewMessage(phone=PHONE, text="code 1234", priority=Priority.HIGH), T0)[0]
    recording.publish([store.get(normal)], names.session_queue("primary"))
    recording.publish([high], names.DEFAULT_QUEUE)
    outcome = make().process(normal, 0)
    assert outcome.kind == "released" and "higher priority" in outcome.detail
    message = store.get(normal)
    assert message.status is MessageStatus.PENDING and message.attempts == 0
    assert (recording.published[-1].ids, recording.published[-1].front) == ([normal], True)  # first in its line
    assert recording.published[-1].queue == names.session_queue("primary")
    assert make().process(high.id, 0).kind == "sent"  # the high one takes the slot
    assert [e["ref"] for e in read_log(settings.fake_log)] == [high.id]


def test_a_high_message_gives_its_place_to_nobody(env) -> None:  # noqa: ANN001
    settings, store, _, recording, make = env
    store.update_session("primary", next_send_at=T0 + timedelta(seconds=30))
    first = store.insert(NewMessage(phone=PHONE, text="code 1", priority=Priority.HIGH), T0)[0]
    second = store.insert(NewMessage(phone=PHONE, text="code 2", priority=Priority.HIGH), T0)[0]
    recording.publish([second], names.DEFAULT_QUEUE)
    assert make().process(first.id, 0).kind == "sent"


def test_a_high_message_skips_the_window_only_when_allowed(tmp_path: Path) -> None:
    night = T0.replace(hour=10)  # 02:00 in San Francisco (PHONE's zone)
    for allowed, expected in (("false", "deferred"), ("true", "sent")):
        folder = tmp_path / allowed
        folder.mkdir()
        with delivery_world(folder, night, {"WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0",
                                            "WAQ_HIGH_SKIPS_WINDOW": allowed}) as (_, store, _, _, make):
            window = parse_window("08:00-21:00")
            high = store.insert(NewMessage(phone=PHONE, text="code", priority=Priority.HIGH, send_window=window),
                                night)[0]
            normal = store.insert(NewMessage(phone=PHONE, text="news", send_window=window), night)[0]
            assert make().process(high.id, 0).kind == expected, allowed
            assert make().process(normal.id, 0).kind == "deferred"  # only high skips it


def test_a_scheduled_message_is_not_claimed_before_its_time(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make = env
    mid = store.insert(NewMessage(phone=PHONE, text="later", send_at=T0 + timedelta(seconds=10)), T0)[0].id
    assert store.get(mid).next_attempt_at == T0 + timedelta(seconds=10)
    assert make().process(mid, 0).kind == "skipped"
    clock.now = T0 + timedelta(seconds=10)
    store.update_session("primary", next_send_at=None)
    assert make().process(mid, 0).kind == "sent"

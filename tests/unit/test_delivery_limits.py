"""Issue 16's decisions in Delivery, with an injected clock: the warm-up cap, the store's atomic cap and recipient
gates at the mark, and the send window (deferral without an attempt, with why in the history)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.helpers.constants import PHONE
from tests.helpers.delivery import Clock, delivery_world
from wa_queue import errors, send_window, warmup
from wa_queue.delivery import Delivery
from wa_queue.models import HistoryEvent, MessageStatus, NewMessage
from wa_queue.send_window import parse_window
from wa_queue.sessions import daily_cap, pick_session
from wa_queue.settings import Settings
from wa_queue.store.sqlite import SQLiteStore
from wa_queue.transport.fake import read_log

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)  # 01:00 in Los Angeles (PST, UTC-8)
OTHER = "+14155550124"


Env = tuple[Settings, SQLiteStore, Clock, Callable[..., Delivery]]


def make_env(tmp_path: Path, **env: str) -> Iterator[Env]:
    with delivery_world(tmp_path, T0, {
        "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0", "WAQ_MAX_DAILY_PER_SESSION": "10",
        "WAQ_SESSIONS": "primary,secondary", "WAQ_TIMEZONE": "UTC", **env,
    }) as (settings, store, clock, _recording, make):
        yield settings, store, clock, make


@pytest.fixture
def ramp(tmp_path: Path) -> Iterator[Env]:
    """A ramp of 2 then 4 a day, one day each, then 10; one session sends."""
    yield from make_env(tmp_path, WAQ_WARMUP_CAPS="2,4", WAQ_WARMUP_DAYS_PER_STEP="1", WAQ_SESSIONS="primary")


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path, WAQ_WARMUP_CAPS="", WAQ_MAX_PER_RECIPIENT_PER_DAY="2")


@pytest.fixture
def windowed(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path, WAQ_WARMUP_CAPS="", WAQ_SEND_WINDOW="08:00-21:00")


def new(store: SQLiteStore, i: int = 0, phone: str = PHONE, **kwargs: object) -> str:
    return store.insert(NewMessage(phone=phone, text=f"hello {i}", **kwargs), T0)[0].id  # type: ignore[arg-type]


def last(store: SQLiteStore, mid: str) -> tuple[str, str | None, str | None]:
    entry = store.get(mid).history[-1]
    return entry.event, entry.error_class, entry.error_text


# ---- part 1: the warm-up cap -------------------------------------------------------------------------------------
def test_the_warmup_ramp_caps_each_day_from_the_first_send(ramp: Env) -> None:
    settings, store, clock, make = ramp
    delivery = make()
    assert daily_cap(store.get_session("primary"), settings, clock.now).state == warmup.NEW
    ids = [new(store, i) for i in range(8)]
    kinds = [delivery.process(mid).kind for mid in ids[:3]]
    assert kinds == ["sent", "sent", "parked"]  # day 1: a cap of 2, and no other session
    assert store.get_session("primary").first_send_day == date(2026, 11, 28)
    parked = store.get(ids[2])
    assert parked.status is MessageStatus.PENDING and parked.attempts == 0
    assert parked.next_attempt_at == datetime(2026, 11, 29, tzinfo=timezone.utc)  # the next local midnight
    assert last(store, ids[2])[:2] == (HistoryEvent.RELEASED, "DailyCapReached")
    clock.now = datetime(2026, 11, 29, 0, 0, 1, tzinfo=timezone.utc)  # day 2: a cap of 4
    status = daily_cap(store.get_session("primary"), settings, clock.now)
    assert (status.cap, status.state, status.step) == (4, warmup.RAMP, 2)
    assert [delivery.process(mid).kind for mid in ids[2:8]] == ["sent"] * 4 + ["parked"] * 2
    clock.now = datetime(2026, 11, 30, 0, 0, 1, tzinfo=timezone.utc)  # past the ramp: the normal cap of 10
    assert daily_cap(store.get_session("primary"), settings, clock.now).cap == 10
    store.update_session("primary", **warmup.RESET)  # an operator's reset: the ramp starts again with the next send
    assert daily_cap(store.get_session("primary"), settings, clock.now).cap == 2
    assert [delivery.process(mid).kind for mid in ids[6:8]] == ["sent", "sent"]
    assert store.get_session("primary").first_send_day == date(2026, 11, 30)
    store.update_session("primary", **warmup.SKIP)
    assert daily_cap(store.get_session("primary"), settings, clock.now).cap == 10


def test_the_store_counts_a_click_whose_outcome_was_never_recorded(ramp: Env) -> None:
    """The cap is decided at the mark: a worker that died after its click (marked, never recorded sent) used one of
    the day's sends, though sends_since (sent only) does not show it; the next worker is refused by the store."""
    settings, store, clock, make = ramp
    crashed = new(store, 0)
    assert store.claim(crashed, owner="primary/dead/1", session="primary", now=T0, lease_s=60) is not None
    assert store.mark_sending(crashed, owner="primary/dead/1", now=T0)
    a, b = new(store, 1, phone=OTHER), new(store, 2, phone=OTHER)
    delivery = make()
    assert delivery.process(a).kind == "sent"
    assert store.sends_since("primary", T0 - timedelta(hours=9)) == 1  # the pre-check passes...
    outcome = delivery.process(b)
    assert outcome.kind == "parked"  # ...the store's count (1 sent + 1 clicked) refuses
    assert last(store, b)[:2] == (HistoryEvent.RELEASED, "DailyCapReached")
    assert [e["ref"] for e in read_log(settings.fake_log)] == [a]


def test_pick_session_takes_the_warmup_cap_into_account(tmp_path: Path) -> None:
    for settings, store, clock, make in make_env(tmp_path, WAQ_WARMUP_CAPS="2,4", WAQ_WARMUP_DAYS_PER_STEP="1"):
        store.update_session("secondary", warmup_skipped=True)  # cap 10, against primary's 2
        assert pick_session(store, settings, clock.now) == "secondary"
        store.update_session("secondary", **warmup.RESET)
        for i in range(2):
            assert make("secondary").process(new(store, i)).kind == "sent"
        assert pick_session(store, settings, clock.now) == "primary"
        assert pick_session(store, settings, clock.now, exclude="primary") is None  # secondary is at its 2


# ---- part 3: the recipient's daily limit -------------------------------------------------------------------------
def test_over_the_recipient_limit_waits_for_the_recipients_next_day(limited: Env) -> None:
    settings, store, clock, make = limited
    ids = [new(store, i) for i in range(3)]
    other = new(store, 9, phone="+442079460000")
    assert make("primary").process(ids[0]).kind == "sent"
    assert make("secondary").process(ids[1]).kind == "sent"  # the limit is across sessions
    outcome = make("primary").process(ids[2])
    assert outcome.kind == "deferred"
    message = store.get(ids[2])
    next_day = send_window.recipient_next_day_start(PHONE, T0)
    assert next_day == datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)  # the next midnight in Los Angeles
    assert message.status is MessageStatus.PENDING and message.attempts == 0 and message.next_attempt_at == next_day
    assert message.dispatch_epoch is None and message.sending_at is None
    event, error_class, text = last(store, ids[2])
    assert (event, error_class) == (HistoryEvent.DEFERRED, "RecipientLimitReached")
    assert "WAQ_MAX_PER_RECIPIENT_PER_DAY (2) for 2026-11-28" in text  # type: ignore[operator]
    assert make("primary").process(other).kind == "sent"  # another number is not held back
    assert make("primary").process(ids[2]).kind == "skipped"  # not due before the recipient's next day
    clock.now = next_day
    assert make("primary").process(ids[2]).kind == "sent"
    assert [e["ref"] for e in read_log(settings.fake_log)] == [ids[0], ids[1], other, ids[2]]


def test_the_recipient_gate_is_the_stores_even_when_a_click_was_never_recorded(limited: Env) -> None:
    settings, store, clock, make = limited
    crashed = new(store, 0)
    assert store.claim(crashed, owner="secondary/dead/1", session="secondary", now=T0, lease_s=60) is not None
    assert store.mark_sending(crashed, owner="secondary/dead/1", now=T0)
    a, b = new(store, 1), new(store, 2)
    assert make().process(a).kind == "sent"
    assert make().process(b).kind == "deferred"
    assert read_log(settings.fake_log)[-1]["ref"] == a and len(read_log(settings.fake_log)) == 1


# ---- part 4: the send window ---------------------------------------------------------------------------------------
def test_outside_the_default_window_waits_until_it_opens(windowed: Env) -> None:
    settings, store, clock, make = windowed
    mid = new(store)
    outcome = make().process(mid)  # 01:00 in Los Angeles
    assert outcome.kind == "deferred"
    opens = datetime(2026, 11, 28, 16, 0, tzinfo=timezone.utc)  # 08:00 PST
    message = store.get(mid)
    assert message.status is MessageStatus.PENDING and message.attempts == 0 and message.next_attempt_at == opens
    event, error_class, text = last(store, mid)
    assert (event, error_class) == (HistoryEvent.DEFERRED, "SendWindowClosed")
    assert "WAQ_SEND_WINDOW 08:00-21:00" in text and opens.isoformat() in text  # type: ignore[operator]
    assert read_log(settings.fake_log) == []
    clock.now = opens
    assert make().process(mid).kind == "sent"


def test_a_messages_own_window_overrides_the_default(windowed: Env) -> None:
    settings, store, clock, make = windowed
    night = new(store, 0, send_window=parse_window("22:00-06:00"))  # open at 01:00 in Los Angeles
    assert make().process(night).kind == "sent"
    day = new(store, 1, send_window=parse_window("09:00-10:00"))
    assert make().process(day).kind == "deferred"
    assert store.get(day).next_attempt_at == datetime(2026, 11, 28, 17, 0, tzinfo=timezone.utc)
    assert "its send window 09:00-10:00" in last(store, day)[2]  # type: ignore[operator]


def test_the_window_is_checked_again_after_the_pacing_pause(tmp_path: Path) -> None:
    for settings, store, clock, make in make_env(tmp_path, WAQ_WARMUP_CAPS="", WAQ_SEND_WINDOW="08:00-21:00",
                                                 WAQ_MIN_DELAY_S="25", WAQ_MAX_DELAY_S="40"):
        clock.now = datetime(2026, 11, 29, 4, 59, 40, tzinfo=timezone.utc)  # 20:59:40 PST: open, for 20 s
        delivery = make()
        first, second = new(store, 0), new(store, 1, phone=OTHER)
        assert delivery.process(first).kind == "sent"
        outcome = delivery.process(second)  # the pause of 25-40 s runs past 21:00
        assert outcome.kind == "deferred" and clock.now >= datetime(2026, 11, 29, 5, 0, tzinfo=timezone.utc)
        assert store.get(second).next_attempt_at == datetime(2026, 11, 29, 16, 0, tzinfo=timezone.utc)
        assert [e["ref"] for e in read_log(settings.fake_log)] == [first]


def test_a_window_that_never_opens_any_more_fails_for_an_operator(windowed: Env, caplog) -> None:  # noqa: ANN001
    """Refused at enqueue, such a window can still reach a worker (a zone's rules changed since): failed, not left
    waiting forever, and the admin is told."""
    settings, store, clock, make = windowed
    toll_free = "+18005550123"  # every US zone: 08:00-09:00 is never open in all of them at once
    mid = new(store, phone=toll_free, send_window=parse_window("08:00-09:00"))
    with pytest.raises(errors.SendWindowNeverOpen):
        send_window.check_opens(parse_window("08:00-09:00"), toll_free, T0)
    outcome = make().process(mid)
    assert outcome.kind == "failed"
    message = store.get(mid)
    assert message.status is MessageStatus.FAILED and message.last_error_class == "SendWindowNeverOpen"
    assert "message_failed" in caplog.text and read_log(settings.fake_log) == []

"""The warm-up ramp (wa_queue/warmup.py) and its settings, with the day passed in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from wa_queue.errors import ConfigError
from wa_queue.retry import local_midnight_utc
from wa_queue.settings import Settings
from wa_queue.warmup import DONE, NEW, OFF, RAMP, RESET, SKIP, SKIPPED, local_day, session_warmup, warmup_status

CAPS = (20, 40, 80, 150, 300)
FIRST = date(2026, 3, 1)


def day(n: int) -> date:
    """The n-th day of the ramp (1-based) of a session first sent on FIRST."""
    return FIRST + timedelta(days=n - 1)


def test_the_default_ramp_holds_each_cap_three_days_then_the_normal_cap() -> None:
    expected = [20] * 3 + [40] * 3 + [80] * 3 + [150] * 3 + [300] * 3
    got = [warmup_status(CAPS, 3, 300, FIRST, day(n)).cap for n in range(1, 16)]
    assert got == expected
    after = warmup_status(CAPS, 3, 300, FIRST, day(16))
    assert (after.state, after.cap, after.step, after.day_in_step, after.days_left) == (DONE, 300, None, None, 0)


def test_the_position_in_the_ramp_names_the_step_the_day_and_the_days_left() -> None:
    first = warmup_status(CAPS, 3, 300, FIRST, day(1))
    assert (first.state, first.step, first.steps, first.day_in_step, first.days_per_step, first.days_left) == (
        RAMP, 1, 5, 1, 3, 15)
    fifth = warmup_status(CAPS, 3, 300, FIRST, day(5))
    assert (fifth.cap, fifth.step, fifth.day_in_step, fifth.days_left) == (40, 2, 2, 11)
    last = warmup_status(CAPS, 3, 300, FIRST, day(15))
    assert (last.cap, last.step, last.day_in_step, last.days_left) == (300, 5, 3, 1)
    assert last.to_dict() == {"cap": 300, "state": "ramp", "step": 5, "steps": 5, "day_in_step": 3,
                              "days_per_step": 3, "days_left": 1, "first_send_day": "2026-03-01"}


def test_days_per_step_stretches_the_ramp() -> None:
    got = [warmup_status((5, 10), 2, 300, FIRST, day(n)).cap for n in range(1, 6)]
    assert got == [5, 5, 10, 10, 300]
    assert warmup_status((5, 10), 1, 300, FIRST, day(2)).cap == 10


def test_the_ramp_never_raises_the_cap_above_the_normal_daily_cap() -> None:
    assert [warmup_status(CAPS, 3, 100, FIRST, day(n)).cap for n in (1, 4, 7, 10, 13, 16)] == [20, 40, 80, 100,
                                                                                               100, 100]
    assert warmup_status(CAPS, 3, 10, FIRST, day(1)).cap == 10


def test_a_session_that_never_sent_gets_the_first_cap_and_the_whole_ramp_ahead() -> None:
    status = warmup_status(CAPS, 3, 300, None, day(40))
    assert (status.state, status.cap, status.step, status.day_in_step, status.days_left) == (NEW, 20, 1, 1, 15)
    assert status.to_dict()["first_send_day"] is None


def test_empty_caps_turn_the_ramp_off_and_skip_gives_the_normal_cap_at_once() -> None:
    off = warmup_status((), 3, 300, None, day(1))
    assert (off.state, off.cap, off.steps, off.days_left) == (OFF, 300, 0, 0)
    skipped = warmup_status(CAPS, 3, 300, FIRST, day(1), skipped=True)
    assert (skipped.state, skipped.cap, skipped.step) == (SKIPPED, 300, None)


def test_a_first_send_day_after_today_counts_as_the_first_day() -> None:
    status = warmup_status(CAPS, 3, 300, day(10), day(1))
    assert (status.state, status.cap, status.step, status.day_in_step) == (RAMP, 20, 1, 1)


def test_reset_and_skip_are_writes_of_the_session_record() -> None:
    record = {"first_send_day": day(1), "warmup_skipped": False}
    assert warmup_status(CAPS, 3, 300, record["first_send_day"], day(8),
                         skipped=record["warmup_skipped"]).cap == 80
    record.update(SKIP)
    assert warmup_status(CAPS, 3, 300, record["first_send_day"], day(8), skipped=record["warmup_skipped"]).state \
        == SKIPPED
    record.update(RESET)
    reset = warmup_status(CAPS, 3, 300, record["first_send_day"], day(8), skipped=record["warmup_skipped"])
    assert (reset.state, reset.cap) == (NEW, 20)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        warmup_status(CAPS, 0, 300, FIRST, day(1))
    with pytest.raises(ValueError):
        warmup_status((20, 0), 3, 300, FIRST, day(1))
    with pytest.raises(ValueError):
        local_day(datetime(2026, 3, 1, 12, 0), ZoneInfo("UTC"))


def test_the_ramp_day_is_the_daily_cap_day_in_waq_timezone() -> None:
    """The ramp moves on at WAQ_TIMEZONE's midnight, the instant the daily cap's count restarts, DST included."""
    settings = Settings.from_env({"WAQ_TIMEZONE": "America/New_York"})
    zone = settings.zone
    # 2026-03-03 23:30 EST is 2026-03-04 04:30 UTC: still day 3 of the ramp in New York.
    assert session_warmup(settings, FIRST, datetime(2026, 3, 4, 4, 30, tzinfo=UTC)).cap == 20
    assert session_warmup(settings, FIRST, datetime(2026, 3, 4, 5, 0, tzinfo=UTC)).cap == 40
    # Across the spring-forward night (2026-03-08) every instant's day is the daily cap's day.
    instant = datetime(2026, 3, 7, 0, 0, tzinfo=UTC)
    while instant < datetime(2026, 3, 10, tzinfo=UTC):
        assert local_day(instant, zone) == local_midnight_utc(instant, zone).astimezone(zone).date()
        instant += timedelta(minutes=20)
    # 2026-03-09 00:00 EDT is 04:00 UTC (it was 05:00 UTC before the change): day 9 starts then.
    before = session_warmup(settings, FIRST, datetime(2026, 3, 9, 3, 59, tzinfo=UTC))
    assert (before.cap, before.step, before.day_in_step) == (80, 3, 2)
    after = session_warmup(settings, FIRST, datetime(2026, 3, 9, 4, 0, tzinfo=UTC))
    assert (after.cap, after.step, after.day_in_step) == (80, 3, 3)
    assert session_warmup(settings, FIRST, datetime(2026, 3, 10, 4, 0, tzinfo=UTC)).cap == 150


def test_settings_read_the_ramp_and_refuse_bad_values() -> None:
    defaults = Settings.from_env({})
    assert (defaults.warmup_caps, defaults.warmup_days_per_step, defaults.max_per_recipient_per_day) == (
        CAPS, 3, 0)
    custom = Settings.from_env({"WAQ_WARMUP_CAPS": " 5, 10 ,50", "WAQ_WARMUP_DAYS_PER_STEP": "2",
                                "WAQ_MAX_PER_RECIPIENT_PER_DAY": "2"})
    assert (custom.warmup_caps, custom.warmup_days_per_step, custom.max_per_recipient_per_day) == ((5, 10, 50), 2, 2)
    assert Settings.from_env({"WAQ_WARMUP_CAPS": ""}).warmup_caps == ()
    assert session_warmup(Settings.from_env({"WAQ_WARMUP_CAPS": ""}), None, datetime.now(UTC)).state == OFF
    for env, var in (({"WAQ_WARMUP_CAPS": "20,forty"}, "WAQ_WARMUP_CAPS"),
                     ({"WAQ_WARMUP_CAPS": "20,0"}, "WAQ_WARMUP_CAPS"),
                     ({"WAQ_WARMUP_DAYS_PER_STEP": "0"}, "WAQ_WARMUP_DAYS_PER_STEP"),
                     ({"WAQ_WARMUP_DAYS_PER_STEP": "1.5"}, "WAQ_WARMUP_DAYS_PER_STEP"),
                     ({"WAQ_MAX_PER_RECIPIENT_PER_DAY": "-1"}, "WAQ_MAX_PER_RECIPIENT_PER_DAY")):
        with pytest.raises(ConfigError, match=var):
            Settings.from_env(env)

"""Quiet hours in the recipient's time zone and the recipient's local day (wa_queue/send_window.py), with the instant
passed in. Expected instants are worked out by hand from the zones' offsets (in the comments)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import pytest

from wa_queue.errors import ConfigError, SendWindowNeverOpen, ValidationError
from wa_queue.retry import local_midnight_utc
from wa_queue.send_window import (
    SendWindow,
    is_open,
    next_open,
    parse_window,
    recipient_day_start,
    recipient_local_date,
    recipient_next_day_start,
    recipient_zones,
)
from wa_queue.settings import Settings
from wa_queue.validation import validate_send_window

NEW_YORK = "+12125550123"
PARIS = "+33612345678"
RUSSIA_MOBILE = "+79161234567"  # 16 zones, Europe/Bucharest (UTC+2) to Asia/Kamchatka (UTC+12)
AUSTRALIA_MOBILE = "+61412345678"  # 8 zones, with Lord Howe's half-hour DST
PERTH_OR_ADELAIDE = "+61891234567"
US_TOLL_FREE = "+18005550123"  # no area: every zone of +1, Pacific/Guam (UTC+10) to Pacific/Pago_Pago (UTC-11)
DAY = {"start": "08:00", "end": "21:00"}


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def window(text: str) -> SendWindow:
    return parse_window(text)


def test_windows_parse_from_an_object_or_text_and_say_what_is_wrong() -> None:
    assert parse_window(DAY) == SendWindow(time(8, 0), time(21, 0)) == parse_window(" 08:00 - 21:00 ")
    assert parse_window(DAY).to_dict() == DAY and str(parse_window(DAY)) == "08:00-21:00"
    assert validate_send_window(None) is None
    assert validate_send_window("22:00-06:00").wraps
    bad = [({"start": "8:00", "end": "21:00"}, "start must be a 24-hour time"),
           ({"start": "08:00", "end": "24:00"}, "end must be a 24-hour time"),
           ({"start": "08:60", "end": "21:00"}, "start must be"),
           ({"start": 8, "end": "21:00"}, "start must be"),
           ({"start": "08:00"}, "needs both start and end"),
           ({"start": "08:00", "end": "21:00", "tz": "UTC"}, "takes only start and end, not tz"),
           ("08:00", "must be HH:MM-HH:MM"),
           ("", "must be HH:MM-HH:MM"),
           (["08:00", "21:00"], "must be an object")]
    for raw, reason in bad:
        with pytest.raises(ValidationError) as caught:
            validate_send_window(raw)
        assert caught.value.field == "send_window"
        assert str(caught.value).startswith("send_window ") and reason in str(caught.value), raw


def test_a_start_equal_to_its_end_is_the_whole_day() -> None:
    """Not refused: every written window means something (a schema cannot say two fields must differ), and a window
    that runs from a time round to the same time is open throughout, as a wrapping one runs past midnight."""
    whole_day = window("09:30-09:30")
    assert not whole_day.wraps and str(whole_day) == "09:30-09:30"
    assert all(whole_day.contains(time(h, m)) for h in range(24) for m in (0, 29, 30, 59))
    assert validate_send_window({"start": "00:00", "end": "00:00"}, phone="+14155550123").to_dict() == {
        "start": "00:00", "end": "00:00"}


def test_start_is_inside_end_is_outside_and_a_later_start_wraps_past_midnight() -> None:
    day, night = window("08:00-21:00"), window("22:00-06:00")
    assert [day.contains(time(*t)) for t in ((7, 59, 59), (8, 0), (20, 59, 59), (21, 0), (0, 0))] == [
        False, True, True, False, False]
    assert [night.contains(time(*t)) for t in ((21, 59, 59), (22, 0), (23, 59), (0, 0), (5, 59, 59), (6, 0),
                                               (12, 0))] == [False, True, True, True, True, False, False]


def test_a_wrapping_window_in_paris() -> None:
    night = window("22:00-06:00")
    # January: Paris is UTC+1, so the window is 21:00-05:00 UTC.
    assert next_open(night, PARIS, at(2026, 1, 15, 12, 0)) == at(2026, 1, 15, 21, 0)
    assert is_open(night, PARIS, at(2026, 1, 16, 4, 59))
    assert not is_open(night, PARIS, at(2026, 1, 16, 5, 0))
    assert next_open(night, PARIS, at(2026, 1, 16, 4, 59)) == at(2026, 1, 16, 4, 59)
    # July: UTC+2, 20:00-04:00 UTC.
    assert next_open(night, PARIS, at(2026, 7, 15, 12, 0)) == at(2026, 7, 15, 20, 0)


def test_a_us_number_across_the_march_change() -> None:
    day = window("08:00-21:00")
    # 2026-03-06 22:00 EST: the next 08:00 is EST (UTC-5), 13:00 UTC.
    assert next_open(day, NEW_YORK, at(2026, 3, 7, 3, 0)) == at(2026, 3, 7, 13, 0)
    # 2026-03-07 22:00 EST: clocks move to EDT at 02:00, so the next 08:00 is 12:00 UTC, an hour earlier.
    assert next_open(day, NEW_YORK, at(2026, 3, 8, 3, 0)) == at(2026, 3, 8, 12, 0)
    assert not is_open(day, NEW_YORK, at(2026, 3, 7, 12, 30)) and is_open(day, NEW_YORK, at(2026, 3, 8, 12, 30))
    # 21:00 EDT is 01:00 UTC: 00:59 UTC is still inside.
    assert is_open(day, NEW_YORK, at(2026, 3, 9, 0, 59)) and not is_open(day, NEW_YORK, at(2026, 3, 9, 1, 0))


def test_a_window_starting_in_the_missing_hour_opens_at_the_jump() -> None:
    # 2026-03-08 in New York: 01:59:59 EST (06:59:59 UTC) is followed by 03:00 EDT (07:00 UTC); 02:30 never happens.
    early = window("02:30-05:00")
    assert next_open(early, NEW_YORK, at(2026, 3, 8, 6, 0)) == at(2026, 3, 8, 7, 0)
    assert not is_open(early, NEW_YORK, at(2026, 3, 8, 6, 59, 59))


def test_the_repeated_hour_of_the_november_change_counts_by_its_wall_time() -> None:
    # 2026-11-01 in New York: 01:00-01:59 EDT (05:00-05:59 UTC), then 01:00-01:59 EST again (06:00-06:59 UTC).
    half = window("01:30-02:00")
    assert next_open(half, NEW_YORK, at(2026, 11, 1, 5, 0)) == at(2026, 11, 1, 5, 30)
    assert next_open(half, NEW_YORK, at(2026, 11, 1, 6, 0)) == at(2026, 11, 1, 6, 30)
    # A window ending at 01:30 closes at 05:30 UTC and opens again when the clock falls back to 01:00 (06:00 UTC).
    late = window("22:00-01:30")
    assert not is_open(late, NEW_YORK, at(2026, 11, 1, 5, 45))
    assert next_open(late, NEW_YORK, at(2026, 11, 1, 5, 45)) == at(2026, 11, 1, 6, 0)


def test_a_number_with_several_zones_is_sent_to_only_when_every_zone_is_inside() -> None:
    names = {str(zone) for zone in recipient_zones(RUSSIA_MOBILE)}
    assert {"Europe/Bucharest", "Europe/Moscow", "Asia/Kamchatka"} <= names and len(names) == 16
    day = window("08:00-21:00")
    # January: Bucharest (UTC+2) is inside 06:00-19:00 UTC, Kamchatka (UTC+12) 20:00-09:00 UTC: together 06-09 UTC.
    assert next_open(day, RUSSIA_MOBILE, at(2026, 1, 15, 12, 0)) == at(2026, 1, 16, 6, 0)
    assert is_open(day, RUSSIA_MOBILE, at(2026, 1, 16, 8, 59)) and not is_open(day, RUSSIA_MOBILE, at(2026, 1, 16, 9))
    assert not is_open(day, RUSSIA_MOBILE, at(2026, 1, 16, 5, 59))
    # Moscow alone (one zone) would have been open at 12:00 UTC (15:00).
    assert is_open(day, "+74951234567", at(2026, 1, 15, 12, 0))
    assert len(recipient_zones(AUSTRALIA_MOBILE)) == 8 and len(recipient_zones(US_TOLL_FREE)) == 42


def test_zones_that_part_at_a_dst_change_both_count() -> None:
    # +1 928 283: Denver and Phoenix, both UTC-7 until Denver moves to UTC-6 on 2026-03-08 (09:00 UTC). After that,
    # 08:00 in Phoenix (15:00 UTC) comes an hour after 08:00 in Denver, and Phoenix decides.
    flagstaff = "+19282831234"
    assert [str(zone) for zone in recipient_zones(flagstaff)] == ["America/Denver", "America/Phoenix"]
    day = window("08:00-21:00")
    assert next_open(day, flagstaff, at(2026, 3, 7, 4, 0)) == at(2026, 3, 7, 15, 0)
    assert next_open(day, flagstaff, at(2026, 3, 8, 4, 0)) == at(2026, 3, 8, 15, 0)
    # 21:00 MDT is 03:00 UTC: Denver closes an hour before Phoenix.
    assert is_open(day, flagstaff, at(2026, 3, 9, 2, 59)) and not is_open(day, flagstaff, at(2026, 3, 9, 3, 30))


def test_a_window_never_open_in_every_zone_is_refused_when_enqueued() -> None:
    now = at(2026, 1, 15, 12, 0)
    # Bucharest 07:00-16:00 UTC and Kamchatka 21:00-06:00 UTC never meet.
    with pytest.raises(SendWindowNeverOpen) as caught:
        next_open(window("09:00-18:00"), RUSSIA_MOBILE, now)
    assert "Asia/Kamchatka" in str(caught.value) and caught.value.field == "send_window"
    with pytest.raises(SendWindowNeverOpen):
        validate_send_window({"start": "12:00", "end": "13:00"}, phone=US_TOLL_FREE, now=now)
    with pytest.raises(ValidationError):  # what every front door catches
        validate_send_window({"start": "12:00", "end": "13:00"}, phone=US_TOLL_FREE, now=now)
    # The same window for a number with one zone, and a wide one for the toll-free number, are accepted.
    assert validate_send_window({"start": "12:00", "end": "13:00"}, phone=NEW_YORK, now=now) is not None
    assert validate_send_window(DAY, phone=US_TOLL_FREE, now=now) == window("08:00-21:00")


def test_a_window_that_opens_only_after_a_dst_change_within_a_week_is_accepted() -> None:
    # 09:00-19:00 for the Russian mobile: Kamchatka (UTC+12) is inside until 07:00 UTC; Bucharest from 07:00 UTC in
    # winter (UTC+2), from 06:00 UTC once it moves to UTC+3 (2026-03-29 01:00 UTC). Moscow (UTC+3) opens at 06:00.
    ten_hours = window("09:00-19:00")
    assert next_open(ten_hours, RUSSIA_MOBILE, at(2026, 3, 25, 12, 0)) == at(2026, 3, 29, 6, 0)
    assert validate_send_window("09:00-19:00", phone=RUSSIA_MOBILE, now=at(2026, 3, 22, 12, 0)) == ten_hours
    with pytest.raises(SendWindowNeverOpen):  # the change is more than a week away
        validate_send_window("09:00-19:00", phone=RUSSIA_MOBILE, now=at(2026, 3, 20, 12, 0))


def test_unknown_zones_fall_back_to_the_prefix_then_utc() -> None:
    # +1 555 555 0123 is no valid number: phonenumbers says Etc/Unknown; the +1 prefix's zones stand in.
    assert {str(zone) for zone in recipient_zones("+15555550123")} == {str(zone) for zone in
                                                                       recipient_zones(US_TOLL_FREE)}
    # International freephone (+800) has no zone at all: UTC.
    assert [str(zone) for zone in recipient_zones("+80012345678")] == ["UTC"]
    assert next_open(window("08:00-21:00"), "+80012345678", at(2026, 1, 15, 22, 0)) == at(2026, 1, 16, 8, 0)
    with pytest.raises(ValidationError):
        recipient_zones("12125550123")


def test_times_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError):
        is_open(window("08:00-21:00"), NEW_YORK, datetime(2026, 1, 15, 12, 0))
    with pytest.raises(ValueError):
        recipient_day_start(NEW_YORK, datetime(2026, 1, 15, 12, 0))
    assert is_open(None, NEW_YORK, at(2026, 1, 15, 3, 0)) and next_open(None, NEW_YORK, at(2026, 1, 15, 3)) == at(
        2026, 1, 15, 3)


def _scan(win: SendWindow, phone: str, now: datetime, span: timedelta) -> datetime | None:
    """The first open instant by brute force: now, then every whole minute (offsets and windows are whole minutes)."""
    if is_open(win, phone, now):
        return now
    instant = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    while instant <= now + span:
        if is_open(win, phone, instant):
            return instant
        instant += timedelta(minutes=1)
    return None


def test_next_open_agrees_with_a_minute_by_minute_scan_around_dst_changes() -> None:
    phones = [NEW_YORK, PARIS, RUSSIA_MOBILE, AUSTRALIA_MOBILE, PERTH_OR_ADELAIDE, "+5511987654321", US_TOLL_FREE]
    # US, EU and Australian (Lord Howe moves by 30 minutes) changes of 2026.
    changes = [at(2026, 3, 8), at(2026, 11, 1), at(2026, 3, 29), at(2026, 10, 25), at(2026, 4, 5), at(2026, 10, 4)]
    span = timedelta(days=2)
    rng = random.Random(16)
    for _ in range(40):
        start, length = rng.randrange(0, 24 * 60, 15), rng.randrange(15, 23 * 60, 15)
        end = (start + length) % (24 * 60)
        win = SendWindow(time(start // 60, start % 60), time(end // 60, end % 60))
        phone = rng.choice(phones)
        now = rng.choice(changes) + timedelta(seconds=rng.randrange(-36 * 3600, 36 * 3600))
        expected = _scan(win, phone, now, span)
        try:
            got: datetime | None = next_open(win, phone, now)
        except SendWindowNeverOpen:
            got = None
        if expected is not None:
            assert got == expected, (str(win), phone, now)
        else:
            assert got is None or got > now + span, (str(win), phone, now)


def test_next_open_agrees_with_the_scan_for_the_42_zones_of_a_toll_free_number_across_the_us_changes() -> None:
    # Its zones share offsets before a change and part after it (New York and Jamaica are both UTC-5 in winter).
    rng = random.Random(1600)
    for _ in range(12):
        start, length = rng.randrange(0, 24 * 60, 30), rng.randrange(14 * 60, 23 * 60, 30)
        end = (start + length) % (24 * 60)
        win = SendWindow(time(start // 60, start % 60), time(end // 60, end % 60))
        now = rng.choice([at(2026, 3, 8), at(2026, 11, 1)]) + timedelta(seconds=rng.randrange(0, 12 * 3600))
        expected = _scan(win, US_TOLL_FREE, now, timedelta(days=1))
        try:
            got: datetime | None = next_open(win, US_TOLL_FREE, now)
        except SendWindowNeverOpen:
            got = None
        assert got == expected or expected is None and (got is None or got > now + timedelta(days=1)), (
            str(win), now)


def test_the_recipients_day_is_their_local_day() -> None:
    # New York, 2026-03-08: the day began at midnight EST (05:00 UTC); the next at midnight EDT (04:00 UTC).
    assert recipient_day_start(NEW_YORK, at(2026, 3, 8, 12, 0)) == at(2026, 3, 8, 5, 0)
    assert recipient_next_day_start(NEW_YORK, at(2026, 3, 8, 12, 0)) == at(2026, 3, 9, 4, 0)
    assert recipient_local_date(NEW_YORK, at(2026, 3, 8, 3, 0)).isoformat() == "2026-03-07"
    # Adelaide (UTC+10:30 in January) began 2026-01-15 at 13:30 UTC on the 14th, Perth (UTC+8) at 16:00 UTC: the
    # earlier one counts, and the day moves on when Adelaide's next midnight passes.
    assert recipient_day_start(PERTH_OR_ADELAIDE, at(2026, 1, 15, 12, 0)) == at(2026, 1, 14, 13, 30)
    assert recipient_next_day_start(PERTH_OR_ADELAIDE, at(2026, 1, 15, 12, 0)) == at(2026, 1, 15, 13, 30)


def test_the_recipients_day_covers_the_calendar_day_of_every_zone() -> None:
    for phone in (NEW_YORK, PERTH_OR_ADELAIDE, AUSTRALIA_MOBILE, RUSSIA_MOBILE, US_TOLL_FREE):
        zones = recipient_zones(phone)
        instant = at(2026, 3, 6, 0, 0)
        while instant < at(2026, 3, 10):
            start = recipient_day_start(phone, instant)
            midnights = [local_midnight_utc(instant, zone) for zone in zones]
            assert start == min(midnights) and all(start <= m <= instant for m in midnights)
            following = recipient_next_day_start(phone, instant)
            assert following > instant
            assert recipient_day_start(phone, following) > start
            assert recipient_day_start(phone, following - timedelta(seconds=1)) == start
            instant += timedelta(minutes=97)


def test_the_default_window_setting() -> None:
    assert Settings.from_env({}).send_window is None
    assert Settings.from_env({"WAQ_SEND_WINDOW": ""}).send_window is None
    assert Settings.from_env({"WAQ_SEND_WINDOW": "22:00-06:00"}).send_window == window("22:00-06:00")
    assert Settings.from_env({"WAQ_SEND_WINDOW": "08:00-08:00"}).send_window.contains(time(3, 0))  # all day
    for raw in ("08:00", "8:00-21:00", "08:00-24:00"):
        with pytest.raises(ConfigError, match="WAQ_SEND_WINDOW"):
            Settings.from_env({"WAQ_SEND_WINDOW": raw})


"""The rules of send_at, expires_at / ttl_s, priority and batch (wa_queue/validation.py), the same for every door."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wa_queue.errors import TimeConflict, ValidationError
from wa_queue.models import Priority
from wa_queue.validation import (
    DATETIME_PATTERN,
    MAX_TTL_S,
    parse_datetime,
    validate_batch,
    validate_expiry,
    validate_priority,
    validate_send_at,
    whole,
)

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2026-12-24T09:30:00+01:00", "2026-12-24T08:30:00Z", "2026-12-24T08:30:00.5Z",
                                  "2026-12-24T03:30:00-05:00"])
def test_a_time_with_an_offset_is_read_as_utc(text: str) -> None:
    assert parse_datetime(text, "send_at") in (datetime(2026, 12, 24, 8, 30, tzinfo=UTC),
                                               datetime(2026, 12, 24, 8, 30, 0, 500000, tzinfo=UTC))
    assert whole(DATETIME_PATTERN).match(text)


@pytest.mark.parametrize("text", ["2026-12-24T09:30:00", "2026-12-24 09:30:00Z", "2026-12-24T09:30Z", "tomorrow",
                                  "2026-13-01T00:00:00Z", "2026-12-24T24:00:00Z", "2026-12-24T23:59:60Z", 1767000000])
def test_anything_else_is_refused_naming_the_field(text: object) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_datetime(text, "send_at")
    assert caught.value.field == "send_at" and not isinstance(caught.value, TimeConflict)


def test_a_day_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValidationError, match="exists"):
        parse_datetime("2026-02-30T00:00:00Z", "expires_at")


def test_a_python_datetime_needs_its_offset() -> None:
    assert parse_datetime(datetime(2026, 12, 24, 9, 30, tzinfo=UTC), "send_at") == datetime(2026, 12, 24, 9, 30,
                                                                                           tzinfo=UTC)
    with pytest.raises(ValidationError, match="offset"):
        parse_datetime(datetime(2026, 12, 24, 9, 30), "send_at")


def test_send_at_within_the_horizon_and_a_past_one_means_now() -> None:
    assert validate_send_at(None, NOW, 35) is None
    assert validate_send_at((NOW + timedelta(days=35)).isoformat(), NOW, 35) == NOW + timedelta(days=35)
    assert validate_send_at("2001-01-01T00:00:00Z", NOW, 35) == datetime(2001, 1, 1, tzinfo=UTC)
    with pytest.raises(TimeConflict, match="WAQ_MAX_SCHEDULE_DAYS"):
        validate_send_at((NOW + timedelta(days=35, seconds=1)).isoformat(), NOW, 35)
    with pytest.raises(TimeConflict):  # past year 9999 in UTC: a conflict with the calendar, not a malformed time
        validate_send_at("9999-12-31T23:00:00-05:00", NOW, 35)


def test_expiry_from_a_time_a_ttl_or_the_default_the_earlier_of_two() -> None:
    later = NOW + timedelta(hours=1)
    assert validate_expiry(None, None, NOW, None) is None
    assert validate_expiry(later.isoformat(), None, NOW, None) == later
    assert validate_expiry(None, 300, NOW, None) == NOW + timedelta(seconds=300)
    assert validate_expiry(later.isoformat(), 300, NOW, None) == NOW + timedelta(seconds=300)
    assert validate_expiry(None, None, NOW, None, default_ttl_s=600) == NOW + timedelta(seconds=600)
    assert validate_expiry(later.isoformat(), None, NOW, None, default_ttl_s=60) == later  # given beats default


@pytest.mark.parametrize("ttl", [0, -1, MAX_TTL_S + 1, 1.5, True, "60"])
def test_a_ttl_is_whole_seconds_within_bounds(ttl: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_expiry(None, ttl, NOW, None)
    assert caught.value.field == "ttl_s" and not isinstance(caught.value, TimeConflict)


def test_an_expiry_past_or_before_send_at_is_a_conflict() -> None:
    with pytest.raises(TimeConflict) as caught:
        validate_expiry(NOW.isoformat(), None, NOW, None)
    assert caught.value.field == "expires_at"
    with pytest.raises(TimeConflict) as caught:
        validate_expiry(None, 60, NOW, NOW + timedelta(minutes=5))
    assert caught.value.field == "ttl_s"
    with pytest.raises(TimeConflict) as caught:
        validate_expiry(None, None, NOW, NOW + timedelta(minutes=5), default_ttl_s=60)
    assert caught.value.field == "send_at"


def test_priority_and_batch() -> None:
    assert validate_priority(None) is Priority.NORMAL
    assert validate_priority("high") is Priority.HIGH
    for bad in ("urgent", "HIGH", 1, ""):
        with pytest.raises(ValidationError, match="high, normal, low"):
            validate_priority(bad)
    assert validate_batch(None) is None and validate_batch("reminders-12.24_a") == "reminders-12.24_a"
    for bad in ("", "-x", "a/b", "a b", "x" * 65, 7):
        with pytest.raises(ValidationError) as caught:
            validate_batch(bad)
        assert caught.value.field == "batch"


def test_the_content_hash_takes_the_expiry_as_asked_not_as_computed() -> None:
    from wa_queue.models import NewMessage

    def asked(expires_at: datetime | None, expiry: dict | None) -> str:
        return NewMessage(phone="+14155550100", text="hi", expires_at=expires_at, expiry_asked=expiry).content_hash()

    later = NOW + timedelta(hours=1)
    # ttl_s or WAQ_DEFAULT_TTL_S: computed from each try's now, so not the content; the ttl_s asked for is.
    assert asked(NOW + timedelta(seconds=30), {"ttl_s": 30}) == asked(NOW + timedelta(seconds=31), {"ttl_s": 30})
    assert asked(NOW + timedelta(seconds=30), {"ttl_s": 30}) != asked(NOW + timedelta(seconds=30), {"ttl_s": 31})
    assert asked(NOW + timedelta(seconds=600), {}) == asked(None, None)  # the default's: no expiry asked for
    # An expires_at given hashes as it always did (code-built or asked): stored hashes stay valid.
    assert asked(later, {"expires_at": later.isoformat()}) == asked(later, None)

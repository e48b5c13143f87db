from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from wa_queue import errors
from wa_queue.errors import ConfigError
from wa_queue.retry import (
    Decision,
    classify,
    local_midnight_utc,
    next_local_midnight_utc,
    next_retry_delay,
    total_schedule_s,
)
from wa_queue.setting_values import parse_duration
from wa_queue.settings import Settings

DEFAULT = Settings.from_env({})


def test_default_schedule_is_first_attempt_plus_five_retries() -> None:
    delays = DEFAULT.retry_delays
    assert [next_retry_delay(n, delays) for n in range(1, 6)] == [300, 900, 1800, 3600, 7200]
    assert next_retry_delay(6, delays) is None  # the 6th failed attempt fails the message
    assert total_schedule_s(delays) == 3 * 3600 + 50 * 60
    with pytest.raises(ValueError):
        next_retry_delay(0, delays)


@pytest.mark.parametrize(
    ("exc", "decision"),
    [
        (errors.TransientSendError("x"), Decision.RETRY),
        (errors.SendOutcomeUnknown("x"), Decision.RETRY),
        (errors.InvalidNumber("x"), Decision.FAIL),
        (errors.PermanentSendError("x"), Decision.FAIL),
        (errors.SessionUnavailable("x"), Decision.RELEASE),
        (errors.SessionLoggedOut("x"), Decision.RELEASE),
        (RuntimeError("unexpected"), Decision.RETRY),
    ],
)
def test_classification_reads_the_class(exc: Exception, decision: Decision) -> None:
    assert classify(exc) is decision


def test_daily_cap_resets_at_local_midnight() -> None:
    zone = ZoneInfo("Asia/Kolkata")  # UTC+5:30
    now = datetime(2026, 11, 28, 20, 0, tzinfo=timezone.utc)  # 01:30 local on the 29th
    assert local_midnight_utc(now, zone) == datetime(2026, 11, 28, 18, 30, tzinfo=timezone.utc)
    assert next_local_midnight_utc(now, zone) == datetime(2026, 11, 29, 18, 30, tzinfo=timezone.utc)


def test_settings_defaults_match_the_design() -> None:
    assert (DEFAULT.min_delay_s, DEFAULT.max_delay_s, DEFAULT.max_daily_per_session) == (25, 40, 300)
    assert DEFAULT.sessions == ("primary", "secondary")
    assert DEFAULT.store_url.startswith("sqlite:///") and DEFAULT.store_url.endswith("waq.db")
    assert DEFAULT.archive_after_days == 30


def test_settings_parse_units_lists_and_keys() -> None:
    s = Settings.from_env({
        "WAQ_RETRY_DELAYS": "1s,1s,2s,2s,3s", "WAQ_MIN_DELAY_S": "0.5", "WAQ_MAX_DELAY_S": "1.5",
        "WAQ_SESSIONS": "a, b", "WAQ_API_KEYS": "ops:admin:0123456789abcdef0123", "WAQ_HEADLESS": "no",
    })
    assert s.retry_delays == (1, 1, 2, 2, 3)
    assert (s.min_delay_s, s.max_delay_s, s.sessions, s.headless) == (0.5, 1.5, ("a", "b"), False)
    assert s.api_keys[0].role == "admin"
    assert parse_duration("2h") == 7200 and parse_duration("5m") == 300 and parse_duration("0.25s") == 0.25


@pytest.mark.parametrize(
    ("var", "value", "named"),
    [
        ("WAQ_MIN_DELAY_S", "soon", "WAQ_MIN_DELAY_S"),
        ("WAQ_MAX_DAILY_PER_SESSION", "0", "WAQ_MAX_DAILY_PER_SESSION"),
        ("WAQ_RETRY_DELAYS", "5 minutes", "WAQ_RETRY_DELAYS"),
        ("WAQ_TIMEZONE", "Mars/Olympus", "WAQ_TIMEZONE"),
        ("WAQ_STORE_URL", "postgres://x", "WAQ_STORE_URL"),
        ("WAQ_TRANSPORT", "carrier-pigeon", "WAQ_TRANSPORT"),
        ("WAQ_SESSIONS", "Primary Session", "WAQ_SESSIONS"),
        ("WAQ_API_KEYS", "ops:root:0123456789abcdef", "WAQ_API_KEYS"),
        ("WAQ_API_KEYS", "ops:admin:short", "WAQ_API_KEYS"),
        ("WAQ_HEADLESS", "maybe", "WAQ_HEADLESS"),
        ("WAQ_HEALTH_FAILED_WINDOW_S", "0", "WAQ_HEALTH_FAILED_WINDOW_S"),
    ],
)
def test_bad_settings_name_the_variable(var: str, value: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env({var: value})


def test_max_below_min_is_refused() -> None:
    with pytest.raises(ConfigError, match="WAQ_MAX_DELAY_S"):
        Settings.from_env({"WAQ_MIN_DELAY_S": "10", "WAQ_MAX_DELAY_S": "5"})


def test_message_ids_are_uuid7_sorted_by_creation_time() -> None:
    import time
    import uuid

    from wa_queue.models import new_message_id

    first = new_message_id()
    time.sleep(0.002)
    later = [new_message_id() for _ in range(100)]
    assert all(first < other for other in later)  # a later millisecond sorts later: inserts append to the index
    assert len(set(later)) == 100
    parsed = uuid.UUID(first)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122) and parsed.hex == first
    assert abs(int(first[:12], 16) / 1000 - time.time()) < 5  # the leading 48 bits are Unix milliseconds

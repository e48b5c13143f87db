"""The retry schedule and the error classification: pure functions."""

from __future__ import annotations

import enum
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from wa_queue import errors


class Decision(str, enum.Enum):
    RETRY = "retry"  # transient: try again after the next delay
    FAIL = "fail"  # permanent, or the retries are used up
    RELEASE = "release"  # the session cannot send: another session takes it, no attempt used


def classify(exc: BaseException) -> Decision:
    """The class decides, never the text. Unknown exceptions count as transient: retrying is the safe side."""
    if isinstance(exc, errors.SessionUnavailable):
        return Decision.RELEASE
    if isinstance(exc, errors.PermanentSendError | errors.OutcomeUnverified):
        return Decision.FAIL
    return Decision.RETRY


def next_retry_delay(failed_attempts: int, delays: tuple[float, ...]) -> float | None:
    """Seconds to wait after the `failed_attempts`-th failure (1-based), or None when retries are used up.

    With delays (5m, 15m, 30m, 1h, 2h): failure 1 -> 5m, ..., failure 5 -> 2h, failure 6 -> None (failed)."""
    if failed_attempts < 1:
        raise ValueError("failed_attempts starts at 1")
    if failed_attempts > len(delays):
        return None
    return delays[failed_attempts - 1]


def total_schedule_s(delays: tuple[float, ...]) -> float:
    return float(sum(delays))


def local_midnight_utc(now: datetime, zone: ZoneInfo) -> datetime:
    """The start of `now`'s local day in `zone`, as UTC: the daily cap counts sends since then."""
    local = now.astimezone(zone)
    start = datetime.combine(local.date(), time(0), tzinfo=zone)
    return start.astimezone(now.tzinfo)


def next_local_midnight_utc(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    start = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(now.tzinfo)

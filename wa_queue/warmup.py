"""The warm-up ramp of a new session's daily cap: a pure function of the settings, the session's record and the day.

A new number that sends 300 messages on its first day is the classic ban. From the day of its first send, a
session's daily cap follows WAQ_WARMUP_CAPS (default 20,40,80,150,300), each cap held WAQ_WARMUP_DAYS_PER_STEP days
(default 3); then WAQ_MAX_DAILY_PER_SESSION applies. The ramp never raises the cap above WAQ_MAX_DAILY_PER_SESSION.
An empty WAQ_WARMUP_CAPS turns the ramp off.

"A day" is the daily cap's day: the calendar date in WAQ_TIMEZONE (sends_since(session, local midnight) counts the
day's sends; local_day below gives its date).

What the session record holds (the store keeps it and sets it atomically; this module only reads it):
- first_send_day: the local day of the session's first send, or None (never sent, or reset). The store sets it on
  the first recorded send when it is None, and never moves it otherwise.
- warmup_skipped: True when an operator skipped the ramp (the normal cap applies at once).
Operator actions are writes of those fields (RESET and SKIP below): a reset starts the ramp again from the next send
(a number that was re-registered, or lost its reputation); a skip is for a number warmed up elsewhere.

States, with the cap for today:
- "off":     WAQ_WARMUP_CAPS is empty; the normal cap.
- "skipped": an operator skipped the ramp; the normal cap.
- "new":     never sent (or reset); the first step's cap, and the ramp starts the day of the first send.
- "ramp":    inside the ramp: step `step` of `steps`, day `day_in_step` of `days_per_step`; `days_left` days of
             the ramp remain, today included.
- "done":    past the ramp; the normal cap.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from wa_queue.settings import Settings

OFF, SKIPPED, NEW, RAMP, DONE = "off", "skipped", "new", "ramp", "done"
# The operator's actions, as the fields of the session record they write.
RESET: dict[str, Any] = {"first_send_day": None, "warmup_skipped": False}
SKIP: dict[str, Any] = {"warmup_skipped": True}


@dataclasses.dataclass(frozen=True)
class WarmupStatus:
    """Today's cap and where the session stands in the ramp (step and day_in_step are 1-based; None outside it)."""

    cap: int
    state: str  # OFF | SKIPPED | NEW | RAMP | DONE
    step: int | None
    steps: int
    day_in_step: int | None
    days_per_step: int
    days_left: int  # days of the ramp still to come, today included; 0 when the normal cap applies
    first_send_day: date | None

    def to_dict(self) -> dict[str, object]:
        """The form /health, /stats and the dashboard show (dates as ISO strings)."""
        fields = dataclasses.asdict(self)
        fields["first_send_day"] = self.first_send_day.isoformat() if self.first_send_day else None
        return fields


def local_day(now: datetime, zone: ZoneInfo) -> date:
    """The daily cap's day of the instant `now` (timezone-aware): its calendar date in `zone` (WAQ_TIMEZONE)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(zone).date()


def warmup_status(caps: tuple[int, ...], days_per_step: int, normal_cap: int, first_send_day: date | None,
                  today: date, *, skipped: bool = False) -> WarmupStatus:
    """Today's cap and ramp position for a session whose first send was on `first_send_day` (None: never)."""
    if days_per_step < 1:
        raise ValueError("days_per_step must be >= 1")
    if any(cap < 1 for cap in caps) or normal_cap < 1:
        raise ValueError("caps must be >= 1")
    steps = len(caps)
    ramp_days = steps * days_per_step

    def status(cap: int, state: str, step: int | None = None, day_in_step: int | None = None,
               days_left: int = 0) -> WarmupStatus:
        return WarmupStatus(cap=min(cap, normal_cap), state=state, step=step, steps=steps, day_in_step=day_in_step,
                            days_per_step=days_per_step, days_left=days_left, first_send_day=first_send_day)

    if not caps:
        return status(normal_cap, OFF)
    if skipped:
        return status(normal_cap, SKIPPED)
    if first_send_day is None:
        return status(caps[0], NEW, 1, 1, ramp_days)
    # A first-send day after today (the clock or WAQ_TIMEZONE moved back) counts as the ramp's first day: never a
    # larger cap than the record supports.
    elapsed = max(0, (today - first_send_day).days)
    if elapsed >= ramp_days:
        return status(normal_cap, DONE)
    index, day = divmod(elapsed, days_per_step)
    return status(caps[index], RAMP, index + 1, day + 1, ramp_days - elapsed)


def session_warmup(settings: Settings, first_send_day: date | None, now: datetime, *,
                   skipped: bool = False) -> WarmupStatus:
    """warmup_status with the settings' ramp and cap, for the local day (WAQ_TIMEZONE) of the instant `now`."""
    return warmup_status(settings.warmup_caps, settings.warmup_days_per_step, settings.max_daily_per_session,
                         first_send_day, local_day(now, settings.zone), skipped=skipped)

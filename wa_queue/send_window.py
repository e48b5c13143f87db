"""Quiet hours in the recipient's time zone, and the recipient's local day: pure functions of (window, phone, now).

The window. A daily span of local wall-clock time, start included, end excluded: 08:00-21:00 is open from 08:00:00
to 20:59:59. A start later than the end wraps past midnight: 22:00-06:00 is open from 22:00 to 05:59:59. A start
equal to the end is refused (it could mean "always" or "never"); no window at all means "any hour".

The recipient's zones. phonenumbers' time zone data for the number (time_zones_for_number). A number that maps to
several zones (a US toll-free number, a Russian or Australian mobile: the number does not say where its holder is)
may be sent to only at instants that are inside the window in EVERY one of its zones: whichever of them the
recipient is in, the message arrives inside the window. Where phonenumbers answers "Etc/Unknown", the zones of the
number's longest known prefix (down to its country calling code) stand in, else UTC (so for a country code it does
not know). A zone name the system's time zone database does not know is left out, for the same reason.

Wall time decides, zone by zone, at each instant: across a spring-forward gap a window that starts inside the
missing hour opens at the jump (the first instant whose wall time is past the start); across a fall-back the
repeated hour is inside or outside by its wall time, both times.

A window that never opens in the next HORIZON (e.g. 08:00-09:00 for a number spread over zones 5 hours apart) raises
SendWindowNeverOpen from next_open; the front doors call it when a message is enqueued (validation
.validate_send_window with the phone), so such a message is refused rather than left waiting forever.

The recipient's local day (for WAQ_MAX_PER_RECIPIENT_PER_DAY) is the recipient's, by the same zones: it starts at the
earliest of the local midnights of the number's zones, so the count covers every send of the recipient's current
day in whichever zone they are; with one zone it is that zone's calendar day. See recipient_day_start.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from wa_queue.errors import SendWindowNeverOpen, ValidationError
from wa_queue.retry import local_midnight_utc, next_local_midnight_utc

HORIZON = timedelta(days=7)  # next_open looks this far ahead before it calls a window one that never opens
_HH_MM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])\Z")
_SAMPLE = timedelta(hours=6)  # offsets are compared this far apart to find a zone's transitions (none are closer)
_UTC = ZoneInfo("UTC")


@dataclasses.dataclass(frozen=True)
class SendWindow:
    """A daily span of local wall-clock time: [start, end), wrapping past midnight when start > end; a start equal to
    its end is the whole day (from that time to the same time the next day, as a wrapping window runs on)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        for part in (self.start, self.end):
            if part.tzinfo is not None or part.second or part.microsecond:
                raise ValueError("start and end are local HH:MM times")

    @property
    def wraps(self) -> bool:
        """True when the window runs past midnight (22:00-06:00)."""
        return self.start > self.end

    def contains(self, wall: time) -> bool:
        """Is the local wall-clock time `wall` (naive) inside the window?"""
        if self.start == self.end:
            return True
        if self.wraps:
            return wall >= self.start or wall < self.end
        return self.start <= wall < self.end

    def to_dict(self) -> dict[str, str]:
        """The REST API's and the store's form: {"start": "HH:MM", "end": "HH:MM"}."""
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M")}

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_hh_mm(text: object, what: str) -> time:
    """'08:00' -> time(8, 0). Two-digit 24-hour HH:MM only (00:00-23:59); ValueError naming `what` otherwise."""
    match = _HH_MM.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{what} must be a 24-hour time HH:MM (00:00-23:59), not {text!r}")
    return time(int(match.group(1)), int(match.group(2)))


def parse_window(raw: object) -> SendWindow:
    """{"start": "HH:MM", "end": "HH:MM"} (the REST API and the Python API) or "HH:MM-HH:MM" (WAQ_SEND_WINDOW, the
    CLI, a CSV cell) -> SendWindow. ValueError with a readable reason otherwise."""
    if isinstance(raw, SendWindow):
        return raw
    if isinstance(raw, str):
        start, sep, end = raw.strip().partition("-")
        if not sep:
            raise ValueError(f"must be HH:MM-HH:MM such as 08:00-21:00, not {raw!r}")
        return SendWindow(parse_hh_mm(start.strip(), "start"), parse_hh_mm(end.strip(), "end"))
    if isinstance(raw, dict):
        extra = sorted(str(key) for key in raw if key not in ("start", "end"))
        if extra:
            raise ValueError(f"takes only start and end, not {', '.join(extra)}")
        if "start" not in raw or "end" not in raw:
            raise ValueError('needs both start and end, e.g. {"start": "08:00", "end": "21:00"}')
        return SendWindow(parse_hh_mm(raw["start"], "start"), parse_hh_mm(raw["end"], "end"))
    raise ValueError('must be an object {"start": "HH:MM", "end": "HH:MM"} or a string HH:MM-HH:MM')


def parse_window_setting(raw: str) -> SendWindow | None:
    """WAQ_SEND_WINDOW: empty -> None (no default window), else "HH:MM-HH:MM"."""
    return parse_window(raw) if raw.strip() else None


@functools.lru_cache(maxsize=4096)
def recipient_zones(phone: str) -> tuple[ZoneInfo, ...]:
    """The time zones of a number in E.164 form (see the module's docstring for the rule), in phonenumbers' order."""
    if not phone.startswith("+"):
        raise ValidationError(f"phone {phone!r} is not a number in E.164 form (+ and the country code)", "phone")
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:  # a country code phonenumbers does not know: no zone is known
        return (_UTC,)
    names = pn_timezone.time_zones_for_number(number)
    if tuple(names) == (pn_timezone.UNKNOWN_TIMEZONE,):
        names = pn_timezone.time_zones_for_geographical_number(number)
    zones = []
    for name in names:
        if name == pn_timezone.UNKNOWN_TIMEZONE:
            continue
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones) or (_UTC,)


def is_open(window: SendWindow | None, phone: str, now: datetime) -> bool:
    """May a message with this window be sent to `phone` at the instant `now` (timezone-aware)?"""
    if window is None:
        return True
    return _open_in(window, recipient_zones(phone), _aware(now))


def next_open(window: SendWindow | None, phone: str, now: datetime) -> datetime:
    """The earliest instant >= now inside the window in every zone of `phone` (in now's tzinfo). Raises
    SendWindowNeverOpen when there is none within HORIZON."""
    now = _aware(now)
    zones = recipient_zones(phone)
    if window is None or _open_in(window, zones, now):
        return now
    until = now + HORIZON
    # The intersection can open only when one zone's wall clock enters the window: by reaching its start, or by a
    # jump (a DST transition) into it. Those instants are the only candidates.
    candidates: set[datetime] = set()
    for zone, transitions in _distinct(zones, now, until):
        candidates.update(_start_instants(window, zone, now, until))
        candidates.update(transitions)
    for instant in sorted(candidates):
        if now < instant <= until and _open_in(window, zones, instant):
            return instant.astimezone(now.tzinfo)
    names = ", ".join(str(zone) for zone in zones[:6]) + (f" and {len(zones) - 6} more" if len(zones) > 6 else "")
    raise SendWindowNeverOpen(
        f"send_window {window} is never open at once in every time zone of {phone} ({names}) within the next "
        f"{HORIZON.days} days: widen it, or send without a window", "send_window")


def check_opens(window: SendWindow | None, phone: str, now: datetime) -> None:
    """Raise SendWindowNeverOpen when the window never opens for `phone` (what an enqueue checks)."""
    next_open(window, phone, now)


def recipient_day_start(phone: str, now: datetime) -> datetime:
    """The start of the recipient's current local day: the earliest of the local midnights of the number's zones.
    A per-recipient daily count taken since then holds in every zone: no zone's calendar day sees more sends than
    the limit, since every earlier send of that day is after this instant."""
    now = _aware(now)
    return min(local_midnight_utc(now, zone) for zone in recipient_zones(phone))


def recipient_next_day_start(phone: str, now: datetime) -> datetime:
    """The instant recipient_day_start moves on: when every zone whose midnight is the current day start has passed
    its next midnight. A message over the recipient's limit waits until then (and is checked again: the count since
    the new start may still be at the limit when the zones' midnights are hours apart)."""
    now = _aware(now)
    zones = recipient_zones(phone)
    starts = {zone: local_midnight_utc(now, zone) for zone in zones}
    earliest = min(starts.values())
    return max(next_local_midnight_utc(now, zone) for zone, start in starts.items() if start == earliest)


def recipient_local_date(phone: str, now: datetime) -> date:
    """The calendar date of the recipient's current day: the local date, at recipient_day_start, of the zone that
    started it (the date a history entry names: "limit reached for <date>")."""
    now = _aware(now)
    zones = recipient_zones(phone)
    zone = min(zones, key=lambda z: local_midnight_utc(now, z))
    return now.astimezone(zone).date()


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (the wall clock of a zone is read from an instant)")
    return now


def _open_in(window: SendWindow, zones: tuple[ZoneInfo, ...], instant: datetime) -> bool:
    return all(window.contains(instant.astimezone(zone).time()) for zone in zones)


def _distinct(zones: tuple[ZoneInfo, ...], now: datetime, until: datetime) -> list[tuple[ZoneInfo, list[datetime]]]:
    """(zone, its transitions in (now, until]) for one zone per distinct offset history: many zones of a number
    share their rules over a week (a US toll-free number has 42 zones)."""
    seen: dict[tuple[object, ...], tuple[ZoneInfo, list[datetime]]] = {}
    for zone in zones:
        transitions = _transitions(zone, now, until)
        key = (now.astimezone(zone).utcoffset(), *((t, t.astimezone(zone).utcoffset()) for t in transitions))
        seen.setdefault(key, (zone, transitions))
    return list(seen.values())


def _start_instants(window: SendWindow, zone: ZoneInfo, now: datetime, until: datetime) -> list[datetime]:
    """Every instant in [now - 1 day, until + 1 day] whose wall time in `zone` is exactly the window's start (both
    readings of a repeated hour; none for a start inside a spring-forward gap: the transition covers that)."""
    found = []
    day = now.astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        wall = datetime.combine(day, window.start)
        for fold in (0, 1):
            instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
            if instant.astimezone(zone).replace(tzinfo=None) == wall:
                found.append(instant)
        day += timedelta(days=1)
    return found


def _transitions(zone: ZoneInfo, now: datetime, until: datetime) -> list[datetime]:
    """The instants in (now, until] where `zone`'s UTC offset changes (the first instant with the new offset)."""
    found = []
    lo = now.astimezone(UTC).replace(microsecond=0)
    end = (until + timedelta(seconds=1)).astimezone(UTC).replace(microsecond=0)
    lo_offset = lo.astimezone(zone).utcoffset()
    while lo < end:
        hi = min(lo + _SAMPLE, end)
        hi_offset = hi.astimezone(zone).utcoffset()
        if hi_offset != lo_offset:
            a, b = lo, hi  # a has the old offset, b the new one; both whole seconds: bisect to the second
            while b - a > timedelta(seconds=1):
                mid = a + timedelta(seconds=(b - a).total_seconds() // 2)
                if mid.astimezone(zone).utcoffset() == lo_offset:
                    a = mid
                else:
                    b = mid
            if now < b <= until:
                found.append(b)
        lo, lo_offset = hi, hi_offset
    return found

"""The time a message row shows, read from its bubble's data-pre-plain-text ("[12:19, 10/05/2026] Name: ").

The page writes the time in its own locale: 12- or 24-hour clocks, "PM", "p.m." or "p. m.", dots for colons, day
and month in either order or the year first, Arabic-Indic or Devanagari digits. A row's time is a clue, never proof
(DESIGN.md, invariant 5): this module returns every instant the text may mean, and nothing at all when it cannot be
sure what the text means (an unknown word beside the time, an impossible date), so that a row whose time is not
understood is never taken for an older one.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The bracket that opens a bubble's data-pre-plain-text: "[<time>, <date>]" (some locales put the date first).
_BRACKET = re.compile(r"^\s*\[([^\]]{3,60})\]")
_CLOCK = re.compile(r"^(\d{1,2})\s*[:.h]\s*(\d{2})(?:\s*[:.]\s*\d{2})?$")
_DATE = re.compile(r"^(\d{1,4})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{1,4})\.?$")
# Day-period words, folded (lower case, dots and spaces removed): morning False, afternoon True.
_PERIODS = {"am": False, "pm": True, "a": False, "p": True, "ص": False, "م": True,
            "पूर्वाह्न": False, "अपराह्न": True, "पूर्वाह्‍न": False, "अपराह्‍न": True, "午前": False, "午後": True,
            "上午": False, "下午": True, "오전": False, "오후": True}
_MARKS = "\u200e\u200f\u202f\u00a0\u2009"  # direction marks and the narrow spaces locales put before "PM"


def _fold_digits(text: str) -> str:
    """Every decimal digit (Arabic-Indic, Devanagari, ...) as its ASCII digit."""
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def _clock(part: str) -> tuple[int, int] | None:
    """(hour, minute) of '13:05', '1:05 PM', '1.05 p. m.', 'م 1:05', or None when a word in it is not understood."""
    words = re.sub(r"\d{1,2}\s*[:.h]\s*\d{2}(?:\s*[:.]\s*\d{2})?", " ", part, count=1)
    found = re.search(r"\d{1,2}\s*[:.h]\s*\d{2}(?:\s*[:.]\s*\d{2})?", part)
    if found is None:
        return None
    match = _CLOCK.match(found.group(0).strip())
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    period = words.strip().lower().replace(".", "").replace(" ", "")
    if period:
        if period not in _PERIODS or not 1 <= hour <= 12:
            return None  # "nachm.", "13 PM": a word or a form this reader does not know
        hour = hour % 12 + (12 if _PERIODS[period] else 0)
    if hour > 23 or minute > 59:
        return None
    return hour, minute


def _dates(part: str) -> list[tuple[int, int, int]]:
    """(year, month, day) candidates of '10/05/2026', '5/10/26', '2026-05-10', '10.05.2026': both orders of day and
    month when both are possible."""
    match = _DATE.match(part.strip())
    if match is None:
        return []
    a, b, c = (int(g) for g in match.groups())
    if len(match.group(1)) == 4:  # the year first: then month and day (no locale writes year, day, month)
        orders = [(a, b, c)]
    elif len(match.group(3)) in (2, 4):
        year = c + 2000 if c < 100 else c
        orders = [(year, b, a), (year, a, b)]  # day first, then month first
    else:
        return []
    out = []
    for year, month, day in orders:
        try:
            datetime(year, month, day)
        except ValueError:
            continue
        if (year, month, day) not in out:
            out.append((year, month, day))
    return out


def row_instants(pre: str | None, zone: str | None) -> list[datetime]:
    """Every instant (aware, UTC) that a bubble's data-pre-plain-text may mean in the page's time zone `zone` (the
    browser's IANA name); [] when it cannot be read with certainty."""
    if not pre:
        return []
    match = _BRACKET.match(_fold_digits(pre).translate({ord(c): " " for c in _MARKS}))
    if match is None:
        return []
    parts = [p.strip() for p in match.group(1).split(",")]
    if len(parts) != 2:
        return []
    for clock_part, date_part in (parts, parts[::-1]):
        clock, dates = _clock(clock_part), _dates(date_part)
        if clock is not None and dates:
            break
    else:
        return []
    try:
        tz = ZoneInfo(zone) if zone else None
    except (ZoneInfoNotFoundError, ValueError):
        return []
    if tz is None:
        return []
    hour, minute = clock
    out: list[datetime] = []
    for year, month, day in dates:
        local = datetime(year, month, day, hour, minute, tzinfo=tz)
        # A wall time that a change of the clocks repeats or skips may mean either side of it.
        for fold in (0, 1):
            instant = local.replace(fold=fold).astimezone(UTC)
            if instant not in out:
                out.append(instant)
    return out


"""A property test of the chat rules (transport/chat.py): generated chats, clicks and crashes, read as a later attempt
reads them, and two promises checked on every one:

- a message whose click reached the chat is never read as absent (which would click it a second time), and never
  as another row;
- a row that was in the chat before the click (an older message with the same text) is never read as the message.

Generated: histories holding the same text sent minutes or hours before, incoming replies before and after, the
page's clock skewed from -15 to +15 minutes, its times in the forms of tests/unit/test_rowtime.py, a crash before the
click, after it (the row still Pending) or after the row appeared, later messages with the same text (recorded or
themselves in doubt), a reload that gives the system row a new id, a virtualised list that shows only the latest
rows, and doubts with no picture (from before pictures) read with or without the page clock's estimate.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from wa_queue.transport.chat import PICTURE_MAX, Case, Click, picture_of, read

TEXT = "Your appointment is tomorrow at 10:00"
CLICK = datetime(2026, 12, 2, 10, 19, 30, tzinfo=UTC)
ARABIC, DEVANAGARI = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"), str.maketrans("0123456789", "०१२३४५६७८९")


def _h12(t: datetime) -> str:
    return f"{t.hour % 12 or 12}:{t.minute:02d}"


FORMATS = {  # how a page may write a bubble's time (data-pre-plain-text), from a local time
    "24h d/m/y": lambda t: f"[{t:%H:%M}, {t.day:02d}/{t.month:02d}/{t.year}] Me: ",
    "12h m/d/y": lambda t: f"[{_h12(t)} {'PM' if t.hour >= 12 else 'AM'}, {t.month}/{t.day}/{t.year}] Me: ",
    "p. m.": lambda t: f"[{_h12(t)} {'p. m.' if t.hour >= 12 else 'a. m.'}, {t.day}/{t.month}/{t.year}] Yo: ",
    "dots": lambda t: f"[{t:%H.%M}, {t:%d.%m.%Y}] Ich: ",
    "year first": lambda t: f"[{t:%H:%M}, {t:%Y-%m-%d}] Me: ",
    "arabic": lambda t: f"[{_h12(t)} {'م' if t.hour >= 12 else 'ص'}, {t:%d/%m/%Y}] أنا: ".translate(ARABIC),
    "devanagari": lambda t: f"[{t:%H:%M}, {t:%d/%m/%Y}] मैं: ".translate(DEVANAGARI),
    "unreadable": lambda t: f"[{_h12(t)} nachm., {t:%d.%m.%Y}] Ich: ",
}


@dataclasses.dataclass
class Row:
    wa_id: str
    out: bool
    text: str
    at: datetime  # by the worker's clock
    status: str = "read"


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    n = draw(st.integers(0, PICTURE_MAX + 15))
    # Sent before the click: minutes or hours ago, some with the very same text (at least 3 minutes before it).
    minutes = sorted(draw(st.lists(st.integers(3, 600), min_size=n, max_size=n)), reverse=True)
    history = [Row(f"H{i}", draw(st.booleans()), draw(st.sampled_from([TEXT, TEXT, "other", "Thanks!"])),
                   CLICK - timedelta(minutes=m, seconds=draw(st.integers(0, 59)))) for i, m in enumerate(minutes)]
    crash = draw(st.sampled_from(["before_click", "pending", "after_row"]))
    acked = draw(st.sampled_from(["sent", "read"])) if crash == "after_row" else "pending"
    ours = None if crash == "before_click" else Row("MINE", True, TEXT,
                                                    CLICK + timedelta(seconds=draw(st.floats(0.2, 5.0))), acked)
    later: list[tuple[Row, bool]] = []  # (row, recorded as another message's)
    for i in range(draw(st.integers(0, 4))):
        row = Row(f"L{i}", draw(st.booleans()), draw(st.sampled_from([TEXT, "Thanks!", "wrong number"])),
                  CLICK + timedelta(minutes=1 + i, seconds=draw(st.integers(0, 59))))
        later.append((row, row.out and draw(st.booleans())))
    return {
        "history": history, "ours": ours, "later": later,
        "skew": timedelta(seconds=draw(st.integers(-900, 900))),
        "format": draw(st.sampled_from(sorted(FORMATS))),
        "zone": draw(st.sampled_from(["UTC", "Asia/Kolkata", "America/Sao_Paulo"])),
        "shown": draw(st.one_of(st.none(), st.integers(1, 20))),  # a virtualised list: only the latest rows
        "no_picture": draw(st.booleans()) and draw(st.booleans()),  # a doubt from before pictures (1 in 4)
        "estimate_error": draw(st.one_of(st.none(), st.integers(-29, 29))),  # seconds; None: no estimate yet
    }


def snapshot(rows: list[Row], case: dict) -> dict:
    """The chat as JS_CHAT reads it after a reload: a system row first (with a new id), then the rows shown."""
    zone, write = ZoneInfo(case["zone"]), FORMATS[case["format"]]
    shown = rows if case["shown"] is None else rows[-case["shown"]:]
    ids = ([] if case["shown"] is not None and len(shown) < len(rows) else ["SYSTEM-after-reload"])
    ids += [r.wa_id for r in shown]
    out = [{"id": r.wa_id, "dir": "out", "status": r.status, "text": r.text, "more": False,
            "pre": write((r.at + case["skew"]).astimezone(zone))} for r in shown if r.out]
    return {"rows": len(ids), "ids": ids, "msg_ids": [r.wa_id for r in shown], "out": out, "unknown": 0,
            "messages": len(shown), "zone": case["zone"]}


def check(case: dict) -> None:
    history, ours, later = case["history"], case["ours"], case["later"]
    picture = None if case["no_picture"] else picture_of([r.wa_id for r in history])
    error = case["estimate_error"]
    click = Click(since_ms=CLICK.timestamp() * 1000, picture=picture,
                  taken=frozenset(r.wa_id for r, taken in later if taken),
                  offset_ms=None if error is None else (case["skew"].total_seconds() + error) * 1000)
    rows = history + ([ours] if ours else []) + [r for r, _ in later]
    reading = read(snapshot(rows, case), TEXT, click)
    found = reading.row["id"] if reading.row else None
    event(f"{'clicked' if ours else 'not clicked'}: {reading.case.value}")
    if ours is not None:
        assert reading.case not in (Case.ABSENT, Case.REFUSED), f"{reading} {case}"  # a second click
        if found is not None:
            assert found == "MINE", reading
    else:
        assert found not in {r.wa_id for r in history}, reading  # an older message taken for the click
        if found is not None:
            # Only a later message's row with the same text, itself not recorded (in doubt): messages with one text
            # are alike, and that one's own reading then finds no row of its own, so the count of sends holds.
            assert found in {r.wa_id for r, taken in later if not taken and r.out and r.text == TEXT}, reading


# make test draws 300 chats; the long form (--long) draws 5,000.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_the_rules_never_click_twice_and_never_take_an_older_message(case: dict) -> None:
    check(case)


@pytest.mark.long
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_the_rules_never_click_twice_and_never_take_an_older_message_long(case: dict) -> None:
    check(case)

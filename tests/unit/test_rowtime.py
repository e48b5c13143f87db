"""The forms a row's time may take (transport/rowtime.py): every reading it may mean, or none when unsure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wa_queue.transport.rowtime import row_instants


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


DEC_2 = utc(2026, 12, 2, 13, 19)  # 1:19 p.m. on 2 December 2026
FEB_12 = utc(2026, 2, 12, 13, 19)

TABLE = [
    # (data-pre-plain-text, every instant it may mean in UTC)
    ("[13:19, 02/12/2026] Me: ", [DEC_2, FEB_12]),  # day and month: either order
    ("[1:19 PM, 12/2/2026] Me: ", [FEB_12, DEC_2]),
    ("[1:19 pm, 2/12/26] Me: ", [DEC_2, FEB_12]),  # a two-digit year
    ("[1:19 p.m., 25/12/2026] +91 77378 87058: ", [utc(2026, 12, 25, 13, 19)]),  # only one order is a date
    ("[1:19 p. m., 12/25/2026] Ana: ", [utc(2026, 12, 25, 13, 19)]),  # Spanish "p. m.", month first
    ("[1:19\u202fPM, 12/25/2026] Me: ", [utc(2026, 12, 25, 13, 19)]),  # a narrow space before PM
    ("[12:05 AM, 25/12/2026] Me: ", [utc(2026, 12, 25, 0, 5)]),
    ("[12:05 PM, 25/12/2026] Me: ", [utc(2026, 12, 25, 12, 5)]),
    ("[13.19, 25.12.2026] Me: ", [utc(2026, 12, 25, 13, 19)]),  # dots instead of colons (and in the date)
    ("[13:19, 2026-12-25] Me: ", [utc(2026, 12, 25, 13, 19)]),  # the year first
    ("[13:19, 2026/12/02] Me: ", [DEC_2]),  # the year first: month, then day
    ("[25/12/2026, 13:19] Me: ", [utc(2026, 12, 25, 13, 19)]),  # the date first
    ("[١:١٩ م, ٢٥/١٢/٢٠٢٦] أنا: ", [utc(2026, 12, 25, 13, 19)]),  # Arabic-Indic digits, Arabic PM
    ("[۱۳:۱۹, ۲۵/۱۲/۲۰۲۶] من: ", [utc(2026, 12, 25, 13, 19)]),  # Extended Arabic-Indic (Persian) digits
    ("[१:१९ अपराह्न, २५/१२/२०२६] मैं: ", [utc(2026, 12, 25, 13, 19)]),  # Devanagari digits, Hindi PM
    ("[१३:१९, २५/१२/२०२६] मैं: ", [utc(2026, 12, 25, 13, 19)]),
    ("[\u200e13:19, 25/12/2026\u200e] Me: ", [utc(2026, 12, 25, 13, 19)]),  # direction marks
    # Unsure: nothing, so the row is never "older".
    ("[1:19 nachm., 25.12.2026] Ich: ", []),  # a day-period word this reader does not know
    ("[13:19 PM, 25/12/2026] Me: ", []),  # 13 PM is no time
    ("[25:19, 25/12/2026] Me: ", []),
    ("[13:19, 31/02/2026] Me: ", []),  # no such date either way
    ("[13:19] Me: ", []),  # no date
    ("Me: hello", []),
    ("", []),
    (None, []),
]


@pytest.mark.parametrize(("text", "expected"), TABLE, ids=[repr(t) for t, _ in TABLE])
def test_every_reading_of_a_rows_time(text: str | None, expected: list[datetime]) -> None:
    assert row_instants(text, "UTC") == expected


def test_the_pages_time_zone_gives_the_instant() -> None:
    assert row_instants("[13:19, 25/12/2026] Me: ", "Asia/Kolkata") == [utc(2026, 12, 25, 7, 49)]
    assert row_instants("[13:19, 25/12/2026] Me: ", "America/Sao_Paulo") == [utc(2026, 12, 25, 16, 19)]
    assert row_instants("[13:19, 25/12/2026] Me: ", "No/Such_Zone") == []
    assert row_instants("[13:19, 25/12/2026] Me: ", None) == []


def test_a_wall_time_the_clocks_repeat_means_both_instants() -> None:
    # 01:30 on 2026-11-01 happens twice in New York (EDT, then EST).
    assert row_instants("[1:30 AM, 2026-11-01] Me: ", "America/New_York") == [utc(2026, 11, 1, 5, 30),
                                                                                   utc(2026, 11, 1, 6, 30)]

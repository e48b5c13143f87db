"""Reading a chat fail-closed, without a browser: rows as the page script JS_CHAT returns them, one test per case of
transport/chat.py (Case.*), each named after it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wa_queue import errors
from wa_queue.transport.chat import (
    PICTURE_MAX,
    Case,
    Click,
    clock_offset_ms,
    id_key,
    new_row,
    normalise,
    picture_of,
    read,
    snapshot_picture,
    text_matches,
    verdict,
)
from wa_queue.transport.selectors import Selectors

CLICK = datetime(2026, 12, 2, 10, 19, 30, tzinfo=UTC)
CLICK_MS = CLICK.timestamp() * 1000
TEXT = "Your *order* is _ready_ 🎉\nsee https://example.com/o/42"
SHOWN = "Your order is ready 🎉\nsee https://example.com/o/42"  # markers rendered away, the link an <a>


def pre(hh_mm: str, day: str = "02/12/2026") -> str:
    return f"[{hh_mm}, {day}] Me: "


def row(wa_id: str | None, text: str | None = SHOWN, *, status: str | None = "sent", more: bool = False,
        at: str | None = "10:19") -> dict:
    return {"id": wa_id, "dir": "out", "status": status, "text": text, "more": more,
            "pre": pre(at) if at else None}


def chat(*rows: dict, system: str | None = "E2E0000", unknown: int = 0) -> dict:
    ids = ([system] if system else []) + [r["id"] or "" for r in rows]
    return {"rows": len(ids) + unknown, "ids": ids, "msg_ids": [r["id"] for r in rows if r["id"]], "out": list(rows),
            "unknown": unknown, "messages": len(rows) + unknown, "zone": "UTC"}


def click(*picture: str, taken: tuple[str, ...] = (), since: float | None = CLICK_MS,
          offset: float | None = None) -> Click:
    return Click(since_ms=since, picture=tuple(picture), taken=frozenset(taken), offset_ms=offset)


def test_rendered_text_compares_equal_to_the_typed_one() -> None:
    assert normalise(SHOWN) == normalise(TEXT)
    assert text_matches(row("a", "other"), TEXT) is False and text_matches(row("a", None), TEXT) is None
    assert text_matches(row("a", "x" * 700 + "…", more=True), "x" * 1500) is True  # a cut row: its prefix
    assert text_matches(row("a", "y" * 700, more=True), "x" * 1500) is False


def test_ids_of_both_forms_name_one_message() -> None:
    assert id_key("true_15551234567@c.us_3EB0AA") == id_key("3EB0AA") == "3EB0AA"
    assert picture_of(["", None, *[f"r{i}" for i in range(PICTURE_MAX + 5)]])[0] == "r5"  # the last rows only


def test_case_new_a_new_row_with_the_text_is_the_message_whatever_time_it_shows() -> None:
    for shown_at in ("10:19", "10:15", "10:09", "10:29", "23:59", None):  # clocks skewed both ways, or no time
        snapshot = chat(row("OLD", "other"), row("NEW", at=shown_at))
        assert read(snapshot, TEXT, click("E2E0000", "OLD")).case is Case.NEW
        found = verdict(snapshot, TEXT, click("E2E0000", "OLD"), "+1", Selectors())
        assert found is not None and found.wa_id == "NEW"


def test_case_new_the_oldest_new_match_is_the_click_and_packed_ids_match_bare_ones() -> None:
    snapshot = chat(row("true_1@c.us_OLD"), row("true_1@c.us_MINE"), row("true_1@c.us_LATER"))
    assert read(snapshot, TEXT, click("E2E0000", "OLD")).row["id"] == "true_1@c.us_MINE"


def test_case_in_picture_a_row_seen_before_the_click_is_an_older_message() -> None:
    snapshot = chat(row("OLD1", at="09:14"), row("OLD2", at="10:14"))  # sent 1 h and 5 min before, same text
    assert read(snapshot, TEXT, click("E2E0000", "OLD1", "OLD2")).case is Case.ABSENT
    assert verdict(snapshot, TEXT, click("E2E0000", "OLD1", "OLD2"), "+1", Selectors()) is None


def test_case_above_picture_a_row_above_the_pictured_ones_is_older() -> None:
    snapshot = chat(row("ANCIENT"), row("P1", "other"), row("P2", "other"))  # the picture kept only the last rows
    assert read(snapshot, TEXT, click("P1", "P2")).case is Case.ABSENT


def test_case_inserted_a_row_between_pictured_rows_cannot_be_placed() -> None:
    snapshot = chat(row("P1", "other"), row("ODD"), row("P2", "other"))
    assert read(snapshot, TEXT, click("P1", "P2")).case is Case.INSERTED
    with pytest.raises(errors.OutcomeUnverified, match="between rows seen before the click"):
        verdict(snapshot, TEXT, click("P1", "P2"), "+1", Selectors())


def test_case_taken_a_row_another_message_owns_is_not_this_one() -> None:
    snapshot = chat(row("OLD"), row("B"))  # B: a later message with the same text, recorded sent
    assert read(snapshot, TEXT, click("E2E0000", "OLD", taken=("true_1@c.us_B",))).case is Case.ABSENT
    snapshot = chat(row("OLD"), row("MINE"), row("B"))
    assert read(snapshot, TEXT, click("E2E0000", "OLD", taken=("B",))).row["id"] == "MINE"


def test_case_refused_a_row_the_servers_refused_never_left() -> None:
    assert verdict(chat(row("NEW", status="failed")), TEXT, click("E2E0000"), "+1", Selectors()) is None


def test_case_pending_the_messages_row_still_shows_the_clock() -> None:
    for icon in ("pending", "msg-time", "wds-ic-msg-time"):
        snapshot = chat(row("NEW", status=icon))
        assert read(snapshot, TEXT, click("E2E0000")).case is Case.PENDING
        assert new_row(snapshot, TEXT, click("E2E0000"))["id"] == "NEW"  # the click's row, still on its way
        with pytest.raises(errors.SendOutcomeUnknown):
            verdict(snapshot, TEXT, click("E2E0000"), "+1", Selectors())


def test_case_no_anchor_a_page_that_shows_none_of_the_pictured_rows_cannot_tell() -> None:
    for snapshot in (chat(row("X1", "other"), system=None), chat(row("NEW"), system="E2Echanged")):
        assert read(snapshot, TEXT, click("E2E0000", "OLD")).case is Case.NO_ANCHOR  # match or not
        with pytest.raises(errors.OutcomeUnverified, match="none of the 2 rows seen before the click"):
            verdict(snapshot, TEXT, click("E2E0000", "OLD"), "+1", Selectors())


def test_case_no_picture_a_time_can_make_a_row_ours_never_anothers() -> None:
    none = Click(since_ms=CLICK_MS, picture=None, offset_ms=0.0)
    assert read(chat(row("NEW", at="10:19")), TEXT, none).case is Case.NEW
    unknown_skew = Click(since_ms=CLICK_MS, picture=None)
    assert read(chat(row("NEW", at="10:19")), TEXT, unknown_skew).case is Case.NO_PICTURE  # no estimate: no proof
    for at in ("09:19", "10:15", "10:17", None, "13 PM"):  # older, skewed, absent, unreadable: never "another one"
        assert read(chat(row("NEW", at=at)), TEXT, none).case is Case.NO_PICTURE
        with pytest.raises(errors.OutcomeUnverified, match="no picture"):
            verdict(chat(row("NEW", at=at)), TEXT, none, "+1", Selectors())
    # With the page clock's offset known (4 min behind), its row's time shows it came after the click.
    behind = Click(since_ms=CLICK_MS, picture=None, offset_ms=-240_000)
    assert read(chat(row("NEW", at="10:15")), TEXT, behind).case is Case.NEW
    assert read(chat(row("OTHER", "other text")), TEXT, none).case is Case.ABSENT


def test_an_empty_picture_of_a_loaded_chat_makes_every_match_new() -> None:
    # The chat showed its system row and no message before the click; a reload gave the system row another id.
    for at in ("10:09", "10:29", None):
        snapshot = chat(row("NEW", at=at), system="E2Eafterreload")
        assert read(snapshot, TEXT, Click(since_ms=CLICK_MS, picture=())).case is Case.NEW
    scrolled = chat(row("NEW"), system=None)  # the chat's start is not shown: a virtualised list past it
    assert read(scrolled, TEXT, Click(since_ms=CLICK_MS, picture=())).case is Case.NO_ANCHOR
    # Right after the click in the same document, a chat that showed no row at all was empty: its first row is new.
    empty_then = chat(row("NEW", at="10:09"), system=None)
    assert new_row(empty_then, TEXT, Click(since_ms=CLICK_MS, picture=None))["id"] == "NEW"
    assert read(empty_then, TEXT, Click(since_ms=CLICK_MS, picture=None)).case is Case.NO_ANCHOR  # after a reload
    loaded = {"rows": 1, "ids": ["E2E"], "msg_ids": [], "out": []}
    assert snapshot_picture(loaded) == ()
    assert snapshot_picture({**loaded, "rows": 0, "ids": []}) is None  # nothing shown yet: no picture
    assert snapshot_picture({**loaded, "rows": 3, "msg_ids": ["A", "B"]}) == ("A", "B")


def test_case_no_id_a_matching_row_without_id_cannot_be_placed() -> None:
    with pytest.raises(errors.OutcomeUnverified, match="has no id"):
        verdict(chat(row(None)), TEXT, click("E2E0000"), "+1", Selectors())


def test_case_uncomparable_a_new_row_whose_text_cannot_be_read() -> None:
    assert read(chat(row("NEW", None)), TEXT, click("E2E0000")).case is Case.UNCOMPARABLE
    with pytest.raises(errors.OutcomeUnverified, match="message_text"):
        verdict(chat(row("NEW", None)), TEXT, click("E2E0000"), "+1", Selectors())
    assert read(chat(row("OLD", None)), TEXT, click("E2E0000", "OLD")).case is Case.ABSENT  # pictured: older


def test_case_unknown_form_rows_of_no_known_direction() -> None:
    with pytest.raises(errors.OutcomeUnverified, match="match no known form"):
        verdict(chat(row("OLD", "other"), unknown=1), TEXT, click("E2E0000", "OLD"), "+1", Selectors())


def test_case_absent_a_chat_read_and_anchored_without_the_text() -> None:
    assert verdict(chat(row("OLD", "other"), row("NEW", "other")), TEXT, click("E2E0000", "OLD"), "+1",
                   Selectors()) is None
    assert verdict(chat(), TEXT, click("E2E0000"), "+1", Selectors()) is None  # only the system row


def test_the_page_clocks_offset_from_the_clicks_own_row() -> None:
    behind = row("NEW", at="10:15")  # shows 10:15 for a click at 10:19:30
    sample = clock_offset_ms(behind, "UTC", CLICK_MS, CLICK_MS + 800)
    assert sample is not None and -300_000 < sample < -180_000
    assert clock_offset_ms(row("NEW", at=None), "UTC", CLICK_MS, CLICK_MS) is None
    assert abs(clock_offset_ms(row("NEW", at="10:19"), "UTC", CLICK_MS, CLICK_MS)) <= 30_000

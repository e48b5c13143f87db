"""Reading a chat fail-closed, without a browser: rows as the page script JS_CHAT returns them."""

from __future__ import annotations

import pytest

from wa_queue import errors
from wa_queue.transport.chat import normalise, row_matches, verdict
from wa_queue.transport.selectors import Selectors

CLICK_MS = 1_764_000_000_000.0
TEXT = "Your *order* is _ready_ 🎉\nsee https://example.com/o/42"


def row(text: str | None, *, status: str | None = "sent", more: bool = False, times: tuple[float, ...] = (CLICK_MS,),
        wa_id: str = "3EB0AA") -> dict:
    return {"id": wa_id, "dir": "out", "status": status, "text": text, "more": more, "times": list(times)}


def chat(*rows: dict, unknown: int = 0) -> dict:
    return {"rows": len(rows) + unknown + 1, "ids": [r["id"] for r in rows], "out": list(rows), "unknown": unknown,
            "messages": len(rows) + unknown}


def test_rendered_text_compares_equal_to_the_typed_one() -> None:
    rendered = "Your order is ready 🎉\nsee https://example.com/o/42"  # markers rendered away, the link an <a>
    assert normalise(rendered) == normalise(TEXT)
    assert row_matches(row(rendered), TEXT, CLICK_MS) is True
    assert row_matches(row("Your order is ready"), TEXT, CLICK_MS) is False


def test_a_row_cut_behind_read_more_matches_by_prefix_and_time() -> None:
    long = "x" * 1500
    assert row_matches(row("x" * 700 + "…", more=True), long, CLICK_MS) is True
    assert row_matches(row("y" * 700, more=True), long, CLICK_MS) is False
    assert row_matches(row("x" * 700, more=True, times=()), long, CLICK_MS) is None  # no time: cannot tell


def test_an_older_message_with_the_same_text_is_another_message() -> None:
    assert row_matches(row(TEXT, times=(CLICK_MS - 3_600_000,)), TEXT, CLICK_MS) is False
    assert row_matches(row(TEXT, times=(CLICK_MS - 60_000,)), TEXT, CLICK_MS) is True  # minute resolution
    assert row_matches(row(TEXT, times=()), TEXT, CLICK_MS) is None


def test_verdict_finds_the_row_or_says_it_is_not_there() -> None:
    found = verdict(chat(row("other"), row(TEXT, status="delivered", wa_id="true_1@c.us_X")), TEXT, CLICK_MS, "+1",
                    Selectors())
    assert found is not None and found.wa_id == "true_1@c.us_X" and found.status == "delivered"
    assert verdict(chat(row("other")), TEXT, CLICK_MS, "+1", Selectors()) is None
    assert verdict(chat(), TEXT, CLICK_MS, "+1", Selectors()) is None  # a settled chat with only system rows


def test_verdict_fails_closed() -> None:
    with pytest.raises(errors.OutcomeUnverified, match="match no known form"):
        verdict(chat(row("other"), unknown=1), TEXT, CLICK_MS, "+1", Selectors())
    with pytest.raises(errors.OutcomeUnverified, match="message_text"):
        verdict(chat(row(None)), TEXT, CLICK_MS, "+1", Selectors())
    with pytest.raises(errors.SendOutcomeUnknown):
        verdict(chat(row(TEXT, status="msg-time")), TEXT, CLICK_MS, "+1", Selectors())
    # A row the servers refused never left: the message is not there.
    assert verdict(chat(row(TEXT, status="failed")), TEXT, CLICK_MS, "+1", Selectors()) is None

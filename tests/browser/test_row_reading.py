"""The in-page row reading (selectors.JS_LIB) on hand-written pages in a real Chromium: every rule that tells a row's
direction, id and status, including the run rule of the 2026-11 form (tails on a run's first bubble only), and the
default send-control selectors. The simulator renders these forms too (tests/simulator/test_page.py); here each case
is written out, so the rule is tested apart from what the simulator happens to draw."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.simulator.chrome import start_chrome
from wa_queue.transport.selectors import JS_CHAT, JS_LIB, Selectors, parse_overrides

JS_ROWS = JS_LIB + "return readRows(rowsOf());"
JS_MATCHES = JS_LIB + "return all(arguments[1]).map(e => e.id);"


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    drv = start_chrome()
    yield drv
    drv.quit()


def row(dir_: str | None = None, *, tail: str | None = None, tick: str | None = None, title: str | None = None,
        rid: str = "3A00", pre: str | None = "[10:00, 12/1/2026] +4915112345678: ", text: str = "hi",
        testid: bool = True, wrap: bool = True) -> str:
    """One message row of the 2026-11 form: dir_ 'out'/'in' packs the id (true_/false_), else a bare id."""
    data_id = f"{'true' if dir_ == 'out' else 'false'}_4915112345678@c.us_{rid}" if dir_ else rid
    kids = f'<span data-icon="tail-{tail}"><svg><title>tail-{tail}</title></svg></span>' if tail else ""
    if pre is not None:
        kids += (f'<div class="copyable-text" data-pre-plain-text="{pre}"><span data-testid="selectable-text">'
                 f"{text}</span></div>")
    meta = ""
    if tick:
        meta += f'<span aria-label=" {tick} " role="img"><svg><title>wds-ic-x</title></svg></span>'
    if title:
        meta += f'<span role="img"><svg><title>{title}</title></svg></span>'
    bubble = (f'<div data-id="{data_id}"' + (f' data-testid="conv-msg-{data_id}"' if testid else "")
              + f">{kids}<div class='meta'>{meta}</div></div>")
    return f'<div role="row">{bubble}</div>' if wrap else bubble


SYSTEM = '<div role="row"><div data-id="AB12"><span>Messages and calls are end-to-end encrypted.</span></div></div>'


def load(driver: Any, *rows: str, footer: str = "") -> None:
    driver.get("about:blank")
    driver.execute_script("document.body.innerHTML = arguments[0];",
                          f'<div id="main"><div class="conversation">{"".join(rows)}</div>{footer}</div>')


def dirs(driver: Any, selectors: Selectors | None = None) -> list[tuple[str | None, str | None] | None]:
    got = driver.execute_script(JS_ROWS, (selectors or Selectors()).as_js())
    return [(m["dir"], m["dir_by"]) if m else None for m in got]


def test_a_run_takes_the_direction_of_its_tailed_first_bubble(driver: Any) -> None:
    load(driver, SYSTEM, row(tail="in", rid="A1"), row(rid="A2"), row(tail="out", tick="Read", rid="B1"),
         row(tick="Sent", rid="B2"), row(tail="in", rid="A3"), row(rid="A4"), row(rid="A5"))
    assert dirs(driver) == [None, ("in", "tail"), ("in", "run"), ("out", "tail"), ("out", "status"), ("in", "tail"),
                            ("in", "run"), ("in", "run")]


def test_a_tail_less_row_stays_unknown_where_the_page_cannot_tell(driver: Any) -> None:
    # Only tail-out drawn in this chat: a tail-less reply after our run could be either; never guessed.
    load(driver, row(tail="out", tick="Read", rid="B1"), row(rid="A1"))
    assert dirs(driver) == [("out", "tail"), (None, None)]
    # Only tail-in drawn: the continuation of an incoming run cannot be told from our row without a tail-out.
    load(driver, row(tail="in", rid="A1"), row(rid="A2"))
    assert dirs(driver) == [("in", "tail"), (None, None)]
    # A system (or date) row ends a run.
    load(driver, row(tail="in", rid="A1"), row(tail="out", tick="Sent", rid="B1"), SYSTEM, row(rid="A2"))
    assert dirs(driver)[-1] == (None, None)
    # Our run's head shows a tick and the row none: they disagree, so it is not a continuation of ours.
    load(driver, row(tail="in", rid="A1"), row(tail="out", tick="Read", rid="B1"), row(rid="A2"))
    assert dirs(driver)[-1] == (None, None)
    # A head whose own marks disagree (a packed incoming id with tail-out) starts no run.
    load(driver, row("in", tail="out", rid="A1"), row(rid="A2"), row(tail="in", rid="A3"))
    assert dirs(driver)[:2] == [("in", "id"), (None, None)]
    # A row between the head and the row with a mark of its own (a tick) ends the inheritance.
    load(driver, row(tail="in", rid="A1"), row(tick="Sent", rid="B1"), row(rid="A2"), row(tail="out", rid="B2"))
    assert dirs(driver)[2] == (None, None)


def test_an_outgoing_run_without_ticks_inherits_only_where_the_page_draws_tail_in(driver: Any) -> None:
    load(driver, row(tail="in", rid="A1"), row(tail="out", rid="B1"), row(rid="B2"))
    assert dirs(driver) == [("in", "tail"), ("out", "tail"), ("out", "run")]


def test_ids_rows_and_the_chat_contract(driver: Any) -> None:
    # conv-msg rows with no div[role="row"] around them and no data-id; rows with both are counted once.
    bare = ('<div data-testid="conv-msg-3EB0FF"><div class="copyable-text" '
            'data-pre-plain-text="[9:05, 1/2/2026] Me: "><span data-testid="selectable-text">yo</span></div>'
            '<span aria-label="Delivered"></span></div>')
    load(driver, SYSTEM, row("out", rid="B1", tick="Sent", pre="[10:00, 12/1/2026] Me: "), bare,
         row("in", rid="A1", wrap=False))
    chat = driver.execute_script(JS_CHAT, Selectors().as_js())
    assert chat["rows"] == 4 and chat["messages"] == 3 and chat["unknown"] == 0
    assert chat["ids"] == ["AB12", "true_4915112345678@c.us_B1", "3EB0FF", "false_4915112345678@c.us_A1"]
    assert [(r["id"], r["status"], r["dir_by"], r["pre"], r["text"]) for r in chat["out"]] == [
        ("true_4915112345678@c.us_B1", "sent", "id", "[10:00, 12/1/2026] Me: ", "hi"),
        ("3EB0FF", "delivered", "status", "[9:05, 1/2/2026] Me: ", "yo")]
    assert set(chat["out"][0]) == {"id", "dir", "dir_by", "tail", "status", "text", "more", "pre", "times",
                                     "media"}
    assert chat["out"][0]["media"] is None and chat["out"][1]["media"] is None  # text rows
    assert len(chat["out"][0]["times"]) == 2  # 12/1 read both ways
    zone = driver.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert chat["zone"] == zone and isinstance(chat["now_ms"], int)
    load(driver, row(tail="in", rid="A1", pre=None))  # no data-pre-plain-text: not a message
    assert driver.execute_script(JS_CHAT, Selectors().as_js())["messages"] == 0


def test_status_from_aria_labels_and_svg_titles(driver: Any) -> None:
    load(driver, row(tail="out", title="wds-ic-read", rid="B1"), row(title="wds-ic-clock", rid="B2"),
         row(title="wds-ic-double-check", rid="B3"), row(title="wds-ic-check", rid="B4"),
         row(tick="Failed", rid="B5"), row(title="wds-ic-something-new", rid="B6"), row(tail="in", rid="A1"))
    got = driver.execute_script(JS_ROWS, Selectors().as_js())
    assert [m["status"] for m in got] == ["read", "pending", "delivered", "sent", "failed", None, None]
    assert [m["dir"] for m in got] == ["out", "out", "out", "out", "out", None, "in"]  # an unknown title says nothing
    custom = parse_overrides({"tick.wds-ic-something-new": "sent"})
    assert [m["status"] for m in driver.execute_script(JS_ROWS, custom.as_js())][5] == "sent"


def test_the_default_send_controls(driver: Any) -> None:
    icon = '<span data-icon="{}"></span>'
    footer = ("<footer>"
              f'<button id="b1" aria-label="Send"></button><div role="button" id="d1" aria-label="Send"></div>'
              f'<button id="b2">{icon.format("wds-ic-send-filled")}</button>'
              f'<div role="button" id="d2">{icon.format("send")}</div>'
              f'<div role="button" id="voice" aria-label="Voice message">{icon.format("wds-ic-mic-filled")}</div>'
              f'<div id="norole" aria-label="Send"></div><span id="unknown" tabindex="0">{icon.format("x-send")}</span>'
              "</footer>")
    preview = ('<div class="media-editor"><div role="button" id="m1" aria-label="Send">'
               f'{icon.format("send")}</div></div>')
    load(driver, footer=footer + preview)
    js = Selectors().as_js()
    assert driver.execute_script(JS_MATCHES, js, "send_button") == ["b1", "d1", "b2", "d2"]
    assert driver.execute_script(JS_MATCHES, js, "media_send_button") == ["m1"]

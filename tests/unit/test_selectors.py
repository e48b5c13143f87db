"""selectors.py without a browser: the tick-title table and its overrides, and the defaults' send controls (the
in-page reading itself is tested in Chromium: tests/browser/test_row_reading.py)."""

from __future__ import annotations

import pytest

from wa_queue.errors import ConfigError
from wa_queue.transport.chat import STATUS
from wa_queue.transport.selectors import SELECTORS, TICK_STATUSES, TICK_TITLES, Selectors, parse_overrides


def test_tick_titles_map_to_statuses_the_chat_rules_know_and_never_to_failed() -> None:
    assert set(TICK_TITLES.values()) <= set(TICK_STATUSES) and "failed" not in TICK_STATUSES
    assert all(STATUS[s] == s for s in TICK_STATUSES)  # no new raw status reaches chat.py
    assert Selectors().as_js()["ticks"] == TICK_TITLES


def test_a_tick_title_is_overridden_by_name_and_checked() -> None:
    custom = parse_overrides({"tick.wds-ic-msg-dblcheck": "delivered", "tick.wds-ic-check": "pending"})
    assert custom.as_js()["ticks"] == {**TICK_TITLES, "wds-ic-msg-dblcheck": "delivered", "wds-ic-check": "pending"}
    for bad in ("failed", "Sent", 1, None):
        with pytest.raises(ConfigError, match="'tick.wds-ic-x' must be one of pending, sent, delivered, read"):
            parse_overrides({"tick.wds-ic-x": bad})
    with pytest.raises(ConfigError, match=r"unknown selector name\(s\) 'tick.'.*tick.<svg title>"):
        parse_overrides({"tick.": "sent"})


def test_the_default_send_controls_are_a_button_or_a_div_by_label_or_icon_in_the_footer() -> None:
    parts = [p.strip() for p in SELECTORS["send_button"].split(",")]
    for tag in ("button", 'div[role="button"]'):
        for mark in ('[aria-label="Send"]', ':has(span[data-icon="wds-ic-send-filled"])',
                     ':has(span[data-icon="send"])'):
            assert f"footer {tag}{mark}" in parts
    assert all(p.startswith("footer ") for p in parts)
    assert all(p.endswith(":not(footer *)") for p in SELECTORS["media_send_button"].split(", "))
    assert '[data-testid^="conv-msg"]' in SELECTORS["chat_row"] and '#main div[role="row"]' in SELECTORS["chat_row"]

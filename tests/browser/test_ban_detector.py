"""The ban detector on the real page (issue 16.2): the Selenium sender driving one Chromium on the simulator reads
the ban page and the restriction banner as BANNED with the page's words (a restriction's with its end time), refuses
to send before any click, and does not take a person's message that quotes those words for a notice."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.helpers.browser import ACCOUNT, FRIEND, Sim, log_in, make_settings, sent_texts
from tests.helpers.waiting import wait_for
from wa_queue import errors
from wa_queue.simulator.state import BAN_TEXT
from wa_queue.transport.base import SessionState
from wa_queue.transport.selectors import parse_overrides
from wa_queue.transport.selenium import SeleniumSender

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def sender(sim: Sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeleniumSender]:
    """One logged-in Chromium for the module."""
    snd = SeleniumSender("ban", make_settings(tmp_path_factory.mktemp("ban"), sim))
    log_in(snd, sim)
    yield snd
    snd.close()


@pytest.fixture(autouse=True)
def _clean(sim: Sim, sender: SeleniumSender) -> Iterator[None]:
    yield
    sim.post("/__sim__/reset", {"keep_links": True})
    assert sender.connect() is SessionState.CONNECTED  # a fresh load: the ban page does not leave by itself


def test_the_ban_page_reads_as_banned_with_its_words_and_nothing_is_sent(sim: Sim, sender: SeleniumSender) -> None:
    sender.send(FRIEND, "before the ban", ref="b0")
    sim.session_fault("banned")
    # An open page learns it at its next poll; state() reads the live page.
    assert wait_for(lambda: sender.state() is SessionState.BANNED, timeout=10, what="the ban page")
    assert sender.last_problem() == BAN_TEXT
    with pytest.raises(errors.SessionBanned, match="is banned from using WhatsApp"):
        sender.send(FRIEND, "after the ban", ref="b1")
    assert sender.connect() is SessionState.BANNED and sender.last_problem() == BAN_TEXT  # and at a page load
    assert sent_texts(sim, FRIEND) == ["before the ban"]


def test_a_restriction_reads_as_banned_with_its_end_time_and_the_send_stops_before_the_click(
        sim: Sim, sender: SeleniumSender) -> None:
    until = time.time() + 3 * 3600
    sim.post("/__sim__/faults", {"session": ACCOUNT, "fault": "restricted", "until": until})
    end = time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(until))
    with pytest.raises(errors.SessionBanned) as raised:
        sender.send(FRIEND, "while restricted", ref="r1")  # the banner is on the page before the chat opens
    assert f"restricted until {end}" in str(raised.value)
    assert sender.last_problem() == f"Your account is restricted until {end}. You can't send messages right now."
    assert sender.state() is SessionState.BANNED
    assert sent_texts(sim, FRIEND) == []  # refused before the click: the servers never heard of it


def test_a_message_quoting_the_notices_is_not_one(sim: Sim, sender: SeleniumSender) -> None:
    quote = f"They told me: {BAN_TEXT} Your account is restricted, they said."
    sender.send(FRIEND, quote, ref="q1")
    sim.post("/__sim__/incoming", {"account": ACCOUNT, "from": FRIEND.lstrip("+"), "text": quote})
    wait_for(lambda: quote in sender.page.call("return document.body.innerText"), timeout=10, what="the rows")
    assert sender.state() is SessionState.CONNECTED and sender.last_problem() is None
    assert sent_texts(sim, FRIEND) == [quote]


def test_the_notice_wordings_are_overridable(sim: Sim, sender: SeleniumSender) -> None:
    sim.session_fault("banned")
    wait_for(lambda: BAN_TEXT in sender.page.call("return document.body.innerText"), timeout=10, what="the ban page")
    saved = sender.page.selectors
    try:
        sender.page.selectors = parse_overrides({"text.banned": ["no such words"], "text.restricted": "nor these"})
        assert sender.state() is SessionState.STARTING  # a page it cannot place: neither the app nor a notice
        sender.page.selectors = parse_overrides({"text.banned": "nor these",
                                                 "text.restricted": ["x", "BANNED FROM USING"]})
        assert sender.state() is SessionState.BANNED and sender.last_problem() == BAN_TEXT  # any case, any kind
    finally:
        sender.page.selectors = saved

"""The Selenium sender against real Chromium and the in-process WhatsApp Web simulator."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import FRIEND, OTHER_ACCOUNT, Sim, log_in, make_settings, sent_texts
from wa_queue import errors, procs
from wa_queue.errors import ConfigError
from wa_queue.transport.base import SessionState
from wa_queue.transport.selectors import JS_BOX, SELECTORS, load_selectors
from wa_queue.transport.selectors_check import check_selectors
from wa_queue.transport.selenium import SeleniumSender


@pytest.fixture(scope="module")
def profile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def sender(sim: Sim, profile_root: Path) -> Iterator[SeleniumSender]:
    """One logged-in browser shared by the tests that do not restart it (a Chrome start is the slow part)."""
    sim.post("/__sim__/reset")
    snd = SeleniumSender("shared", make_settings(profile_root / "shared", sim))
    log_in(snd, sim)
    yield snd
    snd.close()


@pytest.fixture(autouse=True)
def _clean_simulator(sim: Sim) -> Iterator[None]:
    yield
    sim.post("/__sim__/reset", {"keep_links": True})  # messages and faults go, logins stay


# ---- login -------------------------------------------------------------------------------------------------------
def test_qr_login_kept_across_a_browser_restart_until_logged_out(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sim)
    first = SeleniumSender("login", settings)
    try:
        assert first.connect() is SessionState.QR
        png = first.qr_png()
        assert png and png.startswith(b"\x89PNG")
        with pytest.raises(errors.SessionLoggedOut):
            first.send(FRIEND, "before the scan", ref="no-login")
        log_in(first, sim, OTHER_ACCOUNT)
        assert first.is_connected()
    finally:
        first.close()
    second = SeleniumSender("login", settings)  # same profile folder, new Chrome
    try:
        assert second.connect() is SessionState.CONNECTED
        assert second.qr_png() is None
        sim.session_fault("logged_out", OTHER_ACCOUNT)  # the phone unlinks the device
        with pytest.raises(errors.SessionLoggedOut):
            second.send(FRIEND, "after the unlink", ref="unlinked")
        assert second.state() is SessionState.LOGGED_OUT
    finally:
        second.close()
    assert sent_texts(sim, FRIEND) == []


# ---- sending (what both senders promise is in tests/contract/test_sender.py) ------------------------------------
def test_a_click_the_page_ignores_is_transient(sim: Sim, sender: SeleniumSender) -> None:
    sim.number_fault(FRIEND, "drop_before_click", count=1)  # the server refusing it (fail_send) is in the contract
    with pytest.raises(errors.TransientSendError) as raised:
        sender.send(FRIEND, "click ignored", ref="ignored")
    assert not isinstance(raised.value, errors.SendOutcomeUnknown)  # the page proves nothing left
    assert sent_texts(sim, FRIEND) == []
    assert sender.find_sent(FRIEND, "click ignored", ref="ignored") is None
    assert sender.send(FRIEND, "click ignored", ref="ignored").wa_id
    assert sent_texts(sim, FRIEND) == ["click ignored"]


def test_chrome_killed_mid_send_then_next_send_restarts_it(sim: Sim, sender: SeleniumSender,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    original = sender.page.type
    old_pids = sender.chrome.browser_pids()

    def killing_type(text: str) -> list[str]:
        os.kill(sender.chrome.chrome_pid(), signal.SIGKILL)  # the browser dies with the chat open, before the click
        return original(text)

    monkeypatch.setattr(sender.page, "type", killing_type)
    with pytest.raises(errors.TransientSendError):
        sender.send(FRIEND, "never sent", ref="killed")
    monkeypatch.undo()
    assert not [p for p in old_pids if procs.alive(p)]  # the orphaned renderers went with it
    assert sender.send(FRIEND, "sent after the restart", ref="after-kill").wa_id
    assert sent_texts(sim, FRIEND) == ["sent after the restart"]


def test_chrome_killed_during_the_click_leaves_the_outcome_unknown(sim: Sim, sender: SeleniumSender,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The click reaches the page (the message leaves), then Chrome dies before the command's reply: the send must
    not be taken for one that never left, or the retry sends it twice (seen in a chaos run)."""
    from selenium.webdriver.remote.webelement import WebElement

    real_click = WebElement.click

    def click_then_die(element: WebElement) -> None:
        real_click(element)
        deadline = time.monotonic() + 10
        while not sent_texts(sim, FRIEND) and time.monotonic() < deadline:
            time.sleep(0.05)  # the page has sent it
        os.kill(sender.chrome.chrome_pid(), signal.SIGKILL)
        time.sleep(0.5)
        element.is_displayed()  # what the reply would have met: a browser that is gone (raises)

    monkeypatch.setattr(WebElement, "click", click_then_die)
    text = "clicked, then the browser died"
    with pytest.raises(errors.SendOutcomeUnknown):
        sender.send(FRIEND, text, ref="die-in-click")
    monkeypatch.undo()
    found = sender.find_sent(FRIEND, text, ref="die-in-click")  # the next attempt reads the chat first
    assert found is not None
    assert sent_texts(sim, FRIEND) == [text]


def test_hung_browser_is_killed_with_its_tree(sim: Sim, sender: SeleniumSender) -> None:
    sender.send(FRIEND, "warm", ref="warm")  # a live browser
    old_pids = sender.chrome.browser_pids()
    browser = sender.chrome
    saved, browser.command_timeout_s = browser.command_timeout_s, 5.0  # a page load on a loaded machine fits
    try:
        sender.close()
        sender.send(FRIEND, "fresh", ref="fresh")  # started with the short command time-out
        old_pids = sender.chrome.browser_pids()
        os.kill(sender.chrome.chrome_pid(), signal.SIGSTOP)  # hung, not dead: commands just never answer
        with pytest.raises(errors.TransientSendError):
            sender.send(FRIEND, "into a hung browser", ref="hung")
        assert not [p for p in old_pids if procs.alive(p)]
    finally:
        browser.command_timeout_s = saved
    assert sender.send(FRIEND, "after the hang", ref="after-hang").wa_id


def test_a_draft_left_in_the_compose_box_is_replaced(sim: Sim, sender: SeleniumSender) -> None:
    sender.page.open_chat(FRIEND)
    sender.page.call(JS_BOX)  # focuses the visible box
    sender.chrome.driver.execute_cdp_cmd("Input.insertText", {"text": "old draft 😀"})  # typed as a person would
    assert sender.page.settled_box("old draft 😀") == "old draft 😀"
    sender.page.type("the real text 👍\nline 2")
    assert sender.page.call(JS_BOX) == "the real text 👍\nline 2"


# ---- hygiene -----------------------------------------------------------------------------------------------------
def test_recycle_and_close_leave_no_browser_process(sim: Sim, tmp_path: Path) -> None:
    snd = SeleniumSender("recycled", make_settings(tmp_path, sim, WAQ_CHROME_RECYCLE_SENDS="2"))
    try:
        log_in(snd, sim)
        first_pids, starts = snd.chrome.browser_pids(), snd.chrome.restarts
        for i in range(3):
            snd.send(FRIEND, f"recycle {i}", ref=f"r{i}")
        assert snd.chrome.restarts == starts + 1  # recycled on the same profile after 2 sends, still logged in
        assert not [p for p in first_pids if procs.alive(p)]
        pids = snd.chrome.browser_pids()
        assert len(pids) >= 3 and procs.pss_kib(pids) > 0
    finally:
        snd.close()
    assert not [p for p in pids if procs.alive(p)]
    assert snd.chrome.browser_pids() == []
    assert sent_texts(sim, FRIEND) == ["recycle 0", "recycle 1", "recycle 2"]


def test_a_dead_workers_browser_is_cleared_from_the_profile(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sim)
    dead = SeleniumSender("orphan", settings)
    dead.connect()
    orphans = dead.chrome.browser_pids()
    dead.chrome.driver, dead.chrome.pid = None, None  # its worker was SIGKILLed: nobody will close this browser
    heir = SeleniumSender("orphan", settings)
    try:
        assert heir.connect() is SessionState.QR  # the profile was free to start on
        assert not [p for p in orphans if procs.alive(p)]  # chromedriver included
    finally:
        heir.close()


def test_selectors_file_overrides_and_rejects_unknown_names(tmp_path: Path) -> None:
    path = tmp_path / "sel.json"
    path.write_text('{"compose_box": "div.box", "text.invalid_number": "invalid"}')
    loaded = load_selectors(path)
    assert loaded["compose_box"] == "div.box" and loaded.text("invalid_number") == "invalid"
    assert loaded["send_button"] == SELECTORS["send_button"]
    path.write_text('{"compose_bx": "div"}')
    with pytest.raises(ConfigError, match="compose_bx"):
        load_selectors(path)


def test_selectors_check_on_a_chat(sender: SeleniumSender) -> None:
    sender.send(FRIEND, "something to count", ref="count")
    counts = check_selectors(sender, open_phone=FRIEND)
    for name in ("logged_in", "search_box", "compose_box", "chat_row", "message_bubble", "message_id",
                 "status_icon", "message_text"):
        assert counts[name] >= 1, name
    assert counts["qr_canvas"] == 0 and counts["phone_alert"] == 0

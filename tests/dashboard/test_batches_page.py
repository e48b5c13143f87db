"""The dashboard's Batches section and its cancel form in a real headless Chromium: a progress bar per batch, the
pause, resume and cancel buttons its state allows, and a pending message cancelled by id (a sent one refused with
why). Fixtures and helpers from test_dashboard.py."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.dashboard.test_dashboard import browser, log_in, refresh_now, server, text
from tests.helpers.waiting import wait_for
from wa_queue import operations
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus, utcnow

pytestmark = pytest.mark.timeout(240)
__all__ = ["browser", "server"]  # fixtures used by name below


# The rows are drawn again at each refresh: a batch's row is read in one script, never element by element.
SNAPSHOT = """
const row = document.querySelector('#batches-body tr[data-batch="' + arguments[0] + '"]');
if (!row) return null;
const bar = row.querySelector("progress");
const buttons = {};
for (const b of row.querySelectorAll("button")) buttons[b.dataset.action] = !b.disabled;
return {text: row.textContent, value: bar.getAttribute("value"), max: bar.getAttribute("max"), buttons: buttons};
"""


def _row(driver: WebDriver, name: str) -> dict | None:
    return driver.execute_script(SNAPSHOT, name)


def _showing(driver: WebDriver, name: str, words: str) -> bool:
    row = _row(driver, name)
    return row is not None and words in row["text"]


def _click(driver: WebDriver, name: str, action: str) -> None:
    driver.execute_script('document.querySelector(\'#batches-body tr[data-batch="\' + arguments[0] + \'"] '
                          'button[data-action="\' + arguments[1] + \'"]\').click()', name, action)


def test_a_batch_shows_its_progress_and_is_paused_resumed_and_cancelled(server: str, browser: WebDriver) -> None:
    hub, driver = default_hub(), browser
    ids = operations.enqueue_many(hub, [{"phone": "+14155550123", "text": f"r{i}", "batch": "dec24"}
                                        for i in range(4)])
    hub.store.claim(ids[0], owner="w", session="primary", now=utcnow(), lease_s=60)
    hub.store.record_sent(ids[0], owner="w", now=utcnow(), session="primary", wa_id="x")
    log_in(driver, server)
    wait_for(lambda: _row(driver, "dec24") is not None, 15, 0.1, "the batch row")
    row = _row(driver, "dec24")
    assert (row["value"], row["max"]) == ("1", "4")
    assert "1 sent of 4" in row["text"] and "3 pending" in row["text"]
    assert row["buttons"] == {"pause": True, "resume": False, "cancel": True}

    _click(driver, "dec24", "pause")
    wait_for(lambda: _showing(driver, "dec24", "3 paused"), 15, 0.1, "the batch paused")
    assert "pause changed 3" in text(driver, "notice")
    assert all(hub.store.get(i).status is MessageStatus.PAUSED for i in ids[1:])
    _click(driver, "dec24", "resume")
    wait_for(lambda: _showing(driver, "dec24", "3 pending"), 15, 0.1, "the batch resumed")
    _click(driver, "dec24", "cancel")
    wait_for(lambda: _showing(driver, "dec24", "3 cancelled"), 15, 0.1, "the batch cancelled")
    row = _row(driver, "dec24")
    assert row["value"] == "4" and row["buttons"] == {"pause": False, "resume": False, "cancel": False}


def test_the_cancel_form_cancels_a_pending_message_and_says_why_it_cannot(server: str,
                                                                          browser: WebDriver) -> None:
    hub, driver = default_hub(), browser
    pending = operations.enqueue(hub, "+14155550123", "stop me")
    sent = operations.enqueue(hub, "+14155550123", "gone")
    hub.store.claim(sent, owner="w", session="primary", now=utcnow(), lease_s=60)
    hub.store.record_sent(sent, owner="w", now=utcnow(), session="primary", wa_id="x")
    log_in(driver, server)
    for message_id in (pending, sent):
        driver.find_element(By.ID, "cancel-id").send_keys(message_id)
        before = text(driver, "notice") if driver.find_element(By.ID, "notice").is_displayed() else ""
        driver.find_element(By.ID, "cancel-submit").click()
        wait_for(lambda: driver.find_element(By.ID, "notice").is_displayed() and text(driver, "notice") != before,
                 15, 0.1, "the answer")
    assert "already sent" in text(driver, "notice")
    assert hub.store.get(pending).status is MessageStatus.CANCELLED
    assert hub.store.get(sent).status is MessageStatus.SENT
    refresh_now(driver)
    assert text(driver, "count-cancelled") == "1"

"""The dashboard's Archive section in a real headless Chromium: closed (and not fetched) until opened, then a
read-only list of archived messages, paged like the failed list. Fixtures and helpers from test_dashboard.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.dashboard.test_dashboard import browser, log_in, server, severe_console_errors, text, visible
from tests.helpers.waiting import wait_for
from wa_queue.hub import default_hub
from wa_queue.models import NewMessage, utcnow

pytestmark = pytest.mark.timeout(240)
__all__ = ["browser", "server"]  # fixtures used by name below


def archived_messages(count: int) -> list[str]:
    """`count` messages failed 40 days ago and moved to the archive; newest failure last."""
    store, now = default_hub().store, utcnow()
    ids = []
    for i in range(count):
        at = now - timedelta(days=40) + timedelta(minutes=i)
        message, _ = store.insert(NewMessage(phone=f"+141555502{i:02d}", text=f"archived {i}"), at)
        store.claim(message.id, owner="test", session="primary", now=at, lease_s=60)
        store.record_failed(message.id, owner="test", now=at, error_class="InvalidNumber", error_text="not on WA")
        ids.append(message.id)
    assert store.archive_failed(older_than=now - timedelta(days=30), now=now) == count
    return ids


def loaded(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "archive").get_attribute("data-loaded") or ""


def test_archive_section_opens_pages_and_is_read_only(server: str, browser: WebDriver) -> None:
    driver = browser
    ids = archived_messages(21)  # the dashboard shows 20 a page
    log_in(driver, server)
    archive = driver.find_element(By.ID, "archive")
    assert archive.tag_name == "details" and archive.get_attribute("open") is None
    assert not visible(driver, "archive-body") and not loaded(driver)  # closed: nothing fetched
    assert text(driver, "archive-total") == "–" and text(driver, "failed-total") == "0"

    driver.find_element(By.CSS_SELECTOR, "#archive > summary").click()
    wait_for(lambda: loaded(driver) != "", 15, 0.1, "the archive to load")
    assert text(driver, "archive-total") == "21" and text(driver, "archive-pages") == "2"
    rows = driver.find_elements(By.CSS_SELECTOR, "#archive-body tr")
    assert [r.get_attribute("data-id") for r in rows] == ids[::-1][:20]  # newest failure first
    assert "InvalidNumber: not on WA" in rows[0].text and "+14155550220" in rows[0].text
    assert not driver.find_elements(By.CSS_SELECTOR, "#archive button:not(.secondary)")  # no actions
    assert not driver.find_elements(By.CSS_SELECTOR, "#archive-body button")

    before = loaded(driver)
    driver.find_element(By.ID, "archive-next").click()
    wait_for(lambda: loaded(driver) != before, 15, 0.1, "page 2 of the archive")
    assert [r.get_attribute("data-id") for r in driver.find_elements(By.CSS_SELECTOR, "#archive-body tr")] == [ids[0]]
    assert text(driver, "archive-page") == "2" and driver.find_element(By.ID, "archive-next").get_attribute("disabled")

    driver.find_element(By.CSS_SELECTOR, "#archive > summary").click()  # closing hides it again
    assert not visible(driver, "archive-body")
    assert severe_console_errors(driver) == []

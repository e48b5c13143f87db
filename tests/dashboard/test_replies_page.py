"""The dashboard's Latest replies and Suppression list sections in a real headless Chromium: the 20 newest replies
(time, session, from or "number hidden", text, opt change) with a reply's markup shown as text and never run, and the
list (phone, since, by, word) with its count, paged. Fixtures and helpers from test_dashboard.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.dashboard import STATIC_DIR
from tests.dashboard.test_dashboard import (
    ADMIN_KEY,
    browser,
    log_in,
    refresh_now,
    server,
    severe_console_errors,
    text,
    visible,
)
from tests.helpers.constants import ARTIFACTS
from tests.helpers.waiting import wait_for
from wa_queue import operations
from wa_queue.hub import default_hub
from wa_queue.models import InboundMessage, OptChange, utcnow

pytestmark = pytest.mark.timeout(240)
__all__ = ["browser", "server"]  # fixtures used by name below

HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><b>bold</b>'


def replies(count: int) -> list[str]:
    """`count` replies from +1415555030<i>, one a minute up to now (the newest last); their ids."""
    store, now, ids = default_hub().store, utcnow(), []
    for i in range(count):
        reply = InboundMessage(session="primary", chat=f"+1415555030{i % 10}", wa_id=f"wa-{i}", text=f"reply {i}",
                               phone=f"+1415555030{i % 10}", received_at=now - timedelta(minutes=count - i))
        assert store.record_inbound(reply)
        ids.append(reply.id)
    return ids


# The rows are drawn again at each refresh: a table is read in one script, never element by element.
ROWS = """
return [...document.querySelectorAll(arguments[0] + " tr")].map((row) => ({
  id: row.dataset.id || row.dataset.phone, opt: row.dataset.opt,
  cells: [...row.querySelectorAll("td")].map((td) => td.textContent), title: row.children[2].title,
  elements: row.querySelectorAll("img, script, b").length}));
"""


def rows(driver: WebDriver, body: str) -> list[dict]:
    return driver.execute_script(ROWS, "#" + body)


def test_latest_replies_newest_first_as_text(server: str, browser: WebDriver) -> None:
    driver, hub = browser, default_hub()
    older = replies(21)  # one more than the section shows
    hidden = InboundMessage(session="secondary", chat="Ana <i>x</i>", wa_id="wa-h", text=HOSTILE, phone=None,
                            received_at=utcnow())
    stop = InboundMessage(session="primary", chat="+14155550399", wa_id="wa-s", text="STOP", phone="+14155550399",
                          received_at=utcnow() + timedelta(seconds=1), opt=OptChange.OUT)
    for reply in (hidden, stop):
        assert hub.store.record_inbound(reply)
    log_in(driver, server)
    wait_for(lambda: text(driver, "replies-total") == "23", 15, 0.1, "the replies")
    shown = rows(driver, "replies-body")
    assert [r["id"] for r in shown] == [stop.id, hidden.id, *older[::-1][:18]]  # the 20 newest
    first, second = shown[0], shown[1]
    assert first["cells"][1:] == ["primary", "+14155550399", "STOP", "opted out"] and first["opt"] == "out"
    assert second["cells"][1:] == ["secondary", "number hidden", HOSTILE, "—"]
    assert second["title"] == "Ana <i>x</i>" and second["elements"] == 0  # the contact's words, never markup
    assert driver.execute_script("return window.pwned") is None
    assert not visible(driver, "replies-empty")

    driver.set_window_size(390, 1600)  # phone width: the stacked rows fit
    refresh_now(driver)
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than a phone screen"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "dashboard-replies-phone.png"))
    assert severe_console_errors(driver) == []


def test_the_suppression_list_with_its_count_paged(server: str, browser: WebDriver) -> None:
    driver, hub = browser, default_hub()
    log_in(driver, server)
    assert visible(driver, "suppressions-empty") and text(driver, "suppressions-total") == "0"
    assert visible(driver, "replies-empty")
    operations.add_suppression(hub, "+14155550399", by="primary", session="primary", word="stop")
    for i in range(20):
        operations.add_suppression(hub, f"+1415555040{i:02d}"[:12], by="ops")  # some are the same number
    total = operations.list_suppressions(hub)[1]
    assert total > 1
    operations.add_suppression(hub, "+4915112345678", by="cli:ana")
    refresh_now(driver)
    assert text(driver, "suppressions-total") == str(total + 1)
    shown = rows(driver, "suppressions-body")
    assert shown[0]["id"] == "+4915112345678" and shown[0]["cells"][2:] == ["cli:ana", "—"]  # newest first
    assert [r["cells"][2:] for r in shown if r["id"] == "+14155550399"] == [["primary", "stop"]]
    assert text(driver, "suppressions-pages") == "1" and driver.find_element(By.ID, "suppressions-next") \
        .get_attribute("disabled")

    for i in range(20):  # past one page of 20
        operations.add_suppression(hub, f"+4930123456{i:02d}", by="ops")
    refresh_now(driver)
    assert text(driver, "suppressions-pages") == "2" and len(rows(driver, "suppressions-body")) == 20
    driver.find_element(By.ID, "suppressions-next").click()
    wait_for(lambda: text(driver, "suppressions-page") == "2", 15, 0.1, "page 2 of the list")
    assert [r["id"] for r in rows(driver, "suppressions-body")][-1] == "+14155550399"  # the oldest, last
    operations.remove_suppression(hub, "+14155550399", by="ops")
    refresh_now(driver)
    assert "+14155550399" not in [r["id"] for r in rows(driver, "suppressions-body")]
    assert severe_console_errors(driver) == []


def test_the_script_sets_text_never_markup() -> None:
    """Replies are the contacts' own words: the page's script never hands a string to the HTML parser."""
    script = (Path(STATIC_DIR) / "dashboard.js").read_text()
    sinks = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "DOMParser", "createContextualFragment")
    for sink in sinks:
        assert sink not in script, sink
    assert ADMIN_KEY not in script

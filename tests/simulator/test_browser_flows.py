"""The simulator's long flows in a real Chromium: QR linking that survives a browser restart, 4,096-character texts,
faults, banners, logout; the browser check; and strict=False keeping the old immediate page."""

from __future__ import annotations

import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from selenium.webdriver.common.keys import Keys

from tests.helpers.constants import SIM_ACCOUNT as ACCOUNT
from tests.helpers.constants import SIM_DEST as DEST
from tests.simulator.chrome import (
    FAST,
    PASTE,
    QR,
    READ_ROW_TEXT,
    ROWS,
    SEND,
    box,
    css,
    editor_text,
    sim_server,
    start_chrome,
    wait,
    wait_editor,
)
from wa_queue.simulator import SimServer


def long_text() -> str:
    """4,096 code points with newlines, blank lines, runs of spaces and non-BMP emoji (incl. ZWJ and flags)."""
    head = "Hello 👋 world\nline two\n\n  indented 😀👍🏽👨‍👩‍👧🇩🇪 end  \n"
    body = "".join(f"row {i} ✓ 🚀\n" for i in range(300))
    text = head + body
    return (text + "z" * 4096)[:4095] + "🎉"


pytestmark = pytest.mark.browser  # real Chromium against the simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = SimServer(config={**FAST, "starting_chat_s": 0.3, "delivered_after_s": 0.3, "read_after_s": 0.6,
                               "poll_ms": 200}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def profile() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="wa-sim-chrome-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_real_browser_links_survives_restart_and_sends_exact_text(sim: SimServer, profile: str) -> None:
    driver = start_chrome(profile)
    try:
        driver.get(sim.url)
        canvas = wait(driver, lambda d: css(d, QR), "the QR canvas")[0]
        ref = css(driver, "div[data-ref]")[0].get_attribute("data-ref")
        dark_pixel = ("const p = arguments[0].getContext('2d').getImageData(0, 0, 264, 264).data;"
                      "for (let i = 0; i < p.length; i += 4) if (p[i + 3] === 255 && p[i] < 50) return true;"
                      "return false")
        wait(driver, lambda d: d.execute_script(dark_pixel, canvas), "the QR to be drawn")
        assert requests.post(f"{sim.url}/__sim__/sessions/{ACCOUNT}/scan", json={"ref": ref}, timeout=5).ok
        wait(driver, lambda d: css(d, "#pane-side") and css(d, '[aria-label="Search or start a new chat"]'), "login")
    finally:
        driver.quit()

    driver = start_chrome(profile)  # same profile: the device cookie (or its localStorage copy) keeps the link
    try:
        driver.get(sim.url)
        wait(driver, lambda d: css(d, "#pane-side"), "still logged in after a browser restart")
        assert not css(driver, QR)

        text = long_text()
        assert len(text) == 4096
        driver.get(f"{sim.url}/send?phone={DEST}&text={urllib.parse.quote(text, safe='')}")
        wait_editor(driver, box(driver), text)
        assert requests.get(f"{sim.url}/__sim__/sent", timeout=5).json() == []  # pre-fill does not send
        wait(driver, lambda d: css(d, SEND), "the send button")[0].click()

        row_sel = f'{ROWS} div[data-id^="true_{DEST}@c.us_"]'
        row = wait(driver, lambda d: css(d, row_sel), "the outgoing row")[0]
        assert css(driver, f'{ROWS} [data-icon="tail-out"]')
        wait(driver, lambda d: row.find_elements("css selector", '[aria-label=" Read "]'), "the status to reach Read")
        span = row.find_element("css selector", "span.selectable-text")
        assert len(driver.execute_script(READ_ROW_TEXT, span)) < len(text)  # shown in part, until "Read more"
        row.find_element("css selector", 'div[role="button"]').click()
        wait(driver, lambda d: d.execute_script(READ_ROW_TEXT, span) == text, "the full text")
        assert not css(driver, 'footer [aria-label="Send"]')  # the box is empty again: voice-note button
        sent = [m for m in requests.get(f"{sim.url}/__sim__/sent", timeout=5).json() if m["to"] == DEST]
        assert len(sent) == 1 and sent[0]["text"] == text and sent[0]["id"] == row.get_attribute("data-id")

        unregistered = "4915100000001"
        requests.post(f"{sim.url}/__sim__/faults", json={"number": unregistered, "fault": "unregistered"}, timeout=5)
        driver.get(f"{sim.url}/send?phone={unregistered}&text=hello")
        invalid = "Phone number shared via url is invalid."
        dialog = wait(driver, lambda d: [e for e in css(d, 'div[role="dialog"]') if invalid in e.text], "the dialog")[0]
        ok = dialog.find_element("css selector", 'div[role="button"]')
        assert ok.text == "OK" and not css(driver, "footer")
        ok.click()
        wait(driver, lambda d: not css(d, 'div[role="dialog"]'), "the dialog to close")
    finally:
        driver.quit()


def test_real_browser_faults_banner_dropped_click_and_logout(sim: SimServer, browser: Any) -> None:
    other = "4915100000002"
    driver = browser
    driver.get(sim.url)
    if css(driver, QR):  # the shared browser is a new device here
        ref = css(driver, "div[data-ref]")[0].get_attribute("data-ref")
        requests.post(f"{sim.url}/__sim__/sessions/{ACCOUNT}/scan", json={"ref": ref}, timeout=5).raise_for_status()
    wait(driver, lambda d: css(d, "#pane-side"), "logged in")
    wid = driver.execute_script("return JSON.parse(localStorage.getItem('last-wid-md'))")
    assert wid.startswith(f"{ACCOUNT}:") and wid.endswith("@c.us")
    requests.post(f"{sim.url}/__sim__/faults", json={"session": ACCOUNT, "fault": "phone_disconnected"}, timeout=5)
    banner = wait(driver, lambda d: css(d, '[data-testid="alert-phone"]'), "the phone banner")[0]
    assert "Phone not connected" in banner.text
    requests.post(f"{sim.url}/__sim__/faults", json={"session": ACCOUNT, "fault": None}, timeout=5)
    wait(driver, lambda d: not css(d, '[data-testid="alert-phone"]'), "the banner to go")

    requests.post(f"{sim.url}/__sim__/faults", json={"number": other, "fault": "drop_before_click", "count": 1},
                  timeout=5)
    requests.post(f"{sim.url}/__sim__/config", json={"starting_chat_s": 1.5}, timeout=5)
    driver.get(f"{sim.url}/send?phone={other}&text=twice%0Athe%20charm")
    wait(driver, lambda d: [e for e in css(d, 'div[role="dialog"]') if "Starting chat" in e.text], "Starting chat")
    assert not css(driver, "footer")
    requests.post(f"{sim.url}/__sim__/config", json={"starting_chat_s": 0.3}, timeout=5)
    compose = box(driver)
    wait(driver, lambda d: css(d, SEND), "the send button")[0].click()
    wait(driver, lambda d: css(d, ROWS), "the history (system row)")
    assert len(css(driver, ROWS)) == 1  # the click was ignored (checked synchronously by the page)
    assert editor_text(driver, compose) == "twice\nthe charm"
    compose.send_keys(Keys.ENTER)  # Enter sends
    wait(driver, lambda d: css(d, f'div[data-id^="true_{other}@c.us_"] [aria-label=" Read "]'), "a Read receipt")
    assert [m["text"] for m in requests.get(f"{sim.url}/__sim__/sent?to={other}", timeout=5).json()] == [
        "twice\nthe charm"]

    requests.post(f"{sim.url}/__sim__/faults", json={"session": ACCOUNT, "fault": "logged_out"}, timeout=5)
    wait(driver, lambda d: css(d, QR), "the QR page after a logout")
    assert urllib.parse.urlsplit(driver.current_url).query == "post_logout=1"
    assert driver.execute_script("return localStorage.getItem('last-wid-md')") is None


def test_headless_user_agent_gets_the_update_page_and_lenient_mode_the_old_page() -> None:
    strict = sim_server()
    lenient = sim_server(strict=False, config={"input_delay_ms": 150})
    driver = start_chrome(user_agent=None)  # Chromium's own headless user agent
    try:
        assert "HeadlessChrome" in driver.execute_script("return navigator.userAgent")
        for path in ("/", f"/send?phone={DEST}&text=hi"):
            driver.get(strict.url + path)
            body = driver.find_element("tag name", "body").text
            assert "WhatsApp works with Google Chrome 85+" in body
            assert driver.find_element("link text", "UPDATE GOOGLE CHROME").get_attribute("href")
            assert not css(driver, QR) and not css(driver, "#pane-side") and not css(driver, "footer")
        assert strict.state.devices == {}

        driver.get(f"{lenient.url}/send?phone={DEST}&text=")  # strict=False: no browser check, a synchronous box
        compose = box(driver)
        assert driver.execute_script(PASTE, compose, "at once") == "at once"
        assert len(css(driver, 'footer div[contenteditable="true"]')) == 1
        compose.send_keys(Keys.ENTER)
        wait(driver, lambda d: css(d, f"{ROWS} [aria-label]"), "the row")
        assert len(css(driver, ROWS)) == 1  # no system row
        assert [m["text"] for m in requests.get(f"{lenient.url}/__sim__/sent", timeout=5).json()] == ["at once"]
    finally:
        driver.quit()
        strict.stop()
        lenient.stop()

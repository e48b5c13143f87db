"""The dashboard in a real headless Chromium (Selenium) against the real app served by werkzeug in a thread, with a
real redis-server and a SQLite store. A screenshot of each run is saved under tests/artifacts/."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from werkzeug.serving import make_server

from api.app import create_app
from api.dashboard import PATH
from tests.helpers.constants import ARTIFACTS
from tests.helpers.page_browser import page_browser
from tests.helpers.waiting import wait_for
from wa_queue import errors, names, operations
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import MessageStatus, NewMessage, utcnow

pytestmark = pytest.mark.timeout(240)

ADMIN_KEY = "dashboard-admin-key-0123456789"
PRODUCER_KEY = "dashboard-producer-key-012345"
IMPORTED_AT = time.time()  # at collection, before any test: a screenshot older than this is from an earlier run


@pytest.fixture
def server(waq_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("WAQ_API_KEYS", f"ops:admin:{ADMIN_KEY},shop:producer:{PRODUCER_KEY}")
    monkeypatch.setenv("WAQ_WARMUP_CAPS", "20,40,80,150,300")  # the default ramp (waq_env turns it off), on the cards
    close_default_hub()
    httpd = make_server("127.0.0.1", 0, create_app(default_hub()), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="dashboard-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with page_browser("1280,1600", console_log=True) as driver:
        yield driver


# ---- helpers ---------------------------------------------------------------------------------------------------
def text(driver: WebDriver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def visible(driver: WebDriver, element_id: str) -> bool:
    return driver.find_element(By.ID, element_id).is_displayed()


def refresh_now(driver: WebDriver) -> None:
    before = driver.execute_script("return document.body.dataset.refreshed || ''")
    driver.find_element(By.ID, "refresh-now").click()
    wait_for(lambda: driver.execute_script("return document.body.dataset.refreshed || ''") != before, 15, 0.1,
             "the dashboard to refresh")


def log_in(driver: WebDriver, base: str) -> None:
    driver.get(base + PATH)
    wait_for(lambda: visible(driver, "key-panel"), 15, 0.1, "the key form")
    driver.find_element(By.ID, "key-input").send_keys(ADMIN_KEY)
    driver.find_element(By.ID, "key-submit").click()
    wait_for(lambda: visible(driver, "dashboard") and text(driver, "count-pending") != "–", 15, 0.1,
             "the dashboard to load")


def failed_message(phone: str = "+14155550123", error_class: str = "InvalidNumber") -> str:
    store = default_hub().store
    message, _ = store.insert(NewMessage(phone=phone, text="this one failed"), utcnow())
    store.claim(message.id, owner="test", session="primary", now=utcnow(), lease_s=60)
    store.record_failed(message.id, owner="test", now=utcnow(), error_class=error_class,
                        error_text=f"{phone}: {error_class}")
    return message.id


def sent_message(phone: str = "+14155550124") -> str:
    store = default_hub().store
    message, _ = store.insert(NewMessage(phone=phone, text="this one went out"), utcnow())
    store.claim(message.id, owner="test", session="primary", now=utcnow(), lease_s=60)
    store.record_sent(message.id, owner="test", now=utcnow(), session="primary", wa_id="wa-1")
    return message.id


def status_of(message_id: str) -> str | None:
    try:
        return default_hub().store.get(message_id).status.value
    except errors.NotFound:
        return None


def qr_png() -> bytes:
    import qrcode

    buffer = io.BytesIO()
    qrcode.make("waq-test-qr").save(buffer, format="PNG")
    return buffer.getvalue()


def severe_console_errors(driver: WebDriver) -> list[str]:
    # The 409 of a QR request that raced a state change is expected noise; favicon.ico is not served.
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
            and not ("/qr " in entry["message"] and "409" in entry["message"])]


# ---- tests -----------------------------------------------------------------------------------------------------
def test_page_needs_no_key_but_data_does(server: str) -> None:
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(server + PATH, timeout=10) as response:  # noqa: S310 - local test server
        assert response.status == 200
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert b'id="key-form"' in response.read()
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server + "/api/whatsapp/stats", timeout=10)  # noqa: S310
    assert caught.value.code == 401


def test_dashboard_end_to_end(server: str, browser: WebDriver) -> None:
    driver = browser
    driver.get(server + PATH)
    wait_for(lambda: visible(driver, "key-panel"), 15, 0.1, "the key form")
    assert not visible(driver, "dashboard")

    # A wrong key and a producer key are refused by the form, and nothing is kept.
    for key, why in (("not-a-real-key-0123456789", "refused"), (PRODUCER_KEY, "not an admin key")):
        driver.find_element(By.ID, "key-input").send_keys(key)
        driver.find_element(By.ID, "key-submit").click()
        wait_for(lambda why=why: why in text(driver, "key-error"), 15, 0.1, f"the key error ({why})")
        assert driver.execute_script("return sessionStorage.getItem('waq.adminKey')") is None

    driver.find_element(By.ID, "key-input").send_keys(ADMIN_KEY)
    driver.find_element(By.ID, "key-submit").click()
    wait_for(lambda: visible(driver, "dashboard") and text(driver, "count-pending") == "0", 15, 0.1,
             "the dashboard to show empty counts")
    assert driver.execute_script("return sessionStorage.getItem('waq.adminKey')") == ADMIN_KEY
    driver.get_log("browser")  # drain: the refused keys above logged their expected 401 and 403
    assert driver.find_element(By.ID, "overall").get_attribute("data-overall") == "critical"  # no worker runs
    cards = driver.find_elements(By.CSS_SELECTOR, "#sessions .session-card")
    assert [card.get_attribute("data-session") for card in cards] == ["primary", "secondary"]
    sends = driver.find_element(By.CSS_SELECTOR, '[data-session="primary"] .session-sends')
    assert (sends.get_attribute("data-sends"), sends.get_attribute("data-cap")) == ("0", "20")  # warm-up, step 1
    warmup = driver.find_element(By.CSS_SELECTOR, '[data-session="primary"] .session-warmup')
    assert (warmup.get_attribute("data-state"), warmup.text) == ("new", "starts at the first send (20 a day)")

    # Counts follow an enqueue through the 10 s auto-refresh, without a click.
    operations.enqueue(default_hub(), "+14155550100", "hello one")
    operations.enqueue(default_hub(), "+14155550101", "hello two")
    wait_for(lambda: text(driver, "count-pending") == "2", 25, 0.2, "auto-refresh to show 2 pending")

    # A reload keeps the key for this tab: no second prompt.
    driver.refresh()
    wait_for(lambda: visible(driver, "dashboard") and text(driver, "count-pending") == "2", 15, 0.1, "reload")
    assert not visible(driver, "key-panel")

    # Sends per hour and today's sends.
    sent_message()
    refresh_now(driver)
    assert text(driver, "count-sent") == "1"
    bars = driver.find_elements(By.CSS_SELECTOR, "#sends-chart rect.bar")
    assert len(bars) == 24 and bars[-1].get_attribute("data-sent") == "1"
    assert text(driver, "sends-24h") == "1"
    sends = driver.find_element(By.CSS_SELECTOR, '[data-session="primary"] .session-sends')  # the reload replaced it
    assert sends.get_attribute("data-sends") == "1" and sends.text == "1 / 20"

    # Inside the warm-up ramp: today's cap and where the session stands.
    first_send = default_hub().clock().date() - timedelta(days=4)
    default_hub().store.update_session("primary", first_send_day=first_send)
    refresh_now(driver)
    sends = driver.find_element(By.CSS_SELECTOR, '[data-session="primary"] .session-sends')
    assert sends.text == "1 / 40"
    warmup = driver.find_element(By.CSS_SELECTOR, '[data-session="primary"] .session-warmup')
    assert warmup.text == "step 2 of 5, day 2 of 3 · 11 days left"

    # A failed message is retried with a click and is pending again in the store.
    failed_id = failed_message()
    refresh_now(driver)
    assert text(driver, "count-failed") == "1" and text(driver, "failed-total") == "1"
    row = driver.find_element(By.CSS_SELECTOR, f'#failed-body tr[data-id="{failed_id}"]')
    assert "InvalidNumber" in row.text
    row.find_element(By.CSS_SELECTOR, "button.retry-one").click()
    wait_for(lambda: status_of(failed_id) == MessageStatus.PENDING.value, 15, 0.1, "the retried message")
    wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, f'tr[data-id="{failed_id}"]'), 15, 0.1,
             "the row to go")
    assert "pending again" in text(driver, "notice")

    # Delete asks first: dismissing keeps the message, accepting deletes it.
    doomed = failed_message("+14155550177")
    refresh_now(driver)
    delete = driver.find_element(By.CSS_SELECTOR, f'tr[data-id="{doomed}"] button.delete-one')
    delete.click()
    alert = driver.switch_to.alert
    assert "+14155550177" in alert.text
    alert.dismiss()
    assert status_of(doomed) == "failed"
    delete.click()
    driver.switch_to.alert.accept()
    wait_for(lambda: status_of(doomed) is None, 15, 0.1, "the deleted message to be gone")

    # Retry all.
    others = [failed_message(f"+1415555019{i}") for i in range(3)]
    refresh_now(driver)
    # The refresh the delete started may land after this click's (under load): the next one shows the three.
    wait_for(lambda: text(driver, "failed-total") == "3", 15, 0.1, "the three failed messages")
    driver.find_element(By.ID, "retry-all").click()
    wait_for(lambda: all(status_of(i) == "pending" for i in others), 15, 0.1, "retry-all")
    wait_for(lambda: "3 message(s) requeued" in text(driver, "notice"), 15, 0.1, "the retry-all notice")
    # The notice shows as the answer arrives; the list is refreshed after it.
    wait_for(lambda: visible(driver, "failed-empty"), 15, 0.1, "the empty failed list")

    # A session that is down says why under its status, only while it has an error.
    hint = "cannot reach web.whatsapp.com: check the network or WAQ_WHATSAPP_URL"
    default_hub().store.update_session("secondary", status="closed", last_error="net::ERR_NAME_NOT_RESOLVED",
                                   last_error_at=utcnow(), last_error_hint=hint)
    refresh_now(driver)
    error = driver.find_element(By.CSS_SELECTOR, '[data-session="secondary"] .session-error')
    assert error.is_displayed() and "net::ERR_NAME_NOT_RESOLVED" in error.text and hint in error.text
    assert not driver.find_element(By.CSS_SELECTOR, '[data-session="primary"] .session-error').is_displayed()

    # A banned session: its card in red with the page's words, and the words in the health reasons.
    words = "Your phone number is banned from using WhatsApp. Contact support for help."
    default_hub().store.update_session("secondary", status="banned", last_error=words, last_error_at=utcnow(),
                                       last_error_hint=None)
    refresh_now(driver)
    card = driver.find_element(By.CSS_SELECTOR, '#sessions [data-session="secondary"]')
    badge = card.find_element(By.CSS_SELECTOR, ".session-status")
    assert card.get_attribute("data-status") == "banned" and badge.text == "banned"
    assert badge.value_of_css_property("background-color") == "rgba(197, 48, 48, 1)"  # --bad
    assert card.value_of_css_property("border-top-color") == "rgba(197, 48, 48, 1)"
    assert words in card.find_element(By.CSS_SELECTOR, ".session-error").text
    assert f"session secondary is banned: {words}" in text(driver, "overall-reasons")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # save_screenshot writes nothing, and says only False, without it
    assert driver.save_screenshot(str(ARTIFACTS / "dashboard-banned.png"))

    # A session waiting for a scan shows its QR, fetched with the key into a blob: URL.
    default_hub().store.update_session("primary", status="qr")
    default_hub().broker.set(names.session_qr_key("primary"), qr_png(), ex=120)
    refresh_now(driver)
    qr = driver.find_element(By.CSS_SELECTOR, '[data-session="primary"] img.session-qr')
    wait_for(lambda: qr.is_displayed() and driver.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", qr), 15, 0.1, "the QR image")
    assert qr.get_attribute("src").startswith("blob:")
    assert not driver.find_element(By.CSS_SELECTOR, '[data-session="secondary"] img.session-qr').is_displayed()

    # Restart asks the session to reconnect.
    driver.find_element(By.CSS_SELECTOR, 'button.session-restart[data-session="secondary"]').click()
    wait_for(lambda: default_hub().store.get_session("secondary").restart_requested, 15, 0.1, "the restart request")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    refresh_now(driver)
    driver.save_screenshot(str(ARTIFACTS / "dashboard-desktop.png"))

    # Phone width: nothing wider than the screen.
    driver.set_window_size(390, 1600)
    refresh_now(driver)
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than a phone screen"
    driver.save_screenshot(str(ARTIFACTS / "dashboard-phone.png"))

    # Nothing broke in the page (a CSP violation or a script error would be logged as SEVERE).
    assert severe_console_errors(driver) == []

    # Forgetting the key brings the form back and clears the tab's storage.
    driver.find_element(By.ID, "forget-key").click()
    assert visible(driver, "key-panel") and not visible(driver, "dashboard")
    assert driver.execute_script("return sessionStorage.getItem('waq.adminKey')") is None


def test_unverified_is_flagged_and_marked_as_sent(server: str, browser: WebDriver) -> None:
    driver = browser
    unverified = failed_message("+14155550155", error_class="OutcomeUnverified")
    ordinary = failed_message("+14155550156")
    log_in(driver, server)
    wait_for(lambda: text(driver, "failed-total") == "2", 15, 0.1, "the failed list")

    flagged = driver.find_element(By.CSS_SELECTOR, f'#failed-body tr[data-id="{unverified}"]')
    plain = driver.find_element(By.CSS_SELECTOR, f'#failed-body tr[data-id="{ordinary}"]')
    assert flagged.get_attribute("data-unverified") == "true" and plain.get_attribute("data-unverified") == "false"
    flag = flagged.find_element(By.CSS_SELECTOR, ".flag-unverified")
    assert flag.is_displayed() and flag.text == "sent? unverified — check the phone"
    assert "+14155550155" in flag.get_attribute("title")
    assert not plain.find_elements(By.CSS_SELECTOR, ".flag-unverified")
    assert visible(driver, "unverified-hint")
    # Every failed row offers the choice, next to Retry.
    for row in (flagged, plain):
        labels = [b.text for b in row.find_elements(By.CSS_SELECTOR, "td.actions button")]
        assert labels == ["Retry", "Mark as sent", "Delete"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "dashboard-unverified.png"))
    # Phone width with the flag and three buttons: nothing wider than the screen.
    driver.set_window_size(390, 1600)
    refresh_now(driver)
    driver.save_screenshot(str(ARTIFACTS / "dashboard-unverified-phone.png"))
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than a phone screen"
    driver.set_window_size(1280, 1600)

    # Mark as sent asks first: dismissing changes nothing, accepting records it as sent by this admin key.
    button = driver.find_element(By.CSS_SELECTOR, f'tr[data-id="{unverified}"] button.mark-sent-one')
    button.click()
    alert = driver.switch_to.alert
    assert "+14155550155" in alert.text and "phone's chat" in alert.text
    alert.dismiss()
    assert status_of(unverified) == "failed"
    button.click()
    driver.switch_to.alert.accept()
    wait_for(lambda: status_of(unverified) == MessageStatus.SENT.value, 15, 0.1, "the message marked as sent")
    wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, f'tr[data-id="{unverified}"]'), 15, 0.1,
             "the row to go")
    assert "marked as sent" in text(driver, "notice")
    wait_for(lambda: text(driver, "count-sent") == "1" and text(driver, "failed-total") == "1", 15, 0.1, "counts")
    assert not visible(driver, "unverified-hint")  # the one left is an ordinary failure
    message = default_hub().store.get(unverified)
    assert message.sent_by == "primary"
    assert message.history[-1].error_text == "marked as sent by operator api:ops"
    assert status_of(ordinary) == "failed"
    assert severe_console_errors(driver) == []


def test_screenshots_exist_after_the_run(request: pytest.FixtureRequest) -> None:
    """The screenshots were written by this run's tests (they run before this one, in file order, on one xdist
    worker with --dist loadfile): files left by an earlier run are older than this module's import."""
    writers = {
        "test_dashboard_end_to_end": ["dashboard-desktop.png", "dashboard-phone.png", "dashboard-banned.png"],
        "test_unverified_is_flagged_and_marked_as_sent": ["dashboard-unverified.png", "dashboard-unverified-phone.png"],
    }
    ran = {item.name for item in request.session.items} & set(writers)
    if not ran:
        pytest.skip("no test that takes the screenshots is in this run")
    for name in sorted(ran):
        for shot in writers[name]:
            path = ARTIFACTS / shot
            assert path.exists(), f"{name} wrote no {shot}"
            assert path.stat().st_mtime >= IMPORTED_AT, f"{shot} is from an earlier run, not from {name}"
            assert path.stat().st_size > 1000, shot

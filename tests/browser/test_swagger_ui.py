"""Swagger UI (/api/docs) in a real headless Chromium, against the API under a real gunicorn: the person opens the
docs with the key as the password the browser asks for (basic auth, the docs only), sees every operation, clicks
Authorize, enters the X-API-Key, and tries calls: GET /api/whatsapp/health answers 200 with the key and 401 without,
and POST /api/whatsapp/messages queues a message. A screenshot is saved under tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.helpers.constants import ARTIFACTS
from tests.helpers.openapi import ADMIN, ADMIN_KEY, start_api
from tests.helpers.page_browser import page_browser
from tests.helpers.waiting import wait_for
from wa_queue.devstack.redis_server import RedisServer

pytestmark = pytest.mark.timeout(240)

HEALTH = "operations-monitoring-get_health"
ENQUEUE = "operations-messages-post_messages"


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[str]:
    proc, url = start_api(tmp_path_factory.mktemp("swagger-ui"), redis_server)
    yield url
    proc.stop()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with page_browser("1280,2400") as driver:
        yield driver


def open_docs(driver: WebDriver, api_url: str) -> None:
    """What a person does: open /api/docs and answer the browser's password prompt with the key. Selenium cannot
    type into that prompt, so the first visit carries the answer in the URL (Chromium keeps it in its auth cache,
    as after a prompt), and the page is then opened at its plain address, where Swagger UI loads the document."""
    driver.get(api_url.replace("http://", f"http://docs:{ADMIN_KEY}@") + "/api/docs")
    driver.get(api_url + "/api/docs")
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, f"#{HEALTH}"), 20, 0.2, "Swagger UI to show the operations")


def css(driver: WebDriver | WebElement, selector: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, selector)


def authorize(driver: WebDriver, key: str) -> None:
    css(driver, ".auth-wrapper .authorize").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".modal-ux input"), 10, 0.1, "the Authorize dialog")
    css(driver, ".modal-ux input").send_keys(key)
    css(driver, ".modal-ux .modal-btn.auth.authorize").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".modal-ux .modal-btn.auth:not(.authorize)"), 10, 0.1,
             "the key to be taken (Logout shown)")
    css(driver, ".modal-ux .btn-done").click()


def try_it(driver: WebDriver, operation_id: str, body: str | None = None) -> int:
    """Expand an operation, Try it out, (fill the body,) Execute; the status code Swagger UI shows."""
    block = css(driver, f"#{operation_id}")
    if "is-open" not in (block.get_attribute("class") or ""):
        css(block, ".opblock-summary").click()
    wait_for(lambda: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"), 10, 0.1, "Try it out")
    if "cancel" not in (css(block, ".try-out__btn").get_attribute("class") or ""):
        css(block, ".try-out__btn").click()
    if body is not None:
        area = css(block, "textarea.body-param__text")
        area.clear()
        area.send_keys(body)
    status = ".live-responses-table tbody .response-col_status"
    for clear in block.find_elements(By.CSS_SELECTOR, "button.btn-clear"):  # the previous try's answer
        clear.click()
        wait_for(lambda: not block.find_elements(By.CSS_SELECTOR, status), 10, 0.1, "the old answer to go")
    css(block, "button.execute").click()
    cells = wait_for(lambda: block.find_elements(By.CSS_SELECTOR, status), 20, 0.2, f"{operation_id}'s response")
    return int(cells[0].text.split()[0])


def test_docs_need_the_key_and_ask_the_browser_for_it(api_url: str) -> None:
    refused = requests.get(f"{api_url}/api/docs", timeout=5)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert requests.get(f"{api_url}/api/docs", auth=("anyone", "not-a-key-0123456789"), timeout=5).status_code == 401
    assert requests.get(f"{api_url}/api/docs", auth=("anyone", ADMIN_KEY), timeout=5).status_code == 200
    # Basic auth opens the docs only: the API itself still wants X-API-Key.
    assert requests.get(f"{api_url}/api/whatsapp/health", auth=("anyone", ADMIN_KEY), timeout=5).status_code == 401
    assert "WWW-Authenticate" not in requests.get(f"{api_url}/api/whatsapp/health", timeout=5).headers


def test_authorize_then_try_calls(api_url: str, browser: WebDriver) -> None:
    open_docs(browser, api_url)
    spec = requests.get(f"{api_url}/api/swagger.json", headers=ADMIN, timeout=5).json()
    operations = [(method, path) for path, item in spec["paths"].items() for method in item if method != "parameters"]
    blocks = browser.find_elements(By.CSS_SELECTOR, ".opblock")
    assert len(blocks) == len(operations)  # every operation can be tried from the page
    # A lock on every operation but the key-less /healthz: each sends the key given to Authorize.
    assert len(browser.find_elements(By.CSS_SELECTOR, ".opblock .authorization__btn")) == len(operations) - 1

    assert try_it(browser, HEALTH) == 401  # not authorized yet: Swagger UI sent no key (basic auth is not one)
    authorize(browser, ADMIN_KEY)
    assert try_it(browser, HEALTH) == 200
    assert "\"overall\"" in css(browser, f"#{HEALTH} .live-responses-table tbody .response-col_description").text

    assert try_it(browser, ENQUEUE, '{"phone": "+14155550123", "text": "from Swagger UI"}') == 202
    page = requests.get(f"{api_url}/api/whatsapp/stats", headers=ADMIN, timeout=5).json()
    assert page["counts"]["pending"] >= 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "swagger-ui.png"))

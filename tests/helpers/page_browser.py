"""A headless Chromium for tests of the project's own web pages (dashboard, Swagger UI), not of WhatsApp Web."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

# As root Chromium needs --no-sandbox; the rest keeps it off this machine's closed network and /dev/shm.
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync")


@contextlib.contextmanager
def page_browser(window: str, *, console_log: bool = False) -> Iterator[WebDriver]:
    """Chromium with a window of `window` ("1280,1600"); console_log keeps the page's console for get_log."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--window-size={window}")
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()

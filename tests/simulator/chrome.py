"""Real Chromium against the simulator: start it, wait on the page, read it, type into it as a user would (CDP)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wa_queue.simulator import SimServer

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
# A desktop Chrome's user agent: the strict page turns away the default headless one ("HeadlessChrome").
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
COMPOSE = 'footer div[contenteditable="true"][role="textbox"][data-tab="10"]'
# The send control of any profile: a button (to 2026-08) or a div[role="button"] (2026-11, the default).
SEND = 'footer [aria-label="Send"] span[data-icon="wds-ic-send-filled"]'
QR = 'div[data-ref] > canvas[aria-label="Scan this QR code to link a device!"]'
ROWS = '#main div[role="row"]'
# Fast timings for tests that are not about timing; the strict behaviours stay on.
FAST = {"starting_chat_s": 0.1, "ack_delay_s": 0.3, "delivered_after_s": 0.2, "read_after_s": 0.4, "poll_ms": 150,
        "history_delay_ms": 150, "input_delay_ms": 100, "whats_new": False}

# The visible compose box: the real page may also hold one under an aria-hidden ancestor.
VISIBLE_BOX = """
return [...document.querySelectorAll(arguments[0])].find((e) => !e.closest('[aria-hidden="true"]')) || null;
"""
# Plain text of a Lexical editor: <br> is a line break unless it is its parent's placeholder/terminator.
READ_EDITOR = """
let out = '';
const walk = (n) => { for (const c of n.childNodes) {
  if (c.nodeType === 3) out += c.data;
  else if (c.nodeName === 'BR') { if (c.parentNode.__lexicalLineBreak !== c) out += '\\n'; }
  else if (c.nodeName === 'IMG') out += c.alt || '';
  else walk(c); } };
walk(arguments[0]);
return out;
"""
READ_ROW_TEXT = """
let out = '';
const walk = (n) => { for (const c of n.childNodes) {
  if (c.nodeType === 3) out += c.data; else if (c.nodeName === 'BR') out += '\\n';
  else if (c.nodeName === 'IMG') out += c.alt; else walk(c); } };
walk(arguments[0]);
return out;
"""
PASTE = """
const dt = new DataTransfer();
dt.setData('text/plain', arguments[1]);
arguments[0].dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}));
return arguments[0].textContent;
"""


def start_chrome(profile_dir: str | None = None, user_agent: str | None = DESKTOP_UA) -> Any:
    """Headless Chromium; `user_agent=None` keeps its own (HeadlessChrome) user agent."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not Path(CHROMEDRIVER).exists():
        raise RuntimeError(f"{CHROMEDRIVER} is missing: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile_dir = profile_dir or tempfile.mkdtemp(prefix="wa-sim-chrome-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", f"--user-data-dir={profile_dir}"):
        options.add_argument(arg)
    if user_agent:
        options.add_argument(f"--user-agent={user_agent}")
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def wait(driver: Any, predicate: Callable[[Any], Any], what: str, timeout: float = 15) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The page re-renders rows and dialogs; an element that went stale mid-check is simply checked again.
    waiter = WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException])
    return waiter.until(lambda d: predicate(d), message=what)


def css(driver: Any, selector: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def box(driver: Any) -> Any:
    """The visible compose box, waiting for it."""
    return wait(driver, lambda d: d.execute_script(VISIBLE_BOX, COMPOSE), "the visible compose box")


def editor_text(driver: Any, element: Any) -> str:
    return driver.execute_script(READ_EDITOR, element)


def wait_editor(driver: Any, element: Any, text: str) -> None:
    wait(driver, lambda d: editor_text(d, element) == text, f"the editor to hold {text[:40]!r}")


def key(driver: Any, name: str, code: str, vk: int, modifiers: int = 0, commands: list[str] | None = None) -> None:
    """A real key press through the DevTools protocol (trusted events, like a user's)."""
    down: dict[str, Any] = {"type": "rawKeyDown", "key": name, "code": code, "windowsVirtualKeyCode": vk,
                            "modifiers": modifiers}
    if commands:
        down["commands"] = commands
    driver.execute_cdp_cmd("Input.dispatchKeyEvent", down)
    driver.execute_cdp_cmd("Input.dispatchKeyEvent", {"type": "keyUp", "key": name, "code": code,
                                                      "windowsVirtualKeyCode": vk, "modifiers": modifiers})


def clear_box(driver: Any) -> None:
    """What the driver does: Ctrl+A (the selectAll command), then Backspace."""
    key(driver, "a", "KeyA", 65, modifiers=2, commands=["selectAll"])
    key(driver, "Backspace", "Backspace", 8)


def insert_text(driver: Any, text: str) -> None:
    driver.execute_cdp_cmd("Input.insertText", {"text": text})


def sim_server(**kwargs: Any) -> SimServer:
    """A started auto-scan simulator with FAST timings (overridable through `config`)."""
    config = {**FAST, **kwargs.pop("config", {})}
    return SimServer(auto_scan=True, config=config, **kwargs).start()


def account_of(sim: SimServer, driver: Any) -> str:
    """The account the browser's device is linked to (auto-scan), loading the page once if needed."""
    if not sim.state.devices:
        driver.get(sim.url)
    [dev] = [d for d in sim.state.devices_public() if d["linked"]]
    return str(dev["account"])

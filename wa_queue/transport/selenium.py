"""The Selenium sender: drives WhatsApp Web in Chromium, one persistent profile per session.

A send opens `/send?phone=<digits>` (no text: URL prefill is unreliable at 4,096 characters), waits for the compose
box or the invalid-number popup, pastes the whole text into the Lexical editor in one synthetic paste (emoji and
newlines intact, one round trip), checks the box holds exactly that text, clicks Send and waits until the new
outgoing row leaves `Pending`. Errors before the click are TransientSendError; after it, SendOutcomeUnknown, so
the delivery loop reads the chat (find_sent) before ever sending again.

Browser hygiene: Chrome is recycled on the same profile every `chrome_recycle_sends` sends or
`chrome_recycle_hours` hours; a driver that stops answering is killed with its whole process tree (and anything
still holding this profile); close() and an atexit hook leave no Chrome behind.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wa_queue import errors
from wa_queue.models import utcnow
from wa_queue.settings import Settings
from wa_queue.transport import procs
from wa_queue.transport.base import MessageSender, Receipt, SessionState
from wa_queue.transport.selectors import (
    JS_AFTER_CLICK,
    JS_BOX,
    JS_CHECK_CSS,
    JS_CLICK_TEXT,
    JS_PASTE,
    JS_PROBE,
    JS_ROWS,
    Selectors,
    load_selectors,
)

log = logging.getLogger(__name__)

POLL_S = 0.02  # one probe is a ~3 ms round trip; 20 ms keeps the send fast without spinning the CPU
CONNECT_TIMEOUT_S = 60.0  # the real app takes 10-30 s to boot on a slow machine
LOGIN_MARKER = ".waq-logged-in"  # in the profile: this session has been logged in before (QR now = logged out)
STATUS = {"pending": "pending", "sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed",
          "msg-time": "pending", "msg-check": "sent", "msg-dblcheck": "delivered"}  # pre-2026-06 icons
CLICK_TAKEN_S = 2.0  # the page empties the compose box and adds a Pending row at once when it takes the click
CHROME_ARGS = (
    "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-default-browser-check",
    "--disable-extensions", "--disable-features=Translate,MediaRouter,OptimizationHints", "--mute-audio",
    "--lang=en-US", "--window-size=1280,900", "--password-store=basic", "--hide-crash-restore-bubble",
)

_live: weakref.WeakSet[SeleniumSender] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for sender in list(_live):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            sender.close()


def digits_of(phone: str) -> str:
    """'+1 555-123 4567' -> '15551234567' (WhatsApp's /send?phone= takes digits only)."""
    return re.sub(r"\D", "", phone)


class _BrowserDied(Exception):
    """Internal: the driver or Chrome stopped answering; the tree has been killed."""


class SeleniumSender(MessageSender):
    def __init__(self, session: str, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.selectors: Selectors = load_selectors(settings.selectors_file)
        self.base_url = settings.whatsapp_url.rstrip("/")
        self.profile_dir = Path(settings.data_dir) / "profiles" / session
        self.timeout = float(settings.send_timeout_s)
        # Any one WebDriver command taking longer is a hung browser: the HTTP client gives up, the tree is killed.
        self.command_timeout_s = self.timeout + 30
        self.driver: Any = None
        self._driver_pid: int | None = None
        self._started_at = 0.0
        self._sends_since_start = 0
        self._crashed = False  # the browser died under us: state()/send() start it again
        self._saw_qr = False  # a scan is pending: the login it brings must be made durable
        self._lock = threading.RLock()  # one command stream per browser; health checks may come from a thread
        self.sent_count = 0
        self.restarts = 0
        _live.add(self)

    # ---- MessageSender -------------------------------------------------------------------------------------------
    def connect(self) -> SessionState:
        with self._lock:
            try:
                self._ensure_browser()
                return self._persist_login(self._load_app())
            except _BrowserDied:
                return SessionState.CLOSED
            except errors.TransientSendError as exc:  # the page did not load in time
                log.warning("session %s: %s", self.session, exc)
                return SessionState.STARTING

    def state(self) -> SessionState:
        with self._lock:
            if self.driver is None and not self._crashed:
                return SessionState.CLOSED
            try:
                if self.driver is None:
                    self._ensure_browser()
                    return self._persist_login(self._load_app())
                return self._persist_login(self._state_of(self._probe()))
            except _BrowserDied:
                return SessionState.CLOSED

    def send(self, phone: str, text: str, *, ref: str) -> Receipt:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        with self._lock:
            clicked = [False]
            with self._guard(f"send {ref}", clicked):
                self._ensure_browser(recycle=True)
                self._sends_since_start += 1
                page = self._open_chat(phone)
                self._raise_if_unavailable(page)
                before = self._type(text)
                self._click_send(clicked)
                receipt = self._await_new_row(before, text, ref)
            self.sent_count += 1
            return receipt

    def find_sent(self, phone: str, text: str, *, ref: str) -> Receipt | None:
        """The newest outgoing row in the chat with exactly this text, if it left the clock state. A matching row
        still Pending raises SendOutcomeUnknown: WhatsApp will send it when it can, so it must not be sent again,
        nor be recorded as sent yet."""
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        with self._lock, self._guard(f"find_sent {ref}"):
            self._ensure_browser()
            page = self._open_chat(phone)
            if page["invalid"]:
                self._dismiss_invalid()
                return None
            for wa_id, status, body in reversed(self._call(JS_ROWS, True)):
                if body != text or not wa_id:
                    continue
                status = STATUS.get(status or "", status)
                if status == "failed":
                    continue  # refused by the server: it never left
                if status == "pending":
                    raise errors.SendOutcomeUnknown(f"a message to {phone} with this text is still Pending ({wa_id})")
                return Receipt(wa_id=wa_id, status=status or "sent")
            return None

    def is_registered(self, phone: str) -> bool | None:
        with self._lock, self._guard(f"is_registered {phone}"):
            self._ensure_browser()
            try:
                page = self._open_chat(phone)
            except errors.TransientSendError:
                return None  # cannot tell: the send itself will
            if page["invalid"]:
                self._dismiss_invalid()
                return False
            return True

    def receipt_status(self, phone: str, wa_id: str) -> str | None:
        with self._lock, self._guard(f"receipt_status {wa_id}"):
            self._ensure_browser()
            page = self._open_chat(phone)
            if page["invalid"]:
                self._dismiss_invalid()
                return None
            for row_id, status, _ in self._call(JS_ROWS, False):
                if row_id == wa_id:
                    return STATUS.get(status or "", status)
            return None

    def qr_png(self) -> bytes | None:
        with self._lock:
            if self.driver is None:
                return None
            try:
                if not self._probe()["qr"]:
                    return None
                from selenium.webdriver.common.by import By

                return self.driver.find_element(By.CSS_SELECTOR, self.selectors["qr_canvas"]).screenshot_as_png
            except _BrowserDied:
                return None
            except Exception as exc:  # noqa: BLE001 - the code expired or re-rendered between probe and shot
                log.info("session %s: no QR screenshot: %s", self.session, exc)
                return None

    def qr_ref(self) -> str | None:
        """The pairing payload held by the QR's container (data-ref), when a QR is shown."""
        with self._lock:
            if self.driver is None:
                return None
            try:
                page = self._probe()
            except _BrowserDied:
                return None
            return page["ref"] if page["qr"] else None

    def close(self) -> None:
        with self._lock:
            self._crashed = False
            self._stop_browser(graceful=True)

    # ---- processes -----------------------------------------------------------------------------------------------
    def browser_pids(self) -> list[int]:
        """chromedriver and every Chrome process of this session: its descendants, its process group (orphans
        included) and anything else holding the profile."""
        found: list[int] = []
        if self._driver_pid:
            found = [self._driver_pid] if procs.alive(self._driver_pid) else []
            found += procs.descendants(self._driver_pid) + procs.group_members(self._driver_pid)
        found += procs.pids_with_arg(f"--user-data-dir={self.profile_dir}")
        return list(dict.fromkeys(found))  # each once, in order

    def chrome_pid(self) -> int | None:
        """The main browser process (chromedriver's Chrome child), for tests that crash it."""
        if not self._driver_pid:
            return None
        parents = procs.parent_map()
        return next((p for p, pp in parents.items() if pp == self._driver_pid and procs.alive(p)), None)

    # ---- browser lifecycle ---------------------------------------------------------------------------------------
    def _ensure_browser(self, recycle: bool = False) -> None:
        if self.driver is not None and recycle and self._recycle_due():
            log.info("session %s: recycling Chrome after %d sends", self.session, self._sends_since_start)
            self._stop_browser(graceful=True)
            self._start_browser()
            return
        if self.driver is None:
            self._start_browser()  # no app load here: the caller's /send?phone= boots the app anyway

    def _recycle_due(self) -> bool:
        s = self.settings
        if s.chrome_recycle_sends > 0 and self._sends_since_start >= s.chrome_recycle_sends:
            return True
        return s.chrome_recycle_hours > 0 and time.monotonic() - self._started_at >= s.chrome_recycle_hours * 3600

    def _start_browser(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self._kill_profile_holders()  # a crashed worker's Chrome would lock the profile
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        for name in ("SingletonLock", "SingletonSocket", "SingletonCookie"):
            try:
                (self.profile_dir / name).unlink()
            except FileNotFoundError:
                pass
        options = webdriver.ChromeOptions()
        options.binary_location = self.settings.chrome_binary
        for arg in (*CHROME_ARGS, f"--user-data-dir={self.profile_dir}"):
            options.add_argument(arg)
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")
        if self.settings.headless:
            options.add_argument("--headless=new")
        options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
        # An explicit path: Selenium Manager never runs. Its own process group: a Chrome child orphaned by a crash
        # keeps the group, so kill_tree still finds it.
        service = Service(self.settings.chromedriver, popen_kw={"start_new_session": True})
        try:
            driver = webdriver.Chrome(service=service, options=options)
        except Exception as exc:
            if service.process is not None:
                procs.kill_tree(service.process.pid)
            self._kill_profile_holders()
            raise _BrowserDied(f"Chrome did not start: {exc}") from exc
        self.driver = driver
        self._driver_pid = service.process.pid
        self._started_at = time.monotonic()
        self._sends_since_start = 0
        self._crashed = False
        self.restarts += 1
        driver.command_executor._client_config.timeout = self.command_timeout_s
        driver.set_page_load_timeout(self.timeout)
        driver.set_script_timeout(self.timeout)
        agent = driver.execute_script("return navigator.userAgent")
        if "Headless" in agent:  # the real site refuses HeadlessChrome
            driver.execute_cdp_cmd("Emulation.setUserAgentOverride", {"userAgent": agent.replace("Headless", "")})
        bad = driver.execute_script(JS_CHECK_CSS, self.selectors.as_js())
        if bad:
            self._stop_browser(graceful=False)
            raise errors.ConfigError(f"selectors with invalid CSS: {', '.join(bad)} (check WAQ_SELECTORS_FILE)")

    def _stop_browser(self, graceful: bool) -> None:
        driver, self.driver = self.driver, None
        if driver is not None and graceful:
            try:
                # A graceful quit lets Chrome flush the profile (the login lives in its IndexedDB).
                driver.command_executor._client_config.timeout = 15
                driver.quit()
            except Exception as exc:  # noqa: BLE001 - a hung or dead driver is killed below
                log.info("session %s: quit failed (%s); killing the tree", self.session, exc)
        if self._driver_pid:
            procs.kill_tree(self._driver_pid)
            self._driver_pid = None
        self._kill_profile_holders()

    def _kill_profile_holders(self) -> None:
        """Kill whatever still runs on this profile, with the chromedriver that started it: after a worker was
        SIGKILLed its chromedriver and Chrome live on, re-parented to init, in the group the driver leads."""
        pids = procs.pids_with_arg(f"--user-data-dir={self.profile_dir}")
        for group in {procs.pgid_of(p) for p in pids} - {None, os.getpgrp()}:
            if "chromedriver" in procs.cmdline(group):
                pids += [p for p in procs.group_members(group) if p not in pids]
        if pids:
            procs.kill_pids(pids)

    @contextmanager
    def _guard(self, what: str, clicked: list[bool] | None = None) -> Iterator[None]:
        """Turn a dead or hung browser into the interface's errors (and a restart on the next call)."""
        try:
            yield
        except _BrowserDied as exc:
            if clicked and clicked[0]:
                raise errors.SendOutcomeUnknown(f"{what}: browser died after the click: {exc}") from exc
            raise errors.TransientSendError(f"{what}: browser died: {exc}") from exc
        except errors.WaQueueError:  # already the right class (after the click, _await_new_row chose it)
            raise
        except Exception as exc:  # noqa: BLE001 - a page that changed under a command (stale element, JS error)
            kind = errors.SendOutcomeUnknown if clicked and clicked[0] else errors.TransientSendError
            raise kind(f"{what}: {type(exc).__name__}: {_first_line(exc)}") from exc

    def _call(self, script: str, *args: Any) -> Any:
        return self._driver_call(lambda d: d.execute_script(script, self.selectors.as_js(), *args))

    def _driver_call(self, fn: Callable[[Any], Any]) -> Any:
        """One WebDriver command; a browser error or an HTTP time-out kills the whole tree."""
        from selenium.common.exceptions import WebDriverException

        if self.driver is None:
            raise _BrowserDied("no browser")
        try:
            return fn(self.driver)
        except Exception as exc:  # noqa: BLE001 - urllib3 time-outs and socket errors included
            if isinstance(exc, WebDriverException) and _page_level(exc):
                raise  # the page changed under us; the browser itself is fine
            log.warning("session %s: browser command failed (%s: %s); killing Chrome", self.session,
                        type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            self._stop_browser(graceful=False)
            self._crashed = True
            raise _BrowserDied(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc

    # ---- page steps ----------------------------------------------------------------------------------------------
    def _probe(self) -> dict[str, Any]:
        """What the page shows now; all False while a navigation swaps the document under the script."""
        from selenium.common.exceptions import WebDriverException

        try:
            return self._call(JS_PROBE)
        except WebDriverException:
            return dict.fromkeys(("qr", "logged_in", "phone_alert", "computer_alert", "invalid", "starting",
                                  "use_here", "compose", "send_button"), False) | {"ref": None}

    def _navigate(self, url: str) -> None:
        from selenium.common.exceptions import TimeoutException

        try:
            self._driver_call(lambda d: d.get(url))
        except TimeoutException as exc:
            raise errors.TransientSendError(f"page load of {url} took over {self.timeout:g}s") from exc

    def _load_app(self) -> SessionState:
        """Open the app's home page and wait until it shows the QR or the chat list."""
        self._navigate(self.base_url + "/")
        deadline = time.monotonic() + max(self.timeout, CONNECT_TIMEOUT_S)
        while True:
            page = self._probe()
            if page["qr"] or page["logged_in"] or time.monotonic() > deadline:
                return self._state_of(page)
            if page["use_here"]:
                self._use_here()
            time.sleep(POLL_S)

    def _persist_login(self, state: SessionState) -> SessionState:
        """After a scan, restart Chrome gracefully once: Chrome writes cookies and storage to disk lazily (about
        every 30 s), so a crash soon after the scan would otherwise lose the login."""
        if state is not SessionState.CONNECTED or not self._saw_qr:
            return state
        self._saw_qr = False
        log.info("session %s: logged in; restarting Chrome so the profile keeps the login", self.session)
        self._stop_browser(graceful=True)
        self._start_browser()
        return self._load_app()

    def _state_of(self, page: dict[str, Any]) -> SessionState:
        marker = self.profile_dir / LOGIN_MARKER
        if page["qr"]:
            self._saw_qr = True
            return SessionState.LOGGED_OUT if marker.exists() else SessionState.QR
        if page["logged_in"]:
            if not marker.exists():
                marker.touch()
            if page["phone_alert"] or page["computer_alert"]:
                return SessionState.PHONE_DISCONNECTED
            return SessionState.CONNECTED
        return SessionState.STARTING

    def _use_here(self) -> None:
        log.info("session %s: WhatsApp was open in another window; taking it back", self.session)
        self._call(JS_CLICK_TEXT, "use_here", self.selectors.text("use_here"))
        time.sleep(0.2)

    def _open_chat(self, phone: str) -> dict[str, Any]:
        """Open /send?phone=<digits> and wait for the compose box or the invalid-number popup."""
        digits = digits_of(phone)
        if not digits:
            raise errors.InvalidNumber(f"{phone!r} has no digits")
        self._navigate(f"{self.base_url}/send?phone={digits}")
        deadline = time.monotonic() + self.timeout
        while True:
            page = self._probe()
            if page["use_here"]:
                self._use_here()
            elif page["qr"]:
                raise errors.SessionLoggedOut(f"session {self.session} shows the QR code: it needs a scan")
            if page["invalid"] or (page["compose"] and not page["starting"]):
                return page
            if time.monotonic() > deadline:
                raise errors.TransientSendError(
                    f"timed out after {self.timeout:g}s on /send?phone={digits} waiting for compose_box "
                    f"({self.selectors['compose_box']}) or invalid_dialog; page: {_brief(page)}")
            time.sleep(POLL_S)

    def _raise_if_unavailable(self, page: dict[str, Any]) -> None:
        if page["invalid"]:
            self._dismiss_invalid()
            raise errors.InvalidNumber(f"WhatsApp says the number is invalid ({self.selectors.text('invalid_number')})")
        if page["phone_alert"] or page["computer_alert"]:
            raise errors.SessionUnavailable(f"session {self.session}: the phone is not connected (phone_alert)")

    def _dismiss_invalid(self) -> None:
        self._call(JS_CLICK_TEXT, "invalid_ok", "OK")

    def _type(self, text: str) -> list[str]:
        """Put text into the compose box; returns the outgoing row ids seen before (to spot the new row)."""
        result = self._call(JS_PASTE, text)
        if result.get("dirty"):
            self._clear_box()
            result = self._call(JS_PASTE, text)
        if "error" in result or result.get("dirty"):
            raise errors.TransientSendError(
                f"compose_box ({self.selectors['compose_box']}) " + ("disappeared" if "error" in result else
                                                                     "holds a draft that would not clear"))
        if result["text"] != text:
            log.info("session %s: paste not taken as is (%d of %d chars); typing line by line", self.session,
                     len(result["text"]), len(text))
            self._clear_box()
            self._type_lines(text)
            typed = self._call(JS_BOX)
            if typed != text:
                self._clear_box()
                raise errors.TransientSendError(
                    f"compose_box ({self.selectors['compose_box']}) holds {len(typed or '')} characters that differ "
                    f"from the {len(text)} typed; not sent")
        return result["ids"]

    def _clear_box(self) -> None:
        """Empty the compose box with real Ctrl+A, Backspace key events (the editor ignores DOM edits)."""
        if not self._call(JS_BOX):
            return
        select = {"key": "a", "code": "KeyA", "windowsVirtualKeyCode": 65, "modifiers": 2, "commands": ["selectAll"]}
        back = {"key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8}
        for key in (select, back):
            for kind in ("rawKeyDown", "keyUp"):
                self._driver_call(lambda d, e={**key, "type": kind}: d.execute_cdp_cmd("Input.dispatchKeyEvent", e))

    def _type_lines(self, text: str) -> None:
        """The slow path: CDP text insertion per line (any Unicode) and a real Shift+Enter between lines."""
        enter = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "modifiers": 8}  # 8 = Shift
        down = {**enter, "type": "keyDown", "text": "\r", "unmodifiedText": "\r"}  # the text makes it edit
        for i, line in enumerate(text.split("\n")):
            if i:
                for event in (down, {**enter, "type": "keyUp"}):
                    self._driver_call(lambda d, e=event: d.execute_cdp_cmd("Input.dispatchKeyEvent", e))
            if line:
                self._driver_call(lambda d, t=line: d.execute_cdp_cmd("Input.insertText", {"text": t}))

    def _click_send(self, clicked: list[bool]) -> None:
        """Click the send button; `clicked[0]` is True from the moment the click command goes out."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By

        css = self.selectors["send_button"]
        deadline = time.monotonic() + min(self.timeout, 10.0)
        while True:
            try:
                button = self._driver_call(lambda d: d.find_element(By.CSS_SELECTOR, css))
                # A browser that dies from here on leaves the outcome unknown: the click can reach the page and
                # send before its reply is lost (the chaos run saw a message sent twice when Chrome was killed
                # during the click and the error was taken for one before it).
                clicked[0] = True
                self._driver_call(lambda d, b=button: b.click())
                return
            except WebDriverException as exc:  # not there yet (it appears once there is text), or re-rendered
                clicked[0] = False  # refused by the page (_driver_call re-raises only those): nothing was clicked
                if time.monotonic() > deadline:
                    raise errors.TransientSendError(f"send_button ({css}) not clickable: {_first_line(exc)}") from exc
            time.sleep(POLL_S)

    def _await_new_row(self, before: list[str], text: str, ref: str) -> Receipt:
        """Wait until the row the click created leaves Pending (then follow it receipt_follow_s towards Read).
        Raises TransientSendError only when the page proves nothing left; otherwise SendOutcomeUnknown."""
        seen = set(before)
        clicked_at = time.monotonic()
        deadline = clicked_at + self.timeout
        left: Receipt | None = None
        follow_until = 0.0
        while True:
            page = self._call(JS_AFTER_CLICK)
            new = [r for r in page["rows"] if r[0] and r[0] not in seen]
            mine = [r for r in new if r[2] == text] or new  # the real page truncates long texts (Read more)
            if mine:
                wa_id, raw, _ = mine[-1]
                status = STATUS.get(raw or "", raw or "")
                if status == "failed":
                    raise errors.TransientSendError(f"message {ref}: WhatsApp refused it (failed_icon on {wa_id})")
                if status and status != "pending":
                    if left is None:
                        follow_until = time.monotonic() + self.settings.receipt_follow_s
                    left = Receipt(wa_id=wa_id, status=status, sent_at=left.sent_at if left else utcnow())
                    if status == "read" or time.monotonic() >= follow_until:
                        return left
            elif page["box"] == text and time.monotonic() - clicked_at > CLICK_TAKEN_S:
                # Taking the click empties the box and adds a row in the same handler: this one was not taken.
                raise errors.TransientSendError(
                    f"message {ref}: the click on send_button was not taken (compose_box still holds the text, "
                    "no new outgoing_row)")
            if time.monotonic() > deadline:
                if left is not None:
                    return left
                where = "the new outgoing_row stayed Pending (status_icon)" if mine else \
                    f"no new outgoing_row ({self.selectors['outgoing_row']}) appeared"
                raise errors.SendOutcomeUnknown(f"message {ref}: {where} within {self.timeout:g}s after the click")
            time.sleep(POLL_S)


def _page_level(exc: Exception) -> bool:
    """WebDriver errors about the page, not the browser (the browser is fine; the caller decides)."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        ElementNotInteractableException,
        InvalidSelectorException,
        JavascriptException,
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )

    if isinstance(exc, ElementClickInterceptedException | ElementNotInteractableException | TimeoutException |
                  InvalidSelectorException | JavascriptException | NoSuchElementException |
                  StaleElementReferenceException):
        return True
    # A script that ran while a navigation replaced the document.
    return any(mark in str(exc) for mark in ("context was destroyed", "Cannot find context", "document unloaded"))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _brief(page: dict[str, Any]) -> str:
    return ", ".join(k for k, v in page.items() if v is True) or "nothing recognisable"

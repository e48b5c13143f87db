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
import functools
import logging
import os
import re
import statistics
import subprocess
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from wa_queue import errors
from wa_queue.models import utcnow
from wa_queue.private import private_dir
from wa_queue.settings import Settings
from wa_queue.transport import procs
from wa_queue.transport.base import BeforeClick, MessageSender, Receipt, SessionState
from wa_queue.transport.chat import (
    PAGE_CLOCK_WARN_S,
    STATUS,
    Click,
    clock_offset_ms,
    new_row,
    normalise,
    snapshot_picture,
    verdict,
)
from wa_queue.transport.chrome_options import apply_blocking, chrome_args
from wa_queue.transport.sandbox import SandboxChoice, sandbox_choice, unusable_reason
from wa_queue.transport.selectors import (
    JS_ACCOUNT,
    JS_AFTER_CLICK,
    JS_BOX,
    JS_CHAT,
    JS_CHECK_CSS,
    JS_CLICK_TEXT,
    JS_EXPAND,
    JS_MARK_CHAT,
    JS_PASTE,
    JS_PROBE,
    Selectors,
    load_selectors,
)

log = logging.getLogger(__name__)

POLL_S = 0.02  # one probe is a ~3 ms round trip; 20 ms keeps the send fast without spinning the CPU
CONNECT_TIMEOUT_S = 60.0  # the real app takes 10-30 s to boot on a slow machine
CONNECT_SETTLE_S = 1.0  # how long a chat list must show without a banner before the session counts as connected
LOGIN_MARKER = ".waq-logged-in"  # in the profile: this session has been logged in before (QR now = logged out)
CLICK_TAKEN_S = 2.0  # the page empties the compose box and adds a Pending row at once when it takes the click
# Lexical applies input after the script that sent it, up to about half a second later: a box whose content differs
# from what was put in counts as settled only after holding still this long; one that holds it, after BOX_STEADY_S.
INPUT_SETTLE_S = 0.7
BOX_STEADY_S = 0.15
BOX_MAX_WAIT_S = 3.0
# A send uses a chat already open only when the number check opened it for this very message, moments before: an
# older page may not show yet what changed since (a banner that the page's next poll would bring).
SEND_REUSE_S = 10.0
# WAQ_CHROME_MAX_PSS_MB is checked at most this often (sends, seconds): Chrome grows slowly, and one reading walks /proc
# and every Chrome process's smaps.
PSS_CHECK_SENDS = 10
PSS_CHECK_S = 60.0
# A chat showing no row at all (not even its system row) has to hold still this many times longer, and at least
# EMPTY_CHAT_MIN_S, before its picture is taken as empty (then None: no picture, chat.snapshot_picture).
EMPTY_CHAT_SETTLES = 4
EMPTY_CHAT_MIN_S = 3.0
# The page clock's offset is the median of this many recent sends' samples: one misread row cannot move it.
OFFSET_SAMPLES = 15
# Enter in WhatsApp's editor sends, unless the user turned "Enter is send" off: then it adds a line. The key events
# are real ones (CDP), as the editor wants.
_ENTER = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
_PROBE_KEYS = ("qr", "logged_in", "phone_alert", "computer_alert", "invalid", "starting", "use_here", "compose",
               "send_button", "popup", "update_browser", "loading", "post_logout", "banned", "restricted")
_live: weakref.WeakSet[SeleniumSender] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for sender in list(_live):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            sender.close()


@functools.lru_cache(maxsize=4)
def desktop_user_agent(binary: str) -> str:
    """What a person's desktop Chrome of the installed version says: WhatsApp shows an "update your browser" page to
    HeadlessChrome (the real page, and the strict simulator)."""
    major = "131"
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20).stdout
        found = re.search(r"(\d+)\.\d+\.\d+\.\d+", out)
        major = found.group(1) if found else major
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("no version from %s --version (%s); the user agent says Chrome/%s", binary, exc, major)
    return (f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 "
            "Safari/537.36")


def digits_of(phone: str) -> str:
    """'+1 555-123 4567' -> '15551234567' (WhatsApp's /send?phone= takes digits only)."""
    return re.sub(r"\D", "", phone)


# What a state says when nothing more precise is known (last_problem).
_PROBLEMS = {
    SessionState.QR: "logged out: scan the QR code",
    SessionState.LOGGED_OUT: "logged out: scan the QR code",
    SessionState.PHONE_DISCONNECTED: "the phone is not connected",
    SessionState.STARTING: "WhatsApp Web did not finish loading",
}


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
        self._pss_checked = (0, 0.0)  # (sends since start, monotonic time) of the last WAQ_CHROME_MAX_PSS_MB reading
        self._crashed = False  # the browser died under us: state()/send() start it again
        self._saw_qr = False  # a scan is pending: the login it brings must be made durable
        self._chat: str | None = None  # the digits of the chat this document has open (see _open_chat)
        self._chat_opened = 0.0  # when it was opened (monotonic)
        self._checked: str | None = None  # the digits is_registered just opened, for the send that follows
        self._opened_ids: list[str] | None = None  # the open chat's row ids when it was opened (_settled_rows)
        self._offsets: deque[float] = deque(maxlen=OFFSET_SAMPLES)  # page clock minus ours, ms, per send
        self._problem: str | None = None  # why the session is not connected (last_problem), None when it is
        self.sandbox: SandboxChoice | None = None  # decided at the first Chrome start (WAQ_CHROME_SANDBOX)
        self._lock = threading.RLock()  # one command stream per browser; health checks may come from a thread
        self.sent_count = 0
        self.restarts = 0
        _live.add(self)

    # ---- MessageSender -------------------------------------------------------------------------------------------
    def connect(self) -> SessionState:
        with self._lock:
            self._problem = None
            try:
                self._ensure_browser()
                return self._noted(self._persist_login(self._load_app()))
            except _BrowserDied as exc:
                self._problem = str(exc)
                return SessionState.CLOSED
            except errors.TransientSendError as exc:  # the page did not load in time
                log.warning("session %s: %s", self.session, exc)
                self._problem = str(exc)
                return SessionState.STARTING

    def state(self) -> SessionState:
        with self._lock:
            if self.driver is None and not self._crashed:
                return SessionState.CLOSED
            try:
                if self.driver is None:
                    self._ensure_browser()
                    return self._noted(self._persist_login(self._load_app()))
                return self._noted(self._persist_login(self._state_of(self._probe())))
            except _BrowserDied as exc:
                self._problem = str(exc)
                return SessionState.CLOSED

    def send(self, phone: str, text: str, *, ref: str, before_click: BeforeClick | None = None) -> Receipt:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        with self._lock:
            clicked = [False]
            with self._guard(f"send {ref}", clicked):
                self._ensure_browser(recycle=True)
                self._sends_since_start += 1
                checked, self._checked = self._checked, None
                page = self._open_chat(phone, reuse_s=SEND_REUSE_S if checked == digits_of(phone) else -1.0)
                self._raise_if_unavailable(page)
                self._type(text)
                self._raise_if_banned(self._probe())  # a notice that came while typing: still before any click
                picture = snapshot_picture(self._settled_rows(ref))
                if before_click is not None and not before_click(picture):
                    self._clear_box()
                    raise errors.SendAborted(f"send {ref}: the store refused the mark (the lease moved on); "
                                             "nothing was clicked")
                clicked_ms = time.time() * 1000
                self._click_send(clicked, text)
                receipt = self._await_new_row(picture, text, ref, clicked_ms)
            self.sent_count += 1
            return receipt

    def find_sent(self, phone: str, text: str, *, ref: str, since: datetime | None = None,
                  picture: Collection[str] | None = None, taken: Collection[str] = ()) -> Receipt | None:
        """The row the click in doubt made, if it left the clock state (transport/chat.py's cases). None only from a
        chat positively read (see MessageSender.find_sent); the message's row still Pending raises
        SendOutcomeUnknown: WhatsApp will send it when it can, so it must not be sent again, nor recorded yet."""
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        click = Click(since_ms=since.timestamp() * 1000 if since else None,
                      picture=tuple(picture) if picture is not None else None, taken=frozenset(taken),
                      offset_ms=self._offset_ms())
        with self._lock, self._guard(f"find_sent {ref}"):
            self._ensure_browser()
            reused = self._chat == digits_of(phone)
            page = self._open_chat(phone)
            if page["invalid"]:
                self._dismiss_invalid()
                return None
            try:
                return verdict(self._settled_chat(ref), text, click, phone, self.selectors)
            except errors.SendOutcomeUnknown:
                if not reused:
                    raise
            # Still Pending in a page open since the click: a fresh load shows what the servers have now.
            self._chat = None
            self._open_chat(phone)
            return verdict(self._settled_chat(ref), text, click, phone, self.selectors)

    def page_clock_offset_s(self) -> float | None:
        offset = self._offset_ms()
        return None if offset is None else round(offset / 1000, 1)

    def _offset_ms(self) -> float | None:
        return statistics.median(self._offsets) if self._offsets else None

    def is_registered(self, phone: str) -> bool | None:
        """Opens the chat as the send will: a send right after finds it open and loads nothing."""
        with self._lock, self._guard(f"is_registered {phone}"):
            self._ensure_browser()
            try:
                page = self._open_chat(phone)
            except errors.TransientSendError:
                return None  # cannot tell: the send itself will
            if page["invalid"]:
                self._dismiss_invalid()
                return False
            self._checked = digits_of(phone)
            return True

    def receipt_status(self, phone: str, wa_id: str) -> str | None:
        with self._lock, self._guard(f"receipt_status {wa_id}"):
            self._ensure_browser()
            page = self._open_chat(phone)  # no load when that chat is open (right after its send)
            if page["invalid"]:
                self._dismiss_invalid()
                return None
            for row in self._call(JS_CHAT)["out"]:
                if row["id"] == wa_id:
                    return STATUS.get(row["status"] or "", row["status"])
            return None

    def account_number(self) -> str | None:
        """The account's own number from the page's localStorage (last-wid-md, or last-wid on older builds)."""
        with self._lock:
            if self.driver is None:
                return None
            try:
                return self._driver_call(lambda d: d.execute_script(JS_ACCOUNT))
            except Exception as exc:  # noqa: BLE001 - a page between documents: ask again at the next check
                log.debug("session %s: no account number: %s", self.session, exc)
                return None

    def last_problem(self) -> str | None:
        return self._problem

    def _noted(self, state: SessionState) -> SessionState:
        """Remember what the page says about a session that is not connected (last_problem)."""
        if state is SessionState.CONNECTED:
            self._problem = None
        elif state in _PROBLEMS:
            self._problem = _PROBLEMS[state]
        return state

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
        if s.chrome_recycle_hours > 0 and time.monotonic() - self._started_at >= s.chrome_recycle_hours * 3600:
            return True
        if s.chrome_max_pss_mb <= 0:
            return False
        sends, at = self._pss_checked
        if self._sends_since_start < sends or at < self._started_at:  # Chrome restarted since: count from its start
            sends, at = 0, self._started_at
        now = time.monotonic()
        if self._sends_since_start - sends < PSS_CHECK_SENDS and now - at < PSS_CHECK_S:
            return False
        self._pss_checked = (self._sends_since_start, now)
        pss_mib = procs.pss_kib(self.browser_pids()) / 1024
        if pss_mib <= s.chrome_max_pss_mb:
            return False
        log.info("session %s: Chrome's PSS %.0f MiB is over WAQ_CHROME_MAX_PSS_MB (%d)", self.session, pss_mib,
                 s.chrome_max_pss_mb)
        return True

    def prepare_profile(self) -> Path:
        """The profile folder, created 0700 with the profiles folder (it holds the WhatsApp login), without the
        locks a dead Chrome left."""
        private_dir(self.profile_dir)
        for name in ("SingletonLock", "SingletonSocket", "SingletonCookie"):
            try:
                (self.profile_dir / name).unlink()
            except FileNotFoundError:
                pass
        return self.profile_dir

    def _start_browser(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self._kill_profile_holders()  # a crashed worker's Chrome would lock the profile
        self.prepare_profile()
        options = webdriver.ChromeOptions()
        options.binary_location = self.settings.chrome_binary
        if self.sandbox is None:
            self.sandbox = sandbox_choice(self.settings.chrome_sandbox)
            log.log(logging.WARNING if self.sandbox.fallback else logging.INFO, "session %s: %s", self.session,
                    self.sandbox.describe())
        memory = self.settings.chrome_memory_options
        for arg in (*chrome_args(memory), *self.sandbox.args, f"--user-data-dir={self.profile_dir}"):
            options.add_argument(arg)
        if self.settings.headless:
            options.add_argument("--headless=new")
        # Look like a person's Chrome: a desktop agent (flag and DevTools, below) and no automation switches.
        agent = self.settings.chrome_user_agent or desktop_user_agent(self.settings.chrome_binary)
        options.add_argument(f"--user-agent={agent}")
        options.add_argument("--disable-blink-features=AutomationControlled")
        options.add_experimental_option("excludeSwitches", ["enable-automation"])
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
            # chromedriver only says "Chrome instance exited": name the sandbox when it is the likely cause.
            why = unusable_reason(self.sandbox)
            raise _BrowserDied(f"Chrome did not start: {why}; {_first_line(exc)}" if why
                               else f"Chrome did not start: {exc}") from exc
        self.driver = driver
        self._driver_pid = service.process.pid
        self._started_at = time.monotonic()
        self._sends_since_start = 0
        self._crashed = False
        self.restarts += 1
        driver.command_executor._client_config.timeout = self.command_timeout_s
        driver.set_page_load_timeout(self.timeout)
        driver.set_script_timeout(self.timeout)
        # The flag covers the first request; the override covers workers and anything the flag misses.
        driver.execute_cdp_cmd("Network.setUserAgentOverride", {"userAgent": agent, "acceptLanguage": "en-US,en",
                                                                 "platform": "Linux x86_64"})
        apply_blocking(driver, memory)  # before the first page load
        self._chat = None
        bad = driver.execute_script(JS_CHECK_CSS, self.selectors.as_js())
        if bad:
            self._stop_browser(graceful=False)
            raise errors.ConfigError(f"selectors with invalid CSS: {', '.join(bad)} (check WAQ_SELECTORS_FILE)")

    def _stop_browser(self, graceful: bool) -> None:
        driver, self.driver = self.driver, None
        self._chat = None
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
            return dict.fromkeys(_PROBE_KEYS, False) | {"ref": None, "chat": None}

    def _navigate(self, url: str) -> None:
        from selenium.common.exceptions import TimeoutException

        self._chat = None
        try:
            self._driver_call(lambda d: d.get(url))
        except TimeoutException as exc:
            raise errors.TransientSendError(f"page load of {url} took over {self.timeout:g}s") from exc
        except _BrowserDied as exc:  # e.g. net::ERR_NAME_NOT_RESOLVED: say which page (last_problem)
            raise _BrowserDied(f"page load of {url} failed: {exc}") from exc

    def _load_app(self) -> SessionState:
        """Open the app's home page and wait until it shows the QR or the chat list."""
        self._navigate(self.base_url + "/")
        deadline = time.monotonic() + max(self.timeout, CONNECT_TIMEOUT_S)
        settled_at: float | None = None
        while True:
            page = self._probe()
            if page["qr"] or page["banned"] or page["restricted"] or time.monotonic() > deadline:
                return self._state_of(page)
            if page["logged_in"]:
                # The page draws its banners (phone offline, a restriction) after its first exchange with the
                # servers: a chat list alone is not yet a connected session, so it must hold for a moment first.
                settled_at = settled_at or time.monotonic() + CONNECT_SETTLE_S
                if page["phone_alert"] or page["computer_alert"] or time.monotonic() >= settled_at:
                    return self._state_of(page)
            if page["update_browser"]:
                self._problem = "WhatsApp shows its 'update your browser' page: it refuses the user agent"
                log.error("session %s: WhatsApp shows its 'update your browser' page: it refuses the user agent "
                          "(set WAQ_CHROME_USER_AGENT to a current desktop Chrome's)", self.session)
                return SessionState.CLOSED
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
        words = _notice(page)
        if words:  # before the QR: a banned account's page may also offer to link again, which would not help
            self._problem = words
            return SessionState.BANNED
        if page["qr"]:
            self._saw_qr = True
            return SessionState.LOGGED_OUT if marker.exists() or page["post_logout"] else SessionState.QR
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

    def _open_chat(self, phone: str, reuse_s: float = float("inf")) -> dict[str, Any]:
        """Open /send?phone=<digits> and wait for the compose box or the invalid-number popup. Every such navigation
        is a full load (the app boots again), so a chat this document already has open is used as it is."""
        digits = digits_of(phone)
        if not digits:
            raise errors.InvalidNumber(f"{phone!r} has no digits")
        if self._chat == digits and time.monotonic() - self._chat_opened <= reuse_s:
            page = self._probe()
            if page["chat"] == digits and page["compose"] and not any(
                    page[k] for k in ("invalid", "starting", "use_here", "qr", "popup", "update_browser",
                                      "phone_alert", "computer_alert", "banned", "restricted")):
                return page
        self._navigate(f"{self.base_url}/send?phone={digits}")
        deadline = time.monotonic() + self.timeout
        while True:
            page = self._probe()
            self._raise_if_banned(page)
            if page["use_here"]:
                self._use_here()
            elif page["qr"]:
                raise errors.SessionLoggedOut(f"session {self.session} shows the QR code: it needs a scan")
            elif page["update_browser"]:
                raise errors.TransientSendError("WhatsApp shows its 'update your browser' page: it refuses the user "
                                                "agent (set WAQ_CHROME_USER_AGENT to a current desktop Chrome's)")
            elif page["popup"]:
                self._call(JS_CLICK_TEXT, "popup_button", self.selectors.text("popup_ok"))  # "what's new"
            if page["invalid"] or (page["compose"] and not page["starting"] and not page["popup"]):
                if page["compose"]:
                    self._call(JS_MARK_CHAT, digits)
                    self._chat = page["chat"] = digits
                    self._chat_opened = time.monotonic()
                    self._opened_ids = list(self._call(JS_CHAT)["ids"])  # what _settled_rows counts from
                return page
            if time.monotonic() > deadline:
                raise errors.TransientSendError(
                    f"timed out after {self.timeout:g}s on /send?phone={digits} waiting for compose_box "
                    f"({self.selectors['compose_box']}) or invalid_dialog; page: {_brief(page)}")
            time.sleep(POLL_S)

    def _settled_rows(self, ref: str) -> dict[str, Any]:
        """The open chat's row ids once they have held still for chat_settle_s, counted from the chat's opening when
        nothing changed since (typing usually covers it). The history renders after the compose box: a row of it
        missing from the picture would later look new, and an older message with the same text would pass for the
        one just clicked. Before the click, so a chat that never settles is a plain transient error."""
        settle = self.settings.chat_settle_s
        deadline = time.monotonic() + self.timeout
        last, still_since = self._opened_ids, self._chat_opened
        while True:
            snapshot = self._call(JS_CHAT)
            ids = list(snapshot["ids"])
            now = time.monotonic()
            if last is None or ids != last:
                last, still_since = ids, now
            elif now - still_since >= (settle if ids else max(EMPTY_CHAT_SETTLES * settle, EMPTY_CHAT_MIN_S)):
                return snapshot  # an empty list is waited on longer: it says nothing until the history renders
            if now > deadline:
                raise errors.TransientSendError(
                    f"send {ref}: the chat's rows did not hold still within {self.timeout:g}s before the click "
                    f"({len(ids)} chat_row, {self.selectors['chat_row']}); not sent")
            time.sleep(POLL_S * 5)

    def _settled_chat(self, ref: str) -> dict[str, Any]:
        """The open chat's rows once they have held still for chat_settle_s (history renders after the compose box,
        and an empty list right after opening says nothing); rows cut behind "Read more" are expanded first."""
        settle = self.settings.chat_settle_s
        deadline = time.monotonic() + self.timeout
        expanded = False
        last: Any = None
        still_since = time.monotonic()
        while True:
            snapshot = self._call(JS_CHAT)
            shape = (snapshot["ids"], [(r["status"], r["text"], r["more"]) for r in snapshot["out"]])
            now = time.monotonic()
            if shape != last:
                last, still_since = shape, now
            elif snapshot["rows"] and now - still_since >= settle:
                if expanded or not any(r["more"] for r in snapshot["out"]):
                    return snapshot
                self._call(JS_EXPAND)
                expanded, last = True, None
            if now > deadline:
                raise errors.TransientSendError(
                    f"find_sent {ref}: the chat did not finish loading within {self.timeout:g}s "
                    f"({snapshot['rows']} chat_row, {self.selectors['chat_row']})")
            time.sleep(POLL_S * 5)

    def _raise_if_banned(self, page: dict[str, Any]) -> None:
        words = _notice(page)
        if words:
            self._problem = words
            raise errors.SessionBanned(f"session {self.session}: WhatsApp says: {words}")

    def _raise_if_unavailable(self, page: dict[str, Any]) -> None:
        self._raise_if_banned(page)
        if page["invalid"]:
            self._dismiss_invalid()
            raise errors.InvalidNumber(f"WhatsApp says the number is invalid ({self.selectors.text('invalid_number')})")
        if page["phone_alert"] or page["computer_alert"]:
            raise errors.SessionUnavailable(f"session {self.session}: the phone is not connected (phone_alert)")

    def _dismiss_invalid(self) -> None:
        self._call(JS_CLICK_TEXT, "invalid_ok", "OK")

    def _type(self, text: str) -> None:
        """Put text into the compose box. The editor applies input after the script that sent it, so the box is read
        again until it settles; text is inserted only into a box confirmed empty, and the caller clicks only when
        the settled box holds exactly the text."""
        draft = self._call(JS_BOX)  # nothing was put in since the chat opened: one empty read confirms it empty
        if draft is None:
            raise errors.TransientSendError(f"compose_box ({self.selectors['compose_box']}) disappeared")
        if draft:
            self._clear_box()
            if self._settled_box("") != "":
                raise errors.TransientSendError(
                    f"compose_box ({self.selectors['compose_box']}) holds a draft that would not clear")
        self._call(JS_PASTE, text)
        typed = self._settled_box(text)
        if typed == text:
            return
        log.info("session %s: paste not taken as is (%d of %d chars); typing line by line", self.session,
                 len(typed or ""), len(text))
        if typed:
            self._clear_box()
            if self._settled_box("") != "":
                raise errors.TransientSendError(
                    f"compose_box ({self.selectors['compose_box']}) would not clear after a partial paste; not sent")
        self._type_lines(text)
        typed = self._settled_box(text)
        if typed != text:
            self._clear_box()
            raise errors.TransientSendError(
                f"compose_box ({self.selectors['compose_box']}) holds {len(typed or '')} characters that differ "
                f"from the {len(text)} typed; not sent")

    def _settled_box(self, expect: str) -> str | None:
        """The compose box's text once it holds still: BOX_STEADY_S when it holds `expect`, INPUT_SETTLE_S otherwise
        (input still on its way). None when there is no compose box."""
        started = time.monotonic()
        last: str | None = self._call(JS_BOX)
        still_since = started
        while True:
            time.sleep(POLL_S * 2)
            now = time.monotonic()
            value = self._call(JS_BOX)
            if value != last:
                last, still_since = value, now
                continue
            if now - still_since >= (BOX_STEADY_S if value == expect else INPUT_SETTLE_S) or \
                    now - started >= BOX_MAX_WAIT_S:
                return value

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

    def _click_send(self, clicked: list[bool], text: str) -> None:
        """Click the send control; `clicked[0]` is True from the moment the click command goes out. When no control
        any selector knows appears and the settled box holds exactly the text, press Enter instead, which sends in
        WhatsApp's editor (a changed button must not stop every send; the new row still decides what happened)."""
        from selenium.common.exceptions import NoSuchElementException, WebDriverException
        from selenium.webdriver.common.by import By

        css = self.selectors["send_button"]
        deadline = time.monotonic() + min(self.timeout, 10.0)
        while True:
            try:
                if time.monotonic() > deadline - min(self.timeout, 10.0) / 2 and self._enter_instead(css, text,
                                                                                                     clicked):
                    return
                button = self._driver_call(lambda d: d.find_element(By.CSS_SELECTOR, css))
                # A browser that dies from here on leaves the outcome unknown: the click can reach the page and
                # send before its reply is lost; taking that error for one before the click would send it twice.
                clicked[0] = True
                self._driver_call(lambda d, b=button: b.click())
                return
            except NoSuchElementException as exc:  # no control yet (it appears once there is text)
                if time.monotonic() > deadline:
                    raise errors.TransientSendError(f"send_button ({css}) not clickable: {_first_line(exc)}") from exc
            except WebDriverException as exc:  # not there yet (it appears once there is text), or re-rendered
                clicked[0] = False  # refused by the page (_driver_call re-raises only those): nothing was clicked
                if "intercepted" in type(exc).__name__.lower() or "intercepted" in str(exc):
                    self._call(JS_CLICK_TEXT, "popup_button", self.selectors.text("popup_ok"))  # "what's new"
                if time.monotonic() > deadline:
                    raise errors.TransientSendError(f"send_button ({css}) not clickable: {_first_line(exc)}") from exc
            time.sleep(POLL_S)

    def _enter_instead(self, css: str, text: str, clicked: list[bool]) -> bool:
        """Half the wait for a send control has passed: when there is still none and the box holds exactly the text,
        press Enter (True). False while a control shows, or when the box holds anything else (nothing is pressed)."""
        page = self._probe()
        if page["send_button"] or self._settled_box(text) != text:
            return False
        log.warning("session %s: no send control matches send_button (%s); pressing Enter in the compose box",
                    self.session, css)
        self._problem = f"no send control matches send_button ({css}): Enter pressed instead"
        clicked[0] = True
        for kind in ("rawKeyDown", "char", "keyUp"):
            event = {**_ENTER, "type": kind, **({"text": "\r", "unmodifiedText": "\r"} if kind == "char" else {})}
            self._driver_call(lambda d, e=event: d.execute_cdp_cmd("Input.dispatchKeyEvent", e))
        return True

    def _await_new_row(self, before: tuple[str, ...] | None, text: str, ref: str, clicked_ms: float) -> Receipt:
        """Wait until the row the click created (a new outgoing row with this text) leaves Pending, then follow it
        receipt_follow_s towards Read. Raises TransientSendError only when the page proves nothing left; otherwise
        SendOutcomeUnknown, and the next attempt reads the chat."""
        clicked_at = time.monotonic()
        deadline = clicked_at + self.timeout
        left: Receipt | None = None
        follow_until = 0.0
        click = Click(since_ms=clicked_ms, picture=before, offset_ms=self._offset_ms())
        while True:
            page = self._call(JS_AFTER_CLICK)
            mine = new_row(page["chat"], text, click)
            if mine is not None:
                wa_id, raw = mine["id"], mine["status"]
                status = STATUS.get(raw or "", raw or "")
                if status == "failed":
                    raise errors.TransientSendError(f"message {ref}: WhatsApp refused it (failed_icon on {wa_id})")
                if status and status != "pending":
                    if left is None:
                        follow_until = time.monotonic() + self.settings.receipt_follow_s
                        self._note_offset(mine, page["chat"], clicked_ms)
                    left = Receipt(wa_id=wa_id, status=status, sent_at=left.sent_at if left else utcnow())
                    if status == "read" or time.monotonic() >= follow_until:
                        return left
            elif page["box"] is not None and normalise(page["box"]) == normalise(text) and \
                    time.monotonic() - clicked_at > CLICK_TAKEN_S:
                # Taking the click (or the Enter) empties the box and adds a row in the same handler: this one was
                # not taken (an Enter that only added a line leaves the text with a line break: the same, folded).
                self._clear_box()
                raise errors.TransientSendError(
                    f"message {ref}: the send was not taken (compose_box still holds the text, no new outgoing row); "
                    f"check send_button ({self.selectors['send_button']})")
            if time.monotonic() > deadline:
                if left is not None:
                    return left
                where = "the new outgoing row stayed Pending (status_icon)" if mine else \
                    f"no new outgoing row with this text was recognised ({self.selectors['chat_row']})"
                raise errors.SendOutcomeUnknown(f"message {ref}: {where} within {self.timeout:g}s after the click")
            time.sleep(POLL_S)


    def _note_offset(self, row: dict[str, Any], chat: dict[str, Any], clicked_ms: float) -> None:
        """One sample of the page clock's offset, from the time the click's own row shows (chat.clock_offset_ms)."""
        sample = clock_offset_ms(row, chat.get("zone"), clicked_ms, time.time() * 1000)
        if sample is None:
            return
        self._offsets.append(sample)
        offset = self._offset_ms() or 0.0
        if abs(offset) > PAGE_CLOCK_WARN_S * 1000 and len(self._offsets) in (3, OFFSET_SAMPLES):
            log.warning("session %s: the page's clock is %.0f s %s this machine's: check this machine's clock (NTP)",
                        self.session, abs(offset) / 1000, "ahead of" if offset > 0 else "behind")


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


def _notice(page: dict[str, Any]) -> str | None:
    """The page's words when it shows the account banned or restricted (selectors.NOTICES), else None."""
    return page.get("banned") or page.get("restricted") or None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _brief(page: dict[str, Any]) -> str:
    return ", ".join(k for k, v in page.items() if v is True) or "nothing recognisable"

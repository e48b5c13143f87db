"""WhatsApp Web's page, step by step: the part of the sender that changes when WhatsApp does.

Loading the app and reading its login state (QR, logged out, phone offline, a ban notice), opening a chat with
`/send?phone=<digits>` (no text in the URL: prefill is unreliable for long texts), typing into the Lexical editor and
reading it back, finding and clicking the send control (or Enter), waiting for the click's row, and reading the chat's
rows once they hold still. The selectors and the in-page JavaScript are selectors.py's; what the rows say about a
click is chat.py's; every command goes through the browser (chrome.Chrome.call), which kills a browser that fails.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from wa_queue import errors, redact
from wa_queue.models import MediaRef, chat_key, plain, utcnow
from wa_queue.settings import Settings
from wa_queue.transport.base import Attachment, Receipt, SessionState
from wa_queue.transport.chat import STATUS, Click, new_row, normalise
from wa_queue.transport.chrome import BrowserDied, Chrome, first_line
from wa_queue.transport.note_book import NoteBook
from wa_queue.transport.page_clock import PageClock
from wa_queue.transport.selectors import (
    JS_ACCOUNT,
    JS_AFTER_CLICK,
    JS_BOX,
    JS_BOX_OF,
    JS_CHAT,
    JS_CHECK_CSS,
    JS_CLICK_FIRST,
    JS_CLICK_TEXT,
    JS_EXPAND,
    JS_FILE_INPUT,
    JS_MARK_CHAT,
    JS_MEDIA_STATE,
    JS_PASTE,
    JS_PASTE_INTO,
    JS_PROBE,
    Selectors,
)

log = logging.getLogger(__name__)

POLL_S = 0.02  # between two reads of the page: a send stays fast, the CPU does not spin (a probe is one round trip)
CONNECT_TIMEOUT_S = 60.0  # the real app boots slowly on a slow machine: the home page gets at least this long
CONNECT_SETTLE_S = 1.0  # how long a chat list must show without a banner before the session counts as connected
LOGIN_MARKER = ".waq-logged-in"  # in the profile: this session has been logged in before (QR now = logged out)
CLICK_TAKEN_S = 2.0  # the page empties the compose box and adds a Pending row at once when it takes the click
CLICK_WAIT_S = 10.0  # the longest wait for a send control (half of it before Enter is tried instead)
# Lexical applies input after the script that sent it, some time later: a box whose content differs from what was put
# in counts as settled only after holding still this long; one that holds it, after BOX_STEADY_S.
INPUT_SETTLE_S = 0.7
BOX_STEADY_S = 0.15
BOX_MAX_WAIT_S = 3.0
# A chat showing no row at all (not even its system row) has to hold still this many times longer, and at least
# EMPTY_CHAT_MIN_S, before its picture is taken as empty (then None: no picture, chat.snapshot_picture).
EMPTY_CHAT_SETTLES = 4
EMPTY_CHAT_MIN_S = 3.0
# Enter in WhatsApp's editor sends, unless the user turned "Enter is send" off: then it adds a line. The key events
# are real ones (CDP), as the editor wants.
_ENTER = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
_PROBE_KEYS = ("qr", "logged_in", "phone_alert", "computer_alert", "invalid", "starting", "use_here", "compose",
               "send_button", "popup", "update_browser", "loading", "post_logout", "banned", "restricted")
# What a state says when nothing more precise is known (the sender's last_problem).
_PROBLEMS = {
    SessionState.QR: "logged out: scan the QR code",
    SessionState.LOGGED_OUT: "logged out: scan the QR code",
    SessionState.PHONE_DISCONNECTED: "the phone is not connected",
    SessionState.STARTING: "WhatsApp Web did not finish loading",
}
_UPDATE_BROWSER = "WhatsApp shows its 'update your browser' page: it refuses the user agent"


def digits_of(phone: str) -> str:
    """'+1 555-123 4567' -> '15551234567' (WhatsApp's /send?phone= takes digits only)."""
    return re.sub(r"\D", "", phone)


class WhatsAppPage:
    """The page of one session's browser. Not thread-safe: the sender holds its lock around every use."""

    def __init__(self, session: str, settings: Settings, selectors: Selectors, chrome: Chrome) -> None:
        self.session = session
        self.settings = settings
        self.selectors = selectors
        self.chrome = chrome
        self.base_url = settings.whatsapp_url.rstrip("/")
        self.timeout = float(settings.send_timeout_s)  # how long one step waits for the page
        self.problem: str | None = None  # why the session is not connected (the sender's last_problem)
        self._saw_qr = False  # a scan is pending: the login it brings must be made durable
        self._chat: str | None = None  # the digits of the chat this document has open (see open_chat)
        self._chat_opened = 0.0  # when it was opened (monotonic)
        self._opened_ids: list[str] | None = None  # the open chat's row ids when it was opened (settled_rows)
        self.clock = PageClock(session)  # estimated from each send's own row (await_new_row)
        self.book = NoteBook()  # the sender's chat notes: each chat noted before it opens, forgotten once read and left
        self.sent_here: set[str] = set()  # the ids of the rows this document sent in the open chat since opening it

    # ---- the document --------------------------------------------------------------------------------------------
    def started(self, driver: Any) -> None:
        """A new browser (chrome.Chrome.on_start): no chat is open, and the selectors must be valid CSS."""
        self._chat = None
        self.book.new_page()
        bad = driver.execute_script(JS_CHECK_CSS, self.selectors.as_js())
        if bad:
            self.chrome.stop(graceful=False)
            raise errors.ConfigError(f"selectors with invalid CSS: {', '.join(bad)} (check WAQ_SELECTORS_FILE)")

    def has_open(self, phone: str) -> bool:
        """Whether this document has the chat with `phone` open (open_chat would load nothing)."""
        return self._chat == digits_of(phone)

    def forget_chat(self) -> None:
        """The next open_chat loads the chat again, whatever this document has open."""
        self._chat = None
        self.sent_here = set()

    def chat_digits(self) -> str | None:
        """The digits of the chat open_chat opened, while it is the one open."""
        return self._chat

    def call(self, script: str, *args: Any) -> Any:
        """Run an in-page script (selectors.py's); the selectors are its first argument."""
        return self.chrome.call(lambda d: d.execute_script(script, self.selectors.as_js(), *args))

    def probe(self) -> dict[str, Any]:
        """What the page shows now; all False while a navigation swaps the document under the script."""
        from selenium.common.exceptions import WebDriverException

        try:
            return self.call(JS_PROBE)
        except WebDriverException:
            return dict.fromkeys(_PROBE_KEYS, False) | {"ref": None, "chat": None}

    def navigate(self, url: str) -> None:
        from selenium.common.exceptions import TimeoutException

        self._chat = None
        self.sent_here = set()
        self.book.front = None  # a full load: whatever chat was open has left the front
        try:
            self.chrome.call(lambda d: d.get(url))
        except TimeoutException as exc:
            raise errors.TransientSendError(f"page load of {url} took over {self.timeout:g}s") from exc
        except BrowserDied as exc:  # e.g. net::ERR_NAME_NOT_RESOLVED: say which page (last_problem)
            raise BrowserDied(f"page load of {url} failed: {exc}") from exc

    # ---- login state ---------------------------------------------------------------------------------------------
    def load_app(self) -> SessionState:
        """Open the app's home page and wait until it shows the QR or the chat list."""
        self.navigate(self.base_url + "/")
        deadline = time.monotonic() + max(self.timeout, CONNECT_TIMEOUT_S)
        settled_at: float | None = None
        while True:
            page = self.probe()
            if page["qr"] or page["banned"] or page["restricted"] or time.monotonic() > deadline:
                return self.state_of(page)
            if page["logged_in"]:
                # The page draws its banners (phone offline, a restriction) after its first exchange with the
                # servers: a chat list alone is not yet a connected session, so it must hold for a moment first.
                settled_at = settled_at or time.monotonic() + CONNECT_SETTLE_S
                if page["phone_alert"] or page["computer_alert"] or time.monotonic() >= settled_at:
                    return self.state_of(page)
            if page["update_browser"]:
                self.problem = _UPDATE_BROWSER
                log.error("session %s: %s (set WAQ_CHROME_USER_AGENT to a current desktop Chrome's)", self.session,
                          _UPDATE_BROWSER)
                return SessionState.CLOSED
            if page["use_here"]:
                self._use_here()
            time.sleep(POLL_S)

    def persist_login(self, state: SessionState) -> SessionState:
        """After a scan, restart Chrome gracefully once: Chrome writes cookies and storage to disk lazily, so a crash
        soon after the scan would otherwise lose the login."""
        if state is not SessionState.CONNECTED or not self._saw_qr:
            return state
        self._saw_qr = False
        log.info("session %s: logged in; restarting Chrome so the profile keeps the login", self.session)
        self.chrome.stop(graceful=True)
        self.chrome.start()
        return self.load_app()

    def state_of(self, page: dict[str, Any]) -> SessionState:
        marker = self.chrome.profile_dir / LOGIN_MARKER
        words = _notice(page)
        if words:  # before the QR: a banned account's page may also offer to link again, which would not help
            self.problem = words
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

    def noted(self, state: SessionState) -> SessionState:
        """Remember what the page says about a session that is not connected (problem)."""
        if state is SessionState.CONNECTED:
            self.problem = None
        elif state in _PROBLEMS:
            self.problem = _PROBLEMS[state]
        return state

    def qr_png(self) -> bytes | None:
        """A screenshot of the QR code, when the page shows one."""
        if not self.probe()["qr"]:
            return None
        from selenium.webdriver.common.by import By

        return self.chrome.driver.find_element(By.CSS_SELECTOR, self.selectors["qr_canvas"]).screenshot_as_png

    def account_number(self) -> str | None:
        """The account's own number from the page's localStorage (last-wid-md, or last-wid on older builds)."""
        return self.chrome.call(lambda d: d.execute_script(JS_ACCOUNT))

    def _use_here(self) -> None:
        log.info("session %s: WhatsApp was open in another window; taking it back", self.session)
        self.call(JS_CLICK_TEXT, "use_here", self.selectors.text("use_here"))
        time.sleep(0.2)

    # ---- a chat --------------------------------------------------------------------------------------------------
    def open_chat(self, phone: str, reuse_s: float = float("inf")) -> dict[str, Any]:
        """Open /send?phone=<digits> and wait for the compose box or the invalid-number popup. Every such navigation
        is a full load (the app boots again), so a chat this document already has open is used as it is."""
        digits = digits_of(phone)
        if not digits:
            raise errors.InvalidNumber(f"{phone!r} has no digits")
        if self._chat == digits and time.monotonic() - self._chat_opened <= reuse_s:
            page = self.probe()
            if page["chat"] == digits and page["compose"] and not any(
                    page[k] for k in ("invalid", "starting", "use_here", "qr", "popup", "update_browser",
                                      "phone_alert", "computer_alert", "banned", "restricted")):
                return page
        self._note(digits)
        self.navigate(f"{self.base_url}/send?phone={digits}")
        deadline = time.monotonic() + self.timeout
        while True:
            page = self.probe()
            self.raise_if_banned(page)
            if page["use_here"]:
                self._use_here()
            elif page["qr"]:
                raise errors.SessionLoggedOut(f"session {self.session} shows the QR code: it needs a scan")
            elif page["update_browser"]:
                raise errors.TransientSendError(f"{_UPDATE_BROWSER} (set WAQ_CHROME_USER_AGENT to a current "
                                                "desktop Chrome's)")
            elif page["popup"]:
                self.call(JS_CLICK_TEXT, "popup_button", self.selectors.text("popup_ok"))  # "what's new"
            if page["invalid"] or (page["compose"] and not page["starting"] and not page["popup"]):
                if page["compose"]:
                    self.call(JS_MARK_CHAT, digits)
                    self._chat = page["chat"] = digits
                    self._chat_opened = time.monotonic()
                    self.book.front = chat_key(None, "+" + digits)
                    self._opened_ids = list(self.call(JS_CHAT)["ids"])  # what settled_rows counts from
                return page
            if time.monotonic() > deadline:
                raise errors.TransientSendError(
                    f"timed out after {self.timeout:g}s on /send?phone={digits} waiting for compose_box "
                    f"({self.selectors['compose_box']}) or invalid_dialog; page: {_brief(page)}")
            time.sleep(POLL_S)

    def _note(self, digits: str) -> None:
        """Note the chat before it opens (replies that arrive while it is open get no badge). A failed note costs only
        that guard, logged: it must not fail a send."""
        try:
            self.book.opening(phone="+" + digits)
        except Exception as exc:  # noqa: BLE001 - the store's trouble shows at the mark, which fails closed
            log.warning("session %s: the chat of %s not noted (replies there are lost if the worker dies while it "
                        "is open): %s: %s", self.session, redact.phone("+" + digits), type(exc).__name__, exc)

    def settled_rows(self, ref: str) -> dict[str, Any]:
        """The open chat's row ids once they have held still for chat_settle_s, counted from the chat's opening when
        nothing changed since (typing usually covers it). The history renders after the compose box: a row of it
        missing from the picture would later look new, and an older message with the same text would pass for the
        one just clicked. Before the click, so a chat that never settles is a plain transient error."""
        settle = self.settings.chat_settle_s
        deadline = time.monotonic() + self.timeout
        last, still_since = self._opened_ids, self._chat_opened
        while True:
            snapshot = self.call(JS_CHAT)
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

    def settled_chat(self, ref: str) -> dict[str, Any]:
        """The open chat's rows once they have held still for chat_settle_s (history renders after the compose box,
        and an empty list right after opening says nothing); rows cut behind "Read more" are expanded first."""
        settle = self.settings.chat_settle_s
        deadline = time.monotonic() + self.timeout
        expanded = False
        last: Any = None
        still_since = time.monotonic()
        while True:
            snapshot = self.call(JS_CHAT)
            shape = (snapshot["ids"], [(r["status"], r["text"], r["more"]) for r in snapshot["out"]])
            now = time.monotonic()
            if shape != last:
                last, still_since = shape, now
            elif snapshot["rows"] and now - still_since >= settle:
                if expanded or not any(r["more"] for r in snapshot["out"]):
                    return snapshot
                self.call(JS_EXPAND)
                expanded, last = True, None
            if now > deadline:
                raise errors.TransientSendError(
                    f"find_sent {ref}: the chat did not finish loading within {self.timeout:g}s "
                    f"({snapshot['rows']} chat_row, {self.selectors['chat_row']})")
            time.sleep(POLL_S * 5)

    def row_status(self, wa_id: str) -> str | None:
        """The status the open chat shows for the outgoing row `wa_id`; None when it shows no such row."""
        for row in self.call(JS_CHAT)["out"]:
            if row["id"] == wa_id:
                return STATUS.get(row["status"] or "", row["status"])
        return None

    def raise_if_banned(self, page: dict[str, Any]) -> None:
        words = _notice(page)
        if words:
            self.problem = words
            raise errors.SessionBanned(f"session {self.session}: WhatsApp says: {words}")

    def raise_if_unavailable(self, page: dict[str, Any]) -> None:
        self.raise_if_banned(page)
        if page["invalid"]:
            self.dismiss_invalid()
            raise errors.InvalidNumber(f"WhatsApp says the number is invalid ({self.selectors.text('invalid_number')})")
        if page["phone_alert"] or page["computer_alert"]:
            raise errors.SessionUnavailable(f"session {self.session}: the phone is not connected (phone_alert)")

    def dismiss_invalid(self) -> None:
        self.call(JS_CLICK_TEXT, "invalid_ok", "OK")

    # ---- the compose box (and the media preview's caption box) ----------------------------------------------------
    def _box(self, box: str) -> str | None:
        """The text of the box named `box` (a selector name), focused; None when it is not shown."""
        return self.call(JS_BOX) if box == "compose_box" else self.call(JS_BOX_OF, box)

    def type(self, text: str, box: str = "compose_box") -> None:
        """Put text into the compose box (or the box named `box`: the media preview's caption). The editor applies
        input after the script that sent it, so the box is read again until it settles; text is inserted only into a
        box confirmed empty, and the caller clicks only when the settled box holds exactly the text."""
        css = self.selectors[box]
        draft = self._box(box)  # nothing was put in since the chat opened: one empty read confirms it empty
        if draft is None:
            raise errors.TransientSendError(f"{box} ({css}) disappeared")
        if draft:
            self.clear_box(box)
            if self.settled_box("", box) != "":
                raise errors.TransientSendError(f"{box} ({css}) holds a draft that would not clear")
        if box == "compose_box":
            self.call(JS_PASTE, text)
        else:
            self.call(JS_PASTE_INTO, text, box)
        typed = self.settled_box(text, box)
        if typed == text:
            return
        log.info("session %s: paste not taken as is (%d of %d chars); typing line by line", self.session,
                 len(typed or ""), len(text))
        if typed:
            self.clear_box(box)
            if self.settled_box("", box) != "":
                raise errors.TransientSendError(f"{box} ({css}) would not clear after a partial paste; not sent")
        self.type_lines(text)
        typed = self.settled_box(text, box)
        if typed != text:
            self.clear_box(box)
            raise errors.TransientSendError(
                f"{box} ({css}) holds {len(typed or '')} characters that differ from the {len(text)} typed; not sent")

    def settled_box(self, expect: str, box: str = "compose_box") -> str | None:
        """The box's text once it holds still: BOX_STEADY_S when it holds `expect`, INPUT_SETTLE_S otherwise
        (input still on its way). None when there is no such box."""
        started = time.monotonic()
        last: str | None = self._box(box)
        still_since = started
        while True:
            time.sleep(POLL_S * 2)
            now = time.monotonic()
            value = self._box(box)
            if value != last:
                last, still_since = value, now
                continue
            if now - still_since >= (BOX_STEADY_S if value == expect else INPUT_SETTLE_S) or \
                    now - started >= BOX_MAX_WAIT_S:
                return value

    def clear_box(self, box: str = "compose_box") -> None:
        """Empty the box with real Ctrl+A, Backspace key events (the editor ignores DOM edits)."""
        if not self._box(box):
            return
        select = {"key": "a", "code": "KeyA", "windowsVirtualKeyCode": 65, "modifiers": 2, "commands": ["selectAll"]}
        back = {"key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8}
        for key in (select, back):
            for kind in ("rawKeyDown", "keyUp"):
                self._key(dict(key, type=kind))

    def type_lines(self, text: str) -> None:
        """The slow path: CDP text insertion per line (any Unicode) and a real Shift+Enter between lines."""
        enter = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "modifiers": 8}  # 8 = Shift
        down = {**enter, "type": "keyDown", "text": "\r", "unmodifiedText": "\r"}  # the text makes it edit
        for i, line in enumerate(text.split("\n")):
            if i:
                for event in (down, {**enter, "type": "keyUp"}):
                    self._key(event)
            if line:
                self.chrome.call(lambda d, t=line: d.execute_cdp_cmd("Input.insertText", {"text": t}))

    def _key(self, event: dict[str, Any]) -> None:
        """One real key event (CDP), as the editor wants."""
        self.chrome.call(lambda d: d.execute_cdp_cmd("Input.dispatchKeyEvent", event))

    # ---- the click and after -------------------------------------------------------------------------------------
    def click_send(self, clicked: list[bool], text: str) -> None:
        """Click the send control; `clicked[0]` is True from the moment the click command goes out. When no control
        any selector knows appears and the settled box holds exactly the text, press Enter instead, which sends in
        WhatsApp's editor (a changed button must not stop every send; the new row still decides what happened)."""
        from selenium.common.exceptions import NoSuchElementException, WebDriverException
        from selenium.webdriver.common.by import By

        css = self.selectors["send_button"]
        wait = min(self.timeout, CLICK_WAIT_S)
        deadline = time.monotonic() + wait
        while True:
            try:
                if time.monotonic() > deadline - wait / 2 and self._enter_instead(css, text, clicked):
                    return
                button = self.chrome.call(lambda d: d.find_element(By.CSS_SELECTOR, css))
                # A browser that dies from here on leaves the outcome unknown: the click can reach the page and
                # send before its reply is lost; taking that error for one before the click would send it twice.
                clicked[0] = True
                self.chrome.call(lambda d, b=button: b.click())
                return
            except NoSuchElementException as exc:  # no control yet (it appears once there is text)
                if time.monotonic() > deadline:
                    raise errors.TransientSendError(f"send_button ({css}) not clickable: {first_line(exc)}") from exc
            except WebDriverException as exc:  # not there yet (it appears once there is text), or re-rendered
                clicked[0] = False  # refused by the page (Chrome.call re-raises only those): nothing was clicked
                if "intercepted" in type(exc).__name__.lower() or "intercepted" in str(exc):
                    self.call(JS_CLICK_TEXT, "popup_button", self.selectors.text("popup_ok"))  # "what's new"
                if time.monotonic() > deadline:
                    raise errors.TransientSendError(f"send_button ({css}) not clickable: {first_line(exc)}") from exc
            time.sleep(POLL_S)

    # ---- media: the attach menu, the file input, the preview ------------------------------------------------------
    def attach(self, attachment: Attachment, ref: str) -> None:
        """Write the file into the input its kind takes (opening the attach menu first: its inputs exist only while
        it is open), without clicking the menu's item, and wait for the preview. A dialog instead of the preview is
        WhatsApp's refusal (too big, a type it does not take): MediaRefused with its words, nothing was sent."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By

        kind = plain(attachment.media.kind)
        deadline = time.monotonic() + self.timeout
        opened_at = None
        while True:
            state = self.call(JS_MEDIA_STATE)
            index = input_for(state["inputs"], kind)
            if index is not None and opened_at is not None:
                break
            if opened_at is None or time.monotonic() - opened_at > CLICK_WAIT_S / 2:
                try:  # the menu, once: it adds the inputs (a second click would close it again)
                    css = self.selectors["attach_button"]
                    button = self.chrome.call(lambda d, c=css: d.find_element(By.CSS_SELECTOR, c))
                    self.chrome.call(lambda d, b=button: b.click())
                    opened_at = time.monotonic()
                except WebDriverException as exc:
                    if time.monotonic() > deadline:
                        raise errors.TransientSendError(
                            f"send {ref}: attach_button ({self.selectors['attach_button']}) not clickable: "
                            f"{first_line(exc)}") from exc
            if time.monotonic() > deadline:
                raise errors.TransientSendError(
                    f"send {ref}: no file input takes {kind} (file_input, {self.selectors['file_input']}; accept "
                    f"lists seen: {state['inputs']}) after attach_button opened the menu; not sent")
            time.sleep(POLL_S * 5)
        field = self.call(JS_FILE_INPUT, index)
        self.chrome.call(lambda d: field.send_keys(str(attachment.path)))
        while True:
            state = self.call(JS_MEDIA_STATE)
            if state["dialog"]:
                self.call(JS_CLICK_TEXT, "popup_button", self.selectors.text("popup_ok"))
                raise errors.MediaRefused(f"send {ref}: WhatsApp refused the {kind} of {attachment.media.size:,} "
                                          f"bytes: {state['dialog']}")
            if state["send"] and (state["caption"] or kind == "audio"):
                return
            if time.monotonic() > deadline:
                raise errors.TransientSendError(
                    f"send {ref}: the media preview did not open within {self.timeout:g}s (media_caption "
                    f"{self.selectors['media_caption']}, media_send_button); not sent")
            time.sleep(POLL_S * 5)

    def click_media_send(self, clicked: list[bool]) -> None:
        """Click the preview's own send control (never the chat footer's); `clicked[0]` is True from the moment the
        click command goes out."""
        from selenium.common.exceptions import NoSuchElementException, WebDriverException
        from selenium.webdriver.common.by import By

        css = self.selectors["media_send_button"]
        deadline = time.monotonic() + min(self.timeout, CLICK_WAIT_S)
        while True:
            try:
                button = next(b for b in self.chrome.call(lambda d: d.find_elements(By.CSS_SELECTOR, css))
                              if b.is_displayed())
                clicked[0] = True
                self.chrome.call(lambda d, b=button: b.click())
                return
            except (StopIteration, NoSuchElementException, WebDriverException) as exc:
                clicked[0] = False  # refused by the page before the click went out: nothing was clicked
                if time.monotonic() > deadline:
                    raise errors.TransientSendError(f"media_send_button ({css}) not clickable: "
                                                    f"{first_line(exc) if str(exc) else 'none shown'}") from None
            time.sleep(POLL_S)

    def close_preview(self) -> None:
        """Leave the media preview without sending (its Close, else Escape)."""
        if not self.call(JS_CLICK_FIRST, "media_close"):
            for kind in ("rawKeyDown", "keyUp"):
                self._key({"key": "Escape", "code": "Escape", "windowsVirtualKeyCode": 27, "type": kind})

    def _enter_instead(self, css: str, text: str, clicked: list[bool]) -> bool:
        """Half the wait for a send control has passed: when there is still none and the box holds exactly the text,
        press Enter (True). False while a control shows, or when the box holds anything else (nothing is pressed)."""
        page = self.probe()
        if page["send_button"] or self.settled_box(text) != text:
            return False
        log.warning("session %s: no send control matches send_button (%s); pressing Enter in the compose box",
                    self.session, css)
        self.problem = f"no send control matches send_button ({css}): Enter pressed instead"
        clicked[0] = True
        for kind in ("rawKeyDown", "char", "keyUp"):
            self._key({**_ENTER, "type": kind, **({"text": "\r", "unmodifiedText": "\r"} if kind == "char" else {})})
        return True

    def await_new_row(self, before: tuple[str, ...] | None, text: str, ref: str, clicked_ms: float,
                      media: MediaRef | None = None, extra_s: float = 0.0) -> Receipt:
        """Wait until the row the click created (a new outgoing row with this text, or this file and caption) leaves
        Pending, then follow it receipt_follow_s towards Read; `extra_s` more for an upload. Raises
        TransientSendError only when the page proves nothing left; otherwise SendOutcomeUnknown, and the next
        attempt reads the chat."""
        clicked_at = time.monotonic()
        deadline = clicked_at + self.timeout + extra_s
        left: Receipt | None = None
        follow_until = 0.0
        click = Click(since_ms=clicked_ms, picture=before, offset_ms=self.clock.offset_ms())
        while True:
            page = self.call(JS_AFTER_CLICK)
            mine = new_row(page["chat"], text, click, media)
            if mine is not None:
                wa_id, raw = mine["id"], mine["status"]
                status = STATUS.get(raw or "", raw or "")
                if status == "failed":
                    raise errors.TransientSendError(f"message {ref}: WhatsApp refused it (failed_icon on {wa_id})")
                if status and status != "pending":
                    if left is None:
                        follow_until = time.monotonic() + self.settings.receipt_follow_s
                        self.clock.note(mine, page["chat"], clicked_ms, time.time() * 1000)
                    left = Receipt(wa_id=wa_id, status=status, sent_at=left.sent_at if left else utcnow())
                    if status == "read" or time.monotonic() >= follow_until:
                        return left
            elif media is not None and page["preview"] and time.monotonic() - clicked_at > CLICK_TAKEN_S:
                # Taking the preview's click closes it and adds the row in the same handler: not taken.
                self.close_preview()
                raise errors.TransientSendError(
                    f"message {ref}: the send was not taken (the media preview is still open, no new outgoing row); "
                    f"check media_send_button ({self.selectors['media_send_button']})")
            elif media is None and page["box"] is not None and normalise(page["box"]) == normalise(text) and \
                    time.monotonic() - clicked_at > CLICK_TAKEN_S:
                # Taking the click (or the Enter) empties the box and adds a row in the same handler: this one was
                # not taken (an Enter that only added a line leaves the text with a line break: the same, folded).
                self.clear_box()
                raise errors.TransientSendError(
                    f"message {ref}: the send was not taken (compose_box still holds the text, no new outgoing row); "
                    f"check send_button ({self.selectors['send_button']})")
            if time.monotonic() > deadline:
                if left is not None:
                    return left
                what = "this file and caption" if media is not None else "this text"
                where = "the new outgoing row stayed Pending (status_icon)" if mine else \
                    f"no new outgoing row with {what} was recognised ({self.selectors['chat_row']})"
                raise errors.SendOutcomeUnknown(f"message {ref}: {where} within {self.timeout + extra_s:g}s after "
                                                "the click")
            time.sleep(POLL_S)


def input_for(accepts: list[str | None], kind: str) -> int | None:
    """Which file input takes a file of `kind`, by its accept list (the DOM notes): a document (a photo or video sent
    as a file too) the one accepting anything ("*"); a photo or a video the Photos & videos one (it takes video/mp4);
    an audio file one accepting audio/*, else the document's. Never an image-only input: that is the sticker maker,
    which would turn a photo into a sticker."""
    lists = [[a.strip().lower() for a in (accept or "").split(",") if a.strip()] for accept in accepts]
    if kind in ("image", "video"):
        return next((i for i, acc in enumerate(lists) if "video/mp4" in acc), None)
    if kind == "audio":
        found = next((i for i, acc in enumerate(lists) if acc and all(a.startswith("audio/") for a in acc)), None)
        if found is not None:
            return found
    return next((i for i, acc in enumerate(lists) if acc == ["*"] or acc == ["*/*"]), None)


def _notice(page: dict[str, Any]) -> str | None:
    """The page's words when it shows the account banned or restricted (selectors.NOTICES), else None."""
    return page.get("banned") or page.get("restricted") or None


def _brief(page: dict[str, Any]) -> str:
    return ", ".join(k for k, v in page.items() if v is True) or "nothing recognisable"

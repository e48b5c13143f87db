"""The Selenium sender: the sender port (base.MessageSender) over WhatsApp Web in Chromium, one persistent profile
per session.

It composes the browser process (chrome.Chrome: start, recycle, kill) and the page's steps
(whatsapp_page.WhatsAppPage). A send opens the chat, types the whole text, checks the box holds exactly that text,
takes the chat's picture for the store's mark, clicks Send and waits until the new outgoing row leaves `Pending`.
Errors before the click are TransientSendError; after it, SendOutcomeUnknown, so the delivery loop reads the chat
(find_sent) before ever sending again. close() and an atexit hook leave no Chrome behind.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime

from wa_queue import errors
from wa_queue.models import MediaRef
from wa_queue.settings import Settings
from wa_queue.transport import replies
from wa_queue.transport.base import Attachment, BeforeClick, ChatNotes, MessageSender, Receipt, Reply, SessionState
from wa_queue.transport.chat import Click, snapshot_picture, verdict
from wa_queue.transport.chrome import BrowserDied, Chrome, first_line
from wa_queue.transport.chrome_options import uploads_allowed
from wa_queue.transport.selectors import load_selectors
from wa_queue.transport.whatsapp_page import WhatsAppPage, digits_of

log = logging.getLogger(__name__)

# A send uses a chat already open only when the number check opened it for this very message, moments before: an
# older page may not show yet what changed since (a banner that the page's next poll would bring).
SEND_REUSE_S = 10.0
_live: weakref.WeakSet[SeleniumSender] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for sender in list(_live):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            sender.close()


class SeleniumSender(MessageSender):
    def __init__(self, session: str, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.chrome = Chrome(session, settings)
        self.page = WhatsAppPage(session, settings, load_selectors(settings.selectors_file), self.chrome)
        self.chrome.on_start = self.page.started  # a new browser has no chat open, and checks the selectors
        self._checked: str | None = None  # the digits is_registered just opened, for the send that follows
        self._lock = threading.RLock()  # one command stream per browser; health checks may come from a thread
        self.sent_count = 0
        _live.add(self)

    # ---- MessageSender -------------------------------------------------------------------------------------------
    def connect(self) -> SessionState:
        with self._lock:
            self.page.problem = None
            try:
                self.chrome.ensure()
                return self.page.noted(self.page.persist_login(self.page.load_app()))
            except BrowserDied as exc:
                self.page.problem = str(exc)
                return SessionState.CLOSED
            except errors.TransientSendError as exc:  # the page did not load in time
                log.warning("session %s: %s", self.session, exc)
                self.page.problem = str(exc)
                return SessionState.STARTING

    def state(self) -> SessionState:
        with self._lock:
            if self.chrome.driver is None and not self.chrome.crashed:
                return SessionState.CLOSED
            try:
                if self.chrome.driver is None:
                    self.chrome.ensure()
                    return self.page.noted(self.page.persist_login(self.page.load_app()))
                return self.page.noted(self.page.persist_login(self.page.state_of(self.page.probe())))
            except BrowserDied as exc:
                self.page.problem = str(exc)
                return SessionState.CLOSED

    def send(self, phone: str, text: str, *, ref: str, before_click: BeforeClick | None = None,
             media: Attachment | None = None) -> Receipt:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        page = self.page
        with self._lock:
            clicked = [False]
            with self._guard(f"send {ref}", clicked):
                self.chrome.ensure(recycle=True)
                self.chrome.sends_since_start += 1
                checked, self._checked = self._checked, None
                shown = page.open_chat(phone, reuse_s=SEND_REUSE_S if checked == digits_of(phone) else -1.0)
                page.raise_if_unavailable(shown)
                if media is not None:
                    receipt = self._send_media(text, ref, before_click, media, clicked)
                    self.sent_count += 1
                    page.sent_here.add(receipt.wa_id)
                    return receipt
                page.type(text)
                page.raise_if_banned(page.probe())  # a notice that came while typing: still before any click
                picture = snapshot_picture(page.settled_rows(ref))
                if before_click is not None and not before_click(picture):
                    page.clear_box()
                    raise errors.SendAborted(f"send {ref}: the store refused the mark (the lease moved on); "
                                             "nothing was clicked")
                clicked_ms = time.time() * 1000
                page.click_send(clicked, text)
                receipt = page.await_new_row(picture, text, ref, clicked_ms)
            self.sent_count += 1
            page.sent_here.add(receipt.wa_id)  # replies.read: a reply that came before this row is still one
            return receipt

    def _send_media(self, caption: str, ref: str, before_click: BeforeClick | None, media: Attachment,
                    clicked: list[bool]) -> Receipt:
        """The open chat's media send, as a person does it: the file into the input its kind takes, the preview, the
        caption typed and checked as a text is, the store's mark, the preview's Send; then the new media row must
        leave the clock state, which waits for the upload too (WAQ_MEDIA_UPLOAD_KBPS)."""
        with uploads_allowed(self.chrome.driver, self.settings.chrome_memory_options):
            return self._attach_and_send(caption, ref, before_click, media, clicked)

    def _attach_and_send(self, caption: str, ref: str, before_click: BeforeClick | None, media: Attachment,
                         clicked: list[bool]) -> Receipt:
        page = self.page
        page.attach(media, ref)
        if caption:
            page.type(caption, box="media_caption")
        page.raise_if_banned(page.probe())  # a notice that came meanwhile: still before any click
        picture = snapshot_picture(page.settled_rows(ref))
        if before_click is not None and not before_click(picture):
            page.close_preview()
            raise errors.SendAborted(f"send {ref}: the store refused the mark (the lease moved on); nothing was "
                                     "clicked")
        clicked_ms = time.time() * 1000
        page.click_media_send(clicked)
        upload_s = media.media.size / (self.settings.media_upload_kbps * 1000)
        return page.await_new_row(picture, caption, ref, clicked_ms, media=media.media, extra_s=upload_s)

    def find_sent(self, phone: str, text: str, *, ref: str, since: datetime | None = None,
                  picture: Collection[str] | None = None, taken: Collection[str] = (),
                  media: MediaRef | None = None) -> Receipt | None:
        """The row the click in doubt made, if it left the clock state (transport/chat.py's cases). None only from a
        chat positively read (see MessageSender.find_sent); the message's row still Pending raises
        SendOutcomeUnknown: WhatsApp will send it when it can, so it must not be sent again, nor recorded yet."""
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        click = Click(since_ms=since.timestamp() * 1000 if since else None,
                      picture=tuple(picture) if picture is not None else None, taken=frozenset(taken),
                      offset_ms=self.page.clock.offset_ms())
        with self._lock, self._guard(f"find_sent {ref}"):
            self.chrome.ensure()
            reused = self.page.has_open(phone)
            shown = self.page.open_chat(phone)
            if shown["invalid"]:
                self.page.dismiss_invalid()
                return None
            try:
                return verdict(self.page.settled_chat(ref), text, click, phone, self.page.selectors, media)
            except errors.SendOutcomeUnknown:
                if not reused:
                    raise
            # Still Pending in a page open since the click: a fresh load shows what the servers have now.
            self.page.forget_chat()
            self.page.open_chat(phone)
            return verdict(self.page.settled_chat(ref), text, click, phone, self.page.selectors, media)

    def page_clock_offset_s(self) -> float | None:
        offset = self.page.clock.offset_ms()
        return None if offset is None else round(offset / 1000, 1)

    def is_registered(self, phone: str) -> bool | None:
        """Opens the chat as the send will: a send right after finds it open and loads nothing."""
        with self._lock, self._guard(f"is_registered {phone}"):
            self.chrome.ensure()
            try:
                shown = self.page.open_chat(phone)
            except errors.TransientSendError:
                return None  # cannot tell: the send itself will
            if shown["invalid"]:
                self.page.dismiss_invalid()
                return False
            self._checked = digits_of(phone)
            return True

    def receipt_status(self, phone: str, wa_id: str) -> str | None:
        with self._lock, self._guard(f"receipt_status {wa_id}"):
            self.chrome.ensure()
            shown = self.page.open_chat(phone)  # no load when that chat is open (right after its send)
            if shown["invalid"]:
                self.page.dismiss_invalid()
                return None
            return self.page.row_status(wa_id)

    @property
    def chat_notes(self) -> ChatNotes | None:  # type: ignore[override]
        return self.page.book.notes

    @chat_notes.setter
    def chat_notes(self, notes: ChatNotes | None) -> None:
        self.page.book.notes = notes  # open_chat notes every chat it opens, replies.read those of the list

    def read_replies(self, max_chats: int = 1, *, again: bool = False, first: str | None = None) -> list[Reply]:
        with self._lock, self._guard("read_replies"):
            if self.chrome.driver is None or not self.page.probe()["logged_in"]:
                return []
            found = replies.read(self.page, max_chats, again=again, first=first)
            if self.page.chat_digits() is None:
                self._checked = None  # a chat opened from the list: the next send opens its own
            return found

    def replies_recorded(self) -> None:
        with self._lock:
            self.page.book.recorded()

    def account_number(self) -> str | None:
        with self._lock:
            if self.chrome.driver is None:
                return None
            try:
                return self.page.account_number()
            except Exception as exc:  # noqa: BLE001 - a page between documents: ask again at the next check
                log.debug("session %s: no account number: %s", self.session, exc)
                return None

    def last_problem(self) -> str | None:
        return self.page.problem

    def qr_png(self) -> bytes | None:
        with self._lock:
            if self.chrome.driver is None:
                return None
            try:
                return self.page.qr_png()
            except BrowserDied:
                return None
            except Exception as exc:  # noqa: BLE001 - the code expired or re-rendered between probe and shot
                log.info("session %s: no QR screenshot: %s", self.session, exc)
                return None

    def qr_ref(self) -> str | None:
        """The pairing payload held by the QR's container (data-ref), when a QR is shown."""
        with self._lock:
            if self.chrome.driver is None:
                return None
            try:
                shown = self.page.probe()
            except BrowserDied:
                return None
            return shown["ref"] if shown["qr"] else None

    def close(self) -> None:
        with self._lock:
            self.chrome.close()

    @contextmanager
    def _guard(self, what: str, clicked: list[bool] | None = None) -> Iterator[None]:
        """Turn a dead or hung browser into the interface's errors (and a restart on the next call)."""
        try:
            yield
        except BrowserDied as exc:
            if clicked and clicked[0]:
                raise errors.SendOutcomeUnknown(f"{what}: browser died after the click: {exc}") from exc
            raise errors.TransientSendError(f"{what}: browser died: {exc}") from exc
        except errors.WaQueueError:  # already the right class (after the click, await_new_row chose it)
            raise
        except Exception as exc:  # noqa: BLE001 - a page that changed under a command (stale element, JS error)
            kind = errors.SendOutcomeUnknown if clicked and clicked[0] else errors.TransientSendError
            raise kind(f"{what}: {type(exc).__name__}: {first_line(exc)}") from exc

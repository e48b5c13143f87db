"""The scripted fake sender (WAQ_TRANSPORT=fake): same interface and contract as the Selenium sender.

Steered from another process through a JSON control file (WAQ_FAKE_CONTROL):
    {"numbers": {"+15551234567": {"fault": "transient"|"permanent"|"unregistered"|"disconnect"|"unknown"|"ban",
                                  "count": 2}},
     "sessions": {"primary": {"state": "phone_disconnected"|"logged_out"|"connected"|"banned", "words": "..."}},
     "send_delay_s": 0.0}
`count` is how many sends the fault hits before it clears (absent: forever). The fault "unreadable" makes find_sent
raise OutcomeUnverified for that number (a chat of unknown markup) without being used up. The fault "ban" bans the
session that meets it, as a page showing the ban screen when the chat opens: its state becomes "banned" in the
control file and the send raises SessionBanned before anything is logged. A banned session's `words` are the page's
(default BAN_WORDS), which last_problem() reports, like a restricted notice with its end time. `send_delay_s` is
how long a send takes from its mark before the click to its row. Every accepted send is
appended to the JSON-lines log WAQ_FAKE_LOG: {"ref", "session", "phone", "text", "at", "wa_id"}.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
import uuid
from collections.abc import Collection, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from wa_queue import errors
from wa_queue.models import MediaRef, plain, utcnow
from wa_queue.transport.base import Attachment, BeforeClick, ChatNotes, MessageSender, Receipt, Reply, SessionState
from wa_queue.transport.chat import picture_of
from wa_queue.transport.note_book import NoteBook

BAN_WORDS = "Your phone number is banned from using WhatsApp. Contact support for help."


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class FakeControl:
    """Reads and updates the control file under a file lock (workers in several processes share it)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._cache: tuple[tuple[int, int], dict[str, Any]] | None = None

    def read(self) -> dict[str, Any]:
        """The control data; re-read only when the file changed (a stat is far cheaper than a parse)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        if self._cache is None or self._cache[0] != stamp:
            try:
                self._cache = (stamp, json.loads(self.path.read_text() or "{}"))
            except FileNotFoundError:
                return {}
        return self._cache[1]

    def write(self, data: dict[str, Any]) -> None:
        with _locked(self.path):
            self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)

    def set_number_fault(self, phone: str, fault: str | None, count: int | None = None) -> None:
        with _locked(self.path):
            data = self.read()
            numbers = data.setdefault("numbers", {})
            if fault is None:
                numbers.pop(phone, None)
            else:
                numbers[phone] = {"fault": fault, **({"count": count} if count is not None else {})}
            self._write(data)

    def set_session_state(self, session: str, state: str | None, words: str | None = None) -> None:
        """`words`: what the page says (a banned session's notice)."""
        with _locked(self.path):
            self._cache = None
            data = self.read()
            if state is None:
                data.setdefault("sessions", {}).pop(session, None)
            else:
                data.setdefault("sessions", {})[session] = {"state": state, **({"words": words} if words else {})}
            self._write(data)

    def add_reply(self, session: str, *, chat: str, wa_id: str, text: str, phone: str | None) -> None:
        """A contact answers in `session`'s chat `chat` (what WhatsApp's servers would deliver to the page)."""
        with _locked(self.path):
            self._cache = None
            data = self.read()
            data.setdefault("replies", {}).setdefault(session, []).append(
                {"chat": chat, "wa_id": wa_id, "text": text, "phone": phone})
            self._write(data)

    def mark_replies_read(self, session: str, chat: str) -> None:
        """The chat's replies as the page shows them once opened: read, no badge (kept across restarts)."""
        with _locked(self.path):
            self._cache = None
            data = self.read()
            for entry in data.get("replies", {}).get(session, []):
                if entry["chat"] == chat:
                    entry["read"] = True
            self._write(data)

    def take_number_fault(self, phone: str) -> str | None:
        """The fault for this send, counting it down atomically."""
        if phone not in self.read().get("numbers", {}):
            return None
        with _locked(self.path):
            self._cache = None
            data = self.read()
            entry = data.get("numbers", {}).get(phone)
            if not entry:
                return None
            if "count" in entry:
                entry["count"] -= 1
                if entry["count"] <= 0:
                    del data["numbers"][phone]
                self._write(data)
            return entry["fault"]


class LogTail:
    """The send log as chats, read incrementally: each look parses only the whole lines appended since the last one
    (every process appends under the log's lock, one line a send), so a send costs the same at the thousandth as at
    the first. A log replaced or cut short is read again from its start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reset(None)

    def _reset(self, identity: tuple[int, int] | None) -> None:
        self._identity = identity  # (device, inode) of the file read
        self._offset = 0
        self._chats: dict[tuple[str | None, str | None], list[dict[str, Any]]] = {}
        self._wa_ids: set[str] = set()

    def _refresh(self) -> None:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below, after the stat of the same file
        except FileNotFoundError:
            self._reset(None)
            return
        with handle:
            info = os.fstat(handle.fileno())
            if (info.st_dev, info.st_ino) != self._identity or info.st_size < self._offset:
                self._reset((info.st_dev, info.st_ino))
            handle.seek(self._offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        for line in data[:end].splitlines():
            if line.strip():
                entry = json.loads(line)
                self._chats.setdefault((entry.get("session"), entry.get("phone")), []).append(entry)
                if entry.get("wa_id"):
                    self._wa_ids.add(entry["wa_id"])
        self._offset += end

    def chat(self, session: str, phone: str) -> list[dict[str, Any]]:
        """This session's chat with phone, oldest first."""
        self._refresh()
        return list(self._chats.get((session, phone), ()))

    def has(self, wa_id: str) -> bool:
        self._refresh()
        return wa_id in self._wa_ids


def _reply(entry: dict[str, Any]) -> Reply:
    return Reply(chat=entry["chat"], wa_id=entry["wa_id"], text=entry["text"], phone=entry.get("phone"))


class FakeSender(MessageSender):
    def __init__(self, session: str, log_path: Path, control_path: Path) -> None:
        self.session = session
        self.log_path = Path(log_path)
        self.control = FakeControl(control_path)
        self._open = False
        self._log = LogTail(self.log_path)
        self._front: str | None = None  # the chat in front (the last one sent to or checked): read at every read
        self.book = NoteBook()  # when a note may go: the page's rule (transport/note_book.py)

    def connect(self) -> SessionState:
        if not self._open:
            self.book.new_page()
        self._open = True
        return self.state()

    def state(self) -> SessionState:
        if not self._open:
            return SessionState.CLOSED
        wanted = self.control.read().get("sessions", {}).get(self.session, {}).get("state")
        return SessionState(wanted) if wanted else SessionState.CONNECTED

    def last_problem(self) -> str | None:
        if self.state() is SessionState.BANNED:
            return self._words()
        return None

    @property
    def chat_notes(self) -> ChatNotes | None:  # type: ignore[override]
        return self.book.notes

    @chat_notes.setter
    def chat_notes(self, notes: ChatNotes | None) -> None:
        self.book.notes = notes

    def read_replies(self, max_chats: int = 1, *, again: bool = False, first: str | None = None) -> list[Reply]:
        """The replies the control file's "replies" holds for this session ({chat, wa_id, text, phone}), what
        WhatsApp's servers would deliver: each chat's unread ones, at most `max_chats` chats a call, marked read in
        the file as it is "opened" (as the page drops a badge; a new process does not see them again), and with
        chat_notes every noted chat's replies again on a new sender or when `again`, as the real page reads them."""
        if self.state() is not SessionState.CONNECTED:
            return []
        every = self.control.read().get("replies", {}).get(self.session, [])
        out: list[Reply] = []
        book = self.book
        book.begin_read()
        if book.notes is not None and (again or book.fresh):
            for note in book.notes.pending():
                out += [_reply(r) for r in every if r["chat"] in (note.chat, note.phone)]
                book.front = note.key  # opened to be read again, as the page does: in front now
                book.read(note.key)
            book.fresh = False
        waiting = [r for r in every if not r.get("read")]
        chats = list(dict.fromkeys(r["chat"] for r in waiting))
        # The open chat (the last one sent to or checked) is read at every read, as the page reads the chat in front
        # (its replies have no badge); then `first`'s, then up to max_chats others.
        front = [c for c in chats if c in (self._front, first)]
        if self._front is not None:
            book.read(book.front)  # the chat in front is read at every read
        for chat in front + [c for c in chats if c not in front][:max_chats]:
            mine = [r for r in waiting if r["chat"] == chat]
            key = book.opening(chat=chat, unread=len(mine))
            if chat not in (self._front, first):  # opened from the list: it is in front now
                book.front = key
            self.control.mark_replies_read(self.session, chat)
            again_here = {r.wa_id for r in out}  # a noted chat read again above: its rows once, as on the page
            out += [_reply(r) for r in mine if r["wa_id"] not in again_here]
            book.read(key)
        return out

    def replies_recorded(self) -> None:
        self.book.recorded()

    def _words(self) -> str:
        return str(self.control.read().get("sessions", {}).get(self.session, {}).get("words") or BAN_WORDS)

    def send(self, phone: str, text: str, *, ref: str, before_click: BeforeClick | None = None,
             media: Attachment | None = None) -> Receipt:
        state = self.state()
        if state is SessionState.BANNED:
            raise errors.SessionBanned(f"session {self.session}: WhatsApp says: {self._words()}")
        if state is SessionState.LOGGED_OUT:
            raise errors.SessionLoggedOut(f"session {self.session} is logged out")
        if state is not SessionState.CONNECTED:
            raise errors.SessionUnavailable(f"session {self.session} is {state.value}")
        self.book.front = self.book.opening(phone=phone)  # as the page's open_chat: replies here would have no badge
        self._front = phone
        fault = self.control.take_number_fault(phone)
        if fault == "ban":
            self.control.set_session_state(self.session, SessionState.BANNED.value)
            raise errors.SessionBanned(f"session {self.session}: WhatsApp says: {BAN_WORDS}")
        if fault == "transient":
            raise errors.TransientSendError(f"scripted transient failure for {phone}")
        if fault in ("permanent", "unregistered"):
            raise errors.InvalidNumber(f"scripted: {phone} is not on WhatsApp")
        sent_media = None
        if media is not None:  # what arrives is what the file holds: its bytes' hash, read from the attached copy
            data = media.path.read_bytes()
            sent_media = {"kind": plain(media.media.kind), "filename": media.path.name, "size": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()}
        if fault == "disconnect":
            raise errors.SessionUnavailable(f"scripted disconnection of {self.session}")
        if before_click is not None and not before_click(self._picture(phone)):
            raise errors.SendAborted(f"send {ref}: the store refused the mark; nothing was clicked")
        # The time from the click to its row, after the mark: a stop or a kill in it lands on a message in doubt.
        delay = float(self.control.read().get("send_delay_s", 0) or 0)
        if delay:
            time.sleep(delay)
        receipt = Receipt(wa_id=f"true_{phone.lstrip('+')}@c.us_{uuid.uuid4().hex[:20]}", status="sent",
                          sent_at=utcnow())
        entry = {"ref": ref, "session": self.session, "phone": phone, "text": text,
                 "at": receipt.sent_at.isoformat(), "wa_id": receipt.wa_id}
        self._append({**entry, "media": sent_media} if sent_media else entry)
        if fault == "unknown":
            # Accepted by "WhatsApp" but the acknowledgement never came back.
            raise errors.SendOutcomeUnknown(f"scripted: no acknowledgement for {phone}")
        return receipt

    def _chat(self, phone: str) -> list[dict[str, Any]]:
        """This session's chat with phone, oldest first: the log's entries (like a real chat, only its own)."""
        return self._log.chat(self.session, phone)

    def _picture(self, phone: str) -> tuple[str, ...]:
        return picture_of([e["wa_id"] for e in self._chat(phone)])

    def find_sent(self, phone: str, text: str, *, ref: str, since: datetime | None = None,
                  picture: Collection[str] | None = None, taken: Collection[str] = (),
                  media: MediaRef | None = None) -> Receipt | None:
        """The oldest row with this text and ref that is not in the picture nor taken (chat.py's NEW case); without a
        picture, one at or after `since` (an older one: unverified, as chat.py's NO_PICTURE)."""
        entry = self.control.read().get("numbers", {}).get(phone) or {}
        if entry.get("fault") == "unreadable":  # a chat whose rows no known form matches (not used up)
            raise errors.OutcomeUnverified(f"scripted: the chat with {phone} cannot be read")
        seen, others = set(picture or ()), set(taken)
        for entry in self._chat(phone):
            if entry.get("ref") != ref or entry.get("text") != text or entry["wa_id"] in seen | others:
                continue
            shown = entry.get("media") or {}
            if media is None and shown:  # chat.py: a file shown with a text message's very text cannot be told
                raise errors.OutcomeUnverified(f"sent? could not be verified in the chat with {phone}: a file with "
                                               "this text is there")
            if media is not None and (shown.get("kind"), shown.get("filename")) != (plain(media.kind), media.filename):
                continue
            if picture is None and since is not None and datetime.fromisoformat(entry["at"]) < since:
                # chat.py's NO_PICTURE: a time can make a row ours, never another message's
                raise errors.OutcomeUnverified(f"sent? could not be verified in the chat with {phone}: a row with "
                                               "this text is there, no picture of the chat before the click was "
                                               "recorded, and its time does not show that it came after the click")
            return Receipt(wa_id=entry["wa_id"], status="sent")
        return None

    def is_registered(self, phone: str) -> bool | None:
        self._front = phone  # the page's number check opens the chat
        entry = self.control.read().get("numbers", {}).get(phone)
        return not (entry and entry.get("fault") == "unregistered")

    def receipt_status(self, phone: str, wa_id: str) -> str | None:
        """Ticks of a logged send: the control file's "receipt" (default "read"), None for unknown ids."""
        if not self._log.has(wa_id):
            return None
        return str(self.control.read().get("receipt", "read"))

    def close(self) -> None:
        self._open = False

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with _locked(self.log_path), open(self.log_path, "a", encoding="utf-8") as handle:
            # Flushed to the OS, not fsynced: it must survive a SIGKILLed worker, not a power cut.
            handle.write(line)
            handle.flush()


def read_log(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []

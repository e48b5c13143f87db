"""The sender interface: one WhatsApp session's way of sending a text."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Protocol

from wa_queue.models import ChatNote, MediaRef, SessionStatus

# One enum for a session's state: what a sender reports (STARTING, QR, CONNECTED, PHONE_DISCONNECTED, LOGGED_OUT,
# CLOSED, BANNED) is what its store record keeps, which adds UNKNOWN and NEEDS_OPERATOR.
SessionState = SessionStatus


@dataclasses.dataclass(frozen=True)
class Receipt:
    """What a sender knows about one message that left: its id on WhatsApp and its tick status."""

    wa_id: str
    status: str = "sent"  # pending | sent | delivered | read
    sent_at: datetime | None = None


BeforeClick = Callable[[tuple[str, ...] | None], bool]


@dataclasses.dataclass(frozen=True)
class Reply:
    """An incoming message read in a chat: `chat` is the chat's name as the page shows it (a number, or the name of
    a contact who hides it), `phone` the sender's E.164 number (None when the page shows none: usernames, `@lid`
    ids), `shown_at` the time the page printed (its clock; None when it cannot be read for sure)."""

    chat: str
    wa_id: str
    text: str
    phone: str | None
    shown_at: datetime | None = None


class ChatNotes(Protocol):
    """Where a sender notes, durably, each chat its page opens (wa_queue/inbound.py's StoreChatNotes, on the store):
    the page takes what an open chat shows as read, so replies there have no badge to be found by again. A note
    stays until the replies read there are recorded and the chat has left the front (MessageSender.replies_recorded);
    a reader restarted before that, or after a read it could not record, reads every noted chat again
    (MessageSender.read_replies)."""

    def opening(self, *, chat: str | None = None, phone: str | None = None, unread: int = 0) -> None:
        """Before the page opens a chat: one from the list by its name (`unread` replies), or a number's. Noted beside
        the other notes; a chat noted again replaces its note."""

    def pending(self) -> list[ChatNote]:
        """The pending notes, oldest first."""

    def settle(self, seen: Mapping[str, str], done: Collection[str]) -> None:
        """After a read whose replies are recorded: the newest row read in those chats (key -> row id, kept as the
        note's `seen` even once done), and the notes no longer pending (ChatNote.key)."""


@dataclasses.dataclass(frozen=True)
class Attachment:
    """A media message's file as a sender attaches it: a local copy named as the recipient will see it (`path`'s
    name is `media.filename`), and what the store knows of it."""

    path: Path
    media: MediaRef


class MessageSender(abc.ABC):
    """A connection to one WhatsApp session.

    Errors: send() raises TransientSendError, PermanentSendError (InvalidNumber) or SessionUnavailable
    (SessionLoggedOut, SessionBanned) from wa_queue.errors; nothing else is expected to escape.

    A ban: when the page shows that the account is banned or restricted (selectors.NOTICES), connect() and state()
    report BANNED, last_problem() gives the page's words (a restriction's words include its end time), and send()
    raises SessionBanned before any click. A notice that appears after the click leaves the outcome unknown, as any
    other trouble after the click does.

    tests/contract/test_sender.py runs the fake and the Selenium sender (on the simulator) through the same tests of
    what these docstrings promise.
    """

    session: str

    @abc.abstractmethod
    def connect(self) -> SessionState:
        """Open the session (start the browser, load the page) and return its state; never raises for a
        logged-out, disconnected or banned account, it reports it."""

    @abc.abstractmethod
    def state(self) -> SessionState:
        """The session's current state, read live."""

    def is_connected(self) -> bool:
        return self.state() is SessionState.CONNECTED

    @abc.abstractmethod
    def send(self, phone: str, text: str, *, ref: str, before_click: BeforeClick | None = None,
             media: Attachment | None = None) -> Receipt:
        """Send text to phone (with `media`: the file, with `text` as its caption, may be empty), as the store keeps
        it (E.164 with its '+'; a sender takes the digits its page needs).
        `ref` is the message id, for logs and fakes. Returns once the message has left the clock state (a Receipt
        whose status is sent, delivered or read). Raises TransientSendError when the page proves the message did not
        leave, and its subclass SendOutcomeUnknown when it may have left (after the click): find_sent() must then
        settle it before any new send.

        `before_click(picture)` is called once everything is ready, as the very last step before the click, with the
        picture of the chat: the ids of its last message rows (chat.snapshot_picture), oldest first, or None when the
        chat showed no row at all. It records the decision to
        click (the store's mark); when it returns False the sender does not click and raises SendAborted, and an
        exception it raises (a daily limit reached) leaves send() as it is, nothing clicked."""

    @abc.abstractmethod
    def find_sent(self, phone: str, text: str, *, ref: str, since: datetime | None = None,
                  picture: Collection[str] | None = None, taken: Collection[str] = (),
                  media: MediaRef | None = None) -> Receipt | None:
        """Settle a click in doubt (a media message: a row of its kind, with its file name when a document, and its
        caption as `text`) (after a crash, or an acknowledgement that never came) by reading the chat:
        the row it made, when there is one (transport/chat.py's cases). `picture` is what before_click was given
        for that click (None: none was recorded), `since` when the click happened by this machine's clock, `taken`
        the WhatsApp ids of this chat's rows that other messages own. A row with the text and an id not in the
        picture is the message, whatever time it shows; one in the picture is an older message. The fake also
        matches `ref`. None only from a chat positively read: it loaded, its rows were recognised, their texts
        compared, and the picture's rows found again. Raises OutcomeUnverified when the chat cannot tell (rows of
        an unknown form, a text that cannot be compared, a page that shows too little to place the rows),
        SendOutcomeUnknown while the message's row is still Pending, and TransientSendError when the chat could not
        be read now."""

    def page_clock_offset_s(self) -> float | None:
        """The page's clock minus this machine's, in seconds, as estimated from the rows of recent sends; None when
        not known."""
        return None

    def account_number(self) -> str | None:
        """The logged-in account's own number (digits), when the page tells it."""
        return None

    def is_registered(self, phone: str) -> bool | None:
        """Whether phone is on WhatsApp; None when this sender cannot tell."""
        return None

    def receipt_status(self, phone: str, wa_id: str) -> str | None:
        """The tick status of a sent message (sent | delivered | read), None when unknown."""
        return None

    # Set by the worker's wiring (workers/runtime.py) when it reads replies; None: nothing is noted.
    chat_notes: ChatNotes | None = None

    def read_replies(self, max_chats: int = 1, *, again: bool = False, first: str | None = None) -> list[Reply]:
        """The replies in up to `max_chats` chats the chat list shows unread (each chat's newest incoming rows, as
        many as its unread count), and those after this session's last row in the chat open now. Never during a send
        (the caller holds the session's lock). A chat whose rows cannot be read is skipped and named in the log, never
        guessed at. A reply may be returned again (a chat re-read after a restart): the caller records each once.

        `first` (a number) is the chat a send is about to open: read too, beyond `max_chats`, when the list shows it
        unread, since opening it for the send would take its badge. With chat_notes, each chat is noted before it
        opens, and every noted chat is read again, first, on a new page (a restarted worker or browser) or when
        `again` (the caller could not record the last read's replies).
        A sender that cannot read chats returns none."""
        return []

    def replies_recorded(self) -> None:
        """Every reply the last read_replies returned is recorded: the notes of the chats it read may go, but the
        chat in front's (replies there get no badge) and any it could not read. Not called after a read whose
        replies were not all recorded (the next read has `again`). A sender that notes nothing has nothing to do."""
        return None

    def last_problem(self) -> str | None:
        """The last reason connect() or a state check could not reach a connected session (a failed page load's
        error text, "Chrome did not start: ...", "logged out: scan the QR code", a ban notice's own words), None when
        unknown."""
        return None

    def qr_png(self) -> bytes | None:
        """The QR code to scan as PNG bytes, when the session waits for a scan."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Release everything (the browser and its process tree)."""

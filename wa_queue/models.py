"""Message, its status and its history. Plain data: no I/O here."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import time
from datetime import datetime, timezone
from typing import Any, TypeVar

from wa_queue.send_window import SendWindow

UNKNOWN_OUTCOME = "SendOutcomeUnknown"  # the error class name (errors.SendOutcomeUnknown), kept here to stay I/O free


class MessageStatus(str, enum.Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"  # still unsent (and not in doubt) at its expires_at: final, never clicked after it
    CANCELLED = "cancelled"  # cancelled by its producer or an operator while pending: final, never clicked after it
    PAUSED = "paused"  # its batch is paused: kept, not published, until the batch resumes


class Priority(str, enum.Enum):
    """What a session sends first among its due messages: every due high before any due normal, normal before low
    (the broker's priority steps, broker/envelope.py); first in, first out within one."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Category(str, enum.Enum):
    """What a message is to its recipient, for the opt-out's scope (WAQ_OPT_OUT_SCOPE): with scope `marketing`, a
    number that opted out still gets transactional messages (a receipt, a code) and no marketing ones."""

    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"
    OPT_OUT_REPLY = "opt_out_reply"  # WAQ_OPT_OUT_REPLY's confirmation: the system's own, let through the list


def blocked_by_opt_out(category: Category | str, scope: str) -> bool:
    """Whether an entry on the suppression list stops a message of this category under WAQ_OPT_OUT_SCOPE. An unknown
    category (a newer version's) is stopped: the careful reading."""
    if category == Category.OPT_OUT_REPLY:
        return False
    return scope != "marketing" or category != Category.TRANSACTIONAL


class MediaKind(str, enum.Enum):
    """How a file is sent: what WhatsApp shows it as. A photo or a video sent uncompressed is a DOCUMENT (its
    mimetype says it is an image)."""

    IMAGE = "image"
    DOCUMENT = "document"
    AUDIO = "audio"
    VIDEO = "video"


@dataclasses.dataclass(frozen=True)
class MediaRef:
    """The file a media message sends: its bytes are the media store's under `sha256` (wa_queue/media/files.py);
    the rest is what the checks decided (wa_queue/media/rules.py). `filename` is the name the recipient sees."""

    sha256: str
    size: int
    mimetype: str
    filename: str
    kind: MediaKind | str  # a str only for a stored value this code does not know (parse_stored)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", parse_stored(MediaKind, self.kind))

    @property
    def as_document(self) -> bool:
        """A photo or a video sent as a file, uncompressed."""
        return self.kind == MediaKind.DOCUMENT and self.mimetype.split("/")[0] in ("image", "video")

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "mimetype": self.mimetype, "filename": self.filename,
                "kind": plain(self.kind)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaRef:
        return cls(sha256=str(data["sha256"]), size=int(data["size"]), mimetype=str(data["mimetype"]),
                   filename=str(data["filename"]), kind=str(data["kind"]))


@dataclasses.dataclass(frozen=True)
class MediaUpload:
    """A file stored by POST /api/whatsapp/media, before (and while) messages name it by `id`. `enqueued_by` is the
    API key that uploaded it: only that key's messages may name it."""

    id: str
    media: MediaRef
    created_at: datetime
    enqueued_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.media.to_dict(), "created_at": self.created_at.isoformat()}


@dataclasses.dataclass(frozen=True)
class Suppression:
    """A number on the suppression list: nothing is enqueued for it, and nothing queued for it is clicked. `session`
    and `word` say where an opt-out reply came from (None for an operator's entry); `by` who added it (an API key's
    name, `cli:<user>`, `import:<file>` or the session that read the reply)."""

    phone: str
    since: datetime
    by: str
    session: str | None = None
    word: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"phone": self.phone, "since": self.since.isoformat(), "by": self.by, "session": self.session,
                "word": self.word}


class OptChange(str, enum.Enum):
    """What a reply did to its number's place on the suppression list."""

    OUT = "out"  # an opt-out word: put on the list
    IN = "in"  # an opt-in word: taken off it


@dataclasses.dataclass(frozen=True)
class SuppressionChange:
    """One change of the suppression list, kept after the entry is gone: who put a number on it or took it off
    (`by`: an API key's name, `cli:<user>`, `import:<file>`, or the session that read the reply), and when."""

    phone: str
    change: OptChange
    at: datetime
    by: str
    session: str | None = None
    word: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"phone": self.phone, "change": self.change.value, "at": self.at.isoformat(), "by": self.by,
                "session": self.session, "word": self.word}


@dataclasses.dataclass(frozen=True)
class ChatNote:
    """A chat a session's page opened, or is opening to read `unread` replies, noted durably before it opens: the
    page counts what an open chat shows as read (its badge goes), so a worker killed before recording those replies
    finds them through this note, not through a badge. `chat` is the chat list's name of a chat opened from the list,
    `phone` the number of one a send opened (one of the two). A session has a note per chat opened since its replies
    were last all recorded (the one in front stays: replies there get no badge either). `seen` is the id of the
    newest row a read of that chat saw whose replies were recorded: a re-read counts the incoming rows after it."""

    session: str
    chat: str | None
    phone: str | None
    unread: int
    at: datetime
    seen: str | None = None

    @property
    def key(self) -> str:
        """The chat's key among the session's notes: one note per chat."""
        return chat_key(self.chat, self.phone)


def chat_key(chat: str | None, phone: str | None) -> str:
    """A noted chat's key: its list name, or the number a send opened."""
    return f"chat:{chat}" if chat is not None else f"phone:{phone}"


@dataclasses.dataclass(frozen=True)
class InboundMessage:
    """A reply read in a session's chat, recorded once per (session, chat, wa_id). `chat` is what the page shows for
    the chat (a number, or the name of a contact who hides it); `phone` is the E.164 number, None when the page shows
    none (usernames, `@lid` ids). `shown_at` is the time the page printed (its clock, not ours; None when unreadable),
    `received_at` when the worker read it. `reply_to`: the last message this system sent to the number."""

    session: str
    chat: str
    wa_id: str
    text: str
    phone: str | None
    received_at: datetime
    shown_at: datetime | None = None
    id: str = dataclasses.field(default_factory=lambda: new_message_id())
    reply_to: str | None = None
    opt: OptChange | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "session": self.session, "chat": self.chat, "wa_id": self.wa_id, "text": self.text,
                "phone": self.phone, "has_number": self.phone is not None,
                "received_at": self.received_at.isoformat(),
                "shown_at": self.shown_at.isoformat() if self.shown_at else None, "reply_to": self.reply_to,
                "opt": self.opt.value if self.opt else None}


class HistoryEvent(str, enum.Enum):
    """What a history entry records; the value is the string stored and shown (docs/architecture.md, lifecycle)."""

    ENQUEUED = "enqueued"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"  # by a worker, or by an operator's mark-sent (with the note as error_text)
    RETRY = "retry"
    RELEASED = "released"
    FAILED = "failed"
    RECOVERED = "recovered"
    REQUEUED = "requeued"
    RECEIPT = "receipt"
    DEFERRED = "deferred"  # held back without an attempt (send window closed, recipient's daily limit), with why
    CALLBACK_REFUSED = "callback_refused"  # the outbound rule refused the callback URL, or it redirected (final)
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # with who cancelled it as the entry's text
    PAUSED = "paused"  # with why (an operator, or its session banned)
    RESUMED = "resumed"


class SessionStatus(str, enum.Enum):
    """A session record's status. The sender reports the browser states (transport.base.SessionState is this enum);
    UNKNOWN is a record never written, NEEDS_OPERATOR one whose reconnections ran out. BANNED is both: a sender
    reports it, and the record keeps it until an operator restarts the session."""

    UNKNOWN = "unknown"
    STARTING = "starting"
    QR = "qr"  # waiting for a QR scan
    CONNECTED = "connected"
    PHONE_DISCONNECTED = "phone_disconnected"
    LOGGED_OUT = "logged_out"
    CLOSED = "closed"
    NEEDS_OPERATOR = "needs_operator"
    BANNED = "banned"  # the page shows a ban or restriction: no sending, no reconnection until an operator's restart


E = TypeVar("E", bound=enum.Enum)


def parse_stored(kind: type[E], value: str) -> E | str:
    """A stored string as its enum member. A string this code does not know (written by a newer version, or by hand)
    stays the plain string: a read never fails on it, it is shown as stored, and it equals no member, so nothing
    decides on it (a session of unknown status is not available)."""
    try:
        return kind(value)
    except ValueError:
        return value


def plain(value: str) -> str:
    """The stored string of an enum member or a string: f"{member}" would give "HistoryEvent.SENT" on Python 3.11."""
    return value.value if isinstance(value, enum.Enum) else value


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_message_id() -> str:
    """A UUIDv7 in hex: 48 bits of Unix milliseconds, then 74 random bits (RFC 9562). Ids made later sort later, so
    a store's primary-key index grows at its end instead of at a random page (fewer pages written per insert, and a
    hot set that fits the cache at millions of rows), and 74 random bits keep them unguessable."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76 | 0x3 << 62) | 0x7 << 76 | 0x2 << 62  # version 7, variant 0b10
    return f"{value:032x}"


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    """One transition: when, which session, what happened and why."""

    at: datetime
    event: HistoryEvent | str  # a str only for a stored event this code does not know (parse_stored)
    session: str | None = None
    error_class: str | None = None
    error_text: str | None = None

    def __post_init__(self) -> None:
        # Every way in (a store's row or document, the code's own literals) ends as the member.
        object.__setattr__(self, "event", parse_stored(HistoryEvent, self.event))

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "event": plain(self.event),
            "session": self.session,
            "error_class": self.error_class,
            "error_text": self.error_text,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryEntry:
        return cls(
            at=datetime.fromisoformat(data["at"]),
            event=data["event"],
            session=data.get("session"),
            error_class=data.get("error_class"),
            error_text=data.get("error_text"),
        )


@dataclasses.dataclass(frozen=True)
class NewMessage:
    """What a producer asks for. `phone` is already normalised to E.164 ('+' and digits)."""

    phone: str
    text: str
    session: str | None = None
    idempotency_key: str | None = None
    callback_url: str | None = None
    metadata: dict[str, Any] | None = None
    send_window: SendWindow | None = None  # quiet hours in the recipient's zones (None: WAQ_SEND_WINDOW applies)
    # The name of the API key that enqueues it (wa_queue/owners.py); None from the Python API and the CLI.
    enqueued_by: str | None = None
    # An idempotency key in the form older versions stored: a row under it without an owner counts as this
    # message's (owners.legacy_idempotency_key). Not stored.
    legacy_idempotency_key: str | None = None
    send_at: datetime | None = None  # not sent before (UTC); None: as soon as it may
    expires_at: datetime | None = None  # never clicked from then on (UTC); None: never expires
    priority: Priority = Priority.NORMAL
    batch: str | None = None  # the batch it belongs to (a bulk enqueue's), owned by its enqueuer
    category: Category = Category.TRANSACTIONAL
    media: MediaRef | None = None  # a media message: the file; `text` is then its caption (may be empty)
    # The file's bytes when the enqueue brought them (not an upload's id): put in the media files before the row is
    # committed (operations.submit). Not stored with the row.
    media_bytes: bytes | None = dataclasses.field(default=None, repr=False, compare=False)
    # The request's own expiry fields ({"expires_at": ISO, "ttl_s": n}, those given; {} for none, when
    # WAQ_DEFAULT_TTL_S applies), which the content hash takes in place of the expires_at computed from them: a
    # replay computes another (now + ttl_s). None (a NewMessage built in code): expires_at is the content.
    expiry_asked: dict[str, Any] | None = dataclasses.field(default=None, repr=False, compare=False)

    def content_hash(self) -> str:
        """Identifies the request's content, to tell a replay (same key, same body) from a conflict."""
        parts: list[Any] = [self.phone, self.text, self.session, self.callback_url, self.metadata]
        if self.send_window is not None:  # appended only when given: hashes stored before the field stay valid
            parts.append(self.send_window.to_dict())
        asked = self.expiry_asked if self.expiry_asked is not None else {
            "expires_at": self.expires_at and self.expires_at.isoformat()}
        later = {"send_at": self.send_at and self.send_at.isoformat(), **asked,
                 "priority": None if self.priority is Priority.NORMAL else self.priority.value,
                 "category": None if self.category is Category.TRANSACTIONAL else self.category.value}
        # The batch is not content: a bulk request resent without one is given another name, and is still a replay.
        if any(later.values()):  # the same: only when one is given
            parts.append({k: v for k, v in later.items() if v})
        if self.media is not None:  # the same: the bytes (by their hash), the name and the kind are the content
            parts.append({"media": self.media.to_dict()})
        body = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Message:
    id: str
    phone: str
    text: str
    status: MessageStatus
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime
    attempts: int = 0  # attempts that ended in an error (the retry schedule counts these)
    session: str | None = None  # the session the producer asked for (a preference)
    idempotency_key: str | None = None
    content_hash: str | None = None
    callback_url: str | None = None
    metadata: dict[str, Any] | None = None
    send_window: SendWindow | None = None  # the message's own window; None: WAQ_SEND_WINDOW applies
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    claimed_by: str | None = None  # session holding the current claim
    last_attempt_at: datetime | None = None  # when a worker last claimed it for an attempt
    sending_at: datetime | None = None  # set just before the send click: outcome unknown if the worker dies
    sending_session: str | None = None
    # The ids of the chat's last rows seen just before that click (JSON list, transport.chat.picture_of): a row that
    # carries the text and is not among them appeared after the click.
    sending_picture: str | None = None
    dispatched_at: datetime | None = None
    dispatch_epoch: str | None = None
    dispatch_queue: str | None = None
    sent_at: datetime | None = None
    sent_by: str | None = None
    wa_id: str | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed_at: datetime | None = None
    last_error_class: str | None = None
    last_error_text: str | None = None
    history: tuple[HistoryEntry, ...] = ()
    enqueued_by: str | None = None  # the API key's name (never its value); None: Python API, CLI, older versions
    send_at: datetime | None = None  # the producer's scheduled time; next_attempt_at starts there
    expires_at: datetime | None = None
    priority: Priority | str = Priority.NORMAL  # a str only for a stored value this code does not know (parse_stored)
    batch: str | None = None
    expired_at: datetime | None = None
    cancelled_at: datetime | None = None
    media: MediaRef | None = None  # a media message's file; its text is the caption
    # A str only for a stored value this code does not know (parse_stored); a NULL column reads as transactional.
    category: Category | str = Category.TRANSACTIONAL

    def __post_init__(self) -> None:
        object.__setattr__(self, "priority", parse_stored(Priority, self.priority or Priority.NORMAL.value))
        object.__setattr__(self, "category", parse_stored(Category, self.category or Category.TRANSACTIONAL.value))

    @property
    def in_doubt(self) -> bool:
        """A send was started and its outcome never recorded: the worker died after the click, or the click's
        acknowledgement never came (SendOutcomeUnknown). Only the chat of the session that clicked can tell."""
        if self.status is MessageStatus.SENT:
            return False
        return self.sending_at is not None or self.last_error_class == UNKNOWN_OUTCOME

    @property
    def doubt_session(self) -> str | None:
        """The session whose chat must be read before this message may be sent again."""
        if not self.in_doubt:
            return None
        if self.sending_at is not None and self.sending_session:
            return self.sending_session
        retry = self._unknown_outcome_retry()
        return retry.session if retry else None

    @property
    def doubt_since(self) -> datetime | None:
        """When the unknown outcome began: the click that was never settled."""
        if not self.in_doubt:
            return None
        if self.sending_at is not None:
            return self.sending_at
        retry = self._unknown_outcome_retry()
        return retry.at if retry else None

    @property
    def doubt_picture(self) -> tuple[str, ...] | None:
        """The ids of the chat's rows seen just before the click in doubt; None when none was recorded."""
        if not self.in_doubt or self.sending_picture is None:
            return None
        try:
            ids = json.loads(self.sending_picture)
        except ValueError:
            return None  # unreadable: as if none was recorded (the rules then trust no row's absence from it)
        return tuple(str(i) for i in ids) if isinstance(ids, list) else None

    def _unknown_outcome_retry(self) -> HistoryEntry | None:
        """The latest retry an unknown outcome caused (the doubt when no send is marked)."""
        return next((e for e in reversed(self.history)
                     if e.event == HistoryEvent.RETRY and e.error_class == UNKNOWN_OUTCOME), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, enum.Enum):
                value = value.value
            elif field.name == "history":
                value = [entry.to_dict() for entry in value]
            elif isinstance(value, SendWindow | MediaRef):
                value = value.to_dict()
            out[field.name] = value
        return out

"""The simulated WhatsApp servers: devices, links, accepted messages and injected faults.

Free of Flask so it can be read (and tested) on its own. One re-entrant lock guards everything; callers that must
wait (a `slow` fault, a disconnected phone) sleep outside it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from wa_queue.simulator.profiles import DEFAULT_MARKUP, MAX_CLOCK_SKEW_S, check_markup

NUMBER_FAULTS = ("unregistered", "slow", "fail_send", "drop_before_click", "drop_after_click")
SESSION_FAULTS = ("phone_disconnected", "computer_disconnected", "logged_out", "conflict", "banned", "restricted")
# The wordings the real page uses (the defaults of wa_queue/transport/selectors.NOTICES recognise both).
BAN_TEXT = "Your phone number is banned from using WhatsApp. Contact support for help."
RESTRICTED_TEXT = "Your account is restricted until {until}. You can't send messages right now."
RESTRICTED_DEFAULT_S = 24 * 3600.0  # a restriction with no `until` given lasts a day, as WhatsApp's first ones do
STATUSES = ("Pending", "Sent", "Delivered", "Read")

ConfigValue = float | bool | str | dict[str, object] | None
# Timings; None means "never" (a receipt that never arrives, a QR that never expires). Strict defaults.
DEFAULT_CONFIG: dict[str, ConfigValue] = {
    "starting_chat_s": 0.5,  # how long the "Starting chat" modal stays up
    "delivered_after_s": 1.0,  # after the server accepted a message
    "read_after_s": 2.0,  # after the server accepted a message
    "qr_ttl_s": 60.0,  # a QR older than this can no longer be scanned; the page then shows the reload button
    "poll_ms": 500.0,  # how often pages ask the server for news
    "ack_delay_s": 1.0,  # from the click to the servers' ack (Pending -> Sent)
    "history_delay_ms": 600.0,  # an opened chat shows its compose box at once and its rows this much later
    "input_delay_ms": 150.0,  # the editor applies a paste or inserted text this much later (+ up to 100 ms)
    "boot_delay_s": 0.0,  # every full page load shows "Loading your chats" this long before the app
    "whats_new": True,  # a device's first app load shows the "What's new" overlay until its OK is clicked
    # Page-side variants of the profile (README.md, "Variants"): every time the page shows is shifted by
    # clock_skew_s (a page whose clock is not the worker's); the other three swap one part of the profile's form.
    "clock_skew_s": 0.0,
    "send_control": "profile",
    "row_ids": "profile",
    "ticks": "profile",
    # False: Enter adds a line instead of sending, as with WhatsApp's "Enter is send" setting off.
    "enter_sends": True,
    # Media: an upload takes size / upload_kbps (KB of 1,000 bytes a second; 0: at once); a photo, video or audio
    # file over max_media_mb, a document over max_document_mb, is refused when chosen (MB of 10^6 bytes).
    "upload_kbps": 8000.0,
    "max_media_mb": 16.0,
    "max_document_mb": 100.0,
    # {"text": str, "after_ms": 0-5000}: after each outgoing click the recipient replies with `text` after_ms later,
    # an incoming message in the same chat (the strict profile's habit of replies arriving mid-send); null: none.
    "reply_during_send": None,
}
# strict=False: an immediate page (synchronous editor, no history delay, no overlay), for tests and demos that do not
# exercise the real page's timing.
LENIENT_CONFIG: dict[str, ConfigValue] = {"ack_delay_s": 0.0, "history_delay_ms": 0.0, "input_delay_ms": 0.0,
                                          "whats_new": False, "upload_kbps": 0.0}
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")  # sticker: a photo put into the sticker maker
MAX_UPLOAD_BYTES = 2_000_000_000
_NEVER_OK = ("delivered_after_s", "read_after_s", "qr_ttl_s")
_BOOL_KEYS = ("whats_new", "enter_sends")
_SIGNED_KEYS = ("clock_skew_s",)
# Named variants: "profile" keeps the profile's own form. send_control: the send button as a <button>, a
# div[role="button"] or a form no selector knows; row_ids: data-id packed (true_/false_) or bare; ticks: "title"
# drops the status aria-label, leaving only the tick's SVG <title>.
CHOICE_KEYS: dict[str, tuple[str, ...]] = {
    "send_control": ("profile", "button", "div", "unknown"),
    "row_ids": ("profile", "packed", "bare"),
    "ticks": ("profile", "title"),
}
AUTO_SCAN_PREFIX = "1555000"
_DIGITS = re.compile(r"^\d{7,15}$")
_LID = re.compile(r"^\d{8,20}$")  # a contact who hides the number: WhatsApp's `@lid` ids (usernames, since June 2026)
MAX_NAME = 64
MAX_REPLY_AFTER_MS = 5000


class SimError(Exception):
    """A control-API request that cannot be honoured; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Device:
    id: str
    account: str | None = None  # the linked account's phone; None shows the QR page
    ref: str | None = None  # the pairing token in the current QR
    ref_issued: float = 0.0
    ever_linked: bool = False  # auto-scan links only a device's first visit, so a logout fault sticks
    created: float = field(default_factory=time.time)
    whats_new_seen: bool = False  # its "What's new" overlay was closed with OK: never shown again


@dataclass
class Message:
    id: str  # packed: true_<to>@c.us_<hex> (outgoing), false_<sender>@c.us_<hex> or false_<lid>@lid_<hex> (incoming)
    sender: str
    to: str
    text: str
    time: float  # when the servers recorded it (the click reached them)
    device: str  # the sending device; "" for an incoming message
    acked_at: float = 0.0  # when they acknowledge it (Pending -> Sent); later than `time` under a `slow` fault
    incoming: bool = False  # from someone else to the account `to`
    # A media message: {kind, filename, size, sha256, mimetype} of the bytes that arrived; `text` is its caption.
    media: dict[str, object] | None = None
    # An incoming message from a contact who hides the number: its @lid id and display name (`sender` is then "").
    lid: str | None = None
    name: str | None = None

    def public(self, status: str | None = None) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "bare_id": self.id.rsplit("_", 1)[-1],
                                  "from": None if self.lid else self.sender,
                                  "to": self.to, "text": self.text, "time": self.time, "device": self.device,
                                  "acked_at": self.acked_at, "direction": "in" if self.incoming else "out",
                                  "media": self.media}
        if self.lid:
            out["lid"], out["name"] = self.lid, self.name
        if status is not None:
            out["status"] = status
        return out


@dataclass
class NumberFault:
    fault: str
    delay_s: float = 3.0
    remaining: int | None = None  # None: until cleared

    def public(self) -> dict[str, object]:
        return {"fault": self.fault, "delay_s": self.delay_s, "count": self.remaining}


def check_clock_skew(value: object) -> float:
    """A clock skew in seconds (negative: the page is behind), else SimError."""
    if (not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)
            or abs(value) > MAX_CLOCK_SKEW_S):
        raise SimError(f"clock_skew_s must be a number of seconds within +-{MAX_CLOCK_SKEW_S:.0f}")
    return float(value)


def _media_label(media: dict[str, object] | None) -> str:
    """What the chat list shows for a media message without a caption."""
    if not media:
        return ""
    return str(media.get("filename")) if media.get("kind") == "document" else {
        "image": "Photo", "video": "Video", "audio": "Audio", "sticker": "Sticker"}.get(str(media.get("kind")), "")


def auto_account(device_id: str) -> str:
    """The stable fake number an auto-scanned device is linked to."""
    return AUTO_SCAN_PREFIX + f"{int(hashlib.sha256(device_id.encode()).hexdigest(), 16) % 10000:04d}"


def valid_number(number: str) -> bool:
    return bool(_DIGITS.match(number))


def lid_peer(lid: str) -> str:
    """The chat key of an @lid contact (a phone's chat key is its digits)."""
    return f"{lid}@lid"


def check_reply_during_send(value: object) -> dict[str, object] | None:
    """The config value reply_during_send: null or {"text": non-empty str, "after_ms": int 0-5000}, else SimError."""
    if value is None:
        return None
    if (not isinstance(value, dict) or set(value) != {"text", "after_ms"} or not isinstance(value["text"], str)
            or not value["text"] or not isinstance(value["after_ms"], int) or isinstance(value["after_ms"], bool)
            or not 0 <= value["after_ms"] <= MAX_REPLY_AFTER_MS):
        raise SimError(f'reply_during_send must be null or {{"text": non-empty string, "after_ms": integer '
                       f'0-{MAX_REPLY_AFTER_MS}}}')
    return {"text": value["text"], "after_ms": value["after_ms"]}


def device_number(device_id: str) -> int:
    """The device's number within its account, as in last-wid-md "<account>:<n>@c.us"; stable per device."""
    return 2 + int(hashlib.sha256(("n" + device_id).encode()).hexdigest(), 16) % 60


class SimState:
    def __init__(self, auto_scan: bool = False, state_file: str | None = None,
                 config: dict[str, ConfigValue] | None = None, clock: Callable[[], float] = time.time,
                 markup: str = DEFAULT_MARKUP, strict: bool = True) -> None:
        self.auto_scan = auto_scan
        self.state_file = Path(state_file) if state_file else None
        self.clock = clock
        self.lock = threading.RLock()
        self.markup, self.strict = check_markup(markup), strict
        self.config: dict[str, ConfigValue] = {**DEFAULT_CONFIG, **({} if strict else LENIENT_CONFIG)}
        self.set_config(config or {})
        self.base_config = dict(self.config)
        self.devices: dict[str, Device] = {}
        self.messages: list[Message] = []
        self.by_id: dict[str, Message] = {}
        self.number_faults: dict[str, NumberFault] = {}
        self.session_faults: dict[str, str] = {}
        self.restricted_until: dict[str, float] = {}  # account -> epoch seconds its `restricted` fault ends
        self.uploads: dict[str, dict[str, object]] = {}  # token -> what an upload's bytes were (sha256, size, ...)
        # (account, chat key) -> incoming messages since the account last had that chat open (0s are dropped)
        self.unread: dict[tuple[str, str], int] = {}
        self.generation = 0  # bumped by reset: a reply_during_send timer from before it does nothing
        self._load()

    # ---- devices and linking -------------------------------------------------------------------------------

    def device(self, device_id: str) -> Device:
        """The device record for a browser, created on first sight (auto-scan links it then)."""
        with self.lock:
            dev = self.devices.get(device_id)
            if dev is None:
                dev = self.devices[device_id] = Device(id=device_id, created=self.clock())
            if self.auto_scan and dev.account is None and not dev.ever_linked:
                self._link(dev, auto_account(device_id))
            return dev

    def current_ref(self, device_id: str, fresh_if_expired: bool = True) -> str:
        """The QR payload a page shows; a new page load replaces an expired one, as the real page does."""
        with self.lock:
            dev = self.device(device_id)
            if dev.ref is None or (fresh_if_expired and self.qr_expired(dev)):
                self.new_ref(device_id)
            return dev.ref  # type: ignore[return-value]

    def new_ref(self, device_id: str) -> str:
        with self.lock:
            dev = self.device(device_id)
            dev.ref = "2@" + secrets.token_urlsafe(24) + "," + secrets.token_urlsafe(16)
            dev.ref_issued = self.clock()
            return dev.ref

    def qr_expired(self, dev: Device) -> bool:
        ttl = self.config["qr_ttl_s"]
        return ttl is not None and dev.ref is not None and self.clock() - dev.ref_issued > ttl

    def scan(self, phone: str, ref: str | None = None) -> Device:
        """Link the device showing QR `ref` (default: the most recently issued unlinked QR) to account `phone`."""
        if not valid_number(phone):
            raise SimError(f"account phone must be 7-15 digits, got {phone!r}")
        with self.lock:
            waiting = [d for d in self.devices.values() if d.account is None and d.ref]
            if ref is not None:
                matches = [d for d in waiting if d.ref == ref]
                if not matches:
                    raise SimError(f"no unlinked device shows QR {ref!r}", 404)
                dev = matches[0]
            elif not waiting:
                raise SimError("no unlinked device is showing a QR code", 409)
            else:
                dev = max(waiting, key=lambda d: d.ref_issued)
            if self.qr_expired(dev):
                raise SimError("that QR code has expired: the page must reload it", 409)
            self._link(dev, phone)
            return dev

    def _link(self, dev: Device, phone: str) -> None:
        dev.account, dev.ref, dev.ever_linked = phone, None, True
        self._save()

    def unlink_account(self, phone: str) -> list[str]:
        with self.lock:
            gone = [d for d in self.devices.values() if d.account == phone]
            for dev in gone:
                dev.account = None
            self._save()
            return [d.id for d in gone]

    def devices_public(self) -> list[dict[str, object]]:
        with self.lock:
            return [{"id": d.id, "account": d.account, "linked": d.account is not None, "ref": d.ref,
                     "qr_expired": self.qr_expired(d), "ever_linked": d.ever_linked,
                     "whats_new_seen": d.whats_new_seen} for d in self.devices.values()]

    def whats_new_due(self, dev: Device) -> bool:
        return bool(self.config["whats_new"]) and not dev.whats_new_seen

    def close_whats_new(self, device_id: str) -> None:
        with self.lock:
            self.device(device_id).whats_new_seen = True
            self._save()

    # ---- faults --------------------------------------------------------------------------------------------

    def set_fault(self, body: dict[str, object]) -> dict[str, object]:
        """Apply one control request: {"number", "fault", "delay_s"?, "count"?} or {"session", "fault", "until"?}."""
        fault = body.get("fault")
        if fault is not None and not isinstance(fault, str):
            raise SimError("fault must be a string or null")
        if "number" in body:
            return self._set_number_fault(str(body["number"]), fault, body)
        if "session" in body:
            return self._set_session_fault(str(body["session"]), fault, body.get("until"))
        raise SimError('give "number" (a destination) or "session" (an account phone)')

    def _set_number_fault(self, number: str, fault: str | None, body: dict[str, object]) -> dict[str, object]:
        if not number.isdigit():
            raise SimError(f"number must be digits, got {number!r}")
        if fault is not None and fault not in NUMBER_FAULTS:
            raise SimError(f"unknown number fault {fault!r}; known: {', '.join(NUMBER_FAULTS)}")
        count, delay = body.get("count"), body.get("delay_s", 3.0)
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise SimError("count must be a positive integer or null")
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise SimError("delay_s must be a non-negative number")
        with self.lock:
            if fault is None:
                self.number_faults.pop(number, None)
            else:
                self.number_faults[number] = NumberFault(fault, float(delay), count)
            return {"ok": True}

    def _set_session_fault(self, phone: str, fault: str | None, until: object = None) -> dict[str, object]:
        if not phone.isdigit():
            raise SimError(f"session must be the account's digits, got {phone!r}")
        if fault is not None and fault not in SESSION_FAULTS:
            raise SimError(f"unknown session fault {fault!r}; known: {', '.join(SESSION_FAULTS)}")
        if until is not None and (fault != "restricted" or not isinstance(until, int | float)
                                  or isinstance(until, bool)):
            raise SimError("until (epoch seconds) goes only with the fault restricted")
        with self.lock:
            self.restricted_until.pop(phone, None)
            if fault == "restricted":
                self.restricted_until[phone] = float(until) if until is not None else \
                    self.clock() + RESTRICTED_DEFAULT_S
            if fault == "logged_out":  # an event, not a state: the devices are unlinked now and must scan again
                self.session_faults.pop(phone, None)
                return {"ok": True, "unlinked": self.unlink_account(phone)}
            if fault is None:
                self.session_faults.pop(phone, None)
            else:
                self.session_faults[phone] = fault
            return {"ok": True}

    def faults_public(self) -> dict[str, object]:
        with self.lock:
            return {"numbers": {n: f.public() for n, f in self.number_faults.items()},
                    "sessions": {p: {"fault": f, **({"until": self.restricted_until[p]} if p in self.restricted_until
                                                    else {})}
                                 for p in list(self.session_faults) if (f := self.session_fault(p))}}

    def take_fault(self, number: str, kinds: tuple[str, ...]) -> NumberFault | None:
        """The number's fault if it is one of `kinds`, using up one of its `count`."""
        with self.lock:
            nf = self.number_faults.get(number)
            if nf is None or nf.fault not in kinds:
                return None
            if nf.remaining is not None:
                nf.remaining -= 1
                if nf.remaining <= 0:
                    del self.number_faults[number]
            return NumberFault(nf.fault, nf.delay_s, nf.remaining)

    def session_fault(self, phone: str | None) -> str | None:
        """The account's fault now; a restriction ends by itself at its `until`, as WhatsApp lifts it."""
        with self.lock:
            fault = self.session_faults.get(phone or "")
            if fault == "restricted" and self.clock() >= self.restricted_until.get(phone or "", 0.0):
                del self.session_faults[phone or ""]
                self.restricted_until.pop(phone or "", None)
                return None
            return fault

    def notice(self, phone: str | None) -> str | None:
        """The words the account's pages show for a `banned` or `restricted` fault, else None."""
        with self.lock:
            fault = self.session_fault(phone)
            if fault == "banned":
                return BAN_TEXT
            if fault == "restricted":
                skew = self.config["clock_skew_s"]
                shown_at = self.restricted_until[phone or ""] + (skew if isinstance(skew, float) else 0.0)
                until = time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(shown_at))
                return RESTRICTED_TEXT.format(until=until)
            return None

    def use_here(self, phone: str) -> None:
        """A page's "Use here": this window takes the account back, which ends its `conflict`."""
        with self.lock:
            if self.session_faults.get(phone) == "conflict":
                del self.session_faults[phone]

    # ---- messages ------------------------------------------------------------------------------------------

    def is_registered(self, number: str) -> bool:
        """What /send asks before it opens a chat; uses up one `unregistered` fault."""
        return valid_number(number) and self.take_fault(number, ("unregistered",)) is None

    def upload(self, data: bytes, name: str, mimetype: str) -> str:
        """Keep what an uploaded file's bytes were (their SHA-256, size, name, type); the token a send names."""
        token = secrets.token_hex(16)
        with self.lock:
            self.uploads[token] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "filename": name,
                                   "mimetype": mimetype}
        return token

    def media_of(self, body: object) -> dict[str, object] | None:
        """A send's {token, kind} as the message's media, or SimError."""
        if body is None:
            return None
        if not isinstance(body, dict) or body.get("kind") not in MEDIA_KINDS:
            raise SimError(f"media must be {{token, kind}} with kind one of {', '.join(MEDIA_KINDS)}")
        with self.lock:
            upload = self.uploads.get(str(body.get("token")))
        if upload is None:
            raise SimError("media.token names no upload")
        return {"kind": body["kind"], **upload}

    def media_messages(self) -> list[dict[str, object]]:
        """Every accepted media message: its kind, file name, size, SHA-256, type and caption (for tests)."""
        with self.lock:
            return [{"id": m.id, "to": m.to, "from": m.sender, "time": m.time, "caption": m.text, **m.media}
                    for m in self.messages if m.media is not None and not m.incoming]

    def accept(self, device_id: str, msg_id: str, to: str, text: str, ack_delay_s: float = 0.0,
               media: dict[str, object] | None = None) -> Message:
        """Record a message; the same id twice is one message. It reads Pending until `ack_delay_s` has passed."""
        with self.lock:
            dev = self.devices.get(device_id)
            if dev is None or dev.account is None:
                raise SimError("this device is not linked", 401)
            if msg_id in self.by_id:
                return self.by_id[msg_id]
            now = self.clock()
            msg = Message(msg_id, dev.account, to, text, now, device_id, now + ack_delay_s, media=media)
            self.messages.append(msg)
            self.by_id[msg_id] = msg
            self._save()
            self._reply_later(dev.account, to)
            return msg

    def _reply_later(self, account: str, to: str) -> None:
        """reply_during_send: `to` answers the click that just reached the servers, after_ms later."""
        reply = self.config.get("reply_during_send")
        if not isinstance(reply, dict) or not valid_number(to):
            return
        text, after_s, generation = str(reply["text"]), float(reply["after_ms"]) / 1000, self.generation  # type: ignore[arg-type]

        def deliver() -> None:
            with self.lock:
                if self.generation == generation:  # not after a reset
                    self.receive(account, to, text)

        if after_s <= 0:
            deliver()
            return
        timer = threading.Timer(after_s, deliver)
        timer.daemon = True
        timer.start()

    def receive(self, account: str, sender: object, text: str, lid: object = None, name: object = None) -> Message:
        """Record a message from `sender` (digits), or from the @lid contact `lid` shown as `name`, to `account`: its
        chat with that contact shows it as an incoming row, unread until the account opens the chat."""
        sender, lid = (str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in (sender, lid))
        if not isinstance(account, str) or not valid_number(account):
            raise SimError("account must be 7-15 digits")
        if (sender in (None, "")) == (lid in (None, "")):
            raise SimError('give exactly one of "from" (7-15 digits) or "lid" (8-20 digits, a contact who hides the '
                           'number)')
        if lid in (None, ""):
            if not isinstance(sender, str) or not valid_number(sender):
                raise SimError("from must be 7-15 digits")
            if name is not None:
                raise SimError('name goes only with "lid" (a contact with a number shows the number)')
        else:
            if not isinstance(lid, str) or not _LID.match(lid):
                raise SimError("lid must be 8-20 digits")
            if name is None:
                raise SimError(f"name (a display name of 1-{MAX_NAME} characters) is required with lid")
            if (not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or name.strip().startswith("+")
                    or any(ord(ch) < 32 for ch in name)):
                raise SimError(f"name must be a display name of 1-{MAX_NAME} characters (not blank, no control "
                               f"characters, not starting with '+')")
        if not isinstance(text, str) or not text:
            raise SimError("text must be a non-empty string")
        with self.lock:
            now = self.clock()
            hex_id = f"3A{secrets.token_hex(9).upper()}"
            if lid:
                msg = Message(f"false_{lid}@lid_{hex_id}", "", account, text, now, "", now, incoming=True,
                              lid=str(lid), name=str(name))
            else:
                msg = Message(f"false_{sender}@c.us_{hex_id}", str(sender), account, text, now, "", now,
                              incoming=True)
            self.messages.append(msg)
            self.by_id[msg.id] = msg
            key = (account, self._peer(msg, account) or "")
            self.unread[key] = self.unread.get(key, 0) + 1
            self._save()
            return msg

    def mark_read(self, account: str, peer: str) -> None:
        """The account has the chat `peer` (digits, or <lid>@lid) open: its incoming messages are read."""
        with self.lock:
            if self.unread.pop((account, peer), None):
                self._save()

    def status(self, msg: Message) -> str:
        age = self.clock() - msg.acked_at
        if age < 0:
            return "Pending"
        read, delivered = self.config["read_after_s"], self.config["delivered_after_s"]
        if read is not None and age >= read:
            return "Read"
        if delivered is not None and age >= delivered:
            return "Delivered"
        return "Sent"

    @staticmethod
    def _peer(m: Message, account: str) -> str | None:
        """The other party of `m` in `account`'s chats, or None if `m` is not in them."""
        if m.incoming:
            return (lid_peer(m.lid) if m.lid else m.sender) if m.to == account else None
        return m.to if m.sender == account else None

    def chat(self, account: str, peer: str) -> list[dict[str, object]]:
        """Both directions, in the order recorded; outgoing ones carry their status."""
        with self.lock:
            return [m.public(None if m.incoming else self.status(m)) for m in self.messages
                    if self._peer(m, account) == peer]

    def chats(self, account: str) -> list[dict[str, object]]:
        """One entry per peer, newest first: what #pane-side lists. `chat` is the key ?chat= takes (the digits, or
        <lid>@lid); `phone` is None for an @lid contact, whose `title` is its name (the latest it was given)."""
        with self.lock:
            last: dict[str, Message] = {}
            names: dict[str, str] = {}
            for m in self.messages:
                peer = self._peer(m, account)
                if peer is not None:
                    last[peer] = m
                    if m.lid and m.name:
                        names[peer] = m.name
            rows = sorted(last.items(), key=lambda item: item[1].time, reverse=True)
            out: list[dict[str, object]] = []
            for peer, m in rows:
                lid = peer[:-len("@lid")] if peer.endswith("@lid") else None
                out.append({"chat": peer, "phone": None if lid else peer, "lid": lid,
                            "title": names.get(peer, "") if lid else f"+{peer}",
                            "text": m.text or _media_label(m.media), "time": m.time,
                            "unread": self.unread.get((account, peer), 0)})
            return out

    def lid_name(self, account: str, lid: str) -> str | None:
        """The name an @lid contact last gave in `account`'s chats, None when it never wrote to it."""
        with self.lock:
            names = [m.name for m in self.messages if m.incoming and m.lid == lid and m.to == account]
            return names[-1] if names else None

    def sent(self, to: str | None = None, sender: str | None = None) -> list[dict[str, object]]:
        with self.lock:
            return [m.public(self.status(m)) for m in self.messages if not m.incoming
                    and (to is None or m.to == to) and (sender is None or m.sender == sender)]

    def received(self, account: str | None = None) -> list[dict[str, object]]:
        with self.lock:
            return [m.public() for m in self.messages if m.incoming and (account is None or m.to == account)]

    # ---- config, reset, persistence ------------------------------------------------------------------------

    def public_config(self) -> dict[str, object]:
        with self.lock:
            return {**self.config, "markup": self.markup, "strict": self.strict}

    def set_config(self, body: dict[str, object]) -> dict[str, object]:
        body = dict(body)
        for key, current in (("markup", self.markup), ("strict", self.strict)):
            # Read-only: a GET's answer may be posted back, but a change needs a restart (--markup, --lenient).
            if key in body and body.pop(key) != current:
                raise SimError(f"{key} is fixed when the simulator starts (now {current!r})")
        unknown = set(body) - set(DEFAULT_CONFIG)
        if unknown:
            raise SimError(f"unknown config key(s) {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
        for key, value in body.items():
            if key in CHOICE_KEYS:
                if value not in CHOICE_KEYS[key]:
                    raise SimError(f"{key} accepts {', '.join(CHOICE_KEYS[key])}")
                continue
            if key in _SIGNED_KEYS:
                check_clock_skew(value)
                continue
            if key == "reply_during_send":
                body[key] = check_reply_during_send(value)
                continue
            if key in _BOOL_KEYS:
                if not isinstance(value, bool):
                    raise SimError(f"{key} must be true or false")
                continue
            if value is None and key in _NEVER_OK:
                continue
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise SimError(f"{key} must be a non-negative number" + (" or null" if key in _NEVER_OK else ""))
        with self.lock:
            self.config.update({k: v if v is None or isinstance(v, bool | str | dict) else float(v)  # type: ignore[arg-type]
                                for k, v in body.items()})
            return self.public_config()

    def reset(self, keep_links: bool = False) -> None:
        with self.lock:
            self.messages.clear()
            self.by_id.clear()
            self.number_faults.clear()
            self.session_faults.clear()
            self.restricted_until.clear()
            self.uploads.clear()
            self.unread.clear()
            self.generation += 1
            self.config = dict(self.base_config)
            if not keep_links:
                self.devices.clear()  # a known browser comes back as a new, unlinked device
            self._save()

    def _save(self) -> None:
        if self.state_file is None:
            return
        data = {"devices": [asdict(d) for d in self.devices.values()], "messages": [asdict(m) for m in self.messages],
                "unread": [[account, peer, n] for (account, peer), n in self.unread.items()]}
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.state_file)  # atomic: a killed simulator leaves the old or the new file, never half

    def _load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text(encoding="utf-8"))
        for raw in data.get("devices", []):
            dev = Device(**raw)
            self.devices[dev.id] = dev
        for raw in data.get("messages", []):
            msg = Message(**{"acked_at": raw.get("time", 0.0), **raw})
            self.messages.append(msg)
            self.by_id[msg.id] = msg
        for account, peer, n in data.get("unread", []):
            self.unread[(account, peer)] = int(n)

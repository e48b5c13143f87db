"""Reading replies on WhatsApp Web: the chats the list shows unread, opened one by one from the list, and their
newest incoming rows (as many as the unread count); and the rows after this session's last one in the chat open now
(the page counts a chat open in front as read, so replies there carry no badge).

Who sent a row comes from its packed id (`false_<digits>@c.us_…`: that number; `…@lid_…`: none) or from its
`data-pre-plain-text` ("[10:02, 12/5/2026] +49 151 12345678: "); a name there is a contact who hides the number,
recorded with none. A chat with a row of unknown direction, an incoming row without an id, or one whose text cannot
be read is skipped whole and named in the log: a reply is never guessed at (a STOP misread as another word, or
another person's row taken for a reply, would be worse than a late one).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from datetime import datetime, timezone
from typing import Any

import phonenumbers

from wa_queue import redact
from wa_queue.models import ChatNote
from wa_queue.transport.base import Reply
from wa_queue.transport.selectors import JS_OPEN_FROM_LIST, JS_REPLIES, JS_UNREAD
from wa_queue.transport.whatsapp_page import EMPTY_CHAT_MIN_S, EMPTY_CHAT_SETTLES

log = logging.getLogger(__name__)

_PACKED = re.compile(r"^false_([^@]+)@(c\.us|lid)_")
_PRE_SENDER = re.compile(r"^\[[^\]]*\]\s*(.*?):\s*$", re.S)
OPEN_TIMEOUT_S = 10.0
POLL_S = 0.1


def e164(shown: str) -> str | None:
    """The E.164 form of a number as the page prints it ("+49 151 12345678"), None for anything else (a name)."""
    if not shown.strip().startswith("+"):
        return None
    try:
        number = phonenumbers.parse(shown, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) \
        if phonenumbers.is_possible_number(number) else None


def sender_of(row: dict[str, Any]) -> tuple[bool, str | None]:
    """(known, phone): whether the row says who sent it, and the number (None: a contact who hides it)."""
    packed = _PACKED.match(row.get("id") or "")
    if packed:
        return True, (e164("+" + packed.group(1)) if packed.group(2) == "c.us" else None)
    said = _PRE_SENDER.match(row.get("pre") or "")
    if not said or not said.group(1).strip():
        return False, None
    return True, e164(said.group(1))


def shown_at(row: dict[str, Any]) -> datetime | None:
    """The time the page printed, when its date reads one way only (times: the row's readings, epoch ms)."""
    times = row.get("times") or []
    return datetime.fromtimestamp(times[0] / 1000, tz=timezone.utc) if len(times) == 1 else None


def replies_in(chat: str, rows: list[dict[str, Any]], unknown: int) -> list[Reply] | None:
    """The chat's incoming rows as replies, or None (logged) when any of them cannot be read for sure."""
    if unknown:
        log.warning("replies in chat %r not read: %d row(s) of unknown direction", chat, unknown)
        return None
    out = []
    for row in rows:
        known, phone = sender_of(row)
        if not row.get("id") or row.get("text") is None or row.get("more") or not known:
            log.warning("replies in chat %r not read: an incoming row without %s", chat,
                        "an id" if not row.get("id") else "its whole text" if row.get("text") is None
                        or row.get("more") else "its sender")
            return None
        out.append(Reply(chat=chat, wa_id=row["id"], text=row["text"], phone=phone, shown_at=shown_at(row)))
    return out


def read(page: Any, max_chats: int, *, again: bool = False, first: str | None = None) -> list[Reply]:
    """The replies of every noted chat when read again (a new document, or `again`), of the open chat (after its last
    outgoing row before this document's own sends there), of `first`'s chat when the list shows it unread (the chat
    a send is about to open: opening it would take the badge) and of up to `max_chats` other unread chats, each
    noted before it opens. The page's note book learns which chats were read (their notes go once recorded)."""
    book = page.book
    book.begin_read()
    found: list[Reply] = []
    if book.notes is not None and (again or book.fresh):
        left = False
        for note in book.notes.pending():
            again_read = _read_again(page, note)
            if again_read is None:  # it did not open: read again at the next read, as the page stays fresh
                left = True
                continue
            got, newest = again_read
            found += got
            book.read(note.key, newest)
        book.fresh = left
    here = page.call(JS_REPLIES)
    if here["title"]:
        got = replies_in(here["title"], new_rows(here["msgs"], 0, page.sent_here), here["unknown"]) \
            if here["msgs"] else []
        if got is not None:
            book.read(book.front, newest_of(here["msgs"]))
        found += got or []
    unread_chats = page.call(JS_UNREAD)
    if first is not None:
        unread_chats = [i for i in unread_chats if e164(i["title"] or "") == first] + \
            [i for i in unread_chats if e164(i["title"] or "") != first][:max_chats]
    else:
        unread_chats = unread_chats[:max_chats]
    for item in unread_chats:
        title, unread = item["title"], item["unread"]
        key = book.opening(chat=title, unread=unread or 0)  # durable before the click takes the badge away
        if not page.call(JS_OPEN_FROM_LIST, title):
            continue
        book.front = key
        page.forget_chat()  # the next send loads its own chat
        shown = _settled(page, title)
        if shown is None:
            log.warning("replies in chat %r not read: it did not open within %gs", title, OPEN_TIMEOUT_S)
            continue
        rows = new_rows(shown["msgs"], unread) if unread is not None else [m for m in shown["msgs"] if m["dir"] == "in"]
        got = replies_in(title, rows, shown["unknown"])
        if got is not None:
            book.read(key, newest_of(shown["msgs"]))
        found += got or []
    return found


def newest_of(msgs: list[dict[str, Any]]) -> str | None:
    """The id of a chat's newest row, of either direction (None: no rows, or the newest has none)."""
    return msgs[-1].get("id") if msgs else None


def new_rows(msgs: list[dict[str, Any]], unread: int, ours: set[str] | frozenset[str] = frozenset(), *,
             after: str | None = None) -> list[dict[str, Any]]:
    """The incoming rows of a chat that are new: its newest `unread` ones (the badge's count), and those after its
    last outgoing row that is not one of `ours` (this document's sends in the open chat: a reply that came while one
    was under way is before its row), in the chat's order. When every outgoing row is ours (this document's first
    words in the chat), every incoming row counts: one from before was read from its badge first (the read before a
    send) and is skipped as recorded, so what is left came during our send, or is the contact's own first words read
    elsewhere; a STOP among them must not be lost. In a chat with no outgoing row, only the badge says what is new.
    `after` (a re-read: the newest row an acknowledged read saw) replaces the outgoing rows as the boundary: the
    incoming rows after it count, and all of them when it is not shown (more rows came since than the page shows)."""
    incoming = [i for i, m in enumerate(msgs) if m["dir"] == "in"]
    wanted = set(incoming[-unread:] if unread > 0 else [])
    if after is not None:
        at = next((i for i, m in enumerate(msgs) if m["id"] == after), -1)
        return [msgs[i] for i in sorted(wanted | {i for i in incoming if i > at})]
    outgoing = [i for i, m in enumerate(msgs) if m["dir"] == "out"]
    others = [i for i in outgoing if msgs[i]["id"] not in ours]
    if others:
        wanted |= {i for i in incoming if i > max(others)}
    elif outgoing:
        wanted |= set(incoming)
    return [msgs[i] for i in sorted(wanted)]


def _read_again(page: Any, note: ChatNote) -> tuple[list[Reply], str | None] | None:
    """The replies of a noted chat, read again, and its newest row: the newest incoming rows, as many as it had unread
    when noted (or shows now, if more), and those after the note's `seen` (after its last outgoing row when it has
    none). None (logged) when it does not open. Rows read before come back too: the caller records each reply once.
    A chat it cannot read for sure is skipped and logged, as in any read, and its `seen` stays where it was."""
    if note.phone is not None:
        try:
            opened = page.open_chat(note.phone)
        except Exception as exc:  # noqa: BLE001 - an unreachable page now: read again next time
            log.warning("replies in the chat of %s not read again: %s: %s", redact.phone(note.phone),
                        type(exc).__name__, exc)
            return None
        if opened["invalid"]:  # not on WhatsApp (a send that failed so): no chat, nothing to read
            page.dismiss_invalid()
            return [], None
        shown = _settled(page, None, empty_ok=note.unread == 0)
    else:
        badges = {i["title"]: i["unread"] or 0 for i in page.call(JS_UNREAD)}
        if not page.call(JS_OPEN_FROM_LIST, note.chat):
            log.warning("replies in chat %r not read again: it is not in the chat list now", note.chat)
            return None
        page.book.front = note.key
        page.forget_chat()
        note = dataclasses.replace(note, unread=max(note.unread, badges.get(note.chat, 0)))
        shown = _settled(page, note.chat, empty_ok=note.unread == 0)
    if shown is None:
        log.warning("replies in chat %r not read again: it did not open within %gs", note.chat or note.phone,
                    OPEN_TIMEOUT_S)
        return None
    got = replies_in(shown["title"], new_rows(shown["msgs"], note.unread, after=note.seen), shown["unknown"])
    return (got, newest_of(shown["msgs"])) if got is not None else ([], None)


def _settled(page: Any, title: str | None, *, empty_ok: bool = False) -> dict[str, Any] | None:
    """The chat `title` (None: whichever is open) once open and its rows have held still for chat_settle_s; None
    when it does not open. A chat without rows settles only when `empty_ok`: a chat noted without unread messages
    may be a new one (a send to a number never written to, killed before its row); with a badge it has rows, and
    none shown means they are still loading. Even then no rows must hold still as long as the sender's picture of an
    empty chat does (whatsapp_page.EMPTY_CHAT_MIN_S): the history renders after the chat opens, and a chat read
    before it did would lose the reply in it."""
    settle = page.settings.chat_settle_s
    empty_settle = max(EMPTY_CHAT_SETTLES * settle, EMPTY_CHAT_MIN_S)
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        shown = page.call(JS_REPLIES)
        opened = shown["title"] is not None if title is None else shown["title"] == title
        shape = [(m["id"], m["dir"], m["text"]) for m in shown["msgs"]] if opened else None
        now = time.monotonic()
        if shape != last:
            last, since = shape, now
        elif (shape and now - since >= settle) or (shape == [] and empty_ok and now - since >= empty_settle):
            return shown
        time.sleep(POLL_S)
    return None

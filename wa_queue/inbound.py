"""What a reply does once a session's worker has read it: the opt-out or opt-in it carries, the `message.received`
event, and its record, in that order, each step safe to repeat.

The order is the crash rule. A reply already recorded is skipped whole (so an operator's removal from the
suppression list is not undone by the old STOP still shown in the chat). Otherwise the opt change is applied first
(idempotent), the event published (its id is derived from the reply's key, so a receiver dedupes a repeat), and the
reply recorded last: a worker killed anywhere before the record reads the row again and redoes the steps, losing
none and recording none twice.

A reply has no badge once its chat is open (the page counts it read), so the sender notes each chat before it opens
(StoreChatNotes, the store's chat_notes) and keeps the note until the replies read there are recorded and the chat
has left the front. A new page reads every noted chat again: a worker or browser killed between opening a chat and
recording its replies, or while a reply waits in the chat in front, loses none.

Words: a reply whose text, trimmed and case-folded, is one of WAQ_OPT_OUT_WORDS puts its number on the suppression
list; one of WAQ_OPT_IN_WORDS takes it off. A contact who hides the number (a username, an `@lid` id) is recorded
under what the page shows, with no number: no list entry can name it, and none is made.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from wa_queue import names, redact
from wa_queue.models import Category, ChatNote, InboundMessage, Message, NewMessage, OptChange, Suppression

if TYPE_CHECKING:
    from wa_queue.hub import Hub
    from wa_queue.settings import Settings
    from wa_queue.store.base import MessageStore

log = logging.getLogger(__name__)

EVENT = "message.received"


def opt_change(text: str, settings: Settings) -> OptChange | None:
    """The opt change a reply's text asks for, if it is one of the words (trimmed, case-folded)."""
    said = " ".join(text.split()).casefold()
    if said in {w.casefold() for w in settings.opt_out_words}:
        return OptChange.OUT
    if said in {w.casefold() for w in settings.opt_in_words}:
        return OptChange.IN
    return None


class StoreChatNotes:
    """A session's chat notes (transport.base.ChatNotes) in the store: one per chat the page opened, pending until
    settled."""

    def __init__(self, store: MessageStore, session: str, clock: Callable[[], datetime]) -> None:
        self.store, self.session, self.clock = store, session, clock

    def opening(self, *, chat: str | None = None, phone: str | None = None, unread: int = 0) -> None:
        self.store.note_chat(ChatNote(session=self.session, chat=chat, phone=phone, unread=unread, at=self.clock()))

    def pending(self) -> list[ChatNote]:
        return self.store.chat_notes(self.session)

    def settle(self, seen: Mapping[str, str], done: Collection[str]) -> None:
        self.store.settle_chat_notes(self.session, seen, done)


def confirm_opt_out(hub: Hub, *, session: str, phone: str, inbound_id: str) -> Message:
    """Queue WAQ_OPT_OUT_REPLY to the number, from the session that read its STOP: an ordinary message (paced,
    capped, retried), of the one category the list lets through. Its idempotency key is the reply's, so the same STOP
    read again (a restart before it was recorded) queues it once."""
    from wa_queue import operations

    new = NewMessage(phone=phone, text=hub.settings.opt_out_reply, session=session,
                     idempotency_key=f"opt-out-reply:{inbound_id}", category=Category.OPT_OUT_REPLY)
    message, created = operations.submit(hub, [new])[0]
    if created:
        log.info("opt-out confirmation %s queued to %s", message.id, redact.phone(phone))
    return message


def inbound_id(session: str, chat: str, wa_id: str) -> str:
    """The reply's id, the same at every read of its row: the event's idempotency key."""
    return hashlib.sha256("\x1f".join((session, chat, wa_id)).encode()).hexdigest()[:32]


def payload(inbound: InboundMessage) -> dict[str, Any]:
    """The webhook's body: the reply, and `key` null (signed with WAQ_CALLBACK_SECRET)."""
    return {"event": EVENT, **inbound.to_dict(), "key": None}


def receive(hub: Hub, *, session: str, chat: str, wa_id: str, text: str, phone: str | None,
            shown_at: datetime | None) -> InboundMessage | None:
    """Handle one reply read in `session`'s chat `chat`; None when it was recorded before."""
    store, settings = hub.store, hub.settings
    if store.inbound_recorded(session, chat, wa_id):
        return None
    now = hub.clock()
    opt = opt_change(text, settings) if phone is not None else None
    inbound = InboundMessage(session=session, chat=chat, wa_id=wa_id, text=text, phone=phone, received_at=now,
                             shown_at=shown_at, id=inbound_id(session, chat, wa_id),
                             reply_to=store.last_sent_to(phone) if phone else None, opt=opt)
    if opt is OptChange.OUT and phone is not None:
        word = " ".join(text.split())[:64]
        if store.add_suppression(Suppression(phone=phone, since=now, by=session, session=session, word=word)):
            log.warning("%s opted out (%r in %s): nothing more is sent to it", redact.phone(phone), word, session)
        if settings.opt_out_reply:
            confirm_opt_out(hub, session=session, phone=phone, inbound_id=inbound.id)
    elif opt is OptChange.IN and phone is not None and store.remove_suppression(phone, by=session, at=now):
        log.warning("%s opted in again (%r in %s)", redact.phone(phone), text.strip()[:64], session)
    if settings.inbound_webhook_url:
        # Straight onto wa.callbacks (exchange '' + routing key), retried and signed as status callbacks are.
        hub.celery.send_task(names.TASK_CALLBACK, args=[settings.inbound_webhook_url, payload(inbound)],
                             queue=names.CALLBACK_QUEUE, exchange="", routing_key=names.CALLBACK_QUEUE)
    store.record_inbound(inbound)
    return inbound

"""Batches: the messages of one bulk enqueue (or of every enqueue naming the same batch), followed and acted on
together. A batch has no record of its own: it is its messages' `batch` field, read per owner (two producers may
use one name without meeting), so there is nothing to keep in step with them.

Pause, resume and cancel are one store transition per message (lifecycle.PAUSE, RESUME, CANCEL): each races the
workers' claim like a single cancel, so a message a worker already holds is left to finish, and is reported."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from wa_queue import sessions
from wa_queue.errors import NotFound
from wa_queue.models import Message, MessageStatus, plain
from wa_queue.notify import LOG_ONLY, Notifier
from wa_queue.settings import Settings
from wa_queue.store import MessageStore, lifecycle

BANNED_REASON = "its session {session} is banned or restricted; resume the batch after an operator restarted it"


@dataclasses.dataclass(frozen=True)
class BatchReport:
    name: str
    counts: dict[str, int]  # every status, 0 included
    total: int
    started_at: datetime  # its first message's enqueue
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    expected_end_at: datetime | None  # None: nothing left to send, or paused
    paused: bool

    def to_dict(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        for key in ("started_at", "first_sent_at", "last_sent_at", "expected_end_at"):
            value = out[key]
            out[key] = value.isoformat() if value is not None else None
        return out


@dataclasses.dataclass(frozen=True)
class BatchAction:
    """What pause, resume or cancel did: how many changed, and how many of its unsent messages it left as they are
    (held by a worker, in doubt, or changed meanwhile), by status."""

    name: str
    changed: int
    left: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def messages_of(store: MessageStore, name: str, owner: str | None, *,
                statuses: tuple[MessageStatus, ...] | None = None) -> list[Message]:
    """The batch's messages that `owner` enqueued (None: everyone's, an admin's view); NotFound when there are none."""
    found = [m for m in store.batch_messages(name, statuses=statuses) if owner is None or m.enqueued_by == owner]
    if not found and statuses is None:
        raise NotFound(f"no batch {name!r}")
    return found


def report(store: MessageStore, settings: Settings, name: str, owner: str | None, now: datetime) -> BatchReport:
    """Counts by status, when it started and sent, and when it should end at the current pace: its unsent messages
    spread over the sessions that can send now, one every mean pacing pause each (never before its last send_at)."""
    found = messages_of(store, name, owner)
    counts = Counter(plain(m.status) for m in found)
    sent = sorted(m.sent_at for m in found if m.sent_at is not None)
    waiting = [m for m in found if m.status in (MessageStatus.PENDING, MessageStatus.PROCESSING)]
    paused = counts[MessageStatus.PAUSED.value] > 0
    end = None
    if waiting and not paused:
        senders = sum(1 for s in settings.sessions if sessions.is_available(store.get_session(s), settings, now))
        pause_s = (settings.min_delay_s + settings.max_delay_s) / 2
        end = now + timedelta(seconds=len(waiting) * pause_s / max(1, senders))
        end = max([end, *(m.next_attempt_at for m in waiting)])
    return BatchReport(name=name, counts={status.value: counts[status.value] for status in MessageStatus},
                       total=len(found), started_at=min(m.created_at for m in found),
                       first_sent_at=sent[0] if sent else None, last_sent_at=sent[-1] if sent else None,
                       expected_end_at=end, paused=paused)


def _act(store: MessageStore, name: str, owner: str | None, statuses: tuple[MessageStatus, ...],
         step: Callable[[Message], Message | None]) -> tuple[BatchAction, list[Message]]:
    changed: list[Message] = []
    left: Counter[str] = Counter()
    unsent = [m for m in messages_of(store, name, owner) if m.status in lifecycle.UNSENT]  # NotFound: none of it
    for message in unsent:
        done = step(message) if message.status in statuses else None
        if done is None:
            left[plain(store.get(message.id).status)] += 1
        else:
            changed.append(done)
    return BatchAction(name, len(changed), dict(left)), changed


def pause(store: MessageStore, name: str, owner: str | None, now: datetime, *, reason: str) -> BatchAction:
    """Every pending message of the batch -> paused: never claimed until resumed."""
    action, _ = _act(store, name, owner, lifecycle.PAUSE.from_statuses,
                     lambda m: store.pause(m.id, now=now, reason=reason))
    return action


def resume(store: MessageStore, name: str, owner: str | None, now: datetime, *, reason: str) -> BatchAction:
    """Every paused message of the batch -> pending; the sweeper publishes each when it is due."""
    action, _ = _act(store, name, owner, lifecycle.RESUME.from_statuses,
                     lambda m: store.resume(m.id, now=now, reason=reason))
    return action


def cancel(store: MessageStore, name: str, owner: str | None, now: datetime, *, actor: str,
           on_change: Callable[[Message], None] | None = None) -> BatchAction:
    """Every pending or paused message of the batch that is not in doubt -> cancelled (its callback through
    `on_change`); one held by a worker or in doubt is left, and counted."""
    action, changed = _act(store, name, owner, lifecycle.CANCEL.from_statuses,
                           lambda m: store.cancel(m.id, now=now, actor=actor))
    for message in changed:
        if on_change is not None:
            on_change(message)
    return action


def pause_for_ban(store: MessageStore, session: str, now: datetime, *, notifier: Notifier = LOG_ONLY) -> list[str]:
    """A banned or restricted session's batches pause themselves: every batch with a pending message that asked for
    this session, wholly (its other messages would be sent by other numbers, drawing the same complaints). The
    admin is told which. Returns their names."""
    names = store.batches_waiting_on(session)
    reason = BANNED_REASON.format(session=session)
    for name in names:
        action = pause(store, name, None, now, reason=reason)
        notifier.notify_admin("batch_paused", f"batch {name} paused: {reason}", batch=name, session=session,
                              paused=action.changed)
    return names

"""The message lifecycle, written once: every store transition as data. Both adapters build their writes from it
(SQLite its UPDATE statements at import, MongoDB its filters and update documents), so a field added to a
transition is one edit here.

A transition names the MessageStore method that performs it, the statuses it may start from, the status it moves
to, the fields it sets (and where each value comes from) and clears, whether it uses an attempt, and the history
event it appends with the session that entry names. What only one adapter needs (the JSON history append, the
read-then-compare MongoDB does for values taken from the row, savepoints, index hints) stays in that adapter.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from wa_queue.models import UNKNOWN_OUTCOME, HistoryEvent, MessageStatus


# ---- where a value comes from --------------------------------------------------------------------------------------
class Now:
    """The transition's `now`."""

    def __repr__(self) -> str:
        return "NOW"


NOW = Now()


@dataclasses.dataclass(frozen=True)
class Arg:
    """The method's argument of this name (the adapter encodes it, datetimes included)."""

    name: str


@dataclasses.dataclass(frozen=True)
class Const:
    value: Any


@dataclasses.dataclass(frozen=True)
class Row:
    """The first of these columns that is not null, read from the row as it was before the write."""

    columns: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Once:
    """The argument of this name, written only into a field still null and only when the argument is given: the
    first value recorded wins. A transition with Once fields does nothing unless one of them would be written."""

    name: str


Source = Now | Arg | Const | Row | Once


# ---- what the row must hold beside its status and lease ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class IsNull:
    field: str


@dataclasses.dataclass(frozen=True)
class Differs:
    """Null, or any value but this one."""

    field: str
    value: Any


@dataclasses.dataclass(frozen=True)
class Later:
    """Null, or after the transition's `now`."""

    field: str


@dataclasses.dataclass(frozen=True)
class Reached:
    """Set, and not after the transition's `now`."""

    field: str


Condition = IsNull | Differs | Later | Reached
# The row form of Message.in_doubt: no click marked, and no unknown outcome recorded.
NOT_IN_DOUBT: tuple[Condition, ...] = (IsNull("sending_at"), Differs("last_error_class", UNKNOWN_OUTCOME))
UNEXPIRED = Later("expires_at")
CLAIMED_BY = Row(("claimed_by",))
LEASE = ("lease_owner", "lease_expires_at")
DOUBT = ("sending_at", "sending_session", "sending_picture")  # who clicked, when, and what the chat showed: kept
# while the click's outcome is unknown


class Lease(enum.Enum):
    """Whether the caller must hold the message's lease (lease_owner equal to its `owner` argument)."""

    NONE = "none"
    HELD = "held"
    HELD_UNLESS_NO_OWNER = "held_unless_no_owner"  # owner=None skips the check (operator and recovery paths)


@dataclasses.dataclass(frozen=True, eq=False)
class Write:
    """One concrete form of a transition (a variant of its options): what an adapter turns into one statement.
    Compared and hashed by identity, so adapters key their prebuilt statements on it cheaply."""

    transition: Transition
    key: str
    sets: tuple[tuple[str, Source], ...]  # the status first, when the transition changes it
    clears: tuple[str, ...]
    owner: bool  # guard: the caller's owner holds the lease


@dataclasses.dataclass(frozen=True)
class Gate:
    """A daily limit a transition checks inside its own atomic write, so that no two workers can both pass it: the sends
    of the day already counted for a key (the row's session or phone) must be below `limit`, else the transition writes
    nothing and the store raises the error class named `refusal` (wa_queue.errors). A send of the day is a message with
    `sent_key` = key and sent_at >= since, or one not sent whose click was marked (`sending_key` = key, sending_at >=
    since: its outcome may be a send), the message being marked excepted. A limit of None or 0 turns the gate off."""

    name: str
    key: Row  # what is counted: the row's session or its phone
    sent_key: str
    sending_key: str
    limit: Arg
    since: Arg
    refusal: str


@dataclasses.dataclass(frozen=True)
class Transition:
    method: str  # the MessageStore method that performs it
    from_statuses: tuple[MessageStatus, ...]
    to: MessageStatus | None  # None: the status stays
    event: HistoryEvent | None  # None: not a change of the message (no history entry, updated_at kept)
    sets: tuple[tuple[str, Source], ...] = ()
    clears: tuple[str, ...] = ()
    uses_attempt: bool = False  # attempts + 1 (+ 0 when the caller says the attempt does not count)
    history_session: Source = CLAIMED_BY
    lease: Lease = Lease.NONE
    doubt: tuple[str, ...] = ()  # cleared too, unless the caller keeps the doubt (keep_doubt=True)
    optional: tuple[tuple[str, Source], ...] = ()  # set only when the caller passes the argument
    gates: tuple[Gate, ...] = ()  # checked in the same atomic write (see Gate)
    conditions: tuple[Condition, ...] = ()  # the row must hold them too (the compare-and-set's other terms)
    # Session record fields written with the transition, each only while still null (see Once): the row's session.
    session_once: tuple[tuple[str, Once], ...] = ()
    # (keep_doubt, optional, owner) -> Write, every variant made once, read-only
    writes: Mapping[tuple[bool, bool, bool], Write] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        writes = {}
        status = (("status", Const(self.to.value)),) if self.to is not None else ()
        optional_name = "+".join(field for field, _ in self.optional)
        for keep_doubt, optional, owner in itertools.product(
            (False, True) if self.doubt else (False,),
            (False, True) if self.optional else (False,),
            (True, False) if self.lease is Lease.HELD_UNLESS_NO_OWNER else (self.lease is not Lease.NONE,),
        ):
            key = "".join((self.method, "+keep_doubt" if keep_doubt else "", f"+{optional_name}" if optional else "",
                           "+no_owner" if self.lease is Lease.HELD_UNLESS_NO_OWNER and not owner else ""))
            writes[(keep_doubt, optional, owner)] = Write(
                self, key, status + self.sets + (self.optional if optional else ()),
                self.clears + (() if keep_doubt else self.doubt), owner)
        object.__setattr__(self, "writes", MappingProxyType(writes))

    def write(self, *, keep_doubt: bool = False, optional: bool = False, owner: bool = True) -> Write:
        """The variant for these options; a KeyError names an option this transition does not have."""
        return self.writes[(keep_doubt, optional, owner and self.lease is not Lease.NONE)]

    def gated(self, args: Mapping[str, Any]) -> tuple[list[Gate], dict[str, Any]]:
        """For the caller's arguments: the gates turned on (a limit given), and the session fields to write once
        with their values (a value given)."""
        gates = [gate for gate in self.gates if args[gate.limit.name]]
        once = {field: args[source.name] for field, source in self.session_once if args[source.name] is not None}
        return gates, once

    @property
    def once(self) -> tuple[str, ...]:
        """The fields written only while still null (see Once)."""
        return tuple(field for field, source in self.sets if isinstance(source, Once))

    @property
    def set_fields(self) -> tuple[str, ...]:
        """Every field a variant may set, the status included."""
        return tuple(field for write in self.writes.values() for field, _ in write.sets)


@dataclasses.dataclass(frozen=True)
class Removal:
    """A message leaving the messages table: deleted for good, or moved to the archive."""

    method: str
    from_statuses: tuple[MessageStatus, ...]
    archived: bool


PENDING, PROCESSING, SENT, FAILED = (MessageStatus.PENDING, MessageStatus.PROCESSING, MessageStatus.SENT,
                                     MessageStatus.FAILED)
EXPIRED, CANCELLED, PAUSED = MessageStatus.EXPIRED, MessageStatus.CANCELLED, MessageStatus.PAUSED

# insert(): a new message starts here, with this history entry.
INSERT_STATUS: MessageStatus = PENDING
INSERT_EVENT: HistoryEvent = HistoryEvent.ENQUEUED

CLAIM = Transition(
    "claim", (PENDING,), PROCESSING, HistoryEvent.CLAIMED,
    sets=(("lease_owner", Arg("owner")), ("lease_expires_at", Arg("lease_expires_at")), ("claimed_by", Arg("session")),
          ("last_attempt_at", NOW)),
    history_session=Arg("session"))
EXTEND_LEASE = Transition("extend_lease", (PROCESSING,), None, None,
                          sets=(("lease_expires_at", Arg("lease_expires_at")),), lease=Lease.HELD)
# The mark is where the daily limits are decided: counted and marked in one atomic store decision, so neither a second
# worker (a failover, two sessions sending to one number) nor a restart can pass a limit. The mark counts as a send
# from then on (the click may happen and the worker die before record_sent), which is also why the session's
# first-send day (the warm-up ramp's start) is written here: with the first click, in the FULL commit that guards it.
# It is also the last check of the message's expiry: a mark at or after expires_at writes nothing, so nothing expired
# is ever clicked, whatever a worker read before.
SESSION_CAP = Gate("session daily cap", CLAIMED_BY, "sent_by", "sending_session", Arg("session_cap"),
                   Arg("session_day_start"), "DailyCapReached")
RECIPIENT_LIMIT = Gate("recipient daily limit", Row(("phone",)), "phone", "phone", Arg("recipient_limit"),
                       Arg("recipient_day_start"), "RecipientLimitReached")
MARK_SENDING = Transition("mark_sending", (PROCESSING,), None, HistoryEvent.SENDING,
                          sets=(("sending_at", NOW), ("sending_session", CLAIMED_BY),
                                ("sending_picture", Arg("picture"))), lease=Lease.HELD,
                          gates=(SESSION_CAP, RECIPIENT_LIMIT), conditions=(UNEXPIRED,),
                          session_once=(("first_send_day", Once("first_send_day")),))
RECORD_SENT = Transition(
    "record_sent", (PROCESSING,), SENT, HistoryEvent.SENT,
    sets=(("sent_at", NOW), ("sent_by", Arg("session")), ("wa_id", Arg("wa_id"))), clears=LEASE,
    history_session=Arg("session"), lease=Lease.HELD)
RECORD_RETRY = Transition(
    "record_retry", (PROCESSING,), PENDING, HistoryEvent.RETRY,
    sets=(("next_attempt_at", Arg("next_attempt_at")), ("last_error_class", Arg("error_class")),
          ("last_error_text", Arg("error_text"))),
    clears=LEASE, uses_attempt=True, lease=Lease.HELD, doubt=DOUBT)
RECORD_FAILED = Transition(
    "record_failed", (PROCESSING,), FAILED, HistoryEvent.FAILED,
    sets=(("failed_at", NOW), ("last_error_class", Arg("error_class")), ("last_error_text", Arg("error_text"))),
    clears=LEASE, uses_attempt=True, lease=Lease.HELD_UNLESS_NO_OWNER)
RELEASE = Transition(
    "release", (PROCESSING,), PENDING, HistoryEvent.RELEASED, sets=(("next_attempt_at", Arg("next_attempt_at")),),
    clears=LEASE, lease=Lease.HELD, doubt=DOUBT, optional=(("session", Arg("session")),))
# Held back before the click, without an attempt (the send window is closed, the recipient's daily limit is reached):
# pending until next_attempt_at, when it is checked again. An earlier attempt's doubt is kept (nothing was clicked in
# this one), and the history entry says why.
DEFER = Transition(
    "defer", (PROCESSING,), PENDING, HistoryEvent.DEFERRED, sets=(("next_attempt_at", Arg("next_attempt_at")),),
    clears=LEASE, lease=Lease.HELD)
# sending_at is kept: whether the click happened is unknown, and the next attempt checks the chat.
RECOVER = Transition("recover", (PROCESSING,), PENDING, HistoryEvent.RECOVERED, clears=LEASE, lease=Lease.HELD)
# The operator settled any doubt: everything of the earlier attempts goes but the history and the session.
RETRY_FAILED = Transition(
    "retry_failed", (FAILED,), PENDING, HistoryEvent.REQUEUED,
    sets=(("attempts", Const(0)), ("next_attempt_at", NOW)),
    clears=("failed_at", "last_error_class", "last_error_text", "dispatched_at", "dispatch_epoch", "dispatch_queue",
            *DOUBT, *LEASE))
# Credited to the session that clicked, else the one that claimed; the errors stay, the record of why.
OPERATOR_SENT = Row(("sending_session", "claimed_by"))
MARK_SENT_BY_OPERATOR = Transition(
    "mark_sent_by_operator", (FAILED,), SENT, HistoryEvent.SENT,
    sets=(("sent_at", NOW), ("sent_by", OPERATOR_SENT)), clears=("wa_id",), history_session=OPERATOR_SENT)
RECORD_RECEIPT = Transition(
    "record_receipt", (SENT,), None, HistoryEvent.RECEIPT,
    sets=(("delivered_at", Once("delivered_at")), ("read_at", Once("read_at"))), history_session=Row(("sent_by",)))
# A status callback the outbound rule refused (wa_queue/outbound.py): only a history entry with why, whatever the
# status; the callback is a notification, and the message's own errors stay those of its sends.
RECORD_CALLBACK_REFUSED = Transition("record_callback_refused",
                                     (SENT, FAILED, PENDING, PROCESSING, EXPIRED, CANCELLED, PAUSED), None,
                                     HistoryEvent.CALLBACK_REFUSED)

# Unsent at its expiry: final. Taken from a worker's claim (its owner) or by the sweep (no owner, pending or paused).
# A message in doubt is not expired: whether it went out is settled first, like any other doubt.
DISPATCH = ("dispatched_at", "dispatch_epoch", "dispatch_queue")
EXPIRE = Transition(
    "expire", (PENDING, PROCESSING, PAUSED), EXPIRED, HistoryEvent.EXPIRED, sets=(("expired_at", NOW),),
    clears=LEASE, lease=Lease.HELD_UNLESS_NO_OWNER, conditions=(Reached("expires_at"), *NOT_IN_DOUBT))
# The same after the chat of the session that clicked showed the message unsent (Delivery._already_sent found nothing):
# the doubt is settled, so it goes too, and the lease must be held.
EXPIRE_UNSENT = Transition(
    "expire_unsent", (PROCESSING,), EXPIRED, HistoryEvent.EXPIRED, sets=(("expired_at", NOW),), clears=LEASE + DOUBT,
    lease=Lease.HELD, conditions=(Reached("expires_at"),))
# A producer's or operator's cancel: a compare-and-set on the status, so it races the claim atomically (the claim
# takes pending messages only). A message in doubt may have been sent: it is settled, never cancelled.
CANCEL = Transition("cancel", (PENDING, PAUSED), CANCELLED, HistoryEvent.CANCELLED, sets=(("cancelled_at", NOW),),
                    conditions=NOT_IN_DOUBT)
# The mark found the number on the suppression list (an opt-out, or an operator's entry): nothing was clicked, so the
# message ends cancelled, with the opt-out as its error, and any earlier doubt goes with the lease only when this
# attempt's chat read settled it (the mark comes after that read: Delivery._already_sent).
CANCEL_OPTED_OUT = Transition(
    "cancel_opted_out", (PROCESSING,), CANCELLED, HistoryEvent.CANCELLED,
    sets=(("cancelled_at", NOW), ("last_error_class", Const("OptedOut")), ("last_error_text", Arg("error_text"))),
    clears=LEASE + DOUBT, lease=Lease.HELD)
# A batch's pause and resume: a paused message is never claimed; resumed, the sweeper publishes it when due.
PAUSE = Transition("pause", (PENDING,), PAUSED, HistoryEvent.PAUSED, clears=DISPATCH)
RESUME = Transition("resume", (PAUSED,), PENDING, HistoryEvent.RESUMED, clears=DISPATCH)

TRANSITIONS: tuple[Transition, ...] = (CLAIM, EXTEND_LEASE, MARK_SENDING, RECORD_SENT, RECORD_RETRY, RECORD_FAILED,
                                       RELEASE, DEFER, RECOVER, RETRY_FAILED, MARK_SENT_BY_OPERATOR, RECORD_RECEIPT,
                                       RECORD_CALLBACK_REFUSED, EXPIRE, EXPIRE_UNSENT, CANCEL, CANCEL_OPTED_OUT,
                                       PAUSE, RESUME)

DELETE = Removal("delete", (FAILED,), archived=False)
ARCHIVE = Removal("archive_failed", (FAILED,), archived=True)
REMOVALS: tuple[Removal, ...] = (DELETE, ARCHIVE)

# What the read queries select, named by the transition they feed, so a status moved in the table moves them too.
DUE: tuple[MessageStatus, ...] = CLAIM.from_statuses  # what dispatch publishes and a claim may take
LEASED: tuple[MessageStatus, ...] = RECOVER.from_statuses  # what a lease may hold and recovery frees
OPERATOR_CASES: tuple[MessageStatus, ...] = RETRY_FAILED.from_statuses  # listed for an operator, and archived
UNSENT: tuple[MessageStatus, ...] = EXPIRE.from_statuses  # what may still be sent (a batch's open messages)
FINAL: tuple[MessageStatus, ...] = (SENT, EXPIRED, CANCELLED)  # never left (receipts keep a message sent)
EXPIRING: tuple[MessageStatus, ...] = tuple(s for s in UNSENT if s not in LEASED)  # what the expiry sweep looks at
# A file only messages in these statuses name may go, once the last of them is older than WAQ_MEDIA_KEEP_DAYS: never
# while one is pending, processing, paused, failed (an operator may retry it) or archived.
MEDIA_DONE: tuple[MessageStatus, ...] = FINAL

"""The message store interface: the system of record. Every adapter passes tests/contract/store/.

All datetimes are timezone-aware UTC. `now` is always passed in, so tests decide the time.
Every state change appends a HistoryEntry and sets updated_at=now, in the same atomic write.
Which statuses each transition starts from and which fields it sets and clears is data, in lifecycle.py.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from wa_queue.errors import IdempotencyConflict, QuotaExceeded, ValidationError
from wa_queue.models import (
    ChatNote,
    InboundMessage,
    MediaUpload,
    Message,
    MessageStatus,
    NewMessage,
    SessionStatus,
    Suppression,
    SuppressionChange,
)


@dataclasses.dataclass(frozen=True)
class BatchRow:
    """One batch as list_batches() counts it: its messages by status (only the statuses it has), its first enqueue."""

    name: str
    counts: dict[str, int]
    started_at: datetime


@dataclasses.dataclass(frozen=True)
class SessionRecord:
    """Durable per-session state (pacing, health, reconnection), shared by every process."""

    name: str
    status: SessionStatus | str = SessionStatus.UNKNOWN  # a str only for a stored status unknown here (parse_stored)
    number: str | None = None
    next_send_at: datetime | None = None  # pacing: the session may not send before this
    reconnect_attempts: int = 0
    next_reconnect_at: datetime | None = None
    needs_operator: bool = False
    restart_requested: bool = False
    heartbeat_at: datetime | None = None
    updated_at: datetime | None = None
    # Why the session is not connected: the raw reason, when it was seen and what to do (None once connected).
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_error_hint: str | None = None
    # The warm-up ramp (warmup.py): the local day (WAQ_TIMEZONE) of the session's first send, set by the store's
    # mark_sending when empty; None when never sent or reset. warmup_skipped: an operator skipped the ramp. The
    # operator's actions are update_session(name, **warmup.RESET) and update_session(name, **warmup.SKIP).
    first_send_day: date | None = None
    warmup_skipped: bool = False
    # The page's clock minus this worker's, in seconds, as the sender estimates it from its sends' rows (None: no
    # estimate yet). Far off, it is a warning: one of the two clocks is wrong (chat.PAGE_CLOCK_WARN_S).
    page_clock_offset_s: float | None = None


class MessageStore(abc.ABC):
    # ---- lifecycle -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise StoreError when the store cannot be reached."""

    # ---- producer side -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def insert(self, new: NewMessage, now: datetime, *, quotas: Mapping[str, int] | None = None
               ) -> tuple[Message, bool]:
        """Store a pending message (next_attempt_at=now, history 'enqueued'). Returns (message, created).

        With an idempotency key already used: same content_hash -> (existing message, False);
        other content -> raise IdempotencyConflict. Two concurrent inserts with one key store one message.

        `quotas` maps API key names to their daily quota (wa_queue/quota.py; keys absent or 0: none): the new
        messages of such a key (enqueued_by) are counted in its UTC day of `now`, atomically with the insert, and
        QuotaExceeded is raised, with nothing stored, when they would pass it. Replays count nothing."""

    @abc.abstractmethod
    def insert_many(self, news: list[NewMessage], now: datetime, *, quotas: Mapping[str, int] | None = None
                    ) -> list[tuple[Message, bool]]:
        """insert() for many in one transaction: all stored or none (on any error nothing stays behind)."""

    @abc.abstractmethod
    def quota_used(self, now: datetime) -> dict[str, int]:
        """The messages each key with a quota enqueued in the UTC day of `now` (insert's `quotas`)."""

    def insert_groups(
        self, groups: list[list[NewMessage]], now: datetime, *, durable: bool = True,
        quotas: Mapping[str, int] | None = None,
    ) -> list[list[tuple[Message, bool]] | Exception]:
        """insert_many() for several independent requests: each group is all or nothing on its own, and a group's
        error (an IdempotencyConflict, say) is returned in its place instead of raised. Adapters that can commit the
        groups together (SQLite: one transaction, a savepoint per group) save a durable commit per group; this
        default inserts them one after another. Errors that are not the group's own (the store is down) raise.

        `durable=False` may return once the groups are committed but before they would survive a power cut; the
        caller then calls make_durable() before it tells anyone (SQLite: the fsync is shared with other threads)."""
        results: list[list[tuple[Message, bool]] | Exception] = []
        for news in groups:
            try:
                results.append(self.insert_many(news, now, quotas=quotas))
            except (IdempotencyConflict, ValidationError, QuotaExceeded) as exc:
                results.append(exc)
        return results

    def make_durable(self) -> None:
        """Everything this process committed before the call survives a power cut when it returns. Adapters whose
        commits are durable when they return (MongoDB, by its write concern) have nothing to do."""
        return None

    @abc.abstractmethod
    def get(self, message_id: str) -> Message:
        """Raise NotFound when absent (archived messages are absent too)."""

    # ---- delivery side -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def claim(
        self, message_id: str, *, owner: str, session: str, now: datetime, lease_s: float, attempts: int | None = None
    ) -> Message | None:
        """Atomic compare-and-set: pending, next_attempt_at <= now (and attempts == `attempts` when given)
        -> processing with lease_owner=owner, lease_expires_at=now+lease_s, claimed_by=session; history 'claimed'.
        Returns the claimed message, or None when the CAS fails (exactly one of concurrent claimers wins)."""

    @abc.abstractmethod
    def extend_lease(self, message_id: str, *, owner: str, now: datetime, lease_s: float) -> bool:
        """Push the lease expiry to now+lease_s if `owner` still holds it."""

    @abc.abstractmethod
    def mark_sending(
        self, message_id: str, *, owner: str, now: datetime, session_cap: int | None = None,
        session_day_start: datetime | None = None, recipient_limit: int | None = None,
        recipient_day_start: datetime | None = None, first_send_day: date | None = None,
        picture: Sequence[str] | None = None, opt_out_scope: str = "all",
    ) -> bool:
        """Record sending_at=now, sending_session=claimed_by just before the send is clicked (history 'sending').
        False when owner no longer holds the lease (then the caller must not send).

        The daily limits are decided in the same atomic write (lifecycle.MARK_SENDING's gates): with session_cap
        given, the session's sends since session_day_start (sent, or marked and not known unsent; this message
        excepted) must be below it, else DailyCapReached; with recipient_limit given (0: off), the same count for
        the phone since recipient_day_start, across all sessions, else RecipientLimitReached. A number on the
        suppression list (for the message's category under `opt_out_scope`, models.blocked_by_opt_out) cancels the
        message instead and raises OptedOut (its `cancelled`, the message). A refusal writes
        nothing. `first_send_day` is written to the session's record when its first_send_day is null (the warm-up
        ramp starts with the first click). `picture`: the ids of the chat's last rows the sender saw before the click
        (kept as sending_picture, a JSON list, with the doubt; None when not known)."""

    @abc.abstractmethod
    def cancel_opted_out(self, message_id: str, *, owner: str, now: datetime, error_text: str) -> Message | None:
        """processing -> cancelled, nothing clicked: the number is on the suppression list (mark_sending does it
        itself when it finds the number there). Lease and doubt cleared; last_error_class OptedOut with error_text;
        history 'cancelled'. None if not held by owner."""

    @abc.abstractmethod
    def defer(
        self, message_id: str, *, owner: str, now: datetime, next_attempt_at: datetime, reason: str, error_class: str,
    ) -> Message | None:
        """processing -> pending until next_attempt_at WITHOUT using an attempt, before any click (send window
        closed, recipient's daily limit reached): lease cleared, an earlier attempt's doubt kept; history 'deferred'
        with error_class and the reason. None if not held by owner."""

    @abc.abstractmethod
    def record_sent(
        self, message_id: str, *, owner: str, now: datetime, session: str, wa_id: str | None
    ) -> Message | None:
        """processing (held by owner) -> sent: sent_at, sent_by, wa_id; lease cleared. None if not held."""

    @abc.abstractmethod
    def record_retry(
        self, message_id: str, *, owner: str, now: datetime, next_attempt_at: datetime, error_class: str,
        error_text: str, keep_doubt: bool = False,
    ) -> Message | None:
        """processing -> pending after a transient error: attempts+1, next_attempt_at, last_error_*, lease and
        sending_at cleared, session preference kept; history 'retry'. None if not held by owner.
        `keep_doubt`: sending_at and sending_session stay (the click's outcome is still unknown)."""

    @abc.abstractmethod
    def record_failed(
        self, message_id: str, *, owner: str | None, now: datetime, error_class: str, error_text: str,
        count_attempt: bool = True,
    ) -> Message | None:
        """processing -> failed: failed_at, last_error_*, attempts+1 when count_attempt; lease cleared; history
        'failed'. owner=None skips the lease check (for operator or recovery paths). None if not allowed."""

    @abc.abstractmethod
    def release(
        self, message_id: str, *, owner: str, now: datetime, reason: str, error_class: str | None = None,
        next_attempt_at: datetime | None = None, session: str | None = ...,  # type: ignore[assignment]
        keep_doubt: bool = False,
    ) -> Message | None:
        """processing -> pending WITHOUT using an attempt (session unavailable, cap reached, pacing):
        next_attempt_at (default now), lease and sending_at cleared; when `session` is given (None included) it
        replaces the session preference; history 'released' with the reason. None if not held by owner.
        `keep_doubt`: sending_at and sending_session stay (a release before this attempt's send must not forget that
        an earlier one may have clicked)."""

    @abc.abstractmethod
    def mark_dispatched(self, message_ids: list[str], *, now: datetime, epoch: str | None, queue: str) -> None:
        """Remember that a task for these messages was published: dispatched_at, dispatch_epoch, dispatch_queue."""

    @abc.abstractmethod
    def clear_dispatch(self, message_ids: list[str]) -> None:
        """Forget the dispatch (dispatch_epoch=None), so the sweeper publishes them again."""

    @abc.abstractmethod
    def list_undispatched(self, *, now: datetime, epoch: str, limit: int) -> list[Message]:
        """Pending messages with next_attempt_at <= now whose dispatch_epoch is None or differs from `epoch`
        (the broker that held their task is gone), oldest next_attempt_at first."""

    @abc.abstractmethod
    def dispatch_queues(self) -> list[str]:
        """The queues that pending messages were last published to, distinct and sorted. Index-fast: one seek per
        queue, whatever the backlog (recovery walks them every sweep)."""

    @abc.abstractmethod
    def list_dispatched_to(
        self, queue: str, *, now: datetime, dispatched_before: datetime, limit: int
    ) -> list[Message]:
        """Pending messages due by `now` (next_attempt_at <= now) last published to `queue` strictly before
        `dispatched_before`, oldest dispatch first. Republishing one moves its dispatch, so it leaves the set."""

    @abc.abstractmethod
    def list_expired_leases(self, *, now: datetime, limit: int = 1000) -> list[Message]:
        """processing messages whose lease_expires_at <= now."""

    @abc.abstractmethod
    def list_leases(self, *, owner_prefix: str) -> list[Message]:
        """processing messages whose lease_owner starts with owner_prefix (a starting worker frees its own)."""

    @abc.abstractmethod
    def recover(self, message_id: str, *, owner: str, now: datetime, reason: str) -> Message | None:
        """processing (lease held by `owner`, expired or not) -> pending without using an attempt; sending_at is
        KEPT (the outcome is unknown); history 'recovered'. None if the lease moved on."""

    # ---- when and what first (expiry, cancel, batches) ------------------------------------------------------
    @abc.abstractmethod
    def expire(self, message_id: str, *, owner: str | None, now: datetime) -> Message | None:
        """pending, paused or processing (lease held by `owner`; None skips the check) -> expired, when expires_at
        <= now and the message is not in doubt: expired_at, lease cleared; history 'expired'. None if not allowed."""

    @abc.abstractmethod
    def expire_unsent(self, message_id: str, *, owner: str, now: datetime) -> Message | None:
        """processing (lease held) -> expired when expires_at <= now, once the chat showed an earlier click unsent:
        the doubt fields are cleared with the lease; history 'expired'. None if not allowed."""

    @abc.abstractmethod
    def list_expiring(self, *, now: datetime, limit: int = 1000) -> list[Message]:
        """Pending and paused messages not in doubt whose expires_at <= now, earliest first."""

    @abc.abstractmethod
    def cancel(self, message_id: str, *, now: datetime, actor: str) -> Message | None:
        """pending or paused, not in doubt -> cancelled, in one compare-and-set that races the claim: cancelled_at;
        history 'cancelled' with "cancelled by <actor>". None if not allowed (NotFound when absent)."""

    @abc.abstractmethod
    def pause(self, message_id: str, *, now: datetime, reason: str) -> Message | None:
        """pending -> paused (dispatch cleared); history 'paused' with the reason. None if not pending."""

    @abc.abstractmethod
    def resume(self, message_id: str, *, now: datetime, reason: str) -> Message | None:
        """paused -> pending (dispatch cleared: the sweeper publishes it when due); history 'resumed'."""

    @abc.abstractmethod
    def batch_messages(self, batch: str, *, statuses: tuple[MessageStatus, ...] | None = None) -> list[Message]:
        """The messages of a batch (in those statuses, when given), oldest first."""

    @abc.abstractmethod
    def list_batches(self, *, limit: int = 50) -> list[BatchRow]:
        """The batches (every owner's), the most recently started first. Reads the batched messages' index only."""

    @abc.abstractmethod
    def batches_waiting_on(self, session: str) -> list[str]:
        """The batches with a pending message that asked for `session`, distinct and sorted."""

    # ---- operator side -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def count_by_status(self) -> dict[str, int]:
        """{'pending': n, 'processing': n, 'sent': n, 'failed': n} (every key present). Must be index-fast."""

    @abc.abstractmethod
    def list_failed(
        self, *, offset: int = 0, limit: int = 50, session: str | None = None, error: str | None = None
    ) -> tuple[list[Message], int]:
        """Failed messages, newest failed_at first, filtered by claimed/sent session and by error class or text
        substring; returns (page, total matching)."""

    @abc.abstractmethod
    def retry_failed(self, message_id: str, *, now: datetime) -> Message:
        """failed -> pending, attempts reset to 0, errors and dispatch cleared; history 'requeued'.
        NotFound when absent, InvalidTransition when not failed."""

    @abc.abstractmethod
    def mark_sent_by_operator(self, message_id: str, *, now: datetime, actor: str, note: str | None = None) -> Message:
        """failed -> sent on an operator's word (they saw it in the phone's chat): sent_at=now, sent_by = the session
        that clicked (sending_session) or else claimed_by, wa_id None; history 'sent' naming that session, with
        error_text "marked as sent by operator <actor>[: <note>]". failed_at, last_error_*, sending_at and attempts
        are KEPT, the record of why an operator had to decide. One conditional write on status = 'failed'.
        NotFound when absent, InvalidTransition when not failed, ValidationError for an empty actor or a note over
        500 characters. sends_since() and sends_per_hour() count it (by sent_by and sent_at), like any send."""

    @abc.abstractmethod
    def retry_all_failed(self, *, now: datetime, session: str | None = None) -> list[str]:
        """retry_failed() for every failed message (optionally of one session); returns their ids."""

    @abc.abstractmethod
    def delete(self, message_id: str) -> None:
        """Remove a failed message for good (the operator's DELETE). NotFound / InvalidTransition otherwise."""

    @abc.abstractmethod
    def archive_failed(self, *, older_than: datetime, now: datetime) -> int:
        """Move failed messages with failed_at < older_than to the archive (never dropped); return how many."""

    @abc.abstractmethod
    def get_archived(self, message_id: str) -> Message:
        """An archived message; NotFound otherwise."""

    @abc.abstractmethod
    def list_archived(
        self, *, offset: int = 0, limit: int = 50, session: str | None = None, error: str | None = None
    ) -> tuple[list[Message], int]:
        """Archived messages, paged and filtered exactly like list_failed() (newest failed_at first, then id);
        returns (page, total matching)."""

    @abc.abstractmethod
    def sends_since(self, session: str, since: datetime) -> int:
        """Messages sent by `session` with sent_at >= since (the daily cap). Index-fast."""

    @abc.abstractmethod
    def wa_ids_sent(self, phone: str, *, session: str, since: datetime) -> set[str]:
        """The WhatsApp ids recorded for messages to `phone` sent by `session` with sent_at >= since: rows of that
        chat that other messages own, which a click in doubt since then cannot have made. Index-fast (phone,
        sent_at)."""

    @abc.abstractmethod
    def sends_per_hour(self, *, since: datetime) -> list[tuple[datetime, int]]:
        """[(hour start UTC, count of sent)] for hours from `since` with at least one send."""

    @abc.abstractmethod
    def oldest_pending(self) -> Message | None:
        """The pending message with the oldest created_at, if any."""

    @abc.abstractmethod
    def count_failed_since(self, since: datetime) -> int:
        """Failed messages whose failed_at >= since (recent failures, for the health level). Index-fast."""

    @abc.abstractmethod
    def oldest_due(self, *, now: datetime) -> Message | None:
        """The pending message with the smallest next_attempt_at that is <= now (the longest overdue), if any.
        A message parked for a later retry is not due, however old. Index-fast."""

    @abc.abstractmethod
    def record_receipt(
        self, message_id: str, *, now: datetime, delivered_at: datetime | None = None, read_at: datetime | None = None
    ) -> Message | None:
        """Set delivered_at / read_at on a sent message (only fields given and still empty); history 'receipt'."""

    @abc.abstractmethod
    def record_callback_refused(self, message_id: str, *, now: datetime, error_class: str,
                                error_text: str) -> Message | None:
        """History 'callback_refused' with why (the outbound rule refused the callback URL, or it redirected); the
        status and every other field stay. None if the message is gone."""

    # ---- sessions and number checks --------------------------------------------------------------------------
    @abc.abstractmethod
    def get_session(self, name: str) -> SessionRecord:
        """The record, or a default SessionRecord(name) when none was saved."""

    @abc.abstractmethod
    def update_session(self, name: str, **fields: Any) -> SessionRecord:
        """Upsert the given SessionRecord fields; returns the new record."""

    @abc.abstractmethod
    def reserve_send_slot(self, name: str, *, now: datetime, next_send_at: datetime) -> datetime | None:
        """Pacing, atomic: if the session's next_send_at is None or <= now, set it to `next_send_at` and return
        None (the caller may send now); otherwise change nothing and return the stored next_send_at."""

    @abc.abstractmethod
    def get_number_check(self, phone: str) -> bool | None:
        """Whether phone was found on WhatsApp (True/False), None when never checked."""

    @abc.abstractmethod
    def set_number_check(self, phone: str, registered: bool, *, now: datetime) -> None: ...

    # ---- media (the bytes are the media files' port, wa_queue/media/files.py) ---------------------------------
    @abc.abstractmethod
    def add_upload(self, upload: MediaUpload) -> None:
        """Record an uploaded file (its bytes already durable in the media files), durably."""

    @abc.abstractmethod
    def get_upload(self, upload_id: str) -> MediaUpload:
        """The upload of this id; NotFound when there is none (never made, or collected)."""

    @abc.abstractmethod
    def delete_uploads_before(self, cutoff: datetime) -> int:
        """Forget uploads made before cutoff (their ids are refused from then on); how many."""

    @abc.abstractmethod
    def media_in_use(self, sha256: str, *, done_before: datetime, uploaded_since: datetime) -> bool:
        """Whether the file must be kept: an upload of it made since `uploaded_since`, a message (or an archived one)
        naming it that is not sent, expired or cancelled (lifecycle.MEDIA_DONE), or one that is but was last updated
        at or after `done_before`."""

    # ---- the suppression list (wa_queue/store/*_suppressions.py) ---------------------------------------------------
    @abc.abstractmethod
    def add_suppression(self, suppression: Suppression) -> bool:
        """Put the number on the list, durably; False (and nothing changed) when it is on it already. Once this has
        returned, no mark_sending of a message to the number succeeds."""

    @abc.abstractmethod
    def remove_suppression(self, phone: str, *, by: str, at: datetime) -> bool:
        """Take the number off the list, noting who (`by`) in the list's log; False (nothing noted) when it was not
        on it."""

    @abc.abstractmethod
    def get_suppression(self, phone: str) -> Suppression | None:
        """The number's entry, or None."""

    @abc.abstractmethod
    def suppression_log(self, *, phone: str | None = None, limit: int = 100, offset: int = 0
                        ) -> tuple[list[SuppressionChange], int]:
        """The list's changes (each add and removal, also of entries gone since), newest first, and how many."""

    @abc.abstractmethod
    def list_suppressions(self, *, limit: int = 100, offset: int = 0) -> tuple[list[Suppression], int]:
        """A page of the list, newest first, and the list's length."""

    # ---- replies (wa_queue/store/*_inbound.py) ----------------------------------------------------------------------
    @abc.abstractmethod
    def record_inbound(self, inbound: InboundMessage) -> bool:
        """Record a reply durably, at most once per (session, chat, wa_id): False (nothing written) when it was."""

    @abc.abstractmethod
    def note_chat(self, note: ChatNote) -> None:
        """Note, durably, a chat the session's page is about to open, beside the session's other notes: pending
        again, with the note's chat, phone, unread and at; the `seen` stored for that chat stays."""

    @abc.abstractmethod
    def chat_notes(self, session: str) -> list[ChatNote]:
        """The session's pending notes, oldest first."""

    @abc.abstractmethod
    def settle_chat_notes(self, session: str, seen: Mapping[str, str], done: Collection[str]) -> None:
        """After a read whose replies are recorded: store `seen` (key -> the newest row read) on those chats' notes,
        and take the `done` ones off the pending notes (ChatNote.key; a key not noted is no error)."""

    @abc.abstractmethod
    def inbound_recorded(self, session: str, chat: str, wa_id: str) -> bool:
        """Whether the reply of this key is recorded."""

    @abc.abstractmethod
    def list_inbound(self, *, phone: str | None = None, session: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, limit: int = 100, offset: int = 0
                     ) -> tuple[list[InboundMessage], int]:
        """Replies newest first (by received_at), filtered, a page of them and how many match."""

    @abc.abstractmethod
    def last_sent_to(self, phone: str) -> str | None:
        """The id of the message last sent to the number (by sent_at), or None."""


def status_keys() -> dict[str, int]:
    return {status.value: 0 for status in MessageStatus}

"""The heart: claim, check the session, pace, send, record. Free of Celery; the task is a thin wrapper."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import random
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from wa_queue import errors, names, redact, send_window, sessions, warmup
from wa_queue.broker.publisher import Publisher, queue_for
from wa_queue.media.files import MediaFiles
from wa_queue.models import HistoryEvent, Message, Priority, SessionStatus, blocked_by_opt_out, plain, utcnow
from wa_queue.notify import LOG_ONLY, Notifier
from wa_queue.private import private_dir
from wa_queue.retry import Decision, classify, local_midnight_utc, next_local_midnight_utc, next_retry_delay
from wa_queue.settings import Settings
from wa_queue.store import MessageStore
from wa_queue.store.common import opted_out_text
from wa_queue.transport.base import Attachment, MessageSender, Reply

log = logging.getLogger(__name__)

_RECEIPT_POLL_S = 1.0
# A chat read (open it from the list, let its rows hold still for chat_settle_s, read them) takes a few seconds; a
# pause with less left than one read (Delivery.reply_read_s) is slept, so a send waits for at most one read.
REPLY_READ_BASE_S = 2.0
# The priorities a message of each gives its place up to: those of an earlier step (names.PRIORITY_STEPS).
_HIGHER: dict[str, tuple[str, ...]] = {
    mine: tuple(other for other, step in names.PRIORITY_STEPS.items() if step < names.PRIORITY_STEPS[mine])
    for mine in names.PRIORITY_STEPS}


@dataclasses.dataclass(frozen=True)
class Outcome:
    kind: str  # sent | retry | failed | released | parked | deferred | expired | cancelled | skipped
    message: Message | None = None
    detail: str = ""


@dataclasses.dataclass
class Delivery:
    """One session worker's sending logic. Time (`clock`) and sleeping are injectable for tests."""

    store: MessageStore
    settings: Settings
    session: str
    owner: str
    sender: MessageSender
    publisher: Publisher  # retries and releases go back to the broker through it (a recording one in unit tests)
    rng: random.Random = dataclasses.field(default_factory=random.Random)
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    on_change: Callable[[Message], None] | None = None  # status callbacks, metrics
    notifier: Notifier = LOG_ONLY  # the Hub's, which posts to the admin webhook
    # (session, seconds of the send itself, outcome, kind: text or the media kind)
    on_send: Callable[[str, float, str, str], None] | None = None
    media_files: MediaFiles | None = None  # where media messages' bytes are (the Hub's); None: no media sent
    # A reply read in this session's chats (wa_queue/inbound.py); true when it was new (not recorded before).
    on_reply: Callable[[Reply], bool] | None = None
    _last_heartbeat: datetime | None = dataclasses.field(default=None, init=False)
    # Sent messages whose delivery ticks are followed: (message id, phone, WhatsApp id, give up at monotonic time).
    _watch: list[tuple[str, str, str, float]] = dataclasses.field(default_factory=list, init=False)
    _read_again: bool = dataclasses.field(default=False, init=False)  # the last read's replies were not all recorded

    def process(self, message_id: str, attempts: int | None = None) -> Outcome:
        now = self.clock()
        message = self.store.claim(
            message_id, owner=self.owner, session=self.session, now=now, lease_s=self.settings.lease_s,
            attempts=attempts,
        )
        if message is None:
            return Outcome("skipped", detail="not claimable (already taken, done, or not due)")
        try:
            return self._deliver(message)
        except BaseException:
            # Anything unexpected (even a KeyboardInterrupt) gives the message back rather than keeping the lease.
            self.store.recover(message.id, owner=self.owner, now=self.clock(), reason="worker error")
            raise

    # ---- steps -------------------------------------------------------------------------------------------------
    def _deliver(self, message: Message) -> Outcome:
        if not message.in_doubt:  # a message in doubt is settled first, whatever its expiry
            gone = self._expiry_blocker(message)
            if gone is not None:
                return gone
        hand_back = self._session_blocker(message)
        if hand_back is not None:
            return hand_back
        if (not message.in_doubt and blocked_by_opt_out(message.category, self.settings.opt_out_scope)
                and self.store.get_suppression(message.phone) is not None):
            # A cheap early look, so an opted-out number costs no pacing slot; the mark decides in any case.
            return self._opted_out(message, self.store.cancel_opted_out(
                message.id, owner=self.owner, now=self.clock(), error_text=opted_out_text(message.phone)))
        if message.in_doubt:
            found = self._already_sent(message)
            if found is not None:
                return found
            gone = self._expiry_blocker(message, settled=True)  # the chat showed it unsent
            if gone is not None:
                return gone
        held = self._window_blocker(message)  # before the pacing slot: a closed window would waste it
        if held is not None:
            return held
        # Pace first: the pause may be spent reading other chats' ticks, and the number check opens this chat,
        # which the send then finds open (one page load for both).
        handed_back = self._pace(message)
        if handed_back is not None:
            return handed_back
        gone = self._expiry_blocker(message, settled=True)  # the pause may have run past its expiry
        if gone is not None:
            return gone
        self._read_before_send(message.phone)
        registered = self._number_registered(message)
        if registered is False:
            return self._fail(message, errors.InvalidNumber(f"{message.phone} is not on WhatsApp"))
        held = self._window_blocker(message)  # again: the pause may have run past the window's end
        if held is not None:
            return held
        marked = [False]

        def mark(picture: tuple[str, ...] | None) -> bool:
            marked[0] = self._mark_sending(message, picture)
            return marked[0]

        started = time.monotonic()
        try:
            with self._attachment(message) as attachment:
                receipt = self.sender.send(message.phone, message.text, ref=message.id, before_click=mark,
                                           media=attachment)
        except errors.DailyCapReached as exc:  # the mark refused it: nothing was clicked
            return self._release(message, f"daily cap reached: {exc}", errors.DailyCapReached.__name__)
        except errors.RecipientLimitReached:
            return self._defer_recipient(message)
        except errors.OptedOut as exc:  # the mark found the number on the suppression list and cancelled it
            return self._opted_out(message, exc.cancelled)  # type: ignore[arg-type]
        except errors.SendAborted:  # the mark wrote nothing: the lease moved on, or the message expired meanwhile
            gone = self._expiry_blocker(message, settled=True)
            return gone or Outcome("skipped", detail="lease lost before sending")
        except Exception as exc:  # noqa: BLE001 - every error is classified by its class below
            outcome = self._after_error(message, exc, marked=marked[0])
            self._measured(time.monotonic() - started, outcome.kind, message)
            return outcome
        elapsed = time.monotonic() - started
        outcome = self._record_sent(message, receipt.wa_id)
        self._measured(elapsed, outcome.kind, message)
        return outcome

    @contextlib.contextmanager
    def _attachment(self, message: Message) -> Iterator[Attachment | None]:
        """A media message's file as the sender attaches it: a copy under the worker's outbox named as the recipient
        will see it, removed after the send. MediaMissing (a permanent error: the message fails for an operator) when
        its bytes are not in the media files."""
        if message.media is None:
            yield None
            return
        if self.media_files is None:
            raise errors.MediaMissing("this worker has no media files to read the message's file from")
        data = self.media_files.get(message.media.sha256)
        if hashlib.sha256(data).hexdigest() != message.media.sha256:
            raise errors.MediaMissing(f"the media file {message.media.sha256} does not hold the bytes it names")
        folder = private_dir(Path(self.settings.data_dir) / "outbox" / self.session / message.id)
        path = folder / message.media.filename
        try:
            path.write_bytes(data)
            yield Attachment(path=path, media=message.media)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _mark_sending(self, message: Message, picture: tuple[str, ...] | None) -> bool:
        """The store's decision to click, the last write before it (the sender calls it with the chat open and the
        text typed): the lease, the session's cap for today (warm-up included) and the recipient's daily limit,
        counted and marked atomically (lifecycle.MARK_SENDING's gates), with the picture of the chat that a later
        reading compares against; the first mark sets the session's first-send day. Raises DailyCapReached or
        RecipientLimitReached, or OptedOut when the number is on the suppression list (the store then cancelled the
        message)."""
        now = self.clock()
        limit = self.settings.max_per_recipient_per_day
        return self.store.mark_sending(
            message.id, owner=self.owner, now=now,
            session_cap=sessions.daily_cap(self.store.get_session(self.session), self.settings, now).cap,
            session_day_start=local_midnight_utc(now, self.settings.zone),
            recipient_limit=limit or None,
            recipient_day_start=send_window.recipient_day_start(message.phone, now) if limit else None,
            first_send_day=warmup.local_day(now, self.settings.zone),
            picture=picture, opt_out_scope=self.settings.opt_out_scope,
        )

    def _opted_out(self, message: Message, cancelled: Message | None) -> Outcome:
        """The number is on the suppression list: the message ended cancelled (OptedOut), nothing clicked."""
        if cancelled is None:
            return Outcome("skipped", detail="lease lost before cancelling for the opt-out")
        self._changed(cancelled)
        return Outcome("cancelled", cancelled, f"{message.phone} opted out")

    def _expiry_blocker(self, message: Message, *, settled: bool = False) -> Outcome | None:
        """At or past its expires_at, a message that is not in doubt (or whose doubt the chat has just `settled`:
        nothing was sent) ends `expired`: never clicked, no attempt, no admin notice. The store's mark refuses it too,
        so a worker that read the time before the expiry cannot click it after."""
        now = self.clock()
        if message.expires_at is None or now < message.expires_at:
            return None
        if settled:
            expired = self.store.expire_unsent(message.id, owner=self.owner, now=now)
        else:
            expired = self.store.expire(message.id, owner=self.owner, now=now)
        if expired is None:
            return Outcome("skipped", detail="lease lost before expiring")
        self._changed(expired)
        return Outcome("expired", expired, f"expired at {message.expires_at.isoformat()}")

    def _window_blocker(self, message: Message) -> Outcome | None:
        """Outside its send window (its own, else WAQ_SEND_WINDOW) in the recipient's zones, the message waits until
        the window opens, with no attempt used. A window that no longer opens at all (a time-zone change since the
        enqueue refused such windows) fails it for an operator: it would otherwise wait forever."""
        window = message.send_window or self.settings.send_window
        if window is None or (self.settings.high_skips_window and message.priority is Priority.HIGH):
            return None
        now = self.clock()
        try:
            opens = send_window.next_open(window, message.phone, now)
        except errors.SendWindowNeverOpen as exc:
            return self._fail(message, exc)
        if opens <= now:
            return None
        which = "its send window" if message.send_window is not None else "WAQ_SEND_WINDOW"
        return self._defer(message, opens, f"outside {which} {window} in the recipient's time zone; opens at "
                                           f"{opens.isoformat()}", errors.SendWindowClosed.__name__)

    def _defer_recipient(self, message: Message) -> Outcome:
        """Over the recipient's daily limit: wait for the recipient's next day, then be checked again."""
        now = self.clock()
        until = send_window.recipient_next_day_start(message.phone, now)
        day = send_window.recipient_local_date(message.phone, now)
        return self._defer(message, until, f"{message.phone} reached WAQ_MAX_PER_RECIPIENT_PER_DAY "
                                           f"({self.settings.max_per_recipient_per_day}) for {day.isoformat()}; "
                                           f"waits until {until.isoformat()}", errors.RecipientLimitReached.__name__)

    def _defer(self, message: Message, until: datetime, reason: str, error_class: str) -> Outcome:
        deferred = self.store.defer(message.id, owner=self.owner, now=self.clock(), next_attempt_at=until,
                                    reason=reason, error_class=error_class)
        if deferred is None:
            return Outcome("skipped", detail="lease lost before deferring")
        # Past any broker visibility window: the sweeper publishes it when it is due.
        self.store.clear_dispatch([deferred.id])
        return Outcome("deferred", deferred, reason)

    def _measured(self, seconds: float, outcome: str, message: Message) -> None:
        if self.on_send is not None:
            kind = plain(message.media.kind) if message.media is not None else "text"
            try:
                self.on_send(self.session, seconds, outcome, kind)
            except Exception as exc:  # noqa: BLE001 - metrics never decide a delivery
                log.debug("send metrics not recorded: %s", exc)

    def _session_blocker(self, message: Message) -> Outcome | None:
        """Hand the message on when this session cannot send it now; no attempt is used."""
        now = self.clock()
        if not self._connected() or self.store.get_session(self.session).status == SessionStatus.BANNED:
            record = sessions.note_unavailable(self.store, self.sender, self.settings, now, notifier=self.notifier)
            if record.status == SessionStatus.BANNED:  # stays so, whatever the page shows now, until a restart
                return self._release(message, f"session banned: {record.last_error}", errors.SessionBanned.__name__)
            return self._release(message, "session unavailable", errors.SessionUnavailable.__name__)
        if message.in_doubt and message.doubt_session != self.session:
            return self._doubt_elsewhere(message, now)
        if not sessions.under_cap(self.store, self.session, self.settings, now):
            return self._release(message, "daily cap reached", errors.DailyCapReached.__name__)
        return None

    def _doubt_elsewhere(self, message: Message, now: datetime) -> Outcome:
        """Only the session that clicked can read its own chat and settle an unknown outcome. While it may still come
        back (restarting, reconnecting), the message waits for it; once it is gone for good (it needs an operator,
        or its reconnection window has passed), the message fails as unverified for an operator, who holds the
        phone. Another session never sends it on a guess: its own chat cannot show the first send, so it would send
        twice."""
        doubt = message.doubt_session
        if doubt and doubt in self.settings.sessions:
            record = self.store.get_session(doubt)
            if sessions.is_available(record, self.settings, now):
                return self._release(message, "outcome unknown: back to the session that clicked", target=doubt)
            since = message.doubt_since or now
            if not record.needs_operator and now - since < self._doubt_wait():
                return self._release(message, "outcome unknown: waiting for the session that clicked",
                                     target=doubt, delay_s=self.settings.reconnect_unit_s)
        return self._fail(message, errors.OutcomeUnverified(
            f"sent? could not be verified in the chat: the session that clicked ({doubt or 'unknown'}) is gone "
            "and only its chat can tell; check the phone, then retry or mark as sent"))

    def _doubt_wait(self) -> timedelta:
        """How long a message in doubt waits for its session: the reconnection back-off in full, and a health check."""
        return sessions.reconnect_window(self.settings) + timedelta(seconds=self.settings.health_interval_s)

    def _connected(self) -> bool:
        try:
            return self.sender.is_connected()
        except Exception:  # noqa: BLE001 - an unanswering browser is a disconnected one
            return False

    def _already_sent(self, message: Message) -> Outcome | None:
        """Settle the doubt in the chat of the session that clicked: the picture recorded with the mark, and the
        rows that other messages of this session own since the click (a later message with the same text)."""
        since = message.doubt_since
        try:
            taken = self.store.wa_ids_sent(message.phone, session=self.session, since=since) if since else set()
            receipt = self.sender.find_sent(message.phone, message.text, ref=message.id, since=since,
                                            picture=message.doubt_picture, taken=taken, media=message.media)
        except errors.OutcomeUnverified as exc:  # the chat was read and cannot tell: an operator decides
            return self._fail(message, exc)
        except Exception as exc:  # noqa: BLE001 - cannot read the chat now: do not guess, try again later
            if not isinstance(exc, errors.TransientSendError):
                exc = errors.TransientSendError(f"reading the chat failed: {exc}")
            return self._after_error(message, exc, marked=False)
        if receipt is None:
            return None
        log.info("message %s was already sent before a crash: recorded, not sent again", message.id)
        return self._record_sent(message, receipt.wa_id)

    def _number_registered(self, message: Message) -> bool | None:
        known = self.store.get_number_check(message.phone)
        if known is not None:
            return known
        try:
            registered = self.sender.is_registered(message.phone)
        except Exception as exc:  # noqa: BLE001 - unknown: the send itself will tell
            show = self.settings.log_phones
            log.info("number check of %s failed: %s", redact.phone(message.phone, show), redact.phones_in(exc, show))
            return None
        if registered is not None:
            self.store.set_number_check(message.phone, registered, now=self.clock())
        return registered

    def _pace(self, message: Message) -> Outcome | None:
        """Wait for this session's next send slot, keeping the lease alive meanwhile. A message of lower priority
        than a task waiting in this worker's queues gives its place up before taking the slot: handed back to the
        front of its queue (no attempt used), so the higher one is the next sent and its own order is kept."""
        if self.settings.max_delay_s <= 0:
            return None  # pacing off (tests, benchmarks)
        while True:
            if self._outranked(message):
                return self._hand_back(message)
            now = self.clock()
            waiting_until = self.store.reserve_send_slot(self.session, now=now, next_send_at=now + self._pause())
            if waiting_until is None:
                return None
            wait = (waiting_until - now).total_seconds()
            self.store.extend_lease(message.id, owner=self.owner, now=now, lease_s=self.settings.lease_s + wait)
            self._idle(min(max(wait, 0.0), self.settings.max_delay_s + 1))

    def _outranked(self, message: Message) -> bool:
        """A task of higher priority than `message` waits in this worker's queues (its session's or wa.default)."""
        above = _HIGHER.get(plain(message.priority), ())
        if not above:
            return False
        try:
            queues = (queue_for(self.session), queue_for(None))
            return any(self.publisher.queue_length(queue, above) for queue in queues)
        except Exception as exc:  # noqa: BLE001 - the broker unreadable: send in the order already taken
            log.debug("queue lengths not read: %s", exc)
            return False

    def _hand_back(self, message: Message) -> Outcome:
        now = self.clock()
        released = self.store.release(message.id, owner=self.owner, now=now, next_attempt_at=now,
                                      reason="a message of higher priority is waiting", keep_doubt=True)
        if released is None:
            return Outcome("skipped", detail="lease lost before handing back")
        self.publisher.publish([released], released.dispatch_queue or queue_for(self.session), now=now, front=True)
        return Outcome("released", released, "handed back: a message of higher priority is waiting")

    def _idle(self, seconds: float) -> None:
        """The pacing pause: spent reading replies, following delivery ticks of recent sends, then sleeping the
        rest."""
        rest = seconds - self.read_replies(seconds)
        if self._watch and rest > 0:
            started = time.monotonic()
            self.follow_receipts(rest)
            rest -= time.monotonic() - started
        if rest > 0:
            self.sleep(rest)

    @property
    def reply_read_s(self) -> float:
        """What one chat read is allowed: the pause left must hold it for a read to start."""
        return REPLY_READ_BASE_S + 2 * self.settings.chat_settle_s

    def read_replies(self, budget_s: float) -> float:
        """Read unread chats one at a time while at least one read (reply_read_s) of `budget_s` is left, handing each
        reply to on_reply; returns the seconds spent. A failed read is logged: replies stay unread, read later."""
        if self.on_reply is None:
            return 0.0
        started, elapsed = time.monotonic(), 0.0  # the first read is judged on the whole budget
        while budget_s - elapsed >= self.reply_read_s:
            try:
                # The open chat's replies come back at every read (it has no badge): only new ones mean more may wait.
                read = self.sender.read_replies(max_chats=1, again=self._read_again)
                new = [reply for reply in read if self.on_reply(reply)]
                self.sender.replies_recorded()
                self._read_again = False
            except Exception as exc:  # noqa: BLE001 - replies wait in the page; the send must not
                # A chat may have opened (its badge gone) with its replies unrecorded: read the noted chats again.
                self._read_again = True
                log.warning("session %s: replies not read now: %s: %s", self.session, type(exc).__name__, exc)
                break
            if not new:
                break
            elapsed = time.monotonic() - started
        return time.monotonic() - started

    def _read_before_send(self, phone: str) -> None:
        """One read before the send opens its chat: the open chat's replies (it closes for the send, and a reply
        that came there during the pause has no badge to be found by later) and those of the recipient's chat when
        the list shows it unread (opening it would take the badge). At most one chat is opened."""
        if self.on_reply is None:
            return
        try:
            for reply in self.sender.read_replies(max_chats=0, again=self._read_again, first=phone):
                self.on_reply(reply)
            self.sender.replies_recorded()
            self._read_again = False
        except Exception as exc:  # noqa: BLE001 - the send goes on; the noted chats are read again next time
            self._read_again = True
            log.warning("session %s: replies not read before the send: %s: %s", self.session, type(exc).__name__, exc)

    def follow_receipts(self, budget_s: float) -> None:
        """Read the ticks of watched messages for up to budget_s; record delivered_at / read_at as they appear."""
        deadline = time.monotonic() + budget_s
        while self._watch and time.monotonic() < deadline:
            for item in list(self._watch):
                self._check_receipt(item)
            if self._watch:
                time.sleep(min(_RECEIPT_POLL_S, max(0.0, deadline - time.monotonic())))

    def _check_receipt(self, item: tuple[str, str, str, float]) -> None:
        message_id, phone, wa_id, give_up = item
        try:
            status = self.sender.receipt_status(phone, wa_id)
        except Exception as exc:  # noqa: BLE001 - receipts are best effort; the send is already recorded
            log.info("receipt of %s not read: %s", message_id, exc)
            status = None
        now = self.clock()
        updated = None
        if status in ("delivered", "read"):
            updated = self.store.record_receipt(message_id, now=now, delivered_at=now,
                                                read_at=now if status == "read" else None)
        if updated is not None and updated.history and updated.history[-1].event == HistoryEvent.RECEIPT:
            self._changed(updated)
        if status == "read" or time.monotonic() >= give_up:
            self._watch.remove(item)

    def _pause(self) -> timedelta:
        return timedelta(seconds=self.rng.uniform(self.settings.min_delay_s, self.settings.max_delay_s))

    # ---- outcomes ----------------------------------------------------------------------------------------------
    def _record_sent(self, message: Message, wa_id: str | None) -> Outcome:
        now = self.clock()
        sent = self.store.record_sent(message.id, owner=self.owner, now=now, session=self.session, wa_id=wa_id)
        if self.settings.max_delay_s > 0 or self._heartbeat_due(now):
            # The pause counts from the end of this send, not from its start.
            offset = self.sender.page_clock_offset_s()
            self.store.update_session(self.session, next_send_at=now + self._pause(), heartbeat_at=now,
                                      status=SessionStatus.CONNECTED.value,
                                      **({"page_clock_offset_s": offset} if offset is not None else {}))
        if sent is None:
            log.error("message %s was sent but its lease had moved on; recorded by nobody", message.id)
            return Outcome("skipped", detail="sent, but the lease was lost")
        self._changed(sent)
        if self.settings.receipt_follow_s > 0 and wa_id:
            self._watch.append((sent.id, sent.phone, wa_id, time.monotonic() + self.settings.receipt_follow_s))
            if self.settings.max_delay_s <= 0:
                self.follow_receipts(self.settings.receipt_follow_s)  # no pacing pause to spend it in
        return Outcome("sent", sent)

    def _heartbeat_due(self, now: datetime) -> bool:
        if self._last_heartbeat is not None and now - self._last_heartbeat < timedelta(seconds=5):
            return False
        self._last_heartbeat = now
        return True

    def _after_error(self, message: Message, exc: Exception, *, marked: bool) -> Outcome:
        """`marked`: this attempt recorded `sending` (after any earlier doubt was settled in the chat). Its error then
        proves that nothing was clicked, unless the outcome is unknown; without the mark an earlier doubt stands."""
        keep_doubt = not marked or isinstance(exc, errors.SendOutcomeUnknown)
        decision = classify(exc)
        if decision is Decision.RELEASE:
            if isinstance(exc, errors.SessionBanned):
                sessions.record_ban(self.store, self.session, self.sender.last_problem() or str(exc), self.settings,
                                    self.clock(), notifier=self.notifier)
            else:
                self.store.update_session(self.session, status=_state_for(exc), heartbeat_at=self.clock())
            return self._release(message, f"session unavailable: {exc}", type(exc).__name__, keep_doubt=keep_doubt)
        if decision is Decision.FAIL:
            return self._fail(message, exc)
        failures = message.attempts + 1
        delay = next_retry_delay(failures, self.settings.retry_delays)
        if delay is None:
            if keep_doubt and (message.in_doubt or isinstance(exc, errors.SendOutcomeUnknown)):
                exc = errors.OutcomeUnverified(f"sent? could not be verified in the chat after {failures} attempts; "
                                               f"last: {type(exc).__name__}: {exc}")
            return self._fail(message, exc)
        now = self.clock()
        retried = self.store.record_retry(
            message.id, owner=self.owner, now=now, next_attempt_at=now + timedelta(seconds=delay),
            error_class=type(exc).__name__, error_text=str(exc)[:2000], keep_doubt=keep_doubt,
        )
        if retried is None:
            return Outcome("skipped", detail="lease lost before recording a retry")
        # A message in doubt retries on the session that clicked, the only one whose chat can show whether it left.
        stored = self._publish_after(retried, queue_for(retried.doubt_session), delay, now)
        return Outcome("retry", retried, f"attempt {failures} failed; next in {delay:g}s"
                                         + (" (waits in the store)" if stored else ""))

    def _fail(self, message: Message, exc: BaseException) -> Outcome:
        failed = self.store.record_failed(
            message.id, owner=self.owner, now=self.clock(), error_class=type(exc).__name__, error_text=str(exc)[:2000]
        )
        if failed is None:
            return Outcome("skipped", detail="lease lost before recording a failure")
        self.notifier.notify_admin(
            "message_failed", f"message {failed.id} to {failed.phone} failed: {type(exc).__name__}",
            message_id=failed.id, phone=failed.phone, attempts=failed.attempts, error=str(exc)[:500],
        )
        self._changed(failed)
        return Outcome("failed", failed, type(exc).__name__)

    def _release(self, message: Message, reason: str, error_class: str | None = None, *,
                 target: str | None = None, delay_s: float | None = None, keep_doubt: bool = True) -> Outcome:
        """Give the message to another session (after `delay_s`), or park it until one can take it. Before this
        attempt's send, an earlier attempt's unknown outcome stays recorded (keep_doubt); after a send refused
        before its click, this attempt's own mark is cleared."""
        now = self.clock()
        target = target or sessions.pick_session(self.store, self.settings, now, exclude=self.session)
        park_until: datetime | None = now + timedelta(seconds=delay_s) if delay_s else None
        if target is None:
            if error_class == errors.DailyCapReached.__name__:
                park_until = next_local_midnight_utc(now, self.settings.zone)
            else:
                park_until = now + timedelta(seconds=self.settings.reconnect_unit_s)
        released = self.store.release(
            message.id, owner=self.owner, now=now, reason=reason, error_class=error_class, next_attempt_at=park_until,
            keep_doubt=keep_doubt,
        )
        if released is None:
            return Outcome("skipped", detail="lease lost before releasing")
        wait_s = (park_until - now).total_seconds() if park_until is not None else None
        if self._publish_after(released, queue_for(target), wait_s, now):
            return Outcome("parked", released, f"{reason}; until {park_until.isoformat()}")
        return Outcome("released", released, f"{reason}; to {target or 'any session'}")

    def _publish_after(self, message: Message, queue: str, wait_s: float | None, now: datetime) -> bool:
        """Publish `message`'s task to `queue` after `wait_s` (None: at once), or, for a wait longer than
        WAQ_MAX_COUNTDOWN_S, leave it in the store with its dispatch cleared and return True: beat's sweeper
        publishes it when it is due, within one dispatch interval (DESIGN's invariant 2: a broker may forget, and
        a countdown past the visibility timeout is delivered again, kombu issue 337)."""
        if wait_s is not None and wait_s > self.settings.max_countdown_s:
            self.store.clear_dispatch([message.id])
            return True
        self.publisher.publish([message], queue, countdown=wait_s, now=now)
        return False

    def _changed(self, message: Message) -> None:
        if self.on_change is not None:
            try:
                self.on_change(message)
            except Exception as exc:  # noqa: BLE001 - a callback hook must never undo a recorded send
                log.warning("status hook failed for %s: %s", message.id, exc)


def _state_for(exc: Exception) -> str:
    if isinstance(exc, errors.SessionLoggedOut):
        return SessionStatus.LOGGED_OUT.value
    return SessionStatus.PHONE_DISCONNECTED.value

"""The operations behind the Python API, the REST API and the CLI: the only way api/ and wa_queue/cli/ reach the
store (tests/unit/test_wiring.py checks it). Each takes the Hub of its caller first (wa_queue/hub.py)."""

from __future__ import annotations

import collections
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from wa_queue import batches, callbacks, headroom, names, procs, quota, warmup
from wa_queue.batches import BatchAction, BatchReport
from wa_queue.broker.publisher import queue_for
from wa_queue.errors import NotCancellable, OptedOut, ValidationError
from wa_queue.models import (
    Category,
    InboundMessage,
    MediaUpload,
    Message,
    MessageStatus,
    NewMessage,
    Priority,
    Suppression,
    SuppressionChange,
    blocked_by_opt_out,
    new_message_id,
    plain,
)
from wa_queue.names import session_qr_key
from wa_queue.retry import local_midnight_utc
from wa_queue.sessions import clock_warning, daily_cap, is_available, request_restart
from wa_queue.validation import (
    parse_datetime,
    validate_batch,
    validate_callback_url,
    validate_category,
    validate_expiry,
    validate_idempotency_key,
    validate_metadata,
    validate_phone,
    validate_priority,
    validate_send_at,
    validate_send_window,
    validate_session,
    validate_text,
)

if TYPE_CHECKING:
    from wa_queue.hub import Hub
    from wa_queue.send_window import SendWindow
    from wa_queue.store import SessionRecord

log = logging.getLogger(__name__)


def build_message(
    hub: Hub, phone: str, text: str | None = None, *, session: str | None = None, idempotency_key: str | None = None,
    callback_url: str | None = None, metadata: dict[str, Any] | None = None,
    send_window: SendWindow | dict[str, Any] | str | None = None, send_at: datetime | str | None = None,
    expires_at: datetime | str | None = None, ttl_s: float | None = None, priority: Priority | str | None = None,
    batch: str | None = None, media: Any = None, caption: str | None = None, filename: str | None = None,
    kind: str | None = None, as_document: bool = False, enqueued_by: str | None = None, local_files: bool = False,
    category: Category | str | None = None,
) -> NewMessage:
    """Validate and normalise one request by validation.py's rules (the same for the Python API, the CLI and the
    REST API); raises ValidationError naming the field. A send window that never opens for the number is refused
    (judged at the Hub's clock), and so are a send_at too far ahead and an expiry already past.

    A media message gives `media` (media/intake.py's forms; `local_files`: a path may be read, the Python API and the
    CLI only) and an optional `caption` (or `text`, not both); a URL is fetched here, before anything is stored."""
    settings, now = hub.settings, hub.clock()
    e164 = validate_phone(phone, settings.default_region)
    kind_of = validate_category(category)
    refuse_suppressed(hub, e164, kind_of)
    scheduled = validate_send_at(send_at, now, settings.max_schedule_days)
    ref, data = None, None
    if media is not None:
        from wa_queue.media.intake import read_media
        from wa_queue.media.rules import validate_caption

        if text is not None and caption is not None:
            raise ValidationError("give the caption as caption or as text, not both", "caption")
        ref, data = read_media(media, settings=settings, store=hub.store, now=now, owner=enqueued_by,
                               filename=filename, kind=kind, as_document=as_document, local_files=local_files)
        body = validate_caption(caption if caption is not None else text, ref.kind)  # type: ignore[arg-type]
    elif caption is not None or filename is not None or kind is not None or as_document:
        field = "caption" if caption is not None else "media"
        raise ValidationError(f"{field}: {'a caption' if field == 'caption' else 'a file name or kind'} needs media",
                              field)
    else:
        body = validate_text(text)
    return NewMessage(
        send_at=scheduled, expires_at=validate_expiry(expires_at, ttl_s, now, scheduled, settings.default_ttl_s),
        priority=validate_priority(priority), batch=validate_batch(batch), media=ref, media_bytes=data,
        enqueued_by=enqueued_by, category=kind_of, expiry_asked=_expiry_asked(expires_at, ttl_s),
        phone=e164,
        text=body,
        session=validate_session(session, settings.sessions),
        idempotency_key=validate_idempotency_key(idempotency_key),
        callback_url=validate_callback_url(callback_url, settings.outbound_allow),
        metadata=validate_metadata(metadata),
        send_window=validate_send_window(send_window, e164, hub.clock()),
    )


def _expiry_asked(expires_at: object, ttl_s: object) -> dict[str, Any]:
    """The expiry as the request gave it (validated already), the content a replay repeats: not now + ttl_s."""
    asked: dict[str, Any] = {}
    given = parse_datetime(expires_at, "expires_at")
    if given is not None:
        asked["expires_at"] = given.isoformat()  # as hashed before this field: stored hashes stay valid
    if ttl_s is not None:
        asked["ttl_s"] = ttl_s
    return asked


def refuse_suppressed(hub: Hub, phone: str, category: Category = Category.TRANSACTIONAL) -> None:
    """OptedOut (409 naming phone) when the number is on the suppression list and the list stops this category
    (WAQ_OPT_OUT_SCOPE). A STOP recorded after this look is caught by the mark, which cancels the message instead of
    clicking it."""
    if not blocked_by_opt_out(category, hub.settings.opt_out_scope):
        return
    entry = hub.store.get_suppression(phone)
    if entry is not None:
        why = f"it replied {entry.word!r}" if entry.word else f"added by {entry.by}"
        raise OptedOut(f"{phone} is on the suppression list since {entry.since.isoformat()} ({why}): nothing is sent "
                       "to it until it is removed (it replies START, or an operator removes it)")


def add_suppression(hub: Hub, phone: str, *, by: str, session: str | None = None, word: str | None = None) -> bool:
    """Put a number (validated and normalised as enqueue does) on the suppression list; False if it was on it."""
    e164 = validate_phone(phone, hub.settings.default_region)
    return hub.store.add_suppression(Suppression(phone=e164, since=hub.clock(), by=by, session=session, word=word))


def remove_suppression(hub: Hub, phone: str, *, by: str) -> bool:
    """Take a number off the suppression list, noting `by` (an API key's name, `cli:<user>`) in the list's log; False
    if it was not on it."""
    return hub.store.remove_suppression(validate_phone(phone, hub.settings.default_region), by=by, at=hub.clock())


def suppression_log(hub: Hub, *, phone: str | None = None, limit: int = 100, offset: int = 0
                    ) -> tuple[list[SuppressionChange], int]:
    """The list's changes, newest first: who put a number on it or took it off, and when."""
    return hub.store.suppression_log(phone=validate_phone(phone, hub.settings.default_region) if phone else None,
                                     limit=limit, offset=offset)


def get_suppression(hub: Hub, phone: str) -> Suppression | None:
    """The list's entry for a number (validated and normalised as enqueue does); None when it is not on the list."""
    return hub.store.get_suppression(validate_phone(phone, hub.settings.default_region))


def list_suppressions(hub: Hub, *, limit: int = 100, offset: int = 0) -> tuple[list[Suppression], int]:
    return hub.store.list_suppressions(limit=limit, offset=offset)


def list_inbound(hub: Hub, *, phone: str | None = None, session: str | None = None, since: datetime | str | None = None,
                 until: datetime | str | None = None, limit: int = 100, offset: int = 0
                 ) -> tuple[list[InboundMessage], int]:
    """Replies, newest first, filtered by number (validated as enqueue does), session and read time."""
    return hub.store.list_inbound(
        phone=validate_phone(phone, hub.settings.default_region) if phone else None,
        session=validate_session(session, hub.settings.sessions), since=parse_datetime(since, "since"),
        until=parse_datetime(until, "until"), limit=limit, offset=offset)


def new_batch_name() -> str:
    """A batch's name for a bulk enqueue that gives none: unguessable, later ones sort later (a UUIDv7's hex)."""
    return new_message_id()


def submit(hub: Hub, news: list[NewMessage]) -> list[tuple[Message, bool]]:
    """Commit, then publish (invariant 1). Returns (message, created) per item; replays are not republished.

    All of `news` is stored or none is. Concurrent callers in this process share a commit and a publish
    (group_commit.message_commit); each still gets its own result or its own error (an IdempotencyConflict, say)."""
    if not news:
        return []
    files = {n.media.sha256: n.media_bytes for n in news if n.media is not None}
    if not files:
        return hub.group.run(news)
    # The bytes are durable before the rows that name them are committed (a crash in between leaves an orphan file,
    # which the collector takes); after the commit each file is touched, or written again from the bytes in hand,
    # so that a collector that judged it unused before the commit cannot take it (media/collect.py).
    for sha256, data in files.items():
        if data is not None:
            hub.media_files.put(sha256, data)
    results = hub.group.run(news)
    for sha256, data in files.items():
        if not hub.media_files.touch(sha256) and data is not None:
            hub.media_files.put(sha256, data)
    return results


def quota_rows(hub: Hub, key_name: str | None = None) -> list[dict[str, Any]]:
    """Each API key's daily quota (0: none) and its messages of this UTC day (None: not counted, it has no quota),
    and when the count starts again; only `key_name`'s row when given (a producer sees its own)."""
    settings, now = hub.settings, hub.clock()
    used = hub.store.quota_used(now)
    resets = quota.next_day_start(now).isoformat()
    rows = []
    for key in settings.api_keys:
        if key_name is not None and key.name != key_name:
            continue
        limit = settings.daily_quota_for(key.name)
        rows.append({"key": key.name, "daily_quota": limit, "used_today": used.get(key.name, 0) if limit else None,
                     "resets_at": resets})
    return rows


def enqueue(
    hub: Hub, phone: str, text: str | None = None, *, session: str | None = None, idempotency_key: str | None = None,
    callback_url: str | None = None, metadata: dict[str, Any] | None = None,
    send_window: SendWindow | dict[str, Any] | str | None = None, send_at: datetime | str | None = None,
    expires_at: datetime | str | None = None, ttl_s: float | None = None, priority: Priority | str | None = None,
    batch: str | None = None, media: Any = None, caption: str | None = None, filename: str | None = None,
    kind: str | None = None, as_document: bool = False, category: Category | str | None = None,
) -> str:
    """Queue one message; returns its id once it is committed to the store (with its file, for a media message:
    a path or bytes, media/intake.py)."""
    new = build_message(hub, phone, text, session=session, idempotency_key=idempotency_key,
                        callback_url=callback_url, metadata=metadata, send_window=send_window, send_at=send_at,
                        expires_at=expires_at, ttl_s=ttl_s, priority=priority, batch=batch, media=media,
                        caption=caption, filename=filename, kind=kind, as_document=as_document, local_files=True,
                        category=category)
    return submit(hub, [new])[0][0].id


def enqueue_many(hub: Hub, items: list[dict[str, Any]]) -> list[str]:
    """Queue many messages in one transaction: all are validated first, nothing is stored if one is bad."""
    news = [build_message(hub, **{"local_files": True, **item}) for item in items]
    return [message.id for message, _ in submit(hub, news)]


def get_message(hub: Hub, message_id: str) -> Message:
    return hub.store.get(message_id)


def batch_report(hub: Hub, name: str, *, owner: str | None) -> BatchReport:
    """The batch's counts and pace, of `owner`'s messages (None: everyone's); NotFound when it has none."""
    return batches.report(hub.store, hub.settings, name, owner, hub.clock())


def list_batches(hub: Hub, *, owner: str | None, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent batches, each with its counts by status and first enqueue; a producer's (`owner`) only those
    it has messages in, counted over its own messages."""
    out = []
    for row in hub.store.list_batches(limit=limit if owner is None else max(limit, 500)):
        counts, started = row.counts, row.started_at
        if owner is not None:
            own = [m for m in hub.store.batch_messages(row.name) if m.enqueued_by == owner]
            if not own:
                continue
            counts = collections.Counter(plain(m.status) for m in own)
            started = min(m.created_at for m in own)
        counts = {status.value: counts.get(status.value, 0) for status in MessageStatus}
        out.append({"name": row.name, "counts": counts, "total": sum(counts.values()),
                    "started_at": started.isoformat()})
        if len(out) == limit:
            break
    return out


def pause_batch(hub: Hub, name: str, *, owner: str | None, actor: str) -> BatchAction:
    return batches.pause(hub.store, name, owner, hub.clock(), reason=f"batch paused by {actor}")


def resume_batch(hub: Hub, name: str, *, owner: str | None, actor: str) -> BatchAction:
    return batches.resume(hub.store, name, owner, hub.clock(), reason=f"batch resumed by {actor}")


def cancel_batch(hub: Hub, name: str, *, owner: str | None, actor: str) -> BatchAction:
    return batches.cancel(hub.store, name, owner, hub.clock(), actor=actor,
                          on_change=lambda message: callbacks.on_status_change(message, hub.celery))


# Why a message cannot be cancelled, by its status (a pending or paused one in doubt has its own answer).
_NOT_CANCELLABLE = {
    "processing": "it is being sent: a worker holds it (its pacing pause, the number check or the click)",
    "sent": "it was already sent",
    "failed": "it failed and waits for an operator: retry it or delete it",
    "expired": "it already expired unsent",
}


def cancel(hub: Hub, message_id: str, *, actor: str) -> Message:
    """Cancel a pending or scheduled message (or one of a paused batch): it ends `cancelled`, never clicked, and its
    callback is queued. The store's compare-and-set races the workers' claim: whichever writes first wins. A message
    already cancelled is answered as it is. NotCancellable says why for any other (NotFound when absent)."""
    cancelled = hub.store.cancel(message_id, now=hub.clock(), actor=actor)
    if cancelled is not None:
        callbacks.on_status_change(cancelled, hub.celery)
        return cancelled
    current = hub.store.get(message_id)
    status = plain(current.status)
    if current.status is MessageStatus.CANCELLED:
        return current
    if status in _NOT_CANCELLABLE:
        raise NotCancellable(f"message {message_id} cannot be cancelled: {_NOT_CANCELLABLE[status]}", status)
    if current.in_doubt:
        raise NotCancellable(f"message {message_id} cannot be cancelled: a send was started and its outcome is not "
                             "known yet (in doubt); the session that clicked reads its chat first", status)
    raise NotCancellable(f"message {message_id} cannot be cancelled now (status {status}); try again", status)


def retry_failed(hub: Hub, message_id: str) -> Message:
    message = hub.store.retry_failed(message_id, now=hub.clock())
    hub.publisher.publish([message], queue_for(None))
    return message


def mark_sent(hub: Hub, message_id: str, *, actor: str, note: str | None = None) -> Message:
    """An operator saw a failed message in the phone's chat: it becomes sent, never sent again (invariant 5), and the
    producer's callback_url hears 'sent' as it would from a worker."""
    message = hub.store.mark_sent_by_operator(message_id, now=hub.clock(), actor=actor, note=note)
    log.info("message %s marked as sent by operator %s (sent_by %s)", message.id, actor, message.sent_by)
    try:
        callbacks.on_status_change(message, hub.celery)
    except Exception as exc:  # noqa: BLE001 - the store has recorded it; a callback is a notification, not the record
        log.warning("status callback for %s not queued: %s: %s", message.id, type(exc).__name__, exc)
    return message


def retry_all_failed(hub: Hub, session: str | None = None) -> int:
    store = hub.store
    ids = store.retry_all_failed(now=hub.clock(), session=session)
    for start in range(0, len(ids), 500):
        hub.publisher.publish([store.get(i) for i in ids[start:start + 500]], queue_for(None))
    return len(ids)


def delete_failed(hub: Hub, message_id: str) -> None:
    hub.store.delete(message_id)


def list_failed(hub: Hub, **query: Any) -> tuple[list[Message], int]:
    """A page of failed messages and their total (MessageStore.list_failed's filters)."""
    return hub.store.list_failed(**query)


def list_archived(hub: Hub, **query: Any) -> tuple[list[Message], int]:
    return hub.store.list_archived(**query)


def get_archived(hub: Hub, message_id: str) -> Message:
    return hub.store.get_archived(message_id)


def ping_store(hub: Hub) -> None:
    """Raises when the store does not answer."""
    hub.store.ping()


def count_failed_since(hub: Hub, since: datetime) -> int:
    return hub.store.count_failed_since(since)


def oldest_pending(hub: Hub) -> Message | None:
    return hub.store.oldest_pending()


def oldest_due(hub: Hub, now: datetime) -> Message | None:
    return hub.store.oldest_due(now=now)


def get_session(hub: Hub, name: str) -> SessionRecord:
    return hub.store.get_session(name)


def session_qr(hub: Hub, name: str, *, timeout_s: float | None = None) -> bytes | None:
    """The PNG of the QR code a session waits to have scanned, which its worker keeps in the broker; None when it
    is not waiting. `timeout_s` bounds the wait for the broker."""
    client = hub.broker if timeout_s is None else hub.broker_quick(timeout_s)
    return client.get(session_qr_key(name))


def recover_stuck(hub: Hub) -> int:
    """Beat's recover-stuck job, run now (`waq beat` at start)."""
    from wa_queue import recovery

    return recovery.recover_stuck(hub.store, hub.settings, hub.clock(), publisher=hub.publisher)


def restart_session(hub: Hub, name: str) -> dict[str, Any]:
    validate_session(name, hub.settings.sessions)
    return _session_view(hub, request_restart(hub.store, name).name)


WARMUP_ACTIONS = {"reset": warmup.RESET, "skip": warmup.SKIP}


def warmup_action(hub: Hub, name: str, action: str) -> dict[str, Any]:
    """An operator's warm-up action on a session: "reset" starts the ramp again from its next send, "skip" gives it
    the normal cap at once (wa_queue/warmup.py). Returns the session's view, with its new cap for today."""
    validate_session(name, hub.settings.sessions)
    if action not in WARMUP_ACTIONS:
        raise ValidationError(f"action must be one of: {', '.join(WARMUP_ACTIONS)}", "action")
    hub.store.update_session(name, **WARMUP_ACTIONS[action])
    log.info("warm-up of session %s: %s", name, action)
    return _session_view(hub, name)


def sessions_overview(hub: Hub) -> dict[str, dict[str, Any]]:
    """Every configured session as the operator sees it (the REST API, /health, /stats, the dashboard, /metrics,
    `waq sessions list`, `waq doctor`): state, why it is down, today's sends, today's cap and the warm-up ramp."""
    return {name: _session_view(hub, name) for name in hub.settings.sessions}


def _session_view(hub: Hub, name: str) -> dict[str, Any]:
    settings = hub.settings
    store = hub.store
    now = hub.clock()
    record = store.get_session(name)
    ramp = daily_cap(record, settings, now)  # the cap the delivery's mark_sending enforces
    return {
        "name": name,
        "status": plain(record.status),
        "number": record.number,
        "connected": is_available(record, settings, now),
        "needs_operator": record.needs_operator,
        "reconnect_attempts": record.reconnect_attempts,
        "next_reconnect_at": record.next_reconnect_at.isoformat() if record.next_reconnect_at else None,
        "heartbeat_at": record.heartbeat_at.isoformat() if record.heartbeat_at else None,
        "last_error": record.last_error,
        "last_error_at": record.last_error_at.isoformat() if record.last_error_at else None,
        "hint": record.last_error_hint,
        "sends_today": store.sends_since(name, local_midnight_utc(now, settings.zone)),
        "daily_cap": ramp.cap,  # today's: the warm-up's cap while it ramps, else WAQ_MAX_DAILY_PER_SESSION
        "warmup": ramp.to_dict(),
        "page_clock_offset_s": record.page_clock_offset_s,
        "clock_warning": clock_warning(name, record.page_clock_offset_s),  # over 60 s either way: check NTP
    }


def memory_headroom(*, detail: bool = False) -> dict[str, Any] | None:
    """This machine's memory for /health: MemTotal and MemAvailable (one read of /proc/meminfo); with `detail`, also
    the session workers running here and each one's PSS, which walks /proc and reads every process's smaps, too
    slow for a probe polled every few seconds (wa_queue/headroom.py). None where /proc cannot be read."""
    try:
        if not detail:
            info = procs.meminfo()
            return {"mem_total_kib": info.get("MemTotal", 0), "mem_available_kib": info.get("MemAvailable", 0)}
        found = headroom.measure()
    except OSError as exc:
        log.warning("memory headroom unavailable: %s: %s", type(exc).__name__, exc)
        return None
    return {
        "mem_total_kib": found.mem_total_kib,
        "mem_available_kib": found.mem_available_kib,
        "reserve_kib": found.reserve_kib,
        "sessions": [{"name": s.name, "pid": s.pid, "pss_kib": s.pss_kib, "worker_pss_kib": s.worker_pss_kib,
                      "browser_pss_kib": s.browser_pss_kib} for s in found.sessions],
        "mean_pss_kib": found.mean_pss_kib,
        "more_sessions": found.more_sessions,
        "stray_pids": list(found.stray_pids),
        "stray_pss_kib": found.stray_pss_kib,
    }


def queue_counts(hub: Hub) -> dict[str, int]:
    return hub.store.count_by_status()


def queue_summary(hub: Hub) -> str:
    """One line for the log when a process starts: counts by status, each session's state and today's sends."""
    counts = " ".join(f"{status}={n}" for status, n in queue_counts(hub).items())
    sessions = ", ".join(f"{name} {view['status']} sent today {view['sends_today']}/{view['daily_cap']}"
                         for name, view in sessions_overview(hub).items())
    return f"queue: {counts}; sessions: {sessions}"


def log_queue_summary(hub: Hub, logger: logging.Logger, who: str) -> None:
    """Log queue_summary() at start-up; a store that fails here is logged, never fatal (the process must start)."""
    try:
        logger.info("%s starting: %s", who, queue_summary(hub))
    except Exception as exc:  # noqa: BLE001
        logger.warning("%s starting: queue statistics unavailable: %s: %s", who, type(exc).__name__, exc)


def stats(hub: Hub) -> dict[str, Any]:
    store = hub.store
    now = hub.clock()
    oldest = store.oldest_pending()
    hours = store.sends_per_hour(since=now - timedelta(hours=24))
    return {
        "counts": store.count_by_status(),
        "sessions": {name: {k: v[k] for k in ("sends_today", "daily_cap", "warmup")}
                     for name, v in sessions_overview(hub).items()},
        "sends_per_hour": [{"hour": hour.isoformat(), "sent": count} for hour, count in hours],
        "oldest_pending_age_s": (now - oldest.created_at).total_seconds() if oldest else None,
        "quotas": quota_rows(hub),
    }


__all__ = ["enqueue", "enqueue_many", "get_message", "submit"]


def callback_circuits(hub: Hub, *, timeout_s: float = 2.0) -> list[dict[str, Any]]:
    """The callback circuit breaker's hosts (wa_queue/circuit.py) as /health and /metrics show them: host, state
    (closed, open, half_open), consecutive failures, and until when an open circuit holds deliveries."""
    import time

    from wa_queue.circuit import Breaker

    now = time.time()
    return [{"host": c.host, "state": c.state(now), "failures": c.failures,
             "open_until": datetime.fromtimestamp(c.open_until, UTC).isoformat() if c.is_open(now) else None}
            for c in Breaker(hub.broker_quick(timeout_s)).all()]


def callback_outcomes(hub: Hub, *, timeout_s: float = 2.0) -> dict[str, int]:
    """How many status callbacks ended each way (delivered, rejected, retried, gave_up, refused, deferred), counted
    by the callbacks workers in the broker's Redis."""
    raw = hub.broker_quick(timeout_s).hgetall(names.METRICS_CALLBACKS_KEY)
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}


def store_upload(hub: Hub, data: bytes, *, filename: object = None, kind: object = None, as_document: object = False,
                 owner: str | None = None) -> MediaUpload:
    """POST /api/whatsapp/media: check the file (media/rules.py), put its bytes (durable), then record the upload
    that messages name by its id. A crash between the two leaves a file the collector takes."""
    from wa_queue.media import rules

    ref = rules.check_file(data, filename, rules.parse_kind(kind, as_document), hub.settings)
    hub.media_files.put(ref.sha256, data)
    upload = MediaUpload(id=new_message_id(), media=ref, created_at=hub.clock(), enqueued_by=owner)
    hub.store.add_upload(upload)
    return upload


def media_bytes(hub: Hub, message: Message) -> bytes:
    """The file of a media message (MediaMissing when its bytes are gone; ValidationError when it has none)."""
    if message.media is None:
        raise ValidationError("this message has no file", "media")
    return hub.media_files.get(message.media.sha256)


def collect_media(hub: Hub) -> dict[str, int]:
    """One pass of the media collector (media/collect.py), as beat's job and `waq media collect` run it."""
    from wa_queue.media.collect import collect

    done = collect(hub.store, hub.media_files, hub.settings, hub.clock())
    return {"files": done.files, "kept": done.kept, "uploads": done.uploads, "partial": done.partial}

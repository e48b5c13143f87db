"""The operations behind the Python API, the REST API and the CLI: the only way api/ and wa_queue/cli/ reach the
store (tests/unit/test_wiring.py checks it). Each takes the App of its caller first (wa_queue/app.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from wa_queue import callbacks, headroom, names, quota, warmup
from wa_queue.broker.publisher import queue_for
from wa_queue.errors import ValidationError
from wa_queue.group_commit import GroupCommit
from wa_queue.models import Message, NewMessage, plain
from wa_queue.names import session_qr_key
from wa_queue.retry import local_midnight_utc
from wa_queue.sessions import clock_warning, daily_cap, is_available, request_restart
from wa_queue.validation import (
    validate_callback_url,
    validate_idempotency_key,
    validate_metadata,
    validate_phone,
    validate_send_window,
    validate_session,
    validate_text,
)

if TYPE_CHECKING:
    from wa_queue.app import App
    from wa_queue.send_window import SendWindow
    from wa_queue.store import SessionRecord

log = logging.getLogger(__name__)


def build_message(
    app: App, phone: str, text: str, *, session: str | None = None, idempotency_key: str | None = None,
    callback_url: str | None = None, metadata: dict[str, Any] | None = None,
    send_window: SendWindow | dict[str, Any] | str | None = None,
) -> NewMessage:
    """Validate and normalise one request by validation.py's rules (the same for the Python API, the CLI and the
    REST API); raises ValidationError naming the field. A send window that never opens for the number is refused
    (judged at the App's clock)."""
    settings = app.settings
    e164 = validate_phone(phone, settings.default_region)
    return NewMessage(
        phone=e164,
        text=validate_text(text),
        session=validate_session(session, settings.sessions),
        idempotency_key=validate_idempotency_key(idempotency_key),
        callback_url=validate_callback_url(callback_url, settings.outbound_allow),
        metadata=validate_metadata(metadata),
        send_window=validate_send_window(send_window, e164, app.clock()),
    )


def submit(app: App, news: list[NewMessage]) -> list[tuple[Message, bool]]:
    """Commit, then publish (invariant 1). Returns (message, created) per item; replays are not republished.

    All of `news` is stored or none is. Concurrent callers in this process share a commit and a publish
    (group_commit.py); each still gets its own result or its own error (an IdempotencyConflict, say)."""
    if not news:
        return []
    return app.group.run(news)


def group_commit(app: App) -> GroupCommit[list[NewMessage], list[tuple[Message, bool]]]:
    """The App's group commit: concurrent submit() calls of its process share a commit and a publish."""
    return GroupCommit(lambda groups: _commit_groups(app, groups), finish=lambda results: _finish_groups(app, results))


def _commit_groups(app: App, groups: list[list[NewMessage]]) -> list[list[tuple[Message, bool]] | Exception]:
    """The group commit's batch: one transaction for every caller's messages, each key's daily quota counted in it
    (a group over its key's quota gets QuotaExceeded, nothing of it stored). Not yet durable: _finish_groups."""
    settings = app.settings
    owners = {new.enqueued_by for news in groups for new in news if new.enqueued_by is not None}
    quotas = {name: settings.daily_quota_for(name) for name in owners}
    return app.store.insert_groups(groups, app.clock(), durable=False,
                                   quotas={name: q for name, q in quotas.items() if q > 0})


def quota_rows(app: App, key_name: str | None = None) -> list[dict[str, Any]]:
    """Each API key's daily quota (0: none) and its messages of this UTC day (None: not counted, it has no quota),
    and when the count starts again; only `key_name`'s row when given (a producer sees its own)."""
    settings, now = app.settings, app.clock()
    used = app.store.quota_used(now)
    resets = quota.next_day_start(now).isoformat()
    rows = []
    for key in settings.api_keys:
        if key_name is not None and key.name != key_name:
            continue
        limit = settings.daily_quota_for(key.name)
        rows.append({"key": key.name, "daily_quota": limit, "used_today": used.get(key.name, 0) if limit else None,
                     "resets_at": resets})
    return rows


def _finish_groups(app: App, results: list[list[tuple[Message, bool]] | Exception]) -> None:
    """While the next batch commits: make this one durable (an fsync shared with other batches), then publish
    what it created, one publish per queue (replays were published before), here or by the background publisher."""
    app.store.make_durable()
    now = app.clock()
    by_queue: dict[str, list[Message]] = {}
    available: dict[str, bool] = {}
    for result in results:
        if isinstance(result, Exception):
            continue
        for message, created in result:
            if created:
                by_queue.setdefault(_initial_queue(app, message, available, now), []).append(message)
    relay = app.relay
    for queue, messages in by_queue.items():
        if relay is not None:
            relay.put(queue, messages)
        else:
            app.publisher.publish(messages, queue, now=now)


def _initial_queue(app: App, message: Message, available: dict[str, bool], now: datetime) -> str:
    """The producer's session when it can send now; otherwise any session. `available` caches it per batch."""
    session = message.session
    if not session:
        return queue_for(None)
    if session not in available:
        available[session] = is_available(app.store.get_session(session), app.settings, now)
    return queue_for(session if available[session] else None)


def enqueue(
    app: App, phone: str, text: str, *, session: str | None = None, idempotency_key: str | None = None,
    callback_url: str | None = None, metadata: dict[str, Any] | None = None,
    send_window: SendWindow | dict[str, Any] | str | None = None,
) -> str:
    """Queue one message; returns its id once it is committed to the store."""
    new = build_message(app, phone, text, session=session, idempotency_key=idempotency_key,
                        callback_url=callback_url, metadata=metadata, send_window=send_window)
    return submit(app, [new])[0][0].id


def enqueue_many(app: App, items: list[dict[str, Any]]) -> list[str]:
    """Queue many messages in one transaction: all are validated first, nothing is stored if one is bad."""
    news = [build_message(app, **item) for item in items]
    return [message.id for message, _ in submit(app, news)]


def get_message(app: App, message_id: str) -> Message:
    return app.store.get(message_id)


def retry_failed(app: App, message_id: str) -> Message:
    message = app.store.retry_failed(message_id, now=app.clock())
    app.publisher.publish([message], queue_for(None))
    return message


def mark_sent(app: App, message_id: str, *, actor: str, note: str | None = None) -> Message:
    """An operator saw a failed message in the phone's chat: it becomes sent, never sent again (invariant 5), and the
    producer's callback_url hears 'sent' as it would from a worker."""
    message = app.store.mark_sent_by_operator(message_id, now=app.clock(), actor=actor, note=note)
    log.info("message %s marked as sent by operator %s (sent_by %s)", message.id, actor, message.sent_by)
    try:
        callbacks.on_status_change(message, app.celery)
    except Exception as exc:  # noqa: BLE001 - the store has recorded it; a callback is a notification, not the record
        log.warning("status callback for %s not queued: %s: %s", message.id, type(exc).__name__, exc)
    return message


def retry_all_failed(app: App, session: str | None = None) -> int:
    store = app.store
    ids = store.retry_all_failed(now=app.clock(), session=session)
    for start in range(0, len(ids), 500):
        app.publisher.publish([store.get(i) for i in ids[start:start + 500]], queue_for(None))
    return len(ids)


def delete_failed(app: App, message_id: str) -> None:
    app.store.delete(message_id)


def list_failed(app: App, **query: Any) -> tuple[list[Message], int]:
    """A page of failed messages and their total (MessageStore.list_failed's filters)."""
    return app.store.list_failed(**query)


def list_archived(app: App, **query: Any) -> tuple[list[Message], int]:
    return app.store.list_archived(**query)


def get_archived(app: App, message_id: str) -> Message:
    return app.store.get_archived(message_id)


def ping_store(app: App) -> None:
    """Raises when the store does not answer."""
    app.store.ping()


def count_failed_since(app: App, since: datetime) -> int:
    return app.store.count_failed_since(since)


def oldest_pending(app: App) -> Message | None:
    return app.store.oldest_pending()


def oldest_due(app: App, now: datetime) -> Message | None:
    return app.store.oldest_due(now=now)


def get_session(app: App, name: str) -> SessionRecord:
    return app.store.get_session(name)


def session_qr(app: App, name: str, *, timeout_s: float | None = None) -> bytes | None:
    """The PNG of the QR code a session waits to have scanned, which its worker keeps in the broker; None when it
    is not waiting. `timeout_s` bounds the wait for the broker."""
    client = app.broker if timeout_s is None else app.broker_quick(timeout_s)
    return client.get(session_qr_key(name))


def recover_stuck(app: App) -> int:
    """Beat's recover-stuck job, run now (`waq beat` at start)."""
    from wa_queue import recovery

    return recovery.recover_stuck(app.store, app.settings, app.clock(), publisher=app.publisher)


def restart_session(app: App, name: str) -> dict[str, Any]:
    validate_session(name, app.settings.sessions)
    return _session_view(app, request_restart(app.store, name).name)


WARMUP_ACTIONS = {"reset": warmup.RESET, "skip": warmup.SKIP}


def warmup_action(app: App, name: str, action: str) -> dict[str, Any]:
    """An operator's warm-up action on a session: "reset" starts the ramp again from its next send, "skip" gives it
    the normal cap at once (wa_queue/warmup.py). Returns the session's view, with its new cap for today."""
    validate_session(name, app.settings.sessions)
    if action not in WARMUP_ACTIONS:
        raise ValidationError(f"action must be one of: {', '.join(WARMUP_ACTIONS)}", "action")
    app.store.update_session(name, **WARMUP_ACTIONS[action])
    log.info("warm-up of session %s: %s", name, action)
    return _session_view(app, name)


def sessions_overview(app: App) -> dict[str, dict[str, Any]]:
    """Every configured session as the operator sees it (the REST API, /health, /stats, the dashboard, /metrics,
    `waq sessions list`, `waq doctor`): state, why it is down, today's sends, today's cap and the warm-up ramp."""
    return {name: _session_view(app, name) for name in app.settings.sessions}


def _session_view(app: App, name: str) -> dict[str, Any]:
    settings = app.settings
    store = app.store
    now = app.clock()
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
            info = headroom.read_meminfo()
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


def queue_counts(app: App) -> dict[str, int]:
    return app.store.count_by_status()


def queue_summary(app: App) -> str:
    """One line for the log when a process starts: counts by status, each session's state and today's sends."""
    counts = " ".join(f"{status}={n}" for status, n in queue_counts(app).items())
    sessions = ", ".join(f"{name} {view['status']} sent today {view['sends_today']}/{view['daily_cap']}"
                         for name, view in sessions_overview(app).items())
    return f"queue: {counts}; sessions: {sessions}"


def log_queue_summary(app: App, logger: logging.Logger, who: str) -> None:
    """Log queue_summary() at start-up; a store that fails here is logged, never fatal (the process must start)."""
    try:
        logger.info("%s starting: %s", who, queue_summary(app))
    except Exception as exc:  # noqa: BLE001
        logger.warning("%s starting: queue statistics unavailable: %s: %s", who, type(exc).__name__, exc)


def stats(app: App) -> dict[str, Any]:
    store = app.store
    now = app.clock()
    oldest = store.oldest_pending()
    hours = store.sends_per_hour(since=now - timedelta(hours=24))
    return {
        "counts": store.count_by_status(),
        "sessions": {name: {k: v[k] for k in ("sends_today", "daily_cap", "warmup")}
                     for name, v in sessions_overview(app).items()},
        "sends_per_hour": [{"hour": hour.isoformat(), "sent": count} for hour, count in hours],
        "oldest_pending_age_s": (now - oldest.created_at).total_seconds() if oldest else None,
        "quotas": quota_rows(app),
    }


__all__ = ["enqueue", "enqueue_many", "get_message", "submit"]


def callback_circuits(app: App, *, timeout_s: float = 2.0) -> list[dict[str, Any]]:
    """The callback circuit breaker's hosts (wa_queue/circuit.py) as /health and /metrics show them: host, state
    (closed, open, half_open), consecutive failures, and until when an open circuit holds deliveries."""
    import time

    from wa_queue.circuit import Breaker

    now = time.time()
    return [{"host": c.host, "state": c.state(now), "failures": c.failures,
             "open_until": datetime.fromtimestamp(c.open_until, UTC).isoformat() if c.is_open(now) else None}
            for c in Breaker(app.broker_quick(timeout_s)).all()]


def callback_outcomes(app: App, *, timeout_s: float = 2.0) -> dict[str, int]:
    """How many status callbacks ended each way (delivered, rejected, retried, gave_up, refused, deferred), counted
    by the callbacks workers in the broker's Redis."""
    raw = app.broker_quick(timeout_s).hgetall(names.METRICS_CALLBACKS_KEY)
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

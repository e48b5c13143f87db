"""The public operations behind the Python API, the REST API and the CLI."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from wa_queue import callbacks, runtime
from wa_queue.broker import publisher, relay
from wa_queue.group_commit import GroupCommit
from wa_queue.models import Message, NewMessage, plain, utcnow
from wa_queue.retry import local_midnight_utc
from wa_queue.sessions import is_available, request_restart
from wa_queue.settings import get_settings
from wa_queue.validation import (
    validate_callback_url,
    validate_idempotency_key,
    validate_metadata,
    validate_phone,
    validate_session,
    validate_text,
)

log = logging.getLogger(__name__)


def build_message(
    phone: str, text: str, *, session: str | None = None, idempotency_key: str | None = None,
    callback_url: str | None = None, metadata: dict[str, Any] | None = None,
) -> NewMessage:
    """Validate and normalise one request by validation.py's rules (the same for the Python API, the CLI and the
    REST API); raises ValidationError naming the field."""
    settings = get_settings()
    return NewMessage(
        phone=validate_phone(phone, settings.default_region),
        text=validate_text(text),
        session=validate_session(session, settings.sessions),
        idempotency_key=validate_idempotency_key(idempotency_key),
        callback_url=validate_callback_url(callback_url),
        metadata=validate_metadata(metadata),
    )


def submit(news: list[NewMessage]) -> list[tuple[Message, bool]]:
    """Commit, then publish (invariant 1). Returns (message, created) per item; replays are not republished.

    All of `news` is stored or none is. Concurrent callers in this process share a commit and a publish
    (group_commit.py); each still gets its own result or its own error (an IdempotencyConflict, say)."""
    if not news:
        return []
    return _group.run(news)


_background: list[relay.Relay] = []


def publish_in_background(enabled: bool = True) -> None:
    """Answer producers once their messages are committed and publish them from a background thread (relay.py).
    The API turns it on; the Python API publishes before enqueue() returns unless the embedding process asks."""
    _background[:] = [relay.get()] if enabled else []


def drain_publishes(timeout: float | None = None) -> bool:
    """Wait until the background publisher has handed everything to the broker (or to the sweeper)."""
    return _background[0].drain(timeout) if _background else True


def _commit_groups(groups: list[list[NewMessage]]) -> list[list[tuple[Message, bool]] | Exception]:
    """The group commit's batch: one transaction for every caller's messages. Not yet durable: _finish_groups."""
    return runtime.store().insert_groups(groups, utcnow(), durable=False)


def _finish_groups(results: list[list[tuple[Message, bool]] | Exception]) -> None:
    """While the next batch commits: make this one durable (an fsync shared with other batches), then publish
    what it created, one publish per queue (replays were published before), here or by the background publisher."""
    runtime.store().make_durable()
    now = utcnow()
    by_queue: dict[str, list[Message]] = {}
    available: dict[str, bool] = {}
    for result in results:
        if isinstance(result, Exception):
            continue
        for message, created in result:
            if created:
                by_queue.setdefault(_initial_queue(message, available, now), []).append(message)
    for queue, messages in by_queue.items():
        if _background:
            _background[0].put(queue, messages)
        else:
            publisher.publish(messages, queue, now=now)


_group: GroupCommit[list[NewMessage], list[tuple[Message, bool]]] = GroupCommit(_commit_groups,
                                                                                finish=_finish_groups)


def _initial_queue(message: Message, available: dict[str, bool], now: datetime) -> str:
    """The producer's session when it can send now; otherwise any session. `available` caches it per batch."""
    session = message.session
    if not session:
        return publisher.queue_for(None)
    if session not in available:
        available[session] = is_available(runtime.store().get_session(session), get_settings(), now)
    return publisher.queue_for(session if available[session] else None)


def enqueue(
    phone: str, text: str, *, session: str | None = None, idempotency_key: str | None = None,
    callback_url: str | None = None, metadata: dict[str, Any] | None = None,
) -> str:
    """Queue one message; returns its id once it is committed to the store."""
    new = build_message(phone, text, session=session, idempotency_key=idempotency_key, callback_url=callback_url,
                        metadata=metadata)
    return submit([new])[0][0].id


def enqueue_many(items: list[dict[str, Any]]) -> list[str]:
    """Queue many messages in one transaction: all are validated first, nothing is stored if one is bad."""
    news = [build_message(**item) for item in items]
    return [message.id for message, _ in submit(news)]


def get_message(message_id: str) -> Message:
    return runtime.store().get(message_id)


def retry_failed(message_id: str) -> Message:
    message = runtime.store().retry_failed(message_id, now=utcnow())
    publisher.publish([message], publisher.queue_for(None))
    return message


def mark_sent(message_id: str, *, actor: str, note: str | None = None) -> Message:
    """An operator saw a failed message in the phone's chat: it becomes sent, never sent again (invariant 5), and the
    producer's callback_url hears 'sent' as it would from a worker."""
    message = runtime.store().mark_sent_by_operator(message_id, now=utcnow(), actor=actor, note=note)
    log.info("message %s marked as sent by operator %s (sent_by %s)", message.id, actor, message.sent_by)
    try:
        callbacks.on_status_change(message)
    except Exception as exc:  # noqa: BLE001 - the store has recorded it; a callback is a notification, not the record
        log.warning("status callback for %s not queued: %s: %s", message.id, type(exc).__name__, exc)
    return message


def retry_all_failed(session: str | None = None) -> int:
    store = runtime.store()
    ids = store.retry_all_failed(now=utcnow(), session=session)
    for start in range(0, len(ids), 500):
        publisher.publish([store.get(i) for i in ids[start:start + 500]], publisher.queue_for(None))
    return len(ids)


def delete_failed(message_id: str) -> None:
    runtime.store().delete(message_id)


def restart_session(name: str) -> dict[str, Any]:
    validate_session(name, get_settings().sessions)
    return _session_view(request_restart(runtime.store(), name).name)


def sessions_overview() -> dict[str, dict[str, Any]]:
    return {name: _session_view(name) for name in get_settings().sessions}


def _session_view(name: str) -> dict[str, Any]:
    settings = get_settings()
    store = runtime.store()
    now = utcnow()
    record = store.get_session(name)
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
        "daily_cap": settings.max_daily_per_session,
    }


def queue_counts() -> dict[str, int]:
    return runtime.store().count_by_status()


def queue_summary() -> str:
    """One line for the log when a process starts: counts by status, each session's state and today's sends."""
    counts = " ".join(f"{status}={n}" for status, n in queue_counts().items())
    sessions = ", ".join(f"{name} {view['status']} sent today {view['sends_today']}/{view['daily_cap']}"
                         for name, view in sessions_overview().items())
    return f"queue: {counts}; sessions: {sessions}"


def log_queue_summary(logger: logging.Logger, who: str) -> None:
    """Log queue_summary() at start-up; a store that fails here is logged, never fatal (the process must start)."""
    try:
        logger.info("%s starting: %s", who, queue_summary())
    except Exception as exc:  # noqa: BLE001
        logger.warning("%s starting: queue statistics unavailable: %s: %s", who, type(exc).__name__, exc)


def stats() -> dict[str, Any]:
    store = runtime.store()
    now = utcnow()
    oldest = store.oldest_pending()
    hours = store.sends_per_hour(since=now - timedelta(hours=24))
    return {
        "counts": store.count_by_status(),
        "sessions": {name: {k: v[k] for k in ("sends_today", "daily_cap")} for name, v in sessions_overview().items()},
        "sends_per_hour": [{"hour": hour.isoformat(), "sent": count} for hour, count in hours],
        "oldest_pending_age_s": (now - oldest.created_at).total_seconds() if oldest else None,
    }


__all__ = ["enqueue", "enqueue_many", "get_message", "submit"]

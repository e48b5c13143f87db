"""Process-wide handles (store, broker Redis, Celery app), built lazily from the current settings."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from wa_queue.settings import Settings, get_settings
from wa_queue.store import MessageStore, open_store

if TYPE_CHECKING:
    import redis
    from celery import Celery

_lock = threading.Lock()
_handles: dict[str, object] = {}
_for_settings: list[Settings | None] = [None]


def _get(name: str, build):  # noqa: ANN001, ANN202 - tiny internal cache
    settings = get_settings()
    with _lock:
        if _for_settings[0] is not settings:
            _close_all()
            _for_settings[0] = settings
        if name not in _handles:
            _handles[name] = build(settings)
        return _handles[name]


def store() -> MessageStore:
    return _get("store", lambda s: open_store(s.store_url))  # type: ignore[return-value]


def broker_redis() -> redis.Redis:
    def build(settings: Settings) -> redis.Redis:
        import redis as redis_lib

        return redis_lib.Redis.from_url(settings.broker_url, socket_timeout=10, socket_connect_timeout=5)

    return _get("redis", build)  # type: ignore[return-value]


def broker_redis_quick(timeout_s: float) -> redis.Redis:
    """A broker client that gives up after timeout_s: for probes and scrapes, which must answer while the broker
    hangs (broker_redis() waits up to 10 s). One per timeout, cached like every other handle."""

    def build(settings: Settings) -> redis.Redis:
        import redis as redis_lib

        return redis_lib.Redis.from_url(settings.broker_url, socket_timeout=timeout_s,
                                        socket_connect_timeout=timeout_s)

    return _get(f"redis-quick-{timeout_s:g}", build)  # type: ignore[return-value]


def celery() -> Celery:
    def build(settings: Settings) -> Celery:
        from wa_queue import celery_app

        if celery_app.app.conf.broker_url == settings.broker_url:
            return celery_app.app
        return celery_app.make_celery(settings)

    return _get("celery", build)  # type: ignore[return-value]


def _close_all() -> None:
    for handle in _handles.values():
        close = getattr(handle, "close", None)
        if close:
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - closing stale handles must not fail the caller
                logging.getLogger(__name__).debug("closing a stale handle failed: %s", exc)
    _handles.clear()


def reset() -> None:
    """Drop every handle (tests, and a worker process after fork)."""
    with _lock:
        _close_all()
        _for_settings[0] = None

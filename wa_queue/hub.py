"""The Hub: everything a process shares, built once by its entry point and passed in.

A hub, not an app: a process may also have a Flask app (the API, which keeps its Hub in app.extensions) and a Celery
app (Hub.celery, made by the Hub); what the process shares is reached through this one object.

Each entry point builds one: api.create_app() (kept on the Flask app as app.extensions["waq"]), a worker process
(workers/runtime.py, at worker_process_init; tasks reach it through the Celery app), beat's start, the CLI (the
click context's object, built on first use) and the Python API (wa_queue.enqueue and friends, over the default Hub
of default_hub(), the one process-wide Hub). Tests build their own.

The store, the broker client, the Celery app and the publisher are made on first use: `waq --help` and an API whose
store is down still start, and a process pays only for what it uses. close() releases them.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from wa_queue.broker.relay import Relay
from wa_queue.group_commit import message_commit
from wa_queue.models import utcnow
from wa_queue.notify import Notifier
from wa_queue.settings import Settings, read_settings
from wa_queue.store import MessageStore, open_store

if TYPE_CHECKING:
    import redis

    from wa_queue.broker.publisher import Publisher
    from wa_queue.celery_app import WaqCelery
    from wa_queue.media.files import MediaFiles
    from wa_queue.rate_limit import RateLimiter

log = logging.getLogger(__name__)

T = TypeVar("T")

BROKER_TIMEOUT_S = 10.0
BROKER_CONNECT_TIMEOUT_S = 5.0
# A rate-limit check is on every enqueue's path: a broker that hangs costs this much once, then the limiter uses its
# own buckets for a while (rate_limit.FALLBACK_S).
RATE_LIMIT_TIMEOUT_S = 0.5


class Hub:
    """Settings, store, publisher, broker client, Celery app, clock, notifier, and the per-process machinery of
    publishing (the group commit of operations.submit and, in the API, the background relay)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow,
                 store: MessageStore | None = None, publisher: Publisher | None = None,
                 celery: WaqCelery | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.notifier = Notifier(settings.notify_webhook_url, settings.outbound_allow, log_phones=settings.log_phones)
        self._lock = threading.RLock()
        self._store = store
        self._publisher = publisher
        self._media: MediaFiles | None = None
        self._celery = celery
        self._broker: redis.Redis | None = None
        self._quick: dict[float, redis.Redis] = {}
        self.relay: Relay | None = None
        self._rate_limiter: RateLimiter | None = None
        self.group = message_commit(self)
        self.closed = False

    @classmethod
    def build(cls, settings: Settings | None = None, **parts: Any) -> Hub:
        """A Hub over `settings` (default: read now from the WAQ_* variables, settings.read_settings). `parts` (clock,
        store, publisher, celery) replace what would be built."""
        return cls(settings or read_settings(), **parts)

    # ---- parts, made on first use -------------------------------------------------------------------------------
    def _part(self, attribute: str, build: Callable[[], T]) -> T:
        """The part kept in `attribute`, built under the lock by the first caller that finds it missing."""
        with self._lock:
            value = getattr(self, attribute)
            if value is None:
                value = build()
                setattr(self, attribute, value)
            return value

    @property
    def store(self) -> MessageStore:
        store = self._store  # the common case first: no lock once built (every request reads it)
        return store if store is not None else self._part("_store", lambda: open_store(self.settings.store_url))

    @property
    def media_files(self) -> MediaFiles:
        """The bytes of media messages beside the store (wa_queue/media/files.py): GridFS with MongoDB, the data
        folder's media/ with SQLite."""
        files = self._media
        return files if files is not None else self._part("_media", self._build_media_files)

    def _build_media_files(self) -> MediaFiles:
        from wa_queue.media.files import open_media_files

        return open_media_files(self.settings.store_url, self.settings.data_dir, self.store)

    @property
    def broker(self) -> redis.Redis:
        """The broker's Redis (tasks, the epoch, the QR codes, the metrics)."""
        client = self._broker
        if client is not None:
            return client
        return self._part("_broker", lambda: self._redis(BROKER_TIMEOUT_S, BROKER_CONNECT_TIMEOUT_S))

    def broker_quick(self, timeout_s: float) -> redis.Redis:
        """A broker client that gives up after timeout_s: for probes and scrapes, which must answer while the broker
        hangs (`broker` waits up to BROKER_TIMEOUT_S). One per timeout."""
        with self._lock:
            if timeout_s not in self._quick:
                self._quick[timeout_s] = self._redis(timeout_s, timeout_s)
            return self._quick[timeout_s]

    def _redis(self, timeout_s: float, connect_timeout_s: float) -> redis.Redis:
        import redis as redis_lib

        return redis_lib.Redis.from_url(self.settings.broker_url, socket_timeout=timeout_s,
                                        socket_connect_timeout=connect_timeout_s)

    @property
    def rate_limiter(self) -> RateLimiter:
        """Enqueue rate limits per API key, shared through the broker's Redis (a memory:// broker: this process's)."""
        limiter = self._rate_limiter
        return limiter if limiter is not None else self._part("_rate_limiter", self._build_rate_limiter)

    def _build_rate_limiter(self) -> RateLimiter:
        from wa_queue.rate_limit import RateLimiter

        shared = self.settings.broker_url.startswith(("redis://", "rediss://"))
        return RateLimiter((lambda: self.broker_quick(RATE_LIMIT_TIMEOUT_S)) if shared else None)

    @property
    def celery(self) -> WaqCelery:
        app = self._celery
        return app if app is not None else self._part("_celery", self._build_celery)

    def _build_celery(self) -> WaqCelery:
        from wa_queue.celery_app import make_celery

        return make_celery(self.settings)  # the shared tasks join it when it is finalized (wa_queue/celery_app.py)

    @property
    def publisher(self) -> Publisher:
        publisher = self._publisher
        return publisher if publisher is not None else self._part("_publisher", self._build_publisher)

    def _build_publisher(self) -> Publisher:
        from wa_queue.broker.publisher import CeleryPublisher

        return CeleryPublisher(self.store, self.celery, self.broker, clock=self.clock)

    # ---- publishing in the background (the API) -----------------------------------------------------------------
    def publish_in_background(self, enabled: bool = True) -> None:
        """Answer producers once their messages are committed and publish them from a background thread
        (broker/relay.py). The API turns it on; elsewhere enqueue() publishes before it returns."""
        with self._lock:
            if enabled and self.relay is None:
                self.relay = Relay(lambda messages, queue, **kw: self.publisher.publish(messages, queue, **kw))
                atexit.register(self.relay.stop)
                return
        if not enabled:
            self._stop_relay()

    def drain_publishes(self, timeout: float | None = None) -> bool:
        """Wait until the background publisher has handed everything to the broker (or to the sweeper)."""
        relay = self.relay
        return relay.drain(timeout) if relay is not None else True

    def _stop_relay(self) -> None:
        """Drain and stop the relay without holding the Hub's lock: its thread takes that lock to build the publisher
        on first use, and a drain under it would wait its whole time-out for nothing."""
        with self._lock:
            relay, self.relay = self.relay, None
        if relay is not None:
            atexit.unregister(relay.stop)
            relay.drain(10)
            relay.stop()

    # ---- the end ------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Publish what the relay holds and close the store and the broker clients. The Hub is not used
        afterwards. Admin webhooks in flight are not waited for (a slow receiver would hold the close up):
        notifier.flush() does that."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._stop_relay()
        with self._lock:
            handles = [self._media, self._store, self._broker, *self._quick.values()]
            self._media, self._store, self._broker, self._quick = None, None, None, {}
        for handle in handles:
            close = getattr(handle, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:  # noqa: BLE001 - closing must not fail the caller
                    log.debug("closing %s failed: %s", type(handle).__name__, exc)


_default: list[Hub] = []  # the default Hub of the Python API: the one process-wide Hub (see default_hub)
_default_lock = threading.Lock()


def default_hub() -> Hub:
    """The Hub behind wa_queue.enqueue, enqueue_many and get_message, built from the WAQ_* settings on first use.
    Entry points build their own; this one serves code that imports wa_queue and calls it."""
    hub = _default[0] if _default else None
    if hub is None or hub.closed:
        with _default_lock:
            if not _default or _default[0].closed:
                _default[:] = [Hub.build()]
            hub = _default[0]
    return hub


def close_default_hub(settings: Settings | None = None) -> None:
    """Close the default Hub; the next default_hub() builds a new one, over `settings` when given, else from the
    WAQ_* variables as they are then (a process whose settings changed, tests)."""
    with _default_lock:
        hub = _default.pop() if _default else None
        if settings is not None:
            _default.append(Hub(settings))
    if hub is not None:
        hub.close()

"""The per-session state of one worker process: its sender (one Chrome) and its Delivery; and the start-up check
that the store answers before the worker consumes anything (wait_for_store)."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable

from wa_queue import metrics_sink, names, runtime
from wa_queue.delivery import Delivery
from wa_queue.errors import StoreError
from wa_queue.models import Message, plain, utcnow
from wa_queue.settings import Settings, get_settings
from wa_queue.store import open_store
from wa_queue.transport import MessageSender, SessionState, make_sender

log = logging.getLogger(__name__)

_QR_TTL_S = 60
_PROBE_MAX_S = 2.0  # one attempt's longest wait for a server, so a slow refusal still leaves room for retries
_RETRY_PAUSE_S = 1.0


def wait_for_store(settings: Settings, *, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep,
                   on_retry: Callable[[int, Exception], None] | None = None) -> int:
    """Open and ping the store of WAQ_STORE_URL until it answers, for at most WAQ_STORE_START_TIMEOUT_S; returns the
    number of attempts. Raises StoreError naming WAQ_STORE_URL when the time is up.

    A worker must not start consuming without its store: Celery's worker_process_init hook only logs errors, and a
    session worker without its session forwards every task to a queue it consumes itself."""
    deadline = clock() + settings.store_start_timeout_s
    attempts = 0
    while True:
        attempts += 1
        try:
            _probe_store(settings.store_url, max(0.1, min(_PROBE_MAX_S, deadline - clock())))
            return attempts
        except Exception as exc:  # noqa: BLE001 - every failure is retried until the deadline, then reported
            last = exc
        left = deadline - clock()
        if left <= 0:
            break
        if on_retry is not None:
            on_retry(attempts, last)
        sleep(min(_RETRY_PAUSE_S, left))
    raise StoreError(f"the store of WAQ_STORE_URL did not answer within {settings.store_start_timeout_s:g} s "
                     f"({attempts} attempt(s)): {type(last).__name__}: {last}")


def _probe_store(url: str, timeout_s: float) -> None:
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from wa_queue.store.mongo import MongoStore

        MongoStore.probe(url, timeout_s)  # bounded: opening the store would wait the client's full server timeout
    store = open_store(url)  # the adapter's own checks (SQLite: the file and its schema; MongoDB: its indexes)
    try:
        store.ping()
    finally:
        store.close()


class SessionWorker:
    """Everything a session worker owns. Celery runs tasks one at a time here (concurrency 1), but the lock
    keeps a health check and a send from ever driving the browser together."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.settings = get_settings()
        self.owner = names.worker_owner(session, socket.gethostname(), os.getpid())
        self.lock = threading.RLock()
        self.ready = threading.Event()  # set once the first connect was tried
        self.sender: MessageSender = make_sender(session, self.settings)
        self.metrics = metrics_sink.SendBuffer()
        self.delivery = Delivery(
            store=runtime.store(), settings=self.settings, session=session, owner=self.owner, sender=self.sender,
            rng=random.Random(), on_change=_on_change, on_send=self.metrics.record,
        )

    def start(self) -> None:
        from wa_queue import recovery

        with self.lock:
            try:
                self._start(recovery)
            finally:
                self.ready.set()

    def _start(self, recovery) -> None:  # noqa: ANN001 - the module, imported late to keep imports light
        store = runtime.store()
        now = utcnow()
        freed = recovery.free_own_leases(store, self.settings, self.session, socket.gethostname(), now)
        again = recovery.republish_queue(store, self.settings, names.session_queue(self.session), now)
        log.info("session %s: freed %d lease(s), republished %d message(s) of its queue", self.session, freed, again)
        from wa_queue import service

        service.log_queue_summary(log, f"worker {self.session}")
        raised: Exception | None = None
        try:
            state = self.sender.connect()
        except Exception as exc:  # noqa: BLE001 - the health check reconnects with back-off
            log.error("session %s: first connect failed: %s", self.session, exc)
            state, raised = SessionState.CLOSED, exc
        from wa_queue.sessions import account_fields, error_fields

        now = utcnow()
        extra = account_fields(self.sender) if state is SessionState.CONNECTED else {}
        why = error_fields(self.sender, self.settings, now, state, raised)
        if why.get("last_error"):
            log.warning("session %s: %s (%s)", self.session, why["last_error"], why["last_error_hint"])
        store.update_session(self.session, status=state.value, heartbeat_at=now, **extra, **why)
        self.publish_qr()

    def health(self) -> str:
        from wa_queue.sessions import check_health

        with self.lock:
            record = check_health(runtime.store(), self.sender, self.settings, utcnow())
            self.publish_qr()
        return plain(record.status)

    def publish_qr(self) -> None:
        """The API process serves the QR; only this process can read it from the browser."""
        try:
            png = self.sender.qr_png()
            key = names.session_qr_key(self.session)
            if png:
                runtime.broker_redis().set(key, png, ex=_QR_TTL_S)
            else:
                runtime.broker_redis().delete(key)
        except Exception as exc:  # noqa: BLE001 - the QR is a convenience for operators, never fatal
            log.debug("session %s: QR not published: %s", self.session, exc)

    def stop(self) -> None:
        with self.lock:
            self.sender.close()
        self.metrics.flush()


def _on_change(message: Message) -> None:
    from wa_queue import callbacks

    callbacks.on_status_change(message)


_current: list[SessionWorker] = []


def current() -> SessionWorker | None:
    return _current[0] if _current else None


def install(session: str) -> SessionWorker:
    worker = SessionWorker(session)
    _current[:] = [worker]
    return worker

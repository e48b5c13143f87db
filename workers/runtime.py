"""The state of one worker process: its Hub and, in a session worker, the SessionWorker (its sender, one Chrome, and
its Delivery), both kept in the typed slots of the Celery app the tasks run under (celery_app.WaqCelery: attach,
hub_of, session_worker_of); and the
start-up check that the store answers before the worker consumes anything (wait_for_store)."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from wa_queue import callbacks, inbound, metrics_sink, names
from wa_queue.delivery import Delivery
from wa_queue.errors import StoreError
from wa_queue.hub import Hub
from wa_queue.models import plain
from wa_queue.settings import Settings
from wa_queue.store import open_store
from wa_queue.transport import MessageSender, SessionState, make_sender
from wa_queue.transport.base import Reply

if TYPE_CHECKING:
    from celery import Celery

    from wa_queue.celery_app import WaqCelery

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
        from wa_queue.store import mongo_client

        mongo_client.probe(url, timeout_s)  # bounded: opening the store would wait the client's full server timeout
    store = open_store(url)  # the adapter's own checks (SQLite: the file and its schema; MongoDB: its indexes)
    try:
        store.ping()
    finally:
        store.close()


class SessionWorker:
    """Everything a session worker owns. Celery runs tasks one at a time here (concurrency 1), but the lock
    keeps a health check and a send from ever driving the browser together."""

    def __init__(self, hub: Hub, session: str) -> None:
        self.hub = hub
        self.session = session
        self.settings = hub.settings
        self.owner = names.worker_owner(session, socket.gethostname(), os.getpid())
        self.lock = threading.RLock()
        self.ready = threading.Event()  # set once the first connect was tried
        self.sender: MessageSender = make_sender(session, self.settings)
        self.metrics = metrics_sink.SendBuffer(client=lambda: hub.broker)
        self.delivery = Delivery(
            store=hub.store, settings=self.settings, session=session, owner=self.owner, sender=self.sender,
            publisher=hub.publisher, rng=random.Random(), clock=hub.clock, notifier=hub.notifier,
            on_change=lambda message: callbacks.on_status_change(message, hub.celery), on_send=self.metrics.record,
            media_files=hub.media_files, on_reply=self.record_reply,
        )
        self.sender.chat_notes = inbound.StoreChatNotes(hub.store, session, hub.clock)  # replies survive a kill

    def start(self) -> None:
        from wa_queue import recovery

        with self.lock:
            try:
                self._start(recovery)
            finally:
                self.ready.set()

    def _start(self, recovery) -> None:  # noqa: ANN001 - the module, imported late to keep imports light
        store, publisher = self.hub.store, self.hub.publisher
        now = self.hub.clock()
        freed = recovery.free_own_leases(store, self.settings, self.session, socket.gethostname(), now,
                                         publisher=publisher)
        again = recovery.republish_queue(store, self.settings, names.session_queue(self.session), now,
                                         publisher=publisher)
        log.info("session %s: freed %d lease(s), republished %d message(s) of its queue", self.session, freed, again)
        from wa_queue import operations

        operations.log_queue_summary(self.hub, log, f"worker {self.session}")
        raised: Exception | None = None
        try:
            state = self.sender.connect()
        except Exception as exc:  # noqa: BLE001 - the health check reconnects with back-off
            log.error("session %s: first connect failed: %s", self.session, exc)
            state, raised = SessionState.CLOSED, exc
        from wa_queue.sessions import record_started

        record_started(store, self.sender, self.settings, self.hub.clock(), state, raised, notifier=self.hub.notifier)
        self.publish_qr()

    def health(self) -> str:
        """The session's health check (beat's every WAQ_HEALTH_INTERVAL_S), and an idle worker's turn to read
        replies: a busy one reads them in its pacing pauses."""
        from wa_queue.sessions import check_health

        with self.lock:
            record = check_health(self.hub.store, self.sender, self.settings, self.hub.clock(),
                                  notifier=self.hub.notifier)
            self.publish_qr()
            if plain(record.status) == SessionState.CONNECTED.value:
                self.delivery.read_replies(self.delivery.reply_read_s)  # one read: the next send waits no more
        return plain(record.status)

    def record_reply(self, reply: Reply) -> bool:
        return inbound.receive(self.hub, session=self.session, chat=reply.chat, wa_id=reply.wa_id, text=reply.text,
                               phone=reply.phone, shown_at=reply.shown_at) is not None

    def publish_qr(self) -> None:
        """The API process serves the QR; only this process can read it from the browser."""
        try:
            png = self.sender.qr_png()
            key = names.session_qr_key(self.session)
            if png:
                self.hub.broker.set(key, png, ex=_QR_TTL_S)
            else:
                self.hub.broker.delete(key)
        except Exception as exc:  # noqa: BLE001 - the QR is a convenience for operators, never fatal
            log.debug("session %s: QR not published: %s", self.session, exc)

    def stop(self) -> None:
        with self.lock:
            self.sender.close()
        self.metrics.flush()


def forks(pool_cls: object) -> bool:
    """Whether Celery's pool pool_cls (an alias such as "threads", or the class the CLI hands over) runs tasks in
    child processes: only then is the Hub built there and not in the worker itself."""
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool as Prefork

    if pool_cls is None:
        return True  # no worker (a test calling the hook): leave it to worker_process_init
    cls = get_implementation(pool_cls) if isinstance(pool_cls, str) else pool_cls
    return isinstance(cls, type) and issubclass(cls, Prefork)


def attach(celery: WaqCelery, hub: Hub, worker: SessionWorker | None = None) -> None:
    """Keep this process's Hub (and SessionWorker) on the Celery app its tasks run under, where they find them."""
    celery.hub = hub
    celery.session_worker = worker


def detach(celery: Celery) -> tuple[Hub | None, SessionWorker | None]:
    hub, worker = hub_of(celery), session_worker_of(celery)
    if _is_ours(celery):
        celery.hub = celery.session_worker = None
    return hub, worker


def hub_of(celery: Celery) -> Hub | None:
    """The Hub attached to `celery`; None before a worker's start hook ran, or for a Celery app not built by a Hub
    (Celery's own default app, which a task called outside any worker may run under)."""
    return celery.hub if _is_ours(celery) else None


def session_worker_of(celery: Celery) -> SessionWorker | None:
    return celery.session_worker if _is_ours(celery) else None


def _is_ours(celery: Celery) -> bool:
    from wa_queue.celery_app import WaqCelery

    return isinstance(celery, WaqCelery)

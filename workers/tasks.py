"""Celery tasks: each takes ids and calls into wa_queue. Nothing here decides anything."""

from __future__ import annotations

import logging
import os
import threading

from celery import signals

from wa_queue import names, recovery, runtime
from wa_queue.broker.publisher import publish
from wa_queue.celery_app import app
from wa_queue.errors import StoreError
from wa_queue.models import utcnow
from wa_queue.settings import get_settings
from workers import runtime as worker_runtime

log = logging.getLogger(__name__)

_START_WAIT_S = 120.0
SESSION_ENV = "WAQ_WORKER_SESSION"  # set by `waq worker --session NAME`; absent in the beat process


@signals.worker_process_init.connect
def _start_session(**_: object) -> None:
    """Runs in the pool's child process, where tasks (and so Chrome) live. Celery gives this hook only a few
    seconds, so the browser starts in a thread; tasks wait for it on the worker's lock."""
    session = os.environ.get(SESSION_ENV)
    if session and worker_runtime.current() is None:
        runtime.reset()  # handles inherited through fork must not be shared with the parent
        try:
            worker = worker_runtime.install(session)
        except Exception:
            # `waq worker` checked the store before Celery started, so it went away since. Celery only logs this
            # hook's errors; send_message refuses work here rather than forward it to a queue this worker consumes.
            log.critical("session %s: the worker could not open its store (WAQ_STORE_URL); it takes no messages",
                         session, exc_info=True)
            raise
        threading.Thread(target=worker.start, name="waq-session-start", daemon=True).start()


@signals.beat_init.connect
def _beat_started(**_: object) -> None:
    """Beat's start: one line of queue statistics in its log (beat runs embedded, `waq beat` = worker -B)."""
    from wa_queue import service

    service.log_queue_summary(log, "beat")


@signals.worker_process_shutdown.connect
def _stop_session(**_: object) -> None:
    worker = worker_runtime.current()
    if worker is not None:
        worker.stop()


@app.task(name=names.TASK_SEND, acks_late=True, ignore_result=True)
def send_message(message_id: str, attempts: int | None = None) -> str:
    worker = worker_runtime.current()
    if worker is None:
        if os.environ.get(SESSION_ENV):
            # This session's worker never started (see _start_session): forwarding would loop through wa.default,
            # which this process consumes too. The message stays pending in the store; the sweepers republish it.
            raise StoreError(f"session {os.environ[SESSION_ENV]}: its worker did not start (WAQ_STORE_URL?)")
        # A message published to a queue a non-session worker consumes: hand it to any session.
        message = runtime.store().get(message_id)
        publish([message], names.DEFAULT_QUEUE)
        return "forwarded"
    worker.ready.wait(_START_WAIT_S)
    with worker.lock:
        outcome = worker.delivery.process(message_id, attempts)
    log.info("message %s: %s %s", message_id, outcome.kind, outcome.detail)
    return outcome.kind


@app.task(name=names.TASK_SESSION_HEALTH, ignore_result=True)
def session_health() -> str:
    worker = worker_runtime.current()
    return worker.health() if worker else "no session here"


@app.task(name=names.TASK_HEALTH_SWEEP, ignore_result=True)
def health_sweep() -> None:
    """Ask every session worker to check itself (the browser lives there, not here)."""
    interval = get_settings().health_interval_s
    for session in get_settings().sessions:
        queue = names.session_queue(session)
        session_health.apply_async(queue=queue, exchange="", routing_key=queue, expires=interval)


@app.task(name=names.TASK_DISPATCH_DUE, ignore_result=True)
def dispatch_due() -> int:
    return recovery.dispatch_due(runtime.store(), get_settings(), utcnow()).republished


@app.task(name=names.TASK_RECOVER_STUCK, ignore_result=True)
def recover_stuck() -> int:
    return recovery.recover_stuck(runtime.store(), get_settings(), utcnow())


@app.task(name=names.TASK_ARCHIVE, ignore_result=True)
def archive_failed() -> int:
    return recovery.archive_failed(runtime.store(), get_settings(), utcnow())

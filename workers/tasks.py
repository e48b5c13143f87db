"""Celery tasks: each takes ids and calls into wa_queue. Nothing here decides anything.

The tasks are shared tasks: no Celery app exists at import; each Celery app a Hub builds (wa_queue/celery_app.py)
takes them when it is finalized. The process that runs the tasks builds its Hub when it starts and keeps it on the
Celery app, with the SessionWorker in a session worker (workers/runtime.py); the tasks find both there, through their
own `self.app`. That process is
the prefork pool's child (worker_process_init), or with the threads and solo pools the worker itself (worker_init;
solo also sends worker_process_init, which then finds the Hub built)."""

from __future__ import annotations

import logging
import os
import threading

from celery import Celery, Task, current_app, shared_task, signals

from wa_queue import callbacks, names, recovery, redact
from wa_queue.celery_app import WaqCelery
from wa_queue.errors import StoreError
from wa_queue.hub import Hub, default_hub
from workers import runtime as worker_runtime

log = logging.getLogger(__name__)

_START_WAIT_S = 120.0
SESSION_ENV = "WAQ_WORKER_SESSION"  # set by `waq worker --session NAME`; absent in the beat process


@signals.worker_process_init.connect
def _start_process(**_: object) -> None:
    """Runs in the process where tasks (and so Chrome) live: a prefork pool's child, or the worker itself (see
    _start_worker). A prefork child has made its worker's Celery app the current one before this hook runs."""
    _start_in(current_app._get_current_object())


def _start_in(app: Celery) -> None:
    """Builds the process's Hub over the settings of its Celery app (in a prefork child, handles inherited through
    fork are never shared with the parent) and, in a session worker, its SessionWorker. Celery gives a child's hook
    only a few seconds, so the browser starts in a thread; tasks wait for it on the worker's lock."""
    if not isinstance(app, WaqCelery):
        raise TypeError(f"the worker's Celery app {app!r} was not built by a Hub (celery -A wa_queue.celery_app:app)")
    if worker_runtime.hub_of(app) is not None:
        return
    hub = Hub.build(app.settings, celery=app)
    session = os.environ.get(SESSION_ENV)
    if not session:
        worker_runtime.attach(app, hub)
        return
    try:
        worker = worker_runtime.SessionWorker(hub, session)
    except Exception:
        # `waq worker` checked the store before Celery started, so it went away since. Celery only logs this
        # hook's errors; send_message refuses work here rather than forward it to a queue this worker consumes.
        log.critical("session %s: the worker could not open its store (WAQ_STORE_URL); it takes no messages",
                     session, exc_info=True)
        worker_runtime.attach(app, hub)
        raise
    worker_runtime.attach(app, hub, worker)
    threading.Thread(target=worker.start, name="waq-session-start", daemon=True).start()


@signals.worker_init.connect
def _start_worker(sender: object = None, **_: object) -> None:
    """Without a prefork pool the tasks run in this process: build here what a prefork child builds for itself. The
    Hub must not be built in a prefork parent: its child would inherit the parent's store and broker handles."""
    if not worker_runtime.forks(getattr(sender, "pool_cls", None)):
        _start_in(sender.app if sender is not None else current_app._get_current_object())


@signals.beat_init.connect
def _beat_started(sender: object = None, **_: object) -> None:
    """Beat's start: one line of queue statistics in its log (beat runs embedded, `waq beat` = worker -B)."""
    from wa_queue import operations

    celery = getattr(sender, "app", None)
    hub = Hub.build(celery.settings, celery=celery) if isinstance(celery, WaqCelery) else Hub.build()
    try:
        operations.log_queue_summary(hub, log, "beat")
    finally:
        hub.close()


@signals.worker_process_shutdown.connect  # a prefork child
@signals.worker_shutdown.connect  # the worker itself: with threads or solo the tasks ran here (a no-op otherwise)
def _stop_process(sender: object = None, **_: object) -> None:
    celery = getattr(sender, "app", None) or current_app._get_current_object()
    hub, worker = worker_runtime.detach(celery)
    if worker is not None:
        worker.stop()
    if hub is not None:
        hub.close()


def _hub(task: Task) -> Hub:
    """The Hub of the process running `task` (a process whose init hook did not run builds one on first use; a task
    run under a Celery app no Hub built, outside any worker, uses the default Hub)."""
    celery = task.app
    if not isinstance(celery, WaqCelery):
        return default_hub()
    hub = worker_runtime.hub_of(celery)
    if hub is None:
        hub = Hub.build(celery.settings, celery=celery)
        worker_runtime.attach(celery, hub)
    return hub


@shared_task(name=names.TASK_SEND, bind=True, acks_late=True, ignore_result=True)
def send_message(self: Task, message_id: str, attempts: int | None = None) -> str:
    worker = worker_runtime.session_worker_of(self.app)
    if worker is None:
        if os.environ.get(SESSION_ENV):
            # This session's worker never started (see _start_process): forwarding would loop through wa.default,
            # which this process consumes too. The message stays pending in the store; the sweepers republish it.
            raise StoreError(f"session {os.environ[SESSION_ENV]}: its worker did not start (WAQ_STORE_URL?)")
        # A message published to a queue a non-session worker consumes: hand it to any session.
        hub = _hub(self)
        hub.publisher.publish([hub.store.get(message_id)], names.DEFAULT_QUEUE)
        return "forwarded"
    worker.ready.wait(_START_WAIT_S)
    with worker.lock:
        outcome = worker.delivery.process(message_id, attempts)
    log.info("message %s: %s %s", message_id, outcome.kind,
             redact.phones_in(outcome.detail, worker.delivery.settings.log_phones))
    return outcome.kind


@shared_task(name=names.TASK_SESSION_HEALTH, bind=True, ignore_result=True)
def session_health(self: Task) -> str:
    worker = worker_runtime.session_worker_of(self.app)
    return worker.health() if worker else "no session here"


@shared_task(name=names.TASK_HEALTH_SWEEP, bind=True, ignore_result=True)
def health_sweep(self: Task) -> None:
    """Ask every session worker to check itself (the browser lives there, not here)."""
    settings = _hub(self).settings
    for session in settings.sessions:
        queue = names.session_queue(session)
        self.app.tasks[names.TASK_SESSION_HEALTH].apply_async(queue=queue, exchange="", routing_key=queue,
                                                              expires=settings.health_interval_s)


@shared_task(name=names.TASK_DISPATCH_DUE, bind=True, ignore_result=True)
def dispatch_due(self: Task) -> int:
    hub = _hub(self)
    # Expired messages first, so that none of them is published.
    recovery.expire_due(hub.store, hub.clock(),
                        on_change=lambda message: callbacks.on_status_change(message, hub.celery))
    return recovery.dispatch_due(hub.store, hub.settings, hub.clock(), publisher=hub.publisher).republished


@shared_task(name=names.TASK_RECOVER_STUCK, bind=True, ignore_result=True)
def recover_stuck(self: Task) -> int:
    hub = _hub(self)
    return recovery.recover_stuck(hub.store, hub.settings, hub.clock(), publisher=hub.publisher)


@shared_task(name=names.TASK_ARCHIVE, bind=True, ignore_result=True)
def archive_failed(self: Task) -> int:
    hub = _hub(self)
    return recovery.archive_failed(hub.store, hub.settings, hub.clock())


@shared_task(name=names.TASK_COLLECT_MEDIA, bind=True, ignore_result=True)
def collect_media(self: Task) -> int:
    """Media files no message needs any more, and what interrupted puts left (wa_queue/media/collect.py)."""
    from wa_queue import operations

    return operations.collect_media(_hub(self))["files"]

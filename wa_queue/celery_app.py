"""The Celery app: queues, routing and the reliability settings, each chosen on purpose.

Each Hub builds its own (Hub.celery, over its settings); nothing is built at import. The tasks are shared tasks
(workers/tasks.py, workers/callback_tasks.py): every Celery app takes them when it is finalized, and a worker imports
them through `include`. `celery -A wa_queue.celery_app:app` (waq worker, beat and callbacks, Flower, the compose health
checks) reaches the Celery app of the process's default Hub through this module's __getattr__.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celery import Celery
from kombu import Exchange, Queue

from wa_queue import names
from wa_queue.settings import Settings

if TYPE_CHECKING:
    from wa_queue.hub import Hub
    from workers.runtime import SessionWorker

TASK_MODULES = ["workers.tasks", "workers.callback_tasks"]


class WaqCelery(Celery):
    """A Celery app that knows the settings it was made from, with typed slots for what its tasks need in a worker
    process: the process's Hub and, in a session worker, its SessionWorker (workers/runtime.attach), empty until a
    worker's start hook fills them. The hook builds that Hub over the same settings."""

    def __init__(self, *args: object, settings: Settings | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.hub: Hub | None = None
        self.session_worker: SessionWorker | None = None


def make_celery(settings: Settings) -> WaqCelery:
    app = WaqCelery("wa_queue", broker=settings.broker_url, include=TASK_MODULES, settings=settings)
    names_ = [names.DEFAULT_QUEUE, names.MAINTENANCE_QUEUE, names.CALLBACK_QUEUE]
    names_ += [names.session_queue(name) for name in settings.sessions]
    # Each queue its own exchange and key: a bare Queue(name) would be bound to the default exchange with the
    # default routing key, and one publish would then land in every queue.
    queues = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in names_]
    app.conf.update(
        task_queues=queues,
        task_default_queue=names.DEFAULT_QUEUE,
        task_create_missing_queues=True,
        # JSON only: no pickle from a broker anyone on the network might write to.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,  # the store is the record of outcomes, not a result backend
        # Ack after the task ran, and give the task back if the worker process died: a SIGKILLed worker loses
        # nothing. Duplicates this may cause are harmless because sending needs an atomic claim in the store.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message in hand per worker: a worker that dies strands at most one reserved task, and a paced
        # session does not hoard work another session could take.
        worker_prefetch_multiplier=1,
        # On Redis, a task not acked within visibility_timeout is delivered again, and a countdown counts against
        # it (kombu issue 337). Retries longer than WAQ_MAX_COUNTDOWN_S wait in the store, not as countdowns; the
        # timeout still exceeds the longest retry delay plus a lease, so a raised WAQ_MAX_COUNTDOWN_S cannot make a
        # retry run twice. The sweeper, not this timeout, is what recovers lost work quickly.
        broker_transport_options={"visibility_timeout": int(settings.longest_retry_s + settings.lease_s + 3600),
                                  "priority_steps": sorted(names.PRIORITY_STEPS.values()), "sep": names.PRIORITY_SEP},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # Task events only while someone watches: Flower sends the enable_events control command every 5 s, and
        # workers answer it (remote control and heartbeats stay on, so their event dispatcher exists). Always on,
        # every task would pay for events nobody reads (BENCHMARKS.md, figures behind other choices). No
        # "task-sent" events: each would cost publishers a second broker write per message.
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
    )
    from beat_schedule import beat_schedule

    app.conf.beat_schedule = beat_schedule(settings)
    return app


def __getattr__(name: str) -> Celery:
    """`wa_queue.celery_app:app`, the name Celery's `-A` looks up: the Celery app of this process's default Hub
    (wa_queue.hub.default_hub), built from the WAQ_* settings when Celery first asks. Nothing is kept here."""
    if name == "app":
        from wa_queue.hub import default_hub

        return default_hub().celery
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Celery beat's schedule as data. `waq beat` runs beat inside a worker that consumes wa.maintenance."""

from __future__ import annotations

from typing import Any

from wa_queue import names
from wa_queue.settings import Settings

_ARCHIVE_EVERY_S = 24 * 3600.0
_COLLECT_MEDIA_EVERY_S = 3600.0  # media/collect.py: its grace period is an hour too


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    maintenance = {"queue": names.MAINTENANCE_QUEUE, "exchange": "", "routing_key": names.MAINTENANCE_QUEUE}

    def job(task: str, every: float) -> dict[str, Any]:
        # A job that could not run before its next turn is dropped: the next run does the same work.
        return {"task": task, "schedule": every, "options": {**maintenance, "expires": every}}

    return {
        "dispatch-due": job(names.TASK_DISPATCH_DUE, settings.dispatch_interval_s),
        "recover-stuck": job(names.TASK_RECOVER_STUCK, settings.recover_interval_s),
        "session-health": job(names.TASK_HEALTH_SWEEP, settings.health_interval_s),
        "archive-failed": job(names.TASK_ARCHIVE, _ARCHIVE_EVERY_S),
        "collect-media": job(names.TASK_COLLECT_MEDIA, _COLLECT_MEDIA_EVERY_S),
    }

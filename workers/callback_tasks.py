"""The status-callback task: a thin wrapper that retries wa_queue.callbacks.deliver_callback with back-off.

Consumed from `wa.callbacks` (the beat process's worker). Needs "workers.callback_tasks" in the Celery app's
`include`, so the worker knows the task name.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from wa_queue import names, redact
from wa_queue.callbacks import (
    MAX_RETRIES,
    InvalidCallbackUrl,
    RetryableCallbackError,
    backoff_delay,
    deliver_callback,
)
from wa_queue.celery_app import app
from workers.runtime import app_of

log = logging.getLogger(__name__)


def _secret(task: Task, key_name: str | None) -> str:
    """The secret that signs callbacks of messages of the key `key_name` (the payload's "key"), from the settings of
    this process's App (workers/tasks.py builds it when the process starts)."""
    waq = app_of(task.app)
    if waq is None:
        from wa_queue.settings import get_settings

        return get_settings().callback_secret_for(key_name)
    return waq.settings.callback_secret_for(key_name)


@app.task(name=names.TASK_CALLBACK, bind=True, acks_late=True, ignore_result=True, max_retries=MAX_RETRIES)
def status_callback(self: Task, url: str, payload: dict[str, Any]) -> str:
    retries = int(self.request.retries or 0)
    try:
        status = deliver_callback(url, payload, _secret(self, payload.get("key")))
    except InvalidCallbackUrl as exc:
        log.warning("callback for %s not sent: %s", payload.get("id"), redact.in_text(exc, url))
        return "invalid url"
    except RetryableCallbackError as exc:
        if retries >= MAX_RETRIES:
            log.error("callback %s for %s to %s: gave up after %d retries: %s", payload.get("event"),
                      payload.get("id"), redact.url(url), retries, redact.in_text(exc, url))
            return "gave up"
        countdown = backoff_delay(retries, retry_after=exc.retry_after)
        log.info("callback %s for %s: %s; retry %d in %.0fs", payload.get("event"), payload.get("id"),
                 redact.in_text(exc, url), retries + 1, countdown)
        # Back onto wa.callbacks itself (exchange '' + routing key), not the default queue.
        raise self.retry(exc=exc, countdown=countdown, queue=names.CALLBACK_QUEUE, exchange="",
                         routing_key=names.CALLBACK_QUEUE) from None
    if 200 <= status < 300:
        return "delivered"
    log.warning("callback %s for %s refused by %s with %d; not retried", payload.get("event"), payload.get("id"),
                redact.url(url), status)
    return f"refused {status}"

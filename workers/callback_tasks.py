"""The status-callback task: a thin wrapper that retries wa_queue.callbacks.deliver_callback with back-off.

Consumed from `wa.callbacks` by its own worker (`waq callbacks`: a prefork pool of WAQ_CALLBACK_CONCURRENCY
processes), never by beat's, so a slow receiver cannot delay the maintenance jobs. Needs "workers.callback_tasks" in
the Celery app's `include`, so the worker knows the task name.

Bounded three ways: each delivery's wall-clock deadline (callbacks.DEADLINE_S, outbound.request), the task's
soft_time_limit / time_limit as a backstop, and the per-host circuit breaker (wa_queue/circuit.py) that holds
deliveries to a host that keeps failing without calling it.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any
from urllib.parse import urlsplit

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from wa_queue import names, redact
from wa_queue.callbacks import (
    DEADLINE_S,
    MAX_RETRIES,
    SOFT_TIME_LIMIT_S,
    TIME_LIMIT_S,
    InvalidCallbackUrl,
    RetryableCallbackError,
    backoff_delay,
    deliver_callback,
)
from wa_queue.circuit import Breaker
from wa_queue.errors import OutboundRefused
from wa_queue.hub import Hub
from workers.runtime import hub_of

log = logging.getLogger(__name__)
TRIAL_MARGIN_S = 2.0  # a half-open circuit's trial lock outlives the delivery's deadline by the outcome's write
_ROUTE = {"queue": names.CALLBACK_QUEUE, "exchange": "", "routing_key": names.CALLBACK_QUEUE}


def _hub(task: Task) -> Hub:
    """This process's Hub (workers/tasks.py builds it when the process starts); the default Hub outside a worker."""
    hub = hub_of(task.app)
    if hub is None:
        from wa_queue.hub import default_hub

        return default_hub()
    return hub


@shared_task(name=names.TASK_CALLBACK, bind=True, acks_late=True, ignore_result=True, max_retries=MAX_RETRIES,
          soft_time_limit=SOFT_TIME_LIMIT_S, time_limit=TIME_LIMIT_S)
def status_callback(self: Task, url: str, payload: dict[str, Any]) -> str:
    hub = _hub(self)
    retries = int(self.request.retries or 0)
    host = (urlsplit(url).hostname or "?").lower() if isinstance(url, str) else "?"
    breaker = Breaker(hub.broker)
    wait = breaker.wait_s(host, time.time(), trial_s=DEADLINE_S + TRIAL_MARGIN_S)
    if wait > 0:
        # The host's circuit is open, or half-open with another delivery's trial under way: hold this delivery till
        # then, without a call and without using one of its retries (the same retry count goes back on the queue).
        # Published through this process's Hub, whose broker is the settings'.
        hub.celery.send_task(names.TASK_CALLBACK, args=[url, payload], countdown=wait + random.uniform(0.0, 5.0),
                             retries=retries, **_ROUTE)
        return _counted(hub, "deferred")
    try:
        # Signed with the secret of the key that enqueued the message (the payload names it), else the global one.
        status = deliver_callback(url, payload, hub.settings.callback_secret_for(payload.get("key")),
                                  allow=hub.settings.outbound_allow)
    except InvalidCallbackUrl as exc:
        log.warning("callback for %s not sent: %s", payload.get("id"), redact.in_text(exc, url))
        return _counted(hub, "invalid url", "refused")
    except OutboundRefused as exc:
        log.warning("callback %s for %s refused, not retried: %s", payload.get("event"), payload.get("id"),
                    redact.in_text(exc, url))
        _record_refusal(hub, payload, exc)
        return _counted(hub, "outbound refused", "refused")
    except (RetryableCallbackError, SoftTimeLimitExceeded) as exc:
        breaker.failed(host, time.time())
        if retries >= MAX_RETRIES:
            log.error("callback %s for %s to %s: gave up after %d retries: %s", payload.get("event"),
                      payload.get("id"), redact.url(url), retries, redact.in_text(exc, url))
            return _counted(hub, "gave up", "gave_up")
        countdown = backoff_delay(retries, retry_after=getattr(exc, "retry_after", None))
        log.info("callback %s for %s: %s; retry %d in %.0fs", payload.get("event"), payload.get("id"),
                 redact.in_text(exc, url), retries + 1, countdown)
        _counted(hub, "", "retried")
        # Back onto wa.callbacks itself (exchange '' + routing key), not the default queue.
        raise self.retry(exc=exc, countdown=countdown, **_ROUTE) from None
    breaker.succeeded(host)
    if 200 <= status < 300:
        return _counted(hub, "delivered")
    log.warning("callback %s for %s refused by %s with %d; not retried", payload.get("event"), payload.get("id"),
                redact.url(url), status)
    return _counted(hub, f"refused {status}", "rejected")


def _record_refusal(hub: Hub, payload: dict[str, Any], exc: OutboundRefused) -> None:
    """The message's history says why its producer heard nothing (invariant 7)."""
    message_id = payload.get("id")
    if not isinstance(message_id, str) or payload.get("event") == "message.received":  # a reply: no message to note
        return
    try:
        hub.store.record_callback_refused(message_id, now=hub.clock(), error_class=type(exc).__name__,
                                          error_text=f"{payload.get('event')} callback: {exc}"[:1000])
    except Exception as exc2:  # noqa: BLE001 - the refusal is logged and counted; the record is best effort
        log.warning("callback refusal of %s not recorded: %s: %s", message_id, type(exc2).__name__, exc2)


def _counted(hub: Hub, result: str, outcome: str | None = None) -> str:
    """Count the outcome in the broker's Redis for /metrics (waq_callbacks_total); return the task's result."""
    try:
        hub.broker.hincrby(names.METRICS_CALLBACKS_KEY, outcome or result, 1)
    except Exception as exc:  # noqa: BLE001 - metrics never decide a delivery
        log.debug("callback metrics not written: %s", exc)
    return result

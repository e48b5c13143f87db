"""Admin notifications: always logged; POSTed to WAQ_NOTIFY_WEBHOOK_URL when set, in the background, retried with
back-off, never blocking a send."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from typing import Any

from wa_queue.models import utcnow
from wa_queue.settings import get_settings

log = logging.getLogger("wa_queue.notify")

_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)
_threads: list[threading.Thread] = []


def notify_admin(event: str, summary: str, **details: Any) -> threading.Thread | None:
    """Tell an operator: `event` is a short code (message_failed, session_needs_operator), `summary` a sentence."""
    payload = {"event": event, "summary": summary, "at": utcnow().isoformat(), "details": details}
    log.warning("ADMIN %s: %s %s", event, summary, json.dumps(details, default=str))
    url = get_settings().notify_webhook_url
    if not url:
        return None
    thread = threading.Thread(target=_post_with_retries, args=(url, payload), name="waq-notify", daemon=True)
    thread.start()
    _threads[:] = [t for t in _threads if t.is_alive()] + [thread]
    return thread


def _post_with_retries(url: str, payload: dict[str, Any]) -> bool:
    body = json.dumps(payload, default=str).encode()
    for attempt, pause in enumerate((0.0, *_BACKOFF_S)):
        time.sleep(pause)
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - operator-configured URL
                if response.status < 300:
                    return True
        except Exception as exc:  # noqa: BLE001 - the webhook's failure must never reach the sender
            log.info("admin webhook attempt %d failed: %s", attempt + 1, exc)
    log.error("admin webhook gave up after %d attempts: %s", len(_BACKOFF_S) + 1, payload["event"])
    return False


def flush(timeout: float = 5.0) -> None:
    """Wait for notifications in flight (a worker about to exit)."""
    deadline = time.monotonic() + timeout
    for thread in list(_threads):
        thread.join(max(0.0, deadline - time.monotonic()))

"""Admin notifications: always logged; POSTed to WAQ_NOTIFY_WEBHOOK_URL when set, in the background, retried with
back-off, never blocking a send. The POST goes through the outbound rule (wa_queue/outbound.py) like every URL the
system posts to: an operator whose webhook receiver is internal names it in WAQ_OUTBOUND_ALLOW."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from wa_queue import outbound, redact
from wa_queue.errors import OutboundRefused
from wa_queue.models import utcnow
from wa_queue.outbound import NOTHING_ALLOWED, AllowList

log = logging.getLogger("wa_queue.notify")

_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)


class Notifier:
    """Tells an operator. One per Hub (wa_queue/hub.py), which keeps the webhook threads it started so a worker
    about to exit can wait for them (flush). Without a webhook URL it only logs."""

    def __init__(self, webhook_url: str | None, allow: AllowList = NOTHING_ALLOWED, *,
                 log_phones: bool = False) -> None:
        self.webhook_url = webhook_url
        self.allow = allow
        self.log_phones = log_phones  # WAQ_LOG_PHONES: the log line masks numbers; the webhook gets them whole
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def notify_admin(self, event: str, summary: str, **details: Any) -> threading.Thread | None:
        """`event` is a short code (message_failed, session_needs_operator, session_banned), `summary` a sentence."""
        payload = {"event": event, "summary": summary, "at": utcnow().isoformat(), "details": details}
        log.warning("ADMIN %s: %s %s", event, redact.phones_in(summary, self.log_phones),
                    redact.phones_in(json.dumps(details, default=str), self.log_phones))
        if not self.webhook_url:
            return None
        thread = threading.Thread(target=_post_with_retries, args=(self.webhook_url, payload, self.allow),
                                  name="waq-notify", daemon=True)
        thread.start()
        with self._lock:
            self._threads[:] = [t for t in self._threads if t.is_alive()] + [thread]
        return thread

    def flush(self, timeout: float = 5.0) -> None:
        """Wait for notifications in flight (a worker about to exit)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


LOG_ONLY = Notifier(None)  # for code given no notifier (unit tests): logs, starts no thread, keeps nothing


def _post_with_retries(url: str, payload: dict[str, Any], allow: AllowList = NOTHING_ALLOWED) -> bool:
    body = json.dumps(payload, default=str).encode()
    for attempt, pause in enumerate((0.0, *_BACKOFF_S)):
        time.sleep(pause)
        try:
            target = outbound.check_url(url, allow)
            answer = outbound.request(target, "POST", body, {"Content-Type": "application/json"})
            if answer.status < 300:
                return True
            log.info("admin webhook attempt %d answered %d", attempt + 1, answer.status)
        except OutboundRefused as exc:
            log.error("admin webhook refused by the outbound rule, not retried: %s", exc)
            return False
        except Exception as exc:  # noqa: BLE001 - the webhook's failure must never reach the sender
            log.info("admin webhook attempt %d failed: %s", attempt + 1, exc)
    log.error("admin webhook gave up after %d attempts: %s", len(_BACKOFF_S) + 1, payload["event"])
    return False

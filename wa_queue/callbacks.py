"""Status callbacks: tell the producer's `callback_url` when its message was sent, failed, delivered or read.

Flow: Delivery.on_change (in the session worker) -> on_status_change() publishes a `wa.status_callback` task to
the `wa.callbacks` queue (consumed by the beat process's worker, see `waq beat`) -> the task calls
deliver_callback(), retried with exponential back-off and full jitter, at most MAX_RETRIES times.

Payload (JSON object):
    {"id", "event", "status", "phone", "attempts", "sent_at", "delivered_at", "read_at", "failed_at",
     "error", "error_class", "event_at", "key"}
  `key` is the name (never the value) of the API key that enqueued the message, null for the Python API and the CLI:
  it says which secret signed the request.
  `status` is the message's status in the store (pending, processing, sent, failed); `event` says what happened:
  sent, failed, delivered or read (a receipt leaves the status at `sent`). Times are ISO 8601 UTC, null when not
  yet. Delivery is at least once: a receiver should treat (id, event) as an idempotency key.

Signature scheme (when a secret is set; without one the two headers are absent). The secret is the enqueuing key's own
(WAQ_API_KEYS name:role:key:secret), else WAQ_CALLBACK_SECRET (Settings.callback_secret_for), so a producer that
holds its own secret cannot sign an event of another producer's message:
    X-WAQ-Timestamp: <unix seconds when this attempt was signed>
    X-WAQ-Signature: sha256=<hex HMAC-SHA256(key=secret, msg=timestamp + "." + raw body bytes)>
  The receiver recomputes the HMAC over the raw body it received (before parsing), compares in constant time, and
  rejects timestamps more than 5 minutes from its clock, which stops replays of an old, captured request.
  verify_signature() below is the reference implementation. Each retry is signed afresh with a new timestamp.

What is retried: connection errors, timeouts, 5xx, 408 and 429 (Retry-After is honoured as a minimum wait).
Any other 4xx (and 3xx: redirects are not followed, the body would be lost) is final: the receiver said no.

Limit: callbacks travel through the broker, which may lose its data (invariant 2). The store keeps the message
and its status, which a producer can always read back; a callback is a notification, not the record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from wa_queue import names
from wa_queue.models import Message, MessageStatus, utcnow

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-WAQ-Signature"
TIMESTAMP_HEADER = "X-WAQ-Timestamp"
EVENT_HEADER = "X-WAQ-Event"
SIGNATURE_PREFIX = "sha256="
MAX_RETRIES = 10
BACKOFF_BASE_S = 5.0  # retry n waits uniform(0, min(cap, base * 2**n)): 5 s, 10 s, ... capped at an hour
BACKOFF_CAP_S = 3600.0  # below the broker's visibility_timeout (celery_app.py), so a countdown is not redelivered
TIMEOUT_S = 10.0
SIGNATURE_TOLERANCE_S = 300
RETRYABLE_4XX = frozenset({408, 429})
USER_AGENT = "wa-queue-callbacks/1"


class RetryableCallbackError(Exception):
    """The receiver may accept later (no answer, 5xx, 408, 429). `retry_after` is its Retry-After, in seconds."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


# ---- payload and publishing (worker side) ---------------------------------------------------------------------
def event_of(message: Message) -> str:
    """The event a status change means for the producer; receipts keep the status at 'sent'."""
    if message.status is MessageStatus.SENT:
        if message.read_at is not None:
            return "read"
        if message.delivered_at is not None:
            return "delivered"
    return message.status.value


def build_payload(message: Message, *, event_at: Any = None) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    error = None
    if message.status is MessageStatus.FAILED and (message.last_error_class or message.last_error_text):
        error = f"{message.last_error_class or 'Error'}: {message.last_error_text or ''}".rstrip(": ")
    return {
        "id": message.id,
        "event": event_of(message),
        "status": message.status.value,
        "phone": message.phone,
        "attempts": message.attempts,
        "sent_at": iso(message.sent_at),
        "delivered_at": iso(message.delivered_at),
        "read_at": iso(message.read_at),
        "failed_at": iso(message.failed_at),
        "error": error,
        "error_class": message.last_error_class if message.status is MessageStatus.FAILED else None,
        "event_at": iso(event_at or utcnow()),
        "key": message.enqueued_by,
    }


def on_status_change(message: Message, celery: Celery) -> None:
    """The Delivery.on_change hook: publish a callback task, with `celery` (the App's), when the producer asked for
    one.

    The payload is a snapshot taken now, so each event reports the state it is about even if the message moves on
    before the callback goes out."""
    if not message.callback_url or message.status is MessageStatus.PROCESSING:
        return
    payload = build_payload(message)
    # exchange='' with routing_key=queue: straight onto the queue's list, like publisher.publish (survives FLUSHALL
    # of the exchange bindings).
    celery.send_task(names.TASK_CALLBACK, args=[message.callback_url, payload], queue=names.CALLBACK_QUEUE,
                     exchange="", routing_key=names.CALLBACK_QUEUE)
    log.debug("callback %s for %s queued", payload["event"], message.id)


# ---- signing ----------------------------------------------------------------------------------------------------
def sign(body: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify_signature(body: bytes, secret: str, timestamp: str | None, signature: str | None, *,
                     now: float | None = None, tolerance_s: float = SIGNATURE_TOLERANCE_S) -> bool:
    """What a receiver does: constant-time comparison, and a timestamp close to its own clock."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(body, secret, int(timestamp)).encode(), signature.encode())


# ---- delivery (pure: no Celery) ---------------------------------------------------------------------------------
class InvalidCallbackUrl(ValueError):
    """The URL is not http(s): no retry can help."""


def _http_only_opener() -> urllib.request.OpenerDirector:
    # Only HTTP(S): no file:, ftp: or data: handlers for a URL a producer chose, and no redirect handler (a
    # redirected POST would turn into a body-less GET; a 3xx is returned as the final status instead).
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


_opener = _http_only_opener()


def deliver_callback(url: str, payload: dict[str, Any], secret: str, *, timeout: float = TIMEOUT_S,
                     now: float | None = None) -> int:
    """POST the payload as signed JSON; return the HTTP status when the outcome is final (2xx accepted, or a
    refusal that retrying cannot change). Raise RetryableCallbackError when trying again later may succeed."""
    if urlsplit(url).scheme not in ("http", "https") or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise InvalidCallbackUrl(f"callback URL {url[:100]!r} is not http or https")
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, EVENT_HEADER: str(payload.get("event"))}
    if secret:
        timestamp = int(time.time() if now is None else now)
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = sign(body, secret, timestamp)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:  # noqa: S310 - http(s) only, checked above
            return int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        exc.close()
        if status >= 500 or status in RETRYABLE_4XX:
            raise RetryableCallbackError(f"{url} answered {status}", status,
                                         _retry_after(exc.headers.get("Retry-After"))) from None
        return status
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # ValueError: http.client's errors on a malformed answer (e.g. a bad status line) are ValueErrors too.
        raise RetryableCallbackError(f"{url} unreachable: {type(exc).__name__}: {exc}") from None


def _retry_after(raw: str | None) -> float | None:
    if not raw:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        return max(0.0, (parsedate_to_datetime(raw) - utcnow()).total_seconds())
    except (TypeError, ValueError):
        return None


def backoff_delay(retries: int, *, retry_after: float | None = None, rng: random.Random | None = None,
                  base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S) -> float:
    """Exponential back-off with full jitter: uniform(0, min(cap, base * 2**retries)), at least Retry-After."""
    window = min(cap, base * (2 ** max(0, retries)))
    delay = (rng or random).uniform(0.0, window)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay

"""Status callbacks: tell the producer's `callback_url` when its message was sent, failed, delivered or read.

Flow: Delivery.on_change (in the session worker) -> on_status_change() publishes a `wa.status_callback` task to
the `wa.callbacks` queue (consumed by its own worker, `waq callbacks`, apart from beat's jobs) -> the task calls
deliver_callback(), retried with exponential back-off and full jitter, at most MAX_RETRIES times.

Payload (JSON object):
    {"id", "event", "status", "phone", "attempts", "sent_at", "delivered_at", "read_at", "failed_at",
     "error", "error_class", "event_at", "key"}
  `key` is the name (never the value) of the API key that enqueued the message, null for the Python API and the CLI:
  it says which secret signed the request.
  `status` is the message's status in the store (pending, processing, sent, failed, expired, cancelled); `event`
  says what happened: sent, failed, delivered or read (a receipt leaves the status at `sent`), expired, cancelled. A
  message cancelled because its number opted out carries `error_class` OptedOut and the reason in `error`. Times
  are ISO 8601 UTC, null when not yet. Delivery is at least once: a receiver should treat (id, event) as an
  idempotency key.

Signature scheme (when a secret is set; without one the two headers are absent). The secret is the enqueuing key's own
(WAQ_API_KEYS name:role:key:secret), else WAQ_CALLBACK_SECRET (Settings.callback_secret_for), so a producer that
holds its own secret cannot sign an event of another producer's message:
    X-WAQ-Timestamp: <unix seconds when this attempt was signed>
    X-WAQ-Signature: sha256=<hex HMAC-SHA256(key=secret, msg=timestamp + "." + raw body bytes)>
  The receiver recomputes the HMAC over the raw body it received (before parsing), compares in constant time, and
  rejects timestamps more than 5 minutes from its clock, which stops replays of an old, captured request.
  verify_signature() below is the reference implementation. Each retry is signed afresh with a new timestamp.

What is retried: connection errors, timeouts, 5xx, 408 and 429 (Retry-After is honoured as a minimum wait).
Any other 4xx is final: the receiver said no. A URL the outbound rule refuses (wa_queue/outbound.py: an internal
address WAQ_OUTBOUND_ALLOW does not name) and a 3xx (redirects are never followed: a redirect could point inward) are
final too, and recorded in the message's history (`callback_refused`). Each delivery has a wall-clock deadline
(DEADLINE_S) over the whole call, and a host that keeps failing is slowed by a circuit breaker (wa_queue/circuit.py).

Limit: callbacks travel through the broker, which may lose its data (invariant 2). The store keeps the message
and its status, which a producer can always read back; a callback is a notification, not the record.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from wa_queue import names, outbound, redact
from wa_queue.errors import OutboundRefused
from wa_queue.models import Message, MessageStatus, utcnow
from wa_queue.outbound import NOTHING_ALLOWED, AllowList

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
DEADLINE_S = 10.0  # one delivery in all, however slowly the receiver drips its answer
# The task's Celery limits, above the deadline: a backstop should the deadline itself fail (the soft limit raises in
# the task, which retries; the hard one ends the pool process).
SOFT_TIME_LIMIT_S = 30
TIME_LIMIT_S = 45
SIGNATURE_TOLERANCE_S = 300
RETRYABLE_4XX = frozenset({408, 429})
USER_AGENT = "wa-queue-callbacks/1"
OPTED_OUT = "OptedOut"  # the error class of a message cancelled because its number is on the suppression list


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
    opted_out = message.status is MessageStatus.CANCELLED and message.last_error_class == OPTED_OUT
    if (message.status is MessageStatus.FAILED or opted_out) and (message.last_error_class or message.last_error_text):
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
        "error_class": message.last_error_class if message.status is MessageStatus.FAILED or opted_out else None,
        "event_at": iso(event_at or utcnow()),
        "key": message.enqueued_by,
    }


def on_status_change(message: Message, celery: Celery) -> None:
    """The Delivery.on_change hook: publish a callback task, with `celery` (the Hub's), when the producer asked for
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


def deliver_callback(url: str, payload: dict[str, Any], secret: str, *, allow: AllowList = NOTHING_ALLOWED,
                     deadline_s: float = DEADLINE_S, now: float | None = None,
                     resolve: outbound.Resolver | None = None) -> int:
    """POST the payload as signed JSON; return the HTTP status when the outcome is final (2xx accepted, or a
    refusal that retrying cannot change). Raise RetryableCallbackError when trying again later may succeed, and
    OutboundRefused when the outbound rule refuses the URL or the receiver redirects (final, recorded on the
    message by the task). The whole call is bounded by `deadline_s`, resolution included (outbound.request)."""
    if urlsplit(url).scheme not in ("http", "https") or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise InvalidCallbackUrl(f"callback URL {url[:100]!r} is not http or https")
    started = time.monotonic()
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, EVENT_HEADER: str(payload.get("event"))}
    if secret:
        timestamp = int(time.time() if now is None else now)
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = sign(body, secret, timestamp)
    shown = redact.url(url)  # without its query, which may carry the receiver's token
    try:
        target = outbound.check_url(url, allow, resolve=resolve, deadline_s=deadline_s)
        left = deadline_s - (time.monotonic() - started)
        answer = outbound.request(target, "POST", body, headers, deadline_s=max(0.1, left))
    except OutboundRefused:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # ValueError: http.client's errors on a malformed answer (e.g. a bad status line) are ValueErrors too.
        raise RetryableCallbackError(f"{shown} unreachable: {type(exc).__name__}: {exc}") from None
    status = answer.status
    if outbound.is_redirect(status):
        # Not followed: a redirect is how a public receiver would point the worker inward, past the rule.
        raise OutboundRefused(f"{shown} answered {status} (a redirect to {answer.headers.get('location', '?')[:100]}"
                              "); redirects are not followed")
    if status >= 500 or status in RETRYABLE_4XX:
        raise RetryableCallbackError(f"{shown} answered {status}", status,
                                     _retry_after(answer.headers.get("retry-after")))
    return status



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

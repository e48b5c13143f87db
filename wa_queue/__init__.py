"""wa-queue: a WhatsApp message queue that does not lose messages.

The Python API below works over the default Hub (wa_queue.hub.default_hub()), built from the WAQ_* settings on
first use; it publishes before enqueue() returns."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def enqueue(phone: str, text: str | None = None, *, session: str | None = None, idempotency_key: str | None = None,
            callback_url: str | None = None, metadata: dict[str, Any] | None = None,
            send_window: Any = None, send_at: Any = None, expires_at: Any = None, ttl_s: float | None = None,
            priority: str | None = None, batch: str | None = None, media: Any = None, caption: str | None = None,
            filename: str | None = None, kind: str | None = None, as_document: bool = False,
            category: str | None = None) -> str:
    """Queue one message; returns its id after it is committed to the store (then its task is published).
    Every argument is held to wa_queue/validation.py's rules, the REST API's and the CLI's: wa_queue.errors.
    ValidationError (its `field` names the argument) when one is broken, and nothing is stored.

    send_window: quiet hours in the recipient's time zone, {"start": "08:00", "end": "21:00"} (or "08:00-21:00", or
    a wa_queue.send_window.SendWindow); outside it the message waits. None: WAQ_SEND_WINDOW's default, if any.
    send_at: not sent before (an aware datetime, or ISO 8601 with an offset). expires_at or ttl_s (seconds): never
    sent after; unsent by then, it ends `expired`. priority: "high", "normal" or "low". batch: a batch's name.
    media: a file to send, as a path or its bytes (or {"id": ...} of an upload, {"url": ...} fetched now), with
    `caption` (or `text`) as its caption; `filename` the name the recipient sees, `kind` image, document, audio or
    video (default: from the bytes), `as_document` a photo or video sent as a file. The file is stored with the
    message, before this returns. category: "transactional" (None: this) or "marketing", for WAQ_OPT_OUT_SCOPE.
    A number on the suppression list: wa_queue.errors.OptedOut."""
    from wa_queue import operations
    from wa_queue.hub import default_hub

    return operations.enqueue(default_hub(), phone, text, session=session, idempotency_key=idempotency_key,
                              callback_url=callback_url, metadata=metadata, send_window=send_window, send_at=send_at,
                              expires_at=expires_at, ttl_s=ttl_s, priority=priority, batch=batch, media=media,
                              caption=caption, filename=filename, kind=kind, as_document=as_document,
                              category=category)


def enqueue_many(items: list[dict[str, Any]]) -> list[str]:
    """Queue many messages in one transaction (each item holds enqueue()'s arguments): all are validated first,
    nothing is stored if one is bad. Returns their ids in order."""
    from wa_queue import operations
    from wa_queue.hub import default_hub

    return operations.enqueue_many(default_hub(), items)


def get_message(message_id: str):  # noqa: ANN201 - returns wa_queue.models.Message
    """The message with its status, attempts, timestamps and history; raises wa_queue.errors.NotFound."""
    from wa_queue import operations
    from wa_queue.hub import default_hub

    return operations.get_message(default_hub(), message_id)

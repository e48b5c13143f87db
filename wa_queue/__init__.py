"""wa-queue: a WhatsApp message queue that does not lose messages."""

from __future__ import annotations

__version__ = "0.1.0"


def enqueue(phone: str, text: str, *, session: str | None = None, idempotency_key: str | None = None,
            **extra: object) -> str:
    """Queue one message; returns its id after it is committed to the store (then its task is published)."""
    from wa_queue.service import enqueue as _enqueue

    return _enqueue(phone, text, session=session, idempotency_key=idempotency_key, **extra)  # type: ignore[arg-type]


def get_message(message_id: str):  # noqa: ANN201 - returns wa_queue.models.Message
    """The message with its status, attempts, timestamps and history; raises wa_queue.errors.NotFound."""
    from wa_queue.service import get_message as _get

    return _get(message_id)

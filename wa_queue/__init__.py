"""wa-queue: a WhatsApp message queue that does not lose messages."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def enqueue(phone: str, text: str, *, session: str | None = None, idempotency_key: str | None = None,
            callback_url: str | None = None, metadata: dict[str, Any] | None = None) -> str:
    """Queue one message; returns its id after it is committed to the store (then its task is published).
    Every argument is held to wa_queue/validation.py's rules, the REST API's and the CLI's: wa_queue.errors.
    ValidationError (its `field` names the argument) when one is broken, and nothing is stored."""
    from wa_queue.service import enqueue as _enqueue

    return _enqueue(phone, text, session=session, idempotency_key=idempotency_key, callback_url=callback_url,
                    metadata=metadata)


def get_message(message_id: str):  # noqa: ANN201 - returns wa_queue.models.Message
    """The message with its status, attempts, timestamps and history; raises wa_queue.errors.NotFound."""
    from wa_queue.service import get_message as _get

    return _get(message_id)

"""A secret per producer key (issue 24, part 3): a status callback is signed with the secret of the key that enqueued
the message, the payload names that key, and a signature made with another key's secret does not verify. Through the
real task function (workers/callback_tasks.status_callback) and a local HTTP receiver."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from tests.callbacks.test_callbacks import Receiver
from wa_queue import callbacks
from wa_queue.hub import close_default_hub
from wa_queue.models import Message, MessageStatus, utcnow
from wa_queue.settings import Settings
from workers.callback_tasks import status_callback

SHOP_SECRET = "shop-secret-" + "a" * 32
CRM_SECRET = "crm-secret-" + "b" * 32
GLOBAL_SECRET = "global-secret-" + "c" * 32
KEYS = (f"shop:producer:shop-key-0123456789abcdef:{SHOP_SECRET},crm:producer:crm-key-0123456789abcdef:{CRM_SECRET},"
        "ops:admin:ops-key-0123456789abcdef")


@pytest.fixture
def keyed_settings(waq_env: dict[str, str]) -> Iterator[Settings]:
    """The keys and secrets, the test's Redis (the callbacks' circuit breaker) and its loopback receiver allowed."""
    settings = Settings.from_env({**waq_env, "WAQ_API_KEYS": KEYS, "WAQ_CALLBACK_SECRET": GLOBAL_SECRET,
                                  "WAQ_OUTBOUND_ALLOW": "127.0.0.1"})
    close_default_hub(settings)  # the default Hub is built anew from these settings
    yield settings
    close_default_hub()


def _message(owner: str | None) -> Message:
    now = utcnow()
    return Message(id="m-" + str(owner), phone="+14155550123", text="hi", status=MessageStatus.SENT, created_at=now,
                   updated_at=now, next_attempt_at=now, sent_at=now, enqueued_by=owner)


def _deliver(owner: str | None) -> tuple[dict, bytes, str, str]:
    payload = callbacks.build_payload(_message(owner))
    with Receiver([200]) as receiver:
        assert status_callback(receiver.url, payload) == "delivered"
    headers, body = receiver.requests[0]
    return json.loads(body), body, headers[callbacks.TIMESTAMP_HEADER], headers[callbacks.SIGNATURE_HEADER]


def test_a_callback_is_signed_with_its_keys_secret(keyed_settings: Settings) -> None:  # noqa: ARG001
    payload, body, stamp, signature = _deliver("shop")
    assert payload["key"] == "shop" and "shop-key" not in body.decode()  # the name, never the key
    assert callbacks.verify_signature(body, SHOP_SECRET, stamp, signature)
    assert not callbacks.verify_signature(body, CRM_SECRET, stamp, signature)
    assert not callbacks.verify_signature(body, GLOBAL_SECRET, stamp, signature)


def test_a_producer_cannot_forge_another_producers_event(keyed_settings: Settings) -> None:  # noqa: ARG001
    # crm holds its own secret and knows shop's message id: it signs a forged "sent" event for it.
    payload = callbacks.build_payload(_message("shop"))
    forged = json.dumps(dataclasses.asdict(_message("shop")) | payload, default=str).encode()
    stamp = str(int(utcnow().timestamp()))
    signature = callbacks.sign(forged, CRM_SECRET, int(stamp))
    assert not callbacks.verify_signature(forged, SHOP_SECRET, stamp, signature)  # shop's receiver refuses it


def test_without_a_secret_of_its_own_the_global_one_signs(keyed_settings: Settings) -> None:  # noqa: ARG001
    for owner in ("ops", None):
        payload, body, stamp, signature = _deliver(owner)
        assert payload["key"] == owner
        assert callbacks.verify_signature(body, GLOBAL_SECRET, stamp, signature)

"""Status callbacks: the signed POST (pure function), the Celery task's retries (run eagerly), publishing to the
wa.callbacks queue on a real redis-server, and one end-to-end run through a real Celery worker process."""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.helpers.processes import Proc
from tests.helpers.receiver import SECRET, Receiver
from tests.helpers.waiting import wait_for
from wa_queue import callbacks, names
from wa_queue.callbacks import RetryableCallbackError, backoff_delay, deliver_callback, verify_signature
from wa_queue.devstack.ports import free_port
from wa_queue.errors import OutboundRefused
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import Message, MessageStatus, utcnow
from wa_queue.outbound import parse_allow

PAYLOAD = {"id": "m1", "event": "sent", "status": "sent", "phone": "+14155550123", "attempts": 0}
# The receivers below listen on loopback, which the outbound rule refuses unless allowed (tests/security shows that).
ALLOW = parse_allow(["127.0.0.1"])


@pytest.fixture
def secret(waq_env: dict[str, str]) -> Iterator[str]:
    """The task's settings: the secret, and the loopback receivers allowed. waq_env: the breaker and the outcome
    counters live in the test's own Redis."""
    close_default_hub(dataclasses.replace(default_hub().settings, callback_secret=SECRET, outbound_allow=ALLOW))
    yield SECRET


# ---- the pure function ---------------------------------------------------------------------------------------
def test_signed_post_verifies_and_tampering_does_not() -> None:
    with Receiver([200]) as receiver:
        assert deliver_callback(receiver.url, PAYLOAD, SECRET, allow=ALLOW) == 200
    headers, body = receiver.requests[0]
    assert json.loads(body) == PAYLOAD
    assert headers["Content-Type"] == "application/json"
    assert headers[callbacks.SIGNATURE_HEADER].startswith("sha256=")
    assert receiver.verified() == [True]
    stamp, signature = headers[callbacks.TIMESTAMP_HEADER], headers[callbacks.SIGNATURE_HEADER]
    assert not verify_signature(body + b" ", SECRET, stamp, signature)
    assert not verify_signature(body, "another-secret", stamp, signature)
    assert not verify_signature(body, SECRET, str(int(stamp) + 1), signature)  # the timestamp is signed too
    # A captured request replayed later than the tolerance is refused.
    assert not verify_signature(body, SECRET, stamp, signature, now=int(stamp) + callbacks.SIGNATURE_TOLERANCE_S + 1)


def test_signature_is_hmac_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000." + b'{"a":1}', hashlib.sha256).hexdigest()
    assert callbacks.sign(b'{"a":1}', SECRET, 1700000000) == "sha256=" + expected


def test_no_secret_sends_no_signature() -> None:
    with Receiver([204]) as receiver:
        assert deliver_callback(receiver.url, PAYLOAD, "", allow=ALLOW) == 204
    assert receiver.requests[0][0].get(callbacks.SIGNATURE_HEADER) is None


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_retryable_statuses_raise(status: int) -> None:
    with Receiver([status], {"Retry-After": "7"}) as receiver, pytest.raises(RetryableCallbackError) as caught:
        deliver_callback(receiver.url, PAYLOAD, SECRET, allow=ALLOW)
    assert caught.value.status == status
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_final_refusals_return_their_status(status: int) -> None:
    with Receiver([status]) as receiver:
        assert deliver_callback(receiver.url, PAYLOAD, SECRET, allow=ALLOW) == status
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_refused_and_not_followed(status: int) -> None:
    with Receiver([status], {"Location": "http://127.0.0.1:1/elsewhere"}) as receiver, \
            pytest.raises(OutboundRefused, match="redirects are not followed"):
        deliver_callback(receiver.url, PAYLOAD, SECRET, allow=ALLOW)
    assert len(receiver.requests) == 1


def test_unreachable_receiver_is_retryable() -> None:
    with pytest.raises(RetryableCallbackError) as caught:
        deliver_callback(f"http://127.0.0.1:{free_port()}/hook", PAYLOAD, SECRET, allow=ALLOW, deadline_s=5)
    assert caught.value.status is None


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "data:,hello", "gopher://x"])
def test_only_http_urls_are_called(url: str, secret: str) -> None:
    from workers.callback_tasks import status_callback

    with pytest.raises(callbacks.InvalidCallbackUrl):
        deliver_callback(url, PAYLOAD, SECRET)
    assert status_callback.apply(args=[url, PAYLOAD]).get() == "invalid url"


def test_retry_loop_over_the_pure_function_500_then_200() -> None:
    attempts = 0
    with Receiver([500, 500, 200]) as receiver:
        while True:
            attempts += 1
            try:
                status = deliver_callback(receiver.url, PAYLOAD, SECRET, allow=ALLOW)
                break
            except RetryableCallbackError:
                assert attempts < 5
    assert (status, attempts, len(receiver.requests)) == (200, 3, 3)
    assert receiver.verified() == [True, True, True]


def test_backoff_is_exponential_with_full_jitter_and_respects_retry_after() -> None:
    rng = random.Random(7)
    for retries in range(12):
        window = min(callbacks.BACKOFF_CAP_S, callbacks.BACKOFF_BASE_S * 2 ** retries)
        delays = [backoff_delay(retries, rng=rng) for _ in range(200)]
        assert all(0 <= d <= window for d in delays)
        assert max(delays) > window / 2  # full jitter spreads over the whole window
    assert backoff_delay(0, retry_after=60, rng=rng) >= 60
    assert backoff_delay(0, retry_after=10**6, rng=rng) == callbacks.BACKOFF_CAP_S


# ---- the Celery task, run eagerly (apply() re-runs a retry at once, ignoring the countdown) --------------------
def test_task_retries_500_then_succeeds(secret: str) -> None:
    from workers.callback_tasks import status_callback

    with Receiver([500, 503, 200]) as receiver:
        result = status_callback.apply(args=[receiver.url, PAYLOAD])
    assert result.get() == "delivered"
    assert len(receiver.requests) == 3
    assert receiver.verified() == [True, True, True]


def test_task_does_not_retry_a_400(secret: str) -> None:
    from workers.callback_tasks import status_callback

    with Receiver([400, 200]) as receiver:
        assert status_callback.apply(args=[receiver.url, PAYLOAD]).get() == "refused 400"
    assert len(receiver.requests) == 1


def test_task_retries_a_429(secret: str) -> None:
    from workers.callback_tasks import status_callback

    with Receiver([429, 200]) as receiver:
        assert status_callback.apply(args=[receiver.url, PAYLOAD]).get() == "delivered"
    assert len(receiver.requests) == 2


def test_task_gives_up_after_ten_retries(secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from wa_queue import circuit
    from workers.callback_tasks import status_callback

    monkeypatch.setattr(circuit, "FAILURES_TO_OPEN", 100)  # the breaker would hold it first (next test)
    with Receiver([503]) as receiver:
        assert status_callback.apply(args=[receiver.url, PAYLOAD]).get() == "gave up"
    assert len(receiver.requests) == 1 + callbacks.MAX_RETRIES


def test_a_failing_host_opens_its_circuit_and_later_deliveries_wait_without_a_call(secret: str,
                                                                                  redis_server) -> None:  # noqa: ANN001
    """FAILURES_TO_OPEN failures in a row open the host's circuit (shared in Redis): the next delivery is put back on
    wa.callbacks with its cool-down as countdown, its retry count unchanged, and the receiver sees no call."""
    from wa_queue import circuit
    from wa_queue.circuit import Breaker
    from workers.callback_tasks import status_callback

    client = redis_server.client()
    with Receiver([503]) as receiver:
        assert status_callback.apply(args=[receiver.url, PAYLOAD]).get() == "deferred"
        assert len(receiver.requests) == circuit.FAILURES_TO_OPEN
        state = Breaker(client).get("127.0.0.1")
        assert state is not None and state.is_open(time.time()) and state.opened == 1
        assert client.llen(names.CALLBACK_QUEUE) == 1  # the deferred delivery, not a retry
        envelope = json.loads(client.lindex(names.CALLBACK_QUEUE, 0))
        assert envelope["headers"]["retries"] == circuit.FAILURES_TO_OPEN  # as the deferred run had it
        assert status_callback.apply(args=[receiver.url, PAYLOAD]).get() == "deferred"
        assert len(receiver.requests) == circuit.FAILURES_TO_OPEN  # no call while open
    counts = {k.decode(): int(v) for k, v in client.hgetall(names.METRICS_CALLBACKS_KEY).items()}
    assert counts["retried"] == circuit.FAILURES_TO_OPEN and counts["deferred"] == 2
    Breaker(client).succeeded("127.0.0.1")
    with Receiver([200]) as receiver:
        assert status_callback.apply(args=[receiver.url, PAYLOAD]).get() == "delivered"


# ---- payload and publishing ------------------------------------------------------------------------------------
def _message(**changes: Any) -> Message:
    now = utcnow()
    base = Message(id="abc123", phone="+14155550123", text="hi", status=MessageStatus.SENT, created_at=now,
                   updated_at=now, next_attempt_at=now, sent_at=now, callback_url="http://127.0.0.1:9/hook")
    return dataclasses.replace(base, **changes)


def test_payload_fields_and_events() -> None:
    sent = _message()
    payload = callbacks.build_payload(sent)
    assert set(payload) == {"id", "event", "status", "phone", "attempts", "sent_at", "delivered_at", "read_at",
                            "failed_at", "error", "error_class", "event_at", "key"}
    assert (payload["event"], payload["status"], payload["error"]) == ("sent", "sent", None)
    later = sent.sent_at + timedelta(seconds=5)
    assert callbacks.build_payload(dataclasses.replace(sent, delivered_at=later))["event"] == "delivered"
    assert callbacks.build_payload(dataclasses.replace(sent, delivered_at=later, read_at=later))["event"] == "read"
    failed = _message(status=MessageStatus.FAILED, sent_at=None, failed_at=later, attempts=6,
                      last_error_class="InvalidNumber", last_error_text="+14155550123 is not on WhatsApp")
    payload = callbacks.build_payload(failed)
    assert payload["event"] == "failed" and payload["attempts"] == 6
    assert payload["error"] == "InvalidNumber: +14155550123 is not on WhatsApp"
    assert payload["failed_at"] == later.isoformat()


def test_on_status_change_publishes_to_the_callback_queue(waq_env: dict[str, str], redis_server) -> None:  # noqa: ANN001
    client = redis_server.client()
    celery = default_hub().celery
    callbacks.on_status_change(_message(callback_url=None), celery)
    callbacks.on_status_change(_message(status=MessageStatus.PROCESSING), celery)
    assert client.llen(names.CALLBACK_QUEUE) == 0
    callbacks.on_status_change(_message(), celery)
    assert client.llen(names.CALLBACK_QUEUE) == 1
    envelope = json.loads(client.lindex(names.CALLBACK_QUEUE, 0))
    assert envelope["headers"]["task"] == names.TASK_CALLBACK
    import base64

    args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
    assert args[0] == "http://127.0.0.1:9/hook"
    assert args[1]["id"] == "abc123" and args[1]["event"] == "sent"


@pytest.mark.timeout(120)
def test_real_worker_delivers_with_a_retry(waq_env: dict[str, str], tmp_path) -> None:  # noqa: ANN001
    """A real `waq callbacks` worker consuming wa.callbacks: a 500 then a 200 reach the receiver, both signed."""
    env = {**waq_env, "WAQ_CALLBACK_SECRET": SECRET, "WAQ_OUTBOUND_ALLOW": "127.0.0.1", "WAQ_CALLBACK_CONCURRENCY": "2"}
    argv = [sys.executable, "-m", "wa_queue.cli", "callbacks"]
    worker = Proc(argv, env, tmp_path / "callback-worker.log")
    try:
        with Receiver([500, 200]) as receiver:
            callbacks.on_status_change(_message(callback_url=receiver.url), default_hub().celery)
            wait_for(lambda: len(receiver.requests) >= 2, 60, 0.2, "the callback and its retry")
            assert [json.loads(body)["id"] for _, body in receiver.requests] == ["abc123", "abc123"]
            assert receiver.verified() == [True, True]
    finally:
        worker.stop()
    assert "gave up" not in (tmp_path / "callback-worker.log").read_text()

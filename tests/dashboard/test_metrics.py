"""/metrics: access rules, values read from the store at scrape time, and send durations/retries recorded by another
process through the broker Redis (wa_queue.metrics_sink). Real redis-server and SQLite store."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from tests.helpers.api import api_client
from tests.helpers.constants import ROOT
from wa_queue import metrics_sink, operations
from wa_queue.devstack.ports import free_port
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import NewMessage, utcnow

ADMIN_KEY = "metrics-admin-key-0123456789"
PRODUCER_KEY = "metrics-producer-key-0123456"
TOKEN = "metrics-bearer-token-0123456789"  # noqa: S105 - a test value


@pytest.fixture
def client(waq_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    return api_client(monkeypatch, WAQ_API_KEYS=f"ops:admin:{ADMIN_KEY},shop:producer:{PRODUCER_KEY}",
                      WAQ_METRICS_TOKEN=TOKEN)


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # noqa: ANN001
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_access(client) -> None:  # noqa: ANN001
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": "unknown-key-0123456789"}).status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": PRODUCER_KEY}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Basic Zm9vOmJhcg=="}).status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    body = client.get("/metrics").get_json()
    assert set(body) == {"error", "details"}


def test_bearer_refused_when_no_token_is_configured(client) -> None:  # noqa: ANN001
    # a Hub keeps the settings it was built with: the API of another one
    close_default_hub(dataclasses.replace(default_hub().settings, metrics_token=""))
    client = create_app(default_hub()).test_client()
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).status_code == 200


def test_store_values_at_scrape_time(client) -> None:  # noqa: ANN001
    samples = scrape(client)
    assert samples[("waq_messages", (("status", "pending"),))] == 0
    assert samples[("waq_oldest_pending_age_seconds", ())] == 0
    operations.enqueue(default_hub(), "+14155550100", "one")
    operations.enqueue(default_hub(), "+14155550101", "two")
    store = default_hub().store
    message, _ = store.insert(NewMessage(phone="+14155550102", text="three"), utcnow())
    store.claim(message.id, owner="t", session="primary", now=utcnow(), lease_s=60)
    store.record_sent(message.id, owner="t", now=utcnow(), session="primary", wa_id="w")
    samples = scrape(client)
    assert samples[("waq_messages", (("status", "pending"),))] == 2
    assert samples[("waq_messages", (("status", "sent"),))] == 1
    assert samples[("waq_messages", (("status", "failed"),))] == 0
    assert samples[("waq_session_sends_today", (("session", "primary"),))] == 1
    assert samples[("waq_session_sends_today", (("session", "secondary"),))] == 0
    assert samples[("waq_session_daily_cap", (("session", "primary"),))] == 300  # waq_env: no warm-up ramp
    assert samples[("waq_session_connected", (("session", "primary"),))] == 0
    assert samples[("waq_oldest_pending_age_seconds", ())] >= 0
    assert samples[("waq_up", (("component", "store"),))] == 1
    assert samples[("waq_up", (("component", "broker"),))] == 1


def test_durations_and_retries_cross_processes(client) -> None:  # noqa: ANN001
    # Another process (as a worker would) records three sends into the broker Redis.
    code = ("from wa_queue import metrics_sink as m; "
            "assert m.record_send('primary', 3.0, 'sent'); assert m.record_send('primary', 0.4, 'sent', 'document'); "
            "assert m.record_send('secondary', 150, 'retry', 'image')")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    samples = scrape(client)
    primary = (("outcome", "sent"), ("session", "primary"))
    assert samples[("waq_send_duration_seconds_count", primary)] == 2
    assert samples[("waq_send_duration_seconds_sum", primary)] == pytest.approx(3.4)
    assert samples[("waq_send_duration_seconds_bucket", (("le", "0.5"), *primary))] == 1
    assert samples[("waq_send_duration_seconds_bucket", (("le", "5.0"), *primary))] == 2
    assert samples[("waq_send_duration_seconds_bucket", (("le", "+Inf"), *primary))] == 2
    secondary = (("outcome", "retry"), ("session", "secondary"))
    assert samples[("waq_send_duration_seconds_bucket", (("le", "120.0"), *secondary))] == 0
    assert samples[("waq_send_duration_seconds_bucket", (("le", "+Inf"), *secondary))] == 1
    assert samples[("waq_send_retries_total", (("session", "secondary"),))] == 1
    assert ("waq_send_retries_total", (("session", "primary"),)) not in samples
    # Sends by kind count the sent ones only: a text and a document of primary, not secondary's retried image.
    assert samples[("waq_sent_by_kind_total", (("kind", "text"), ("session", "primary")))] == 1
    assert samples[("waq_sent_by_kind_total", (("kind", "document"), ("session", "primary")))] == 1
    assert not any(name == "waq_sent_by_kind_total" and ("session", "secondary") in labels for name, labels in samples)


def test_a_broker_outage_is_reported_not_raised(client) -> None:  # noqa: ANN001
    close_default_hub(dataclasses.replace(default_hub().settings, broker_url=f"redis://127.0.0.1:{free_port()}/0"))
    client = create_app(default_hub()).test_client()
    samples = scrape(client)
    assert samples[("waq_up", (("component", "broker"),))] == 0
    assert samples[("waq_up", (("component", "store"),))] == 1
    assert not any(name.startswith("waq_send_duration") for name, _ in samples)
    # And a worker's record_send never raises when the broker is away.
    assert metrics_sink.record_send("primary", 1.0, "sent", client=default_hub().broker_quick(0.5)) is False


def test_a_store_outage_is_reported_not_raised(client, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    def broken(*_, **__):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("store is down")

    monkeypatch.setattr(default_hub().store, "count_by_status", broken)
    samples = scrape(client)
    assert samples[("waq_up", (("component", "store"),))] == 0
    assert not any(name == "waq_messages" for name, _ in samples)


def test_bucket_boundaries() -> None:
    assert metrics_sink.bucket_field(0.0) == "0.25"
    assert metrics_sink.bucket_field(0.25) == "0.25"
    assert metrics_sink.bucket_field(0.26) == "0.5"
    assert metrics_sink.bucket_field(120.0) == "120.0"
    assert metrics_sink.bucket_field(120.1) == "+Inf"


def test_a_workers_buffer_writes_sums_in_the_background_and_keeps_them_through_an_outage(client) -> None:  # noqa: ANN001
    import redis as redis_lib

    from tests.helpers.waiting import wait_for

    down = redis_lib.Redis(port=free_port(), socket_connect_timeout=0.5)
    target = [down]
    held = metrics_sink.SendBuffer(interval_s=3600, client=lambda: target[0])  # its thread never wakes here
    held.record("primary", 0.3, "sent")
    held.record("primary", 0.4, "sent")
    held.record("primary", 9.0, "retry")
    assert held.flush() is False  # broker away: nothing lost, kept for the next write
    target[0] = default_hub().broker
    assert held.flush() is True
    assert held.flush() is True  # nothing left: written once, not twice
    buffer = metrics_sink.SendBuffer(interval_s=0.05)
    buffer.record("primary", 0.1, "sent")
    primary = (("outcome", "sent"), ("session", "primary"))

    def written() -> dict | None:
        samples = scrape(client)
        return samples if samples.get(("waq_send_duration_seconds_count", primary)) == 3 else None

    samples = wait_for(written, 30, 0.1, "the buffer's thread to write")  # no flush(): the thread does it
    assert samples[("waq_send_duration_seconds_sum", primary)] == pytest.approx(0.8)
    assert samples[("waq_send_duration_seconds_bucket", (("le", "0.25"), *primary))] == 1
    assert samples[("waq_send_duration_seconds_bucket", (("le", "0.5"), *primary))] == 3
    assert samples[("waq_send_retries_total", (("session", "primary"),))] == 1
    assert scrape(client)[("waq_send_duration_seconds_count", primary)] == 3

"""The daily message quota per key (issue 24): over it the enqueue answers 429 with details.limit "daily_quota" and
Retry-After until the next UTC midnight, and stores nothing; replays and bulk requests count as the store counts
them; stats and /quota show the use (a producer its own key only). Through Flask's test client, and against a real
gunicorn of two processes with threads, where the accepted messages are the quota exactly."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.helpers.api import api_client
from tests.helpers.flood import flood
from tests.helpers.openapi import start_api
from wa_queue.devstack.redis_server import RedisServer

SHOP_KEY = "shop-key-0123456789abcdef"
CRM_KEY = "crm-key-0123456789abcdefgh"
ADMIN_KEY = "ops-key-0123456789abcdefgh"
KEYS = f"ops:admin:{ADMIN_KEY},shop:producer:{SHOP_KEY},crm:producer:{CRM_KEY}"
SHOP, CRM, ADMIN = ({"X-API-Key": k} for k in (SHOP_KEY, CRM_KEY, ADMIN_KEY))
BASE = "/api/whatsapp"
MESSAGE = {"phone": "+14155550123", "text": "hello"}


@pytest.fixture
def client(waq_env, monkeypatch):  # noqa: ANN001, ANN201
    return api_client(monkeypatch, WAQ_API_KEYS=KEYS, WAQ_DAILY_QUOTA="5", WAQ_KEY_LIMITS="crm:daily=0")


def test_over_the_quota_the_answer_is_429_until_utc_midnight_and_nothing_is_stored(client) -> None:  # noqa: ANN001
    for i in range(3):
        assert client.post(f"{BASE}/messages", json={**MESSAGE, "text": f"one {i}"}, headers=SHOP).status_code == 202
    bulk = {"messages": [{**MESSAGE, "text": f"bulk {i}"} for i in range(3)]}
    refused = client.post(f"{BASE}/messages/bulk", json=bulk, headers=SHOP)
    assert refused.status_code == 429, refused.get_json()
    details = refused.get_json()["details"]
    assert (details["limit"], details["quota"], details["used"], details["requested"]) == ("daily_quota", 5, 3, 3)
    midnight = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
    left = (midnight - datetime.now(UTC)).total_seconds()
    assert abs(int(refused.headers["Retry-After"]) - math.ceil(left)) <= 2
    assert client.post(f"{BASE}/messages/bulk", json={"messages": bulk["messages"][:2]},
                       headers=SHOP).status_code == 202
    assert client.post(f"{BASE}/messages", json=MESSAGE, headers=SHOP).status_code == 429
    # crm has no quota (daily=0 overrides WAQ_DAILY_QUOTA); the admin key's is the default one.
    for _ in range(7):
        assert client.post(f"{BASE}/messages", json=MESSAGE, headers=CRM).status_code == 202
    stats = client.get(f"{BASE}/stats", headers=ADMIN).get_json()
    rows = {row["key"]: row for row in stats["quotas"]}
    assert (rows["shop"]["daily_quota"], rows["shop"]["used_today"]) == (5, 5)
    assert (rows["crm"]["daily_quota"], rows["crm"]["used_today"]) == (0, None)
    assert rows["shop"]["resets_at"] == midnight.isoformat()


def test_an_idempotent_replay_is_answered_over_the_quota(client) -> None:  # noqa: ANN001
    headers = {**SHOP, "Idempotency-Key": "order-1"}
    first = client.post(f"{BASE}/messages", json=MESSAGE, headers=headers)
    client.post(f"{BASE}/messages/bulk", json={"messages": [MESSAGE] * 4}, headers=SHOP)
    assert client.post(f"{BASE}/messages", json=MESSAGE, headers=SHOP).status_code == 429
    replay = client.post(f"{BASE}/messages", json=MESSAGE, headers=headers)
    assert replay.status_code == 200 and replay.get_json()["id"] == first.get_json()["id"]


def test_a_producer_sees_only_its_own_quota_and_an_admin_every_key(client) -> None:  # noqa: ANN001
    client.post(f"{BASE}/messages", json=MESSAGE, headers=SHOP)
    own = client.get(f"{BASE}/quota", headers=SHOP)
    assert own.status_code == 200
    assert [(row["key"], row["used_today"], row["daily_quota"]) for row in own.get_json()] == [("shop", 1, 5)]
    assert [row["key"] for row in client.get(f"{BASE}/quota", headers=CRM).get_json()] == ["crm"]
    assert {row["key"] for row in client.get(f"{BASE}/quota", headers=ADMIN).get_json()} == {"ops", "shop", "crm"}
    assert client.get(f"{BASE}/stats", headers=SHOP).status_code == 403


QUOTA, THREADS, EACH = 30, 12, 6


def test_two_gunicorn_processes_with_threads_accept_the_quota_exactly(tmp_path: Path,
                                                                     redis_server: RedisServer) -> None:
    proc, url = start_api(tmp_path, redis_server, keys=KEYS, workers=2,
                          env={"WAQ_DAILY_QUOTA": str(QUOTA), "WAQ_RATE_REQUESTS_PER_S": "0",
                               "WAQ_RATE_MESSAGES_PER_S": "0"})

    def enqueue(http: requests.Session, thread: int, i: int) -> requests.Response:
        if i % 2:
            return http.post(f"{url}{BASE}/messages", json={**MESSAGE, "text": f"flood {thread}-{i}"},
                             headers={**SHOP, "Idempotency-Key": f"t{thread}-{i}"}, timeout=30)
        return http.post(f"{url}{BASE}/messages/bulk", timeout=30, headers=SHOP, json={"messages": [
            {**MESSAGE, "text": f"flood {thread}-{i}-{n}"} for n in range(2)]})

    try:
        answers = flood(THREADS, EACH, enqueue)
        codes = Counter(answer.status_code for answer in answers)
        assert set(codes) == {202, 429}, codes
        accepted = sum(answer.json().get("count", 1) for answer in answers if answer.status_code == 202)
        assert accepted == QUOTA, codes
        assert all(a.json()["details"]["limit"] == "daily_quota" for a in answers if a.status_code == 429)
        with sqlite3.connect(tmp_path / "data" / "waq.db") as conn:
            stored = conn.execute("SELECT count(*) FROM messages WHERE enqueued_by = 'shop'").fetchone()[0]
        assert stored == QUOTA
        rows = requests.get(f"{url}{BASE}/quota", headers=SHOP, timeout=10).json()
        assert rows[0]["used_today"] == QUOTA
    finally:
        proc.stop()

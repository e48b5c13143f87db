"""Owners (issue 24, part 5): a producer key reads only the messages it enqueued (404 otherwise, as for an unknown id),
an admin key reads all and sees the owner; idempotency scopes never meet. Through Flask's test client, and once
against a real gunicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers.api import api_client
from tests.helpers.constants import BASE, CRM, CRM_KEY, MESSAGE, OPS, OPS_KEY, SHOP, SHOP_KEY
from tests.helpers.openapi import start_api
from wa_queue.devstack.redis_server import RedisServer

KEYS = f"ops:admin:{OPS_KEY},shop:producer:{SHOP_KEY},crm:producer:{CRM_KEY}"
ADMIN = OPS


@pytest.fixture
def client(waq_env, monkeypatch):  # noqa: ANN001, ANN201
    return api_client(monkeypatch, WAQ_API_KEYS=KEYS)


def test_a_producer_reads_only_its_own_messages(client) -> None:  # noqa: ANN001
    mine = client.post(f"{BASE}/messages", json=MESSAGE, headers=SHOP).get_json()["id"]
    assert client.get(f"{BASE}/messages/{mine}", headers=SHOP).status_code == 200
    other = client.get(f"{BASE}/messages/{mine}", headers=CRM)
    unknown = client.get(f"{BASE}/messages/{'0' * 32}", headers=CRM)
    # 404, not 403, and the same answer as for an id nobody has: crm cannot probe shop's ids.
    assert other.status_code == unknown.status_code == 404
    assert other.get_json()["error"].replace(mine, "ID") == unknown.get_json()["error"].replace("0" * 32, "ID")
    seen = client.get(f"{BASE}/messages/{mine}", headers=ADMIN)
    assert seen.status_code == 200 and seen.get_json()["enqueued_by"] == "shop"


def test_an_idempotent_replay_gives_another_producer_nothing(client) -> None:  # noqa: ANN001
    first = client.post(f"{BASE}/messages", json=MESSAGE, headers={**SHOP, "Idempotency-Key": "order-1"})
    second = client.post(f"{BASE}/messages", json=MESSAGE, headers={**CRM, "Idempotency-Key": "order-1"})
    assert first.status_code == second.status_code == 202
    assert first.get_json()["id"] != second.get_json()["id"]


def test_a_single_key_never_meets_a_bulk_item(client) -> None:  # noqa: ANN001
    # Before: item 0 of a bulk under "k" was stored as "shop:k#0", the very key of a single request "k#0".
    single = client.post(f"{BASE}/messages", json={**MESSAGE, "text": "single"},
                         headers={**SHOP, "Idempotency-Key": "k#0"})
    bulk = client.post(f"{BASE}/messages/bulk", json={"messages": [{**MESSAGE, "text": "bulk item"}]},
                       headers={**SHOP, "Idempotency-Key": "k"})
    assert single.status_code == 202
    assert bulk.status_code == 202, bulk.get_json()  # was 409: the single message's key, other content
    bulk_id = bulk.get_json()["messages"][0]["id"]
    assert bulk_id != single.get_json()["id"]
    stored = client.get(f"{BASE}/messages/{bulk_id}", headers=SHOP).get_json()
    assert stored["text"] == "bulk item" and stored["idempotency_key"] == "shop k 0"


def test_a_retry_that_spans_the_upgrade_replays_the_old_row(client) -> None:  # noqa: ANN001
    # A row an older version stored ("<name>:<key>#<i>", no owner) is a replay, not a second message.
    from wa_queue import operations
    from wa_queue.hub import default_hub

    old = operations.enqueue(default_hub(), MESSAGE["phone"], MESSAGE["text"], idempotency_key="shop:up#0")
    again = client.post(f"{BASE}/messages/bulk", json={"messages": [MESSAGE]},
                        headers={**SHOP, "Idempotency-Key": "up"})
    assert again.status_code == 200 and again.get_json()["messages"][0]["id"] == old


@pytest.fixture(scope="module")
def gunicorn_url(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[str]:
    proc, url = start_api(Path(tmp_path_factory.mktemp("owners-gunicorn")), redis_server, keys=KEYS)
    yield url
    proc.stop()


def test_cross_producer_reads_against_gunicorn(gunicorn_url: str) -> None:
    posted = requests.post(f"{gunicorn_url}{BASE}/messages", json=MESSAGE, headers=SHOP, timeout=10)
    assert posted.status_code == 202, posted.text
    mine = posted.json()["id"]
    assert requests.get(f"{gunicorn_url}{BASE}/messages/{mine}", headers=SHOP, timeout=10).status_code == 200
    assert requests.get(f"{gunicorn_url}{BASE}/messages/{mine}", headers=CRM, timeout=10).status_code == 404
    admin = requests.get(f"{gunicorn_url}{BASE}/messages/{mine}", headers=ADMIN, timeout=10)
    assert admin.status_code == 200 and admin.json()["enqueued_by"] == "shop"
    spec = requests.get(f"{gunicorn_url}/api/swagger.json", headers=ADMIN, timeout=10).json()
    assert "enqueued_by" in spec["definitions"]["Message"]["properties"]

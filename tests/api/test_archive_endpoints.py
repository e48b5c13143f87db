"""GET /api/whatsapp/archive and /archive/<id> (admin, read-only) through Flask's test client, against a SQLite file.
Fixture `waq_env` comes from tests/conftest.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers.api import api_client
from tests.helpers.constants import ADMIN, ADMIN_KEY, BASE, PRODUCER, PRODUCER_KEY
from wa_queue.hub import default_hub
from wa_queue.models import NewMessage, utcnow


@pytest.fixture
def client(waq_env, monkeypatch):  # noqa: ANN001, ANN201
    return api_client(monkeypatch, WAQ_API_KEYS=f"ops:admin:{ADMIN_KEY},shop:producer:{PRODUCER_KEY}")


def archived_message(session: str = "primary", error_class: str = "InvalidNumber", days_ago: int = 40) -> str:
    store, now = default_hub().store, utcnow()
    failed_at = now - timedelta(days=days_ago)
    message, _ = store.insert(NewMessage(phone="+14155550123", text="boom"), failed_at)
    store.claim(message.id, owner="t", session=session, now=failed_at, lease_s=60)
    store.record_failed(message.id, owner="t", now=failed_at, error_class=error_class, error_text="not on WA")
    store.archive_failed(older_than=now - timedelta(days=30), now=now)
    return message.id


def assert_error(response, status: int) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert response.mimetype == "application/json" and set(body) == {"error", "details"} and body["error"]
    return body


def test_archive_list_pages_and_filters_like_failed(client) -> None:  # noqa: ANN001
    ids = [archived_message(days_ago=40 - i) for i in range(3)] + [archived_message("secondary", "Transient", 35)]
    page = client.get(f"{BASE}/archive?page=1&per_page=2", headers=ADMIN).get_json()
    assert page["total"] == 4 and page["pages"] == 2 and page["page"] == 1 and page["per_page"] == 2
    assert [m["id"] for m in page["items"]] == [ids[3], ids[2]]  # newest failure first
    assert page["items"][0]["status"] == "failed" and page["items"][0]["last_error_class"] == "Transient"
    last = client.get(f"{BASE}/archive?page=2&per_page=2", headers=ADMIN).get_json()
    assert [m["id"] for m in last["items"]] == [ids[1], ids[0]]
    assert client.get(f"{BASE}/archive?session=secondary", headers=ADMIN).get_json()["total"] == 1
    assert client.get(f"{BASE}/archive?error=InvalidNum", headers=ADMIN).get_json()["total"] == 3
    assert client.get(f"{BASE}/archive?error=nothing-like-it", headers=ADMIN).get_json()["total"] == 0
    assert client.get(f"{BASE}/failed", headers=ADMIN).get_json()["total"] == 0  # they left the failed list
    for query in ("page=0", "page=x", "per_page=201", "per_page=-1", "session=nope", "error=" + "e" * 201):
        assert_error(client.get(f"{BASE}/archive?{query}", headers=ADMIN), 400)


def test_archive_empty(client) -> None:  # noqa: ANN001
    body = client.get(f"{BASE}/archive", headers=ADMIN).get_json()
    assert body == {"items": [], "page": 1, "per_page": 50, "total": 0, "pages": 0}


def test_archived_message_document_and_404(client) -> None:  # noqa: ANN001
    message_id = archived_message()
    response = client.get(f"{BASE}/archive/{message_id}", headers=ADMIN)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == message_id and body["status"] == "failed" and body["last_error_text"] == "not on WA"
    assert [entry["event"] for entry in body["history"]][-1] == "failed"
    assert_error(client.get(f"{BASE}/messages/{message_id}", headers=ADMIN), 404)  # gone from the live store
    assert_error(client.get(f"{BASE}/archive/nope", headers=ADMIN), 404)
    assert_error(client.get(f"{BASE}/archive/{'x' * 500}", headers=ADMIN), 404)


@pytest.mark.parametrize("path", ["/archive", "/archive/x"])
def test_archive_is_admin_only(client, path) -> None:  # noqa: ANN001
    assert_error(client.get(BASE + path), 401)
    assert_error(client.get(BASE + path, headers={"X-API-Key": "wrong-key-0123456789abc"}), 401)
    assert_error(client.get(BASE + path, headers=PRODUCER), 403)


def test_archive_is_documented(client) -> None:  # noqa: ANN001
    spec = client.get("/api/swagger.json", headers=ADMIN).get_json()
    listing, item = spec["paths"]["/api/whatsapp/archive"]["get"], spec["paths"]["/api/whatsapp/archive/{message_id}"]
    failed = spec["paths"]["/api/whatsapp/failed"]["get"]
    assert [p["name"] for p in listing["parameters"]] == [p["name"] for p in failed["parameters"]]
    assert set(listing["responses"]) == set(failed["responses"]) == {"200", "400", "401", "403"}
    assert set(item["get"]["responses"]) == {"200", "400", "401", "403", "404"}  # 400: gunicorn's limits
    assert spec["definitions"]["ArchivePage"] == spec["definitions"]["FailedPage"]

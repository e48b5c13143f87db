"""The REST API through Flask's test client, against a real redis-server and a SQLite file, producer side: enqueue,
bulk, access control, /healthz, and every error as JSON. Fixtures `app` and `client` come from tests/api/conftest.py,
`redis_server` and `waq_env` from tests/conftest.py."""

from __future__ import annotations

import pytest

from api.app import create_app
from tests.api.helpers import OTHER_PRODUCER_KEY, assert_error, post
from tests.helpers.constants import ADMIN, BASE, PHONE, PRODUCER
from wa_queue import names, operations
from wa_queue.hub import close_default_hub, default_hub


# ---- enqueue ---------------------------------------------------------------------------------------------------
def test_enqueue_commits_then_answers_202(client, redis_server) -> None:  # noqa: ANN001
    response = post(client, "/messages", {"phone": "(415) 555-0123", "text": "hi", "metadata": {"order": 7}})
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "pending" and response.headers["Location"].endswith(body["id"])
    stored = default_hub().store.get(body["id"])
    assert stored.phone == PHONE and stored.metadata == {"order": 7}
    # Published after the commit, by the API's background publisher (it may still be on its way after the 202).
    assert default_hub().drain_publishes(10)
    assert default_hub().store.get(body["id"]).dispatched_at is not None
    assert default_hub().publisher.queue_length(names.DEFAULT_QUEUE) == 1


def test_get_message_shows_status_attempts_history(client) -> None:  # noqa: ANN001
    message_id = post(client, "/messages", {"phone": PHONE, "text": "hi"}).get_json()["id"]
    body = client.get(f"{BASE}/messages/{message_id}", headers=PRODUCER).get_json()
    assert body["id"] == message_id and body["status"] == "pending" and body["attempts"] == 0
    assert body["history"][0]["event"] == "enqueued" and body["created_at"] and body["in_doubt"] is False
    assert "lease_owner" not in body and "content_hash" not in body


def test_get_unknown_message_is_404_json(client) -> None:  # noqa: ANN001
    assert_error(client.get(f"{BASE}/messages/nope", headers=PRODUCER), 404)
    assert_error(client.get(f"{BASE}/messages/{'x' * 500}", headers=PRODUCER), 404)


def test_idempotency_replay_and_conflict(client) -> None:  # noqa: ANN001
    headers = {**PRODUCER, "Idempotency-Key": "order-42"}
    first = post(client, "/messages", {"phone": PHONE, "text": "hi"}, headers)
    again = post(client, "/messages", {"phone": "+1 415 555 0123", "text": "hi"}, headers)  # same once normalised
    assert first.status_code == 202 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert_error(post(client, "/messages", {"phone": PHONE, "text": "other"}, headers), 409)
    # Keys are scoped per API key: another producer's same key is a new message, not a replay of this one.
    other = post(client, "/messages", {"phone": PHONE, "text": "hi"}, {"X-API-Key": OTHER_PRODUCER_KEY,
                                                                      "Idempotency-Key": "order-42"})
    assert other.status_code == 202 and other.get_json()["id"] != first.get_json()["id"]
    assert_error(post(client, "/messages", {"phone": PHONE, "text": "hi"}, {**PRODUCER, "Idempotency-Key": "a b"}),
                 400)


@pytest.mark.parametrize(("body", "field"), [
    ({"text": "hi"}, "phone"),
    ({"phone": PHONE}, "text"),
    ({"phone": "12", "text": "hi"}, "phone"),
    ({"phone": 14155550123, "text": "hi"}, "phone"),
    ({"phone": PHONE, "text": ""}, "text"),
    ({"phone": PHONE, "text": "x" * 4097}, "text"),
    ({"phone": PHONE, "text": 5}, "text"),
    ({"phone": PHONE, "text": "hi", "session": "nope"}, "session"),
    ({"phone": PHONE, "text": "hi", "callback_url": "ftp://x"}, "callback_url"),
    ({"phone": PHONE, "text": "hi", "metadata": [1]}, "metadata"),
    ({"phone": PHONE, "text": "hi", "priority": 1}, "priority"),
])
def test_bad_fields_are_400_naming_the_field(client, body, field) -> None:  # noqa: ANN001
    error = assert_error(post(client, "/messages", body), 400)
    assert error["details"]["field"] == field
    assert default_hub().store.count_by_status()["pending"] == 0


def test_text_of_4096_chars_is_accepted(client) -> None:  # noqa: ANN001
    assert post(client, "/messages", {"phone": PHONE, "text": "é" * 4096}).status_code == 202


@pytest.mark.parametrize(("data", "content_type", "status"), [
    ("{}", "text/plain", 415),
    ("phone=1", "application/x-www-form-urlencoded", 415),
    ("{", "application/json", 400),
    ("[1, 2]", "application/json", 400),
    ('{"phone": NaN}', "application/json", 400),
    (b"\xff\xfe", "application/json", 400),
    ('{"phone": "\\ud800", "text": "x"}', "application/json", 400),
    ("[" * 50_000, "application/json", 400),  # nesting deeper than the parser's recursion limit
], ids=["text", "form", "broken", "array", "nan", "not-utf8", "surrogate", "deep"])
def test_non_json_bodies(client, data, content_type, status) -> None:  # noqa: ANN001
    response = client.post(f"{BASE}/messages", data=data, headers={**PRODUCER, "Content-Type": content_type})
    assert_error(response, status)
    assert_error(client.post(f"{BASE}/messages", headers=PRODUCER), 415)


def test_body_over_the_limit_is_413_json(client) -> None:  # noqa: ANN001
    body = assert_error(post(client, "/messages", {"phone": PHONE, "text": "x" * 70_000}), 413)
    assert body["details"]["limit_bytes"] == 64 * 1024


# ---- bulk -------------------------------------------------------------------------------------------------------
def test_bulk_all_or_nothing_with_per_item_errors(client) -> None:  # noqa: ANN001
    items = [{"phone": PHONE, "text": "ok"}, {"phone": "bad", "text": "x"}, {"phone": PHONE, "text": ""}, 7,
             {"phone": PHONE, "text": "hi", "extra": 1}]
    error = assert_error(post(client, "/messages/bulk", {"messages": items}), 400)
    assert [(i["index"], i["field"]) for i in error["details"]["items"]] == [
        (1, "phone"), (2, "text"), (3, None), (4, "extra")]
    assert all(i["message"] for i in error["details"]["items"])
    assert default_hub().store.count_by_status()["pending"] == 0


def test_bulk_stores_all_and_replays(client) -> None:  # noqa: ANN001
    body = {"messages": [{"phone": PHONE, "text": f"m{i}"} for i in range(3)]}
    headers = {**PRODUCER, "Idempotency-Key": "batch-1"}
    first = post(client, "/messages/bulk", body, headers)
    assert first.status_code == 202 and first.get_json()["count"] == 3 and first.get_json()["created"] == 3
    again = post(client, "/messages/bulk", body, headers)
    assert again.status_code == 200 and again.get_json()["messages"] == first.get_json()["messages"]
    assert default_hub().store.count_by_status()["pending"] == 3
    body["messages"][2]["text"] = "changed"
    assert_error(post(client, "/messages/bulk", body, headers), 409)


@pytest.mark.parametrize("body", [{}, {"messages": []}, {"messages": {}}, {"messages": [{}] * 1001},
                                  {"messages": [], "x": 1}])
def test_bulk_shape_errors(client, body) -> None:  # noqa: ANN001
    assert_error(post(client, "/messages/bulk", body), 400)


def test_bulk_of_1000(client) -> None:  # noqa: ANN001
    body = {"messages": [{"phone": PHONE, "text": f"m{i}"} for i in range(1000)]}
    response = client.post(f"{BASE}/messages/bulk", json=body, headers=PRODUCER)
    assert response.status_code == 202 and response.get_json()["count"] == 1000


# ---- access control ---------------------------------------------------------------------------------------------
ADMIN_ONLY = [("get", "/health"), ("get", "/stats"), ("get", "/failed"), ("post", "/failed/x/retry"),
              ("post", "/failed/x/mark-sent"),
              ("post", "/failed/retry-all"), ("delete", "/failed/x"), ("get", "/sessions"),
              ("get", "/sessions/primary/qr"), ("post", "/sessions/primary/restart")]
PRODUCER_OK = [("post", "/messages"), ("post", "/messages/bulk"), ("get", "/messages/x")]


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY + PRODUCER_OK)
def test_missing_or_unknown_key_is_401(client, method, path) -> None:  # noqa: ANN001
    assert_error(getattr(client, method)(BASE + path), 401)
    assert_error(getattr(client, method)(BASE + path, headers={"X-API-Key": "wrong-key-0123456789abc"}), 401)
    assert_error(getattr(client, method)(BASE + path, headers={"X-API-Key": "ünïcödé"}), 401)


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY)
def test_producer_cannot_administer(client, method, path) -> None:  # noqa: ANN001
    assert_error(getattr(client, method)(BASE + path, headers=PRODUCER), 403)


def test_admin_may_enqueue_and_docs_need_a_key(client) -> None:  # noqa: ANN001
    assert post(client, "/messages", {"phone": PHONE, "text": "hi"}, ADMIN).status_code == 202
    assert_error(client.get("/api/swagger.json"), 401)
    assert_error(client.get("/api/docs"), 401)
    spec = client.get("/api/swagger.json", headers=PRODUCER).get_json()
    assert spec["securityDefinitions"]["apiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "A key from WAQ_API_KEYS; role producer or admin"}
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert client.get("/api/docs", headers=ADMIN).status_code == 200


# ---- /healthz ---------------------------------------------------------------------------------------------------
def test_healthz_needs_no_key_and_names_what_is_down(client, monkeypatch) -> None:  # noqa: ANN001
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    monkeypatch.setenv("WAQ_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    close_default_hub()  # a Hub keeps the settings it was built with: the API of another one
    body = assert_error(create_app(default_hub()).test_client().get("/healthz"), 503)
    assert "broker" in body["error"] and body["details"] == {"store": "ok", "broker": "down"}


def test_healthz_store_down(client, monkeypatch) -> None:  # noqa: ANN001
    from wa_queue.errors import StoreError

    def broken() -> None:
        raise StoreError("disk gone")

    monkeypatch.setattr(default_hub().store, "ping", broken)
    body = assert_error(client.get("/healthz"), 503)
    assert "store" in body["error"] and body["details"]["store"] == "down"
    health = client.get(f"{BASE}/health", headers=ADMIN).get_json()
    assert health["overall"] == "critical" and health["queue"]["pending"] is None


# ---- every error is JSON -----------------------------------------------------------------------------------------
def test_404_405_are_json(client) -> None:  # noqa: ANN001
    assert_error(client.get("/nothing/here"), 404)
    assert_error(client.get(f"{BASE}/nothing", headers=ADMIN), 404)
    body = assert_error(client.put(f"{BASE}/messages", headers=ADMIN), 405)
    assert body["details"]["allowed"] == ["POST"]
    assert_error(client.delete("/healthz"), 405)


def test_store_failure_on_enqueue_is_503_and_unexpected_errors_500_json(client, monkeypatch) -> None:  # noqa: ANN001
    from wa_queue.errors import StoreError

    def locked(app, news):  # noqa: ANN001, ANN202
        raise StoreError("database is locked")

    monkeypatch.setattr(operations, "submit", locked)
    assert_error(post(client, "/messages", {"phone": PHONE, "text": "hi"}), 503)

    def bug(app, news):  # noqa: ANN001, ANN202
        raise RuntimeError("bug")

    monkeypatch.setattr(operations, "submit", bug)
    body = assert_error(post(client, "/messages", {"phone": PHONE, "text": "hi"}), 500)
    assert "bug" not in body["error"]  # internals stay in the log


def test_two_apps_in_one_process(waq_env, app) -> None:  # noqa: ANN001
    second = create_app(default_hub()).test_client()
    assert second.get("/healthz").status_code == 200


def test_concurrent_enqueues_share_commits_and_each_is_published_once(client, redis_server) -> None:  # noqa: ANN001
    # 8 threads at once through the group commit and the background publisher: every answer names its own message,
    # each stored once and queued once.
    import threading

    ids: list[str] = []
    lock = threading.Lock()

    def producer(n: int) -> None:
        for i in range(10):
            response = post(client, "/messages", {"phone": PHONE, "text": f"t{n}-{i}"})
            assert response.status_code == 202
            with lock:
                ids.append(response.get_json()["id"])

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(set(ids)) == 80
    assert default_hub().drain_publishes(10)
    texts = {default_hub().store.get(i).text for i in ids}
    assert texts == {f"t{n}-{i}" for n in range(8) for i in range(10)}
    assert default_hub().publisher.queue_length(names.DEFAULT_QUEUE) == 80
    assert all(default_hub().store.get(i).dispatched_at is not None for i in ids)

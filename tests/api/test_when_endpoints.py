"""Scheduled sends, expiry, priorities, cancel and batches through the REST API (Flask's test client, a real
redis-server and SQLite file)."""

from __future__ import annotations

from datetime import timedelta

from tests.api.helpers import OTHER_PRODUCER_KEY, assert_error, failed_message, post
from tests.helpers.constants import ADMIN, BASE, PHONE, PRODUCER
from wa_queue import names
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus, utcnow

OTHER = {"X-API-Key": OTHER_PRODUCER_KEY}


def _enqueue(client, headers=PRODUCER, **fields) -> str:  # noqa: ANN001
    response = post(client, "/messages", {"phone": PHONE, "text": "hi", **fields}, headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["id"]


def test_a_scheduled_message_waits_in_the_store_not_in_the_broker(client) -> None:  # noqa: ANN001
    later = (utcnow() + timedelta(hours=2)).replace(microsecond=0)
    mid = _enqueue(client, send_at=later.isoformat(), priority="high", ttl_s=3 * 3600)
    now_id = _enqueue(client)
    assert default_hub().drain_publishes(10)
    scheduled, now = default_hub().store.get(mid), default_hub().store.get(now_id)
    assert scheduled.next_attempt_at == later and scheduled.dispatched_at is None and now.dispatched_at is not None
    assert default_hub().publisher.queue_length(names.DEFAULT_QUEUE) == 1
    body = client.get(f"{BASE}/messages/{mid}", headers=PRODUCER).get_json()
    assert (body["send_at"], body["priority"], body["status"]) == (later.isoformat(), "high", "pending")
    assert body["expires_at"] is not None


def test_times_that_cannot_hold_are_409_and_malformed_ones_400(client) -> None:  # noqa: ANN001
    far = (utcnow() + timedelta(days=36)).isoformat()
    body = assert_error(post(client, "/messages", {"phone": PHONE, "text": "x", "send_at": far}), 409)
    assert body["details"]["field"] == "send_at" and "WAQ_MAX_SCHEDULE_DAYS" in body["error"]
    past = assert_error(post(client, "/messages", {"phone": PHONE, "text": "x",
                                                   "expires_at": "2020-01-01T00:00:00Z"}), 409)
    assert past["details"]["field"] == "expires_at"
    for field, value in (("send_at", "tomorrow"), ("priority", "urgent"), ("ttl_s", 0), ("batch", "a/b"),
                         ("send_at", 1767000000)):
        bad = assert_error(post(client, "/messages", {"phone": PHONE, "text": "x", field: value}), 400)
        assert bad["details"]["field"] == field
    bulk = assert_error(post(client, "/messages/bulk", {"messages": [{"phone": PHONE, "text": "x", "send_at": far}]}),
                        409)
    assert bulk["details"]["items"][0]["field"] == "send_at"
    assert default_hub().store.count_by_status()["pending"] == 0  # nothing stored


def test_a_producer_cancels_its_own_pending_message_once(client) -> None:  # noqa: ANN001
    mid = _enqueue(client, callback_url="https://shop.example/hook")
    assert_error(client.post(f"{BASE}/messages/{mid}/cancel", headers=OTHER), 404)  # another producer's: unseen
    response = client.post(f"{BASE}/messages/{mid}/cancel", headers=PRODUCER)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "cancelled" and body["cancelled_at"] and body["history"][-1]["event"] == "cancelled"
    assert body["history"][-1]["error_text"] == "cancelled by key shop"
    assert default_hub().publisher.queue_length(names.CALLBACK_QUEUE) == 1  # its callback
    again = client.post(f"{BASE}/messages/{mid}/cancel", headers=PRODUCER)
    assert again.status_code == 200 and again.get_json()["status"] == "cancelled"
    assert len(default_hub().store.get(mid).history) == 2  # enqueued, cancelled: the second cancel wrote nothing


def test_what_cannot_be_cancelled_is_409_saying_why(client) -> None:  # noqa: ANN001
    store = default_hub().store
    held = _enqueue(client, headers=ADMIN)
    store.claim(held, owner="w", session="primary", now=utcnow(), lease_s=60)
    body = assert_error(client.post(f"{BASE}/messages/{held}/cancel", headers=ADMIN), 409)
    assert body["details"]["status"] == "processing" and "being sent" in body["error"]
    store.mark_sending(held, owner="w", now=utcnow())
    store.recover(held, owner="w", now=utcnow(), reason="worker died")  # pending again, in doubt
    body = assert_error(client.post(f"{BASE}/messages/{held}/cancel", headers=ADMIN), 409)
    assert "in doubt" in body["error"]
    failed = failed_message()
    body = assert_error(client.post(f"{BASE}/messages/{failed}/cancel", headers=ADMIN), 409)
    assert body["details"]["status"] == "failed"
    assert store.get(held).status is MessageStatus.PENDING and store.get(failed).status is MessageStatus.FAILED


def test_an_admin_cancels_any_message(client) -> None:  # noqa: ANN001
    mid = _enqueue(client)
    assert client.post(f"{BASE}/messages/{mid}/cancel", headers=ADMIN).get_json()["status"] == "cancelled"


def test_a_bulk_is_a_batch_that_can_be_followed_paused_resumed_and_cancelled(client) -> None:  # noqa: ANN001
    items = [{"phone": PHONE, "text": f"reminder {i}"} for i in range(3)]
    made = post(client, "/messages/bulk", {"messages": items}).get_json()
    named = post(client, "/messages/bulk", {"messages": items[:1], "batch": "december"}).get_json()
    assert made["batch"] and named["batch"] == "december"
    name = made["batch"]
    report = client.get(f"{BASE}/batches/{name}", headers=PRODUCER).get_json()
    assert report["total"] == 3 and report["counts"]["pending"] == 3 and report["expected_end_at"]
    assert_error(client.get(f"{BASE}/batches/{name}", headers=OTHER), 404)  # not the other producer's
    assert_error(client.post(f"{BASE}/batches/{name}/pause", headers=OTHER), 404)
    paused = client.post(f"{BASE}/batches/{name}/pause", headers=PRODUCER).get_json()
    assert paused == {"name": name, "changed": 3, "left": {}}
    report = client.get(f"{BASE}/batches/{name}", headers=PRODUCER).get_json()
    assert report["paused"] and report["counts"]["paused"] == 3 and report["expected_end_at"] is None
    resumed = client.post(f"{BASE}/batches/{name}/resume", headers=PRODUCER).get_json()
    assert resumed["changed"] == 3
    store = default_hub().store
    first = made["messages"][0]["id"]
    store.claim(first, owner="w", session="primary", now=utcnow(), lease_s=60)  # a worker holds one
    cancelled = client.post(f"{BASE}/batches/{name}/cancel", headers=ADMIN).get_json()
    assert cancelled == {"name": name, "changed": 2, "left": {"processing": 1}}
    report = client.get(f"{BASE}/batches/{name}", headers=ADMIN).get_json()
    assert report["counts"]["cancelled"] == 2 and report["counts"]["processing"] == 1
    assert client.get(f"{BASE}/batches/december", headers=PRODUCER).get_json()["total"] == 1


def test_an_items_own_batch_wins_over_the_bulks_and_is_held_to_the_rule(client) -> None:  # noqa: ANN001
    items = [{"phone": PHONE, "text": "own", "batch": "vip"}, {"phone": PHONE, "text": "joins"}]
    answer = post(client, "/messages/bulk", {"messages": items, "batch": "december"}).get_json()
    store = default_hub().store
    assert [store.get(m["id"]).batch for m in answer["messages"]] == ["vip", "december"]
    for bad in (-964372, "a/b", ""):  # a schema fuzzer's integer, a path separator, empty
        refused = post(client, "/messages/bulk", {"messages": [{"phone": PHONE, "text": "x", "batch": bad}]})
        assert refused.status_code == 400, (bad, refused.get_data(as_text=True))
        assert [(i["index"], i["field"]) for i in refused.get_json()["details"]["items"]] == [(0, "batch")]


def test_a_bulk_replay_reports_the_batch_it_was_stored_in(client) -> None:  # noqa: ANN001
    body = {"messages": [{"phone": PHONE, "text": "once"}]}
    key = {**PRODUCER, "Idempotency-Key": "bulk-1"}
    first = post(client, "/messages/bulk", body, key)
    again = post(client, "/messages/bulk", body, key)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.get_json()["batch"] == first.get_json()["batch"]


def test_the_batch_list_shows_a_producer_its_own(client) -> None:  # noqa: ANN001
    post(client, "/messages/bulk", {"messages": [{"phone": PHONE, "text": "a"}], "batch": "shop-1"})
    post(client, "/messages/bulk", {"messages": [{"phone": PHONE, "text": "b"}] * 2, "batch": "crm-1"}, OTHER)
    post(client, "/messages/bulk", {"messages": [{"phone": PHONE, "text": "c"}], "batch": "crm-1"})
    mine = client.get(f"{BASE}/batches", headers=PRODUCER).get_json()
    assert sorted((b["name"], b["total"]) for b in mine) == [("crm-1", 1), ("shop-1", 1)]  # its own messages only
    every = client.get(f"{BASE}/batches", headers=ADMIN).get_json()
    assert sorted((b["name"], b["total"]) for b in every) == [("crm-1", 3), ("shop-1", 1)]
    assert every[0]["counts"]["pending"] == every[0]["total"]


def test_a_replay_with_ttl_s_is_a_replay_not_a_conflict(client) -> None:  # noqa: ANN001
    """ttl_s counts from each try's now, so the expires_at it gives differs at every replay: the request's own
    ttl_s is the content (a chaos run's producer retry was refused 409 "used by other content")."""
    body = {"phone": PHONE, "text": "expires soon", "ttl_s": 30}
    key = {**PRODUCER, "Idempotency-Key": "ttl-1"}
    first = post(client, "/messages", body, key)
    again = post(client, "/messages", body, key)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    other = post(client, "/messages", {**body, "ttl_s": 31}, key)  # another ttl_s: another request
    assert other.status_code == 409 and "used by other content" in other.get_json()["error"]

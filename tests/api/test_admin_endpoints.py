"""The REST API through Flask's test client, against a real redis-server and a SQLite file, admin side: health,
stats, failed messages (list, retry, mark-sent, delete) and sessions (QR, restart). Fixtures `app` and `client` come
from tests/api/conftest.py, `redis_server` and `waq_env` from tests/conftest.py."""

from __future__ import annotations

import json
from datetime import timedelta

from api.app import create_app
from tests.api.helpers import assert_error, connect, failed_message, post
from tests.helpers.constants import ADMIN, BASE, NO_MESSAGES, PHONE
from wa_queue import names
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import MessageStatus, NewMessage, utcnow


# ---- monitoring ---------------------------------------------------------------------------------------------------
def test_health_levels(client) -> None:  # noqa: ANN001
    def overall() -> str:
        body = client.get(f"{BASE}/health", headers=ADMIN).get_json()
        assert set(body["queue"]) == set(NO_MESSAGES)
        assert set(body["sessions"]["primary"]) >= {"status", "number", "connected"}
        return body["overall"]

    assert overall() == "critical"  # no session connected
    connect("primary")
    assert overall() == "degraded"
    connect("secondary")
    assert overall() == "healthy"
    message_id = failed_message()
    assert overall() == "warning"
    client.delete(f"{BASE}/failed/{message_id}", headers=ADMIN)
    assert overall() == "healthy"
    default_hub().store.insert(NewMessage(phone=PHONE, text="old"), utcnow() - timedelta(minutes=20))
    assert overall() == "warning"


def test_health_warns_of_a_page_clock_far_off_the_workers(client) -> None:  # noqa: ANN001
    connect("primary")
    connect("secondary")
    default_hub().store.update_session("primary", page_clock_offset_s=-240.4)
    default_hub().store.update_session("secondary", page_clock_offset_s=12.0)  # within a minute: nothing to say
    body = client.get(f"{BASE}/health", headers=ADMIN).get_json()
    assert body["overall"] == "warning"
    assert body["reasons"] == ["session primary: the page's clock is 240 s behind this machine's: check this "
                               "machine's clock (NTP)"]
    assert body["sessions"]["primary"]["page_clock_offset_s"] == -240.4
    listed = {s["name"]: s for s in client.get(f"{BASE}/sessions", headers=ADMIN).get_json()["sessions"]}
    assert listed["secondary"]["page_clock_offset_s"] == 12.0
    default_hub().store.update_session("primary", page_clock_offset_s=3.0)
    assert client.get(f"{BASE}/health", headers=ADMIN).get_json()["overall"] == "healthy"


def test_health_and_sessions_say_why_a_session_is_down(client) -> None:  # noqa: ANN001
    at = utcnow()
    default_hub().store.update_session(
        "primary", status="closed", heartbeat_at=at, last_error="net::ERR_NAME_NOT_RESOLVED", last_error_at=at,
        last_error_hint="cannot reach web.whatsapp.com: check the network or WAQ_WHATSAPP_URL")
    connect("secondary")
    sessions = client.get(f"{BASE}/health", headers=ADMIN).get_json()["sessions"]
    assert sessions["primary"]["last_error"] == "net::ERR_NAME_NOT_RESOLVED"
    assert sessions["primary"]["last_error_at"] == at.isoformat()
    assert sessions["primary"]["hint"] == "cannot reach web.whatsapp.com: check the network or WAQ_WHATSAPP_URL"
    assert (sessions["secondary"]["last_error"], sessions["secondary"]["hint"]) == (None, None)
    listed = {s["name"]: s for s in client.get(f"{BASE}/sessions", headers=ADMIN).get_json()["sessions"]}
    assert listed["primary"]["last_error"] == "net::ERR_NAME_NOT_RESOLVED" and listed["primary"]["hint"]
    default_hub().store.update_session("primary", status="connected", last_error=None, last_error_at=None,
                                   last_error_hint=None)
    assert client.get(f"{BASE}/health", headers=ADMIN).get_json()["sessions"]["primary"]["last_error"] is None


def test_health_old_failures_are_counted_but_only_recent_ones_warn(client) -> None:  # noqa: ANN001
    connect("primary", "secondary")
    store, now = default_hub().store, utcnow()
    for days in (1, 20):
        old, _ = store.insert(NewMessage(phone=PHONE, text="old"), now - timedelta(days=days))
        store.claim(old.id, owner="t", session="primary", now=now - timedelta(days=days), lease_s=60)
        store.record_failed(old.id, owner="t", now=now - timedelta(days=days), error_class="InvalidNumber",
                            error_text="not on WA")
    body = client.get(f"{BASE}/health", headers=ADMIN).get_json()
    assert body["overall"] == "healthy" and body["queue"]["failed"] == 2
    assert body["reasons"] == ["2 failed message(s) wait for an operator"]
    failed_message()  # failed just now
    body = client.get(f"{BASE}/health", headers=ADMIN).get_json()
    assert body["overall"] == "warning" and body["queue"]["failed"] == 3
    assert body["reasons"] == ["3 failed message(s) wait for an operator", "1 message(s) failed in the last 60 minutes"]


def test_health_failed_window_is_a_setting(client, monkeypatch) -> None:  # noqa: ANN001
    connect("primary", "secondary")
    store, now = default_hub().store, utcnow()
    old, _ = store.insert(NewMessage(phone=PHONE, text="old"), now - timedelta(hours=3))
    store.claim(old.id, owner="t", session="primary", now=now - timedelta(hours=3), lease_s=60)
    store.record_failed(old.id, owner="t", now=now - timedelta(hours=2), error_class="E", error_text="x")
    assert client.get(f"{BASE}/health", headers=ADMIN).get_json()["overall"] == "healthy"
    monkeypatch.setenv("WAQ_HEALTH_FAILED_WINDOW_S", str(3 * 3600))
    close_default_hub()  # a Hub keeps the settings it was built with: the API of another one
    client = create_app(default_hub()).test_client()
    assert client.get(f"{BASE}/health", headers=ADMIN).get_json()["overall"] == "warning"


def test_health_sees_an_overdue_message_behind_a_parked_older_one(client) -> None:  # noqa: ANN001
    connect("primary", "secondary")
    store, now = default_hub().store, utcnow()
    parked, _ = store.insert(NewMessage(phone=PHONE, text="parked"), now - timedelta(hours=2))
    store.claim(parked.id, owner="t", session="primary", now=now - timedelta(hours=2), lease_s=60)
    store.record_retry(parked.id, owner="t", now=now - timedelta(hours=2), next_attempt_at=now + timedelta(hours=1),
                       error_class="TransientSendError", error_text="later")
    body = client.get(f"{BASE}/health", headers=ADMIN).get_json()
    assert body["overall"] == "healthy" and body["oldest_due_pending_age_s"] is None
    store.insert(NewMessage(phone=PHONE, text="late"), now - timedelta(minutes=20))
    body = client.get(f"{BASE}/health", headers=ADMIN).get_json()
    assert body["overall"] == "warning" and body["oldest_due_pending_age_s"] >= 20 * 60
    assert any("has been due for 20 minutes" in reason for reason in body["reasons"])


def test_stats(client) -> None:  # noqa: ANN001
    post(client, "/messages", {"phone": PHONE, "text": "hi"})
    body = client.get(f"{BASE}/stats", headers=ADMIN).get_json()
    assert body["counts"]["pending"] == 1 and set(body["sessions"]) == {"primary", "secondary"}
    assert body["oldest_pending_age_s"] >= 0 and body["sends_per_hour"] == []


def test_failed_list_paging_and_filters(client) -> None:  # noqa: ANN001
    ids = [failed_message(session="primary") for _ in range(3)] + [failed_message(session="secondary")]
    page = client.get(f"{BASE}/failed?page=1&per_page=2", headers=ADMIN).get_json()
    assert page["total"] == 4 and page["pages"] == 2 and len(page["items"]) == 2
    assert page["items"][0]["status"] == "failed" and page["items"][0]["last_error_class"] == "InvalidNumber"
    last = client.get(f"{BASE}/failed?page=2&per_page=2", headers=ADMIN).get_json()
    assert {m["id"] for m in page["items"] + last["items"]} == set(ids)
    assert client.get(f"{BASE}/failed?session=secondary", headers=ADMIN).get_json()["total"] == 1
    assert client.get(f"{BASE}/failed?error=InvalidNum", headers=ADMIN).get_json()["total"] == 4
    assert client.get(f"{BASE}/failed?error=nothing-like-it", headers=ADMIN).get_json()["total"] == 0
    for query in ("page=0", "page=x", "per_page=201", "per_page=-1", "session=nope", "error=" + "e" * 201):
        assert_error(client.get(f"{BASE}/failed?{query}", headers=ADMIN), 400)


def test_retry_one_and_all(client) -> None:  # noqa: ANN001
    first, second, third = failed_message(), failed_message(session="secondary"), failed_message()
    response = client.post(f"{BASE}/failed/{first}/retry", headers=ADMIN)
    body = response.get_json()
    assert response.status_code == 200 and body["message"] == "Message queued for retry"
    assert body["data"]["id"] == first and body["data"]["status"] == "pending" and body["data"]["attempts"] == 0
    assert body["data"] == client.get(f"{BASE}/messages/{first}", headers=ADMIN).get_json()  # the full document
    assert default_hub().store.get(first).attempts == 0
    assert_error(client.post(f"{BASE}/failed/{first}/retry", headers=ADMIN), 409)  # no longer failed
    assert_error(client.post(f"{BASE}/failed/nope/retry", headers=ADMIN), 404)
    assert_error(client.post(f"{BASE}/failed/retry-all?session=nope", headers=ADMIN), 400)
    assert client.post(f"{BASE}/failed/retry-all?session=secondary", headers=ADMIN).get_json() == {"requeued": 1}
    # The session's filter requeued its own failure, and only that one.
    assert default_hub().store.get(second).status is MessageStatus.PENDING
    assert default_hub().store.get(third).status is MessageStatus.FAILED
    assert client.post(f"{BASE}/failed/retry-all", headers=ADMIN).get_json() == {"requeued": 1}
    assert default_hub().store.get(third).status is MessageStatus.PENDING


def test_mark_sent_records_who_and_tells_the_callback(client, redis_server) -> None:  # noqa: ANN001
    message_id = failed_message(error_class="OutcomeUnverified", callback_url="http://127.0.0.1:9/hook")
    other = failed_message(phone="+14155550124")
    unverified = client.get(f"{BASE}/failed?error=OutcomeUnverified", headers=ADMIN).get_json()
    assert [m["id"] for m in unverified["items"]] == [message_id] and unverified["total"] == 1

    response = client.post(f"{BASE}/failed/{message_id}/mark-sent", headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"message", "data"} and body["message"] == "Message marked as sent"
    data = body["data"]
    assert data["id"] == message_id and data["status"] == "sent" and data["sent_by"] == "primary"
    assert data["wa_id"] is None and data["in_doubt"] is False and data["last_error_class"] == "OutcomeUnverified"
    assert data["history"][-1]["event"] == "sent"
    assert data["history"][-1]["error_text"] == "marked as sent by operator api:ops"
    assert data == client.get(f"{BASE}/messages/{message_id}", headers=ADMIN).get_json()
    assert default_hub().store.count_by_status()["sent"] == 1
    assert client.get(f"{BASE}/failed?error=OutcomeUnverified", headers=ADMIN).get_json()["total"] == 0

    # The producer hears 'sent', as from a worker; a message without a callback_url queues nothing.
    broker = redis_server.client()
    assert broker.llen(names.CALLBACK_QUEUE) == 1
    envelope = json.loads(broker.lindex(names.CALLBACK_QUEUE, 0))
    import base64

    args, _, _ = json.loads(base64.b64decode(envelope["body"]))
    assert args[0] == "http://127.0.0.1:9/hook" and (args[1]["id"], args[1]["event"]) == (message_id, "sent")

    noted = client.post(f"{BASE}/failed/{other}/mark-sent", data=json.dumps({"note": "seen in the chat at 14:02"}),
                        headers={**ADMIN, "Content-Type": "application/json"})
    assert noted.status_code == 200
    assert noted.get_json()["data"]["history"][-1]["error_text"] == (
        "marked as sent by operator api:ops: seen in the chat at 14:02")
    assert broker.llen(names.CALLBACK_QUEUE) == 1


def test_mark_sent_refuses_what_is_not_failed_and_bad_bodies(client) -> None:  # noqa: ANN001
    message_id = failed_message()
    pending_id = post(client, "/messages", {"phone": PHONE, "text": "hi"}).get_json()["id"]
    assert_error(client.post(f"{BASE}/failed/{pending_id}/mark-sent", headers=ADMIN), 409)
    assert_error(client.post(f"{BASE}/failed/nope/mark-sent", headers=ADMIN), 404)
    assert_error(client.post(f"{BASE}/failed/{'x' * 65}/mark-sent", headers=ADMIN), 404)
    for bad, field in (({"note": "x", "by": "me"}, "by"), ({"note": 5}, "note"), ({"note": "x" * 501}, "note"),
                       ({"note": ["x"]}, "note")):
        body = assert_error(post(client, f"/failed/{message_id}/mark-sent", bad, ADMIN), 400)
        assert body["details"]["field"] == field
    assert_error(post(client, f"/failed/{message_id}/mark-sent", [1], ADMIN), 400)
    assert_error(client.post(f"{BASE}/failed/{message_id}/mark-sent", data="{", headers=ADMIN | {
        "Content-Type": "application/json"}), 400)
    assert_error(client.post(f"{BASE}/failed/{message_id}/mark-sent", data="note=x", headers=ADMIN | {
        "Content-Type": "application/x-www-form-urlencoded"}), 415)
    assert default_hub().store.get(message_id).status is MessageStatus.FAILED  # nothing was changed by a bad request
    assert post(client, f"/failed/{message_id}/mark-sent", {"note": None}, ADMIN).status_code == 200
    assert post(client, f"/failed/{message_id}/mark-sent", {"note": "x" * 500}, ADMIN).status_code == 409
    assert_error(client.post(f"{BASE}/failed/{message_id}/retry", headers=ADMIN), 409)  # sent: no retry either
    assert default_hub().store.get(pending_id).status is MessageStatus.PENDING


def test_delete_only_failed(client) -> None:  # noqa: ANN001
    message_id = failed_message()
    pending_id = post(client, "/messages", {"phone": PHONE, "text": "hi"}).get_json()["id"]
    assert_error(client.delete(f"{BASE}/failed/{pending_id}", headers=ADMIN), 409)
    assert client.delete(f"{BASE}/failed/{message_id}", headers=ADMIN).status_code == 204
    assert_error(client.delete(f"{BASE}/failed/{message_id}", headers=ADMIN), 404)
    assert default_hub().store.get(pending_id).status is MessageStatus.PENDING


# ---- sessions ---------------------------------------------------------------------------------------------------
def test_sessions_qr_and_restart(client, redis_server) -> None:  # noqa: ANN001
    connect("primary")
    body = client.get(f"{BASE}/sessions", headers=ADMIN).get_json()
    assert [s["name"] for s in body["sessions"]] == ["primary", "secondary"]
    assert body["sessions"][0]["connected"] is True and body["sessions"][1]["connected"] is False
    assert_error(client.get(f"{BASE}/sessions/primary/qr", headers=ADMIN), 409)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    redis_server.client().set(names.session_qr_key("secondary"), png, ex=60)
    response = client.get(f"{BASE}/sessions/secondary/qr", headers=ADMIN)
    assert response.status_code == 200 and response.mimetype == "image/png" and response.data == png
    assert_error(client.get(f"{BASE}/sessions/nope/qr", headers=ADMIN), 404)
    restarted = client.post(f"{BASE}/sessions/secondary/restart", headers=ADMIN)
    assert restarted.status_code == 202 and restarted.get_json()["name"] == "secondary"
    assert default_hub().store.get_session("secondary").restart_requested is True
    assert_error(client.post(f"{BASE}/sessions/nope/restart", headers=ADMIN), 404)


def test_qr_with_broker_down_is_503(client, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("WAQ_BROKER_URL", "redis://127.0.0.1:1/0")
    close_default_hub()
    assert_error(create_app(default_hub()).test_client().get(f"{BASE}/sessions/primary/qr", headers=ADMIN), 503)

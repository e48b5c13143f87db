"""Issue 16 at the REST API (Flask's test client, a real redis-server and a SQLite file): a message's send window,
the warm-up operator action, and what /health, /stats and /sessions show of the ramp, a ban and the memory."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from api.app import create_app
from tests.helpers.api import api_client
from tests.helpers.constants import BASE
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import utcnow

ADMIN_KEY = "alive-admin-key-0123456789abc"
PRODUCER_KEY = "alive-producer-key-0123456789"
ADMIN = {"X-API-Key": ADMIN_KEY}
PRODUCER = {"X-API-Key": PRODUCER_KEY}
RAMP = "20,40,80,150,300"  # the default
BAN_WORDS = "Your phone number is banned from using WhatsApp. Contact support for help."


@pytest.fixture
def client(waq_env, monkeypatch):  # noqa: ANN001, ANN201
    return api_client(monkeypatch, WAQ_API_KEYS=f"ops:admin:{ADMIN_KEY},shop:producer:{PRODUCER_KEY}",
                      WAQ_WARMUP_CAPS=RAMP)  # waq_env turns the ramp off


def post(client, path: str, body, headers=PRODUCER):  # noqa: ANN001, ANN201
    return client.post(BASE + path, data=json.dumps(body), headers={**headers, "Content-Type": "application/json"})


def connect(*sessions: str) -> None:
    for name in sessions:
        default_hub().store.update_session(name, status="connected", heartbeat_at=utcnow())


def today():  # noqa: ANN201 - the Hub's local day (WAQ_TIMEZONE is UTC in waq_env)
    return default_hub().clock().date()


# ---- send_window -------------------------------------------------------------------------------------------------
def test_send_window_is_stored_and_shown(client) -> None:  # noqa: ANN001
    day = {"start": "08:00", "end": "21:00"}
    one = post(client, "/messages", {"phone": "+14155550123", "text": "hi", "send_window": day})
    assert one.status_code == 202, one.get_data(as_text=True)
    plain = post(client, "/messages", {"phone": "+14155550124", "text": "code 1234"})
    bulk = post(client, "/messages/bulk", {"messages": [
        {"phone": "+14155550125", "text": "a", "send_window": {"start": "22:00", "end": "06:00"}},
        {"phone": "+14155550126", "text": "b", "send_window": None}]})
    assert bulk.status_code == 202, bulk.get_data(as_text=True)
    shown = [client.get(f"{BASE}/messages/{message_id}", headers=PRODUCER).get_json()["send_window"]
             for message_id in [one.get_json()["id"], plain.get_json()["id"],
                                *(m["id"] for m in bulk.get_json()["messages"])]]
    assert shown == [day, None, {"start": "22:00", "end": "06:00"}, None]
    assert str(default_hub().store.get(one.get_json()["id"]).send_window) == "08:00-21:00"


@pytest.mark.parametrize(("window", "words"), [
    ("08:00-21:00", "must be an object"),
    (["08:00", "21:00"], "must be an object"),
    ({"start": "08:00"}, "needs both start and end"),
    ({"start": "08:00", "end": "21:00", "zone": "UTC"}, "takes only start and end"),
    ({"start": "8:00", "end": "21:00"}, "start must be a 24-hour time"),
])
def test_a_bad_send_window_is_400_naming_it(client, window, words: str) -> None:  # noqa: ANN001
    response = post(client, "/messages", {"phone": "+14155550123", "text": "hi", "send_window": window})
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["details"]["field"] == "send_window" and words in body["error"], body
    items = [{"phone": "+14155550123", "text": "ok"}, {"phone": "+14155550123", "text": "hi", "send_window": window}]
    bulk = post(client, "/messages/bulk", {"messages": items})
    assert bulk.status_code == 400
    assert [(i["index"], i["field"]) for i in bulk.get_json()["details"]["items"]] == [(1, "send_window")]
    assert default_hub().store.count_by_status()["pending"] == 0


def test_a_window_that_never_opens_for_the_number_is_a_conflict(client) -> None:  # noqa: ANN001
    # A Russian mobile may be anywhere from UTC+2 to UTC+12: 09:00-18:00 is never open in all its zones at once.
    # Both fields are well formed; together they cannot hold (409, like times that cannot), and nothing is stored.
    response = post(client, "/messages", {"phone": "+79161234567", "text": "hi",
                                          "send_window": {"start": "09:00", "end": "18:00"}})
    assert response.status_code == 409
    assert response.get_json()["details"]["field"] == "send_window"
    assert "never open" in response.get_json()["error"] and "Asia/Kamchatka" in response.get_json()["error"]
    bulk = post(client, "/messages/bulk", {"messages": [{"phone": "+79161234567", "text": "hi",
                                                         "send_window": {"start": "09:00", "end": "18:00"}}]})
    assert bulk.status_code == 409 and bulk.get_json()["details"]["items"][0]["field"] == "send_window"
    assert default_hub().store.count_by_status()["pending"] == 0
    ok = post(client, "/messages", {"phone": "+74951234567", "text": "Moscow",
                                    "send_window": {"start": "09:00", "end": "18:00"}})
    assert ok.status_code == 202


# ---- warm-up -----------------------------------------------------------------------------------------------------
def test_warmup_reset_and_skip(client) -> None:  # noqa: ANN001
    store = default_hub().store
    store.update_session("primary", first_send_day=today() - timedelta(days=4))
    view = client.get(f"{BASE}/sessions", headers=ADMIN).get_json()["sessions"][0]
    assert view["name"] == "primary" and view["daily_cap"] == 40
    assert view["warmup"] == {"cap": 40, "state": "ramp", "step": 2, "steps": 5, "day_in_step": 2,
                              "days_per_step": 3, "days_left": 11,
                              "first_send_day": (today() - timedelta(days=4)).isoformat()}
    skipped = post(client, "/sessions/primary/warmup", {"action": "skip"}, ADMIN)
    assert skipped.status_code == 200, skipped.get_data(as_text=True)
    assert (skipped.get_json()["daily_cap"], skipped.get_json()["warmup"]["state"]) == (300, "skipped")
    assert store.get_session("primary").warmup_skipped is True
    reset = post(client, "/sessions/primary/warmup", {"action": "reset"}, ADMIN).get_json()
    assert (reset["daily_cap"], reset["warmup"]["state"], reset["warmup"]["first_send_day"]) == (20, "new", None)
    record = store.get_session("primary")
    assert (record.first_send_day, record.warmup_skipped) == (None, False)
    # The other session is untouched.
    assert client.get(f"{BASE}/sessions", headers=ADMIN).get_json()["sessions"][1]["warmup"]["state"] == "new"


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"action": "restart"}, 400, "action"),
    ({}, 400, "action"),
    ({"action": 1}, 400, "action"),
    ({"action": "skip", "force": True}, 400, "force"),
])
def test_warmup_refuses_bad_bodies(client, body, status: int, field: str) -> None:  # noqa: ANN001
    response = post(client, "/sessions/primary/warmup", body, ADMIN)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["details"]["field"] == field
    assert default_hub().store.get_session("primary").warmup_skipped is False


def test_warmup_is_for_admins_and_known_sessions(client) -> None:  # noqa: ANN001
    assert post(client, "/sessions/primary/warmup", {"action": "skip"}, PRODUCER).status_code == 403
    assert post(client, "/sessions/primary/warmup", {"action": "skip"}, {}).status_code == 401
    assert post(client, "/sessions/nosuch/warmup", {"action": "skip"}, ADMIN).status_code == 404
    response = client.post(f"{BASE}/sessions/primary/warmup", data="action=skip", headers=ADMIN)
    assert response.status_code == 415
    assert default_hub().store.get_session("primary").warmup_skipped is False


def test_warmup_off_shows_the_normal_cap(client, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("WAQ_WARMUP_CAPS", "")
    monkeypatch.setenv("WAQ_MAX_DAILY_PER_SESSION", "120")
    close_default_hub()
    client = create_app(default_hub()).test_client()
    stats = client.get(f"{BASE}/stats", headers=ADMIN).get_json()
    assert stats["sessions"]["primary"]["daily_cap"] == 120
    assert stats["sessions"]["primary"]["warmup"]["state"] == "off"


# ---- health and stats --------------------------------------------------------------------------------------------
def test_health_and_stats_show_the_cap_of_today_and_the_ramp(client) -> None:  # noqa: ANN001
    connect("primary", "secondary")
    default_hub().store.update_session("secondary", first_send_day=today() - timedelta(days=20))
    health = client.get(f"{BASE}/health", headers=ADMIN).get_json()
    assert health["overall"] == "healthy"
    primary, secondary = health["sessions"]["primary"], health["sessions"]["secondary"]
    assert (primary["sends_today"], primary["daily_cap"], primary["warmup"]["state"]) == (0, 20, "new")
    assert (secondary["daily_cap"], secondary["warmup"]["state"], secondary["warmup"]["days_left"]) == (300, "done", 0)
    stats = client.get(f"{BASE}/stats", headers=ADMIN).get_json()["sessions"]
    assert stats["primary"]["warmup"] == primary["warmup"] and stats["secondary"]["daily_cap"] == 300


def test_a_banned_session_warns_with_the_page_s_words(client) -> None:  # noqa: ANN001
    connect("primary", "secondary")
    default_hub().store.update_session("primary", status="banned", last_error=BAN_WORDS, last_error_at=utcnow())
    health = client.get(f"{BASE}/health", headers=ADMIN).get_json()
    assert health["overall"] == "warning"
    assert f"session primary is banned: {BAN_WORDS}" in health["reasons"]
    assert (health["sessions"]["primary"]["status"], health["sessions"]["primary"]["last_error"]) == ("banned",
                                                                                                       BAN_WORDS)
    # No session left connected is critical, the ban still named.
    default_hub().store.update_session("secondary", status="phone_disconnected")
    health = client.get(f"{BASE}/health", headers=ADMIN).get_json()
    assert health["overall"] == "critical"
    assert health["reasons"] == ["no session connected", f"session primary is banned: {BAN_WORDS}"]
    default_hub().store.update_session("secondary", status="banned", last_error=None)
    health = client.get(f"{BASE}/health", headers=ADMIN).get_json()
    assert health["overall"] == "critical"
    assert health["reasons"] == ["no session connected", f"session primary is banned: {BAN_WORDS}",
                                 "session secondary is banned"]


def test_health_shows_the_memory_and_with_detail_the_sessions_here(client, tmp_path) -> None:  # noqa: ANN001
    memory = client.get(f"{BASE}/health", headers=ADMIN).get_json()["memory"]
    assert set(memory) == {"mem_total_kib", "mem_available_kib"}
    assert 0 < memory["mem_available_kib"] <= memory["mem_total_kib"]
    # A process that carries a worker's session variable is what headroom.py counts as a session worker here.
    stand_in = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE,
                                env={"WAQ_WORKER_SESSION": "health-detail-test", "WAQ_DATA_DIR": str(tmp_path)})
    try:
        detail = client.get(f"{BASE}/health?detail=1", headers=ADMIN).get_json()["memory"]
    finally:
        stand_in.communicate(b"", timeout=30)
    [mine] = [s for s in detail["sessions"] if s["name"] == "health-detail-test"]
    assert mine["pid"] == stand_in.pid and mine["pss_kib"] == mine["worker_pss_kib"] > 0
    assert mine["browser_pss_kib"] == 0
    assert detail["mem_available_kib"] > 0 and isinstance(detail["more_sessions"], int)
    assert client.get(f"{BASE}/health?detail=yes", headers=ADMIN).status_code == 400

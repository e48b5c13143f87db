"""The enums (HistoryEvent, SessionStatus) reach API and CLI output as their plain strings, never as member names
("HistoryEvent.SENT" is what f"{member}" gives on Python 3.11). Fixtures `redis_server` and `waq_env` come from
tests/conftest.py."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.helpers.api import api_client
from tests.helpers.constants import ADMIN, ADMIN_KEY, BASE
from wa_queue.cli import main
from wa_queue.hub import default_hub
from wa_queue.models import HistoryEvent, NewMessage, SessionStatus, utcnow


@pytest.fixture
def client(waq_env, monkeypatch):  # noqa: ANN001, ANN201
    return api_client(monkeypatch, WAQ_API_KEYS=f"ops:admin:{ADMIN_KEY}")


def test_history_events_and_session_status_are_plain_strings(client) -> None:  # noqa: ANN001
    store = default_hub().store
    message, _ = store.insert(NewMessage(phone="+14155550123", text="hi"), utcnow())
    store.claim(message.id, owner="w", session="primary", now=utcnow(), lease_s=60)
    store.mark_sending(message.id, owner="w", now=utcnow())
    store.record_sent(message.id, owner="w", now=utcnow(), session="primary", wa_id="x")
    store.record_receipt(message.id, now=utcnow(), read_at=utcnow())
    store.update_session("primary", status=SessionStatus.NEEDS_OPERATOR, needs_operator=True, heartbeat_at=utcnow())
    store.update_session("secondary", status=SessionStatus.PHONE_DISCONNECTED, heartbeat_at=utcnow())

    response = client.get(f"{BASE}/messages/{message.id}", headers=ADMIN)
    assert response.status_code == 200
    raw = response.get_data(as_text=True)
    assert "HistoryEvent" not in raw
    events = [entry["event"] for entry in json.loads(raw)["history"]]
    assert events == ["enqueued", "claimed", "sending", "sent", "receipt"]
    assert events == [e.value for e in (HistoryEvent.ENQUEUED, HistoryEvent.CLAIMED, HistoryEvent.SENDING,
                                        HistoryEvent.SENT, HistoryEvent.RECEIPT)]

    for path in ("/sessions", "/health"):
        raw = client.get(BASE + path, headers=ADMIN).get_data(as_text=True)
        assert "SessionStatus" not in raw, path
    listed = {s["name"]: s["status"] for s in client.get(f"{BASE}/sessions", headers=ADMIN).get_json()["sessions"]}
    assert listed == {"primary": "needs_operator", "secondary": "phone_disconnected"}
    health = client.get(f"{BASE}/health", headers=ADMIN).get_json()["sessions"]
    assert {name: view["status"] for name, view in health.items()} == listed

    runner = CliRunner()
    shown = runner.invoke(main, ["status", message.id])
    assert shown.exit_code == 0, shown.output
    assert "HistoryEvent" not in shown.output and "receipt" in shown.output
    table = runner.invoke(main, ["sessions", "list"])
    assert table.exit_code == 0, table.output
    assert "SessionStatus" not in table.output
    assert "needs_operator" in table.output and "phone_disconnected" in table.output

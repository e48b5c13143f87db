"""Session health and reconnection back-off, with the time passed in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from wa_queue.models import SessionStatus
from wa_queue.sessions import check_health, is_available, pick_session, request_restart
from wa_queue.settings import Settings
from wa_queue.store.sqlite import SQLiteStore
from wa_queue.transport.fake import FakeControl, FakeSender

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
UNIT = timedelta(seconds=60)


@pytest.fixture
def parts(tmp_path: Path):  # noqa: ANN201
    settings = Settings.from_env({"WAQ_DATA_DIR": str(tmp_path), "WAQ_TRANSPORT": "fake"})
    store = SQLiteStore(str(tmp_path / "waq.db"))
    sender = FakeSender("primary", settings.fake_log, settings.fake_control)
    sender.connect()
    yield settings, store, sender, FakeControl(settings.fake_control)
    store.close()


def test_connected_session_records_a_heartbeat(parts) -> None:  # noqa: ANN001
    settings, store, sender, _ = parts
    record = check_health(store, sender, settings, T0)
    assert record.status == "connected" and record.heartbeat_at == T0
    assert is_available(record, settings, T0)
    assert not is_available(record, settings, T0 + timedelta(seconds=3 * settings.health_interval_s + 10))


def test_reconnect_backs_off_one_to_five_units_then_needs_an_operator(parts, caplog) -> None:  # noqa: ANN001
    settings, store, sender, control = parts
    control.set_session_state("primary", "logged_out")
    now = T0
    record = check_health(store, sender, settings, now)
    assert record.status == "logged_out" and record.next_reconnect_at == now + UNIT
    waits = []
    for attempt in range(1, 6):
        # Nothing happens before the wait is over.
        early = check_health(store, sender, settings, record.next_reconnect_at - timedelta(seconds=1))
        assert early.reconnect_attempts == attempt - 1
        now = record.next_reconnect_at
        record = check_health(store, sender, settings, now)
        assert record.reconnect_attempts == attempt
        if record.next_reconnect_at:
            waits.append(record.next_reconnect_at - now)
    assert waits == [2 * UNIT, 3 * UNIT, 4 * UNIT, 5 * UNIT]
    assert record.needs_operator and record.status is SessionStatus.NEEDS_OPERATOR
    assert "session_needs_operator" in caplog.text
    # It stays parked for an operator: later checks do not reconnect.
    assert check_health(store, sender, settings, now + 100 * UNIT).reconnect_attempts == 5


def test_success_resets_the_counter(parts) -> None:  # noqa: ANN001
    settings, store, sender, control = parts
    control.set_session_state("primary", "phone_disconnected")
    record = check_health(store, sender, settings, T0)
    record = check_health(store, sender, settings, record.next_reconnect_at)
    assert record.reconnect_attempts == 1
    control.set_session_state("primary", None)
    record = check_health(store, sender, settings, record.next_reconnect_at)
    assert record.status == "connected" and record.reconnect_attempts == 0 and record.next_reconnect_at is None


def test_restart_resets_and_reconnects_at_once(parts) -> None:  # noqa: ANN001
    settings, store, sender, control = parts
    control.set_session_state("primary", "logged_out")
    for _ in range(7):
        record = check_health(store, sender, settings, T0 + 20 * UNIT * _)
    assert store.get_session("primary").needs_operator
    control.set_session_state("primary", None)  # the operator scanned the QR
    request_restart(store, "primary")
    record = check_health(store, sender, settings, T0 + 200 * UNIT)
    assert record.status == "connected" and not record.needs_operator and record.reconnect_attempts == 0


def test_pick_session_prefers_headroom_and_skips_unavailable(parts) -> None:  # noqa: ANN001
    settings, store, _, _ = parts
    store.update_session("primary", status="connected", heartbeat_at=T0)
    store.update_session("secondary", status="phone_disconnected", heartbeat_at=T0)
    assert pick_session(store, settings, T0) == "primary"
    assert pick_session(store, settings, T0, exclude="primary") is None

"""A STOP while messages to the number are queued: none is clicked after the entry is recorded, each ends cancelled
naming the opt-out (its callback says so), a new enqueue is refused, and a removal lets the next one through. Both
paths: the early look after the claim, and the mark itself (a STOP recorded between the two)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.helpers.constants import PHONE
from tests.helpers.delivery import delivery_world
from wa_queue import callbacks, errors, operations
from wa_queue.hub import Hub
from wa_queue.models import MessageStatus, NewMessage, Suppression
from wa_queue.settings import Settings
from wa_queue.transport.fake import read_log

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def env(tmp_path: Path):  # noqa: ANN201
    with delivery_world(tmp_path, T0, {"WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0"}) as world:
        yield world


def test_a_stop_with_twenty_queued_cancels_every_one_unclicked(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make = env
    ids = [store.insert(NewMessage(phone=PHONE, text=f"reminder {i}", callback_url="https://shop.example/cb"),
                        T0)[0].id for i in range(22)]
    changes: list[dict] = []
    delivery = make()
    delivery.on_change = lambda message: changes.append(callbacks.build_payload(message))
    assert [delivery.process(mid, 0).kind for mid in ids[:2]] == ["sent", "sent"]
    assert store.add_suppression(Suppression(phone=PHONE, since=clock(), by="primary", session="primary",
                                             word="stop"))
    outcomes = [delivery.process(mid, 0) for mid in ids[2:]]
    assert {o.kind for o in outcomes} == {"cancelled"} and len(outcomes) == 20
    assert [e["ref"] for e in read_log(settings.fake_log)] == ids[:2]  # nothing clicked after the STOP
    for mid in ids[2:]:
        message = store.get(mid)
        assert message.status is MessageStatus.CANCELLED and message.last_error_class == "OptedOut"
        assert "suppression list" in (message.last_error_text or "") and message.attempts == 0
    cancelled = [c for c in changes if c["event"] == "cancelled"]
    assert len(cancelled) == 20 and {c["error_class"] for c in cancelled} == {"OptedOut"}
    assert all("opted out" in c["error"] for c in cancelled)


def test_a_stop_between_the_early_look_and_the_mark_is_caught_by_the_mark(env, monkeypatch) -> None:  # noqa: ANN001
    settings, store, clock, _, make = env
    mid = store.insert(NewMessage(phone=PHONE, text="code 1234"), T0)[0].id
    real_mark = store.mark_sending

    def stop_then_mark(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the STOP lands just before the mark
        store.add_suppression(Suppression(phone=PHONE, since=clock(), by="primary", word="stop"))
        return real_mark(*args, **kwargs)

    monkeypatch.setattr(store, "mark_sending", stop_then_mark)
    outcome = make().process(mid, 0)
    assert outcome.kind == "cancelled" and read_log(settings.fake_log) == []
    message = store.get(mid)
    assert message.status is MessageStatus.CANCELLED and message.sending_at is None and not message.in_doubt
    assert [h.event for h in message.history][-1] == "cancelled"


def test_enqueue_is_refused_until_the_number_is_removed(tmp_path: Path) -> None:
    hub = Hub(Settings.from_env({"WAQ_DATA_DIR": str(tmp_path), "WAQ_TRANSPORT": "fake"}))
    try:
        assert operations.add_suppression(hub, PHONE, by="cli:ops") is True
        assert operations.add_suppression(hub, PHONE, by="cli:ops") is False
        with pytest.raises(errors.OptedOut) as refused:
            operations.build_message(hub, PHONE, "hi")
        assert refused.value.field == "phone" and "suppression list" in str(refused.value)
        assert operations.remove_suppression(hub, PHONE, by="test") is True
        assert operations.build_message(hub, PHONE, "hi").phone == PHONE
    finally:
        hub.close()

"""The Hub (wa_queue/hub.py): parts made on first use, the relay flushed on close, the default Hub rebuilt after it
is closed. Over real SQLite stores; the broker is never reached (a recording publisher)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_queue.broker.recording import RecordingPublisher
from wa_queue.broker.relay import Relay
from wa_queue.hub import Hub, close_default_hub, default_hub
from wa_queue.models import NewMessage, utcnow
from wa_queue.settings import Settings
from wa_queue.store.sqlite import SQLiteStore


def _settings(tmp_path: Path, store_url: str | None = None) -> Settings:
    env = {"WAQ_DATA_DIR": str(tmp_path), "WAQ_SESSIONS": "primary"}
    if store_url:
        env["WAQ_STORE_URL"] = store_url
    return Settings.from_env(env)


def test_building_an_app_opens_nothing_until_a_part_is_used(tmp_path: Path) -> None:
    database = tmp_path / "data" / "waq.db"
    hub = Hub.build(_settings(tmp_path, f"sqlite:///{database}"))
    assert hub.relay is None and not database.exists()  # the SQLite adapter makes its file when it opens
    assert hub.store.count_by_status()["pending"] == 0 and database.exists()
    assert hub.store is hub.store
    hub.close()


def test_close_publishes_what_the_relay_holds(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "waq.db"))
    recording = RecordingPublisher(store)
    hub = Hub.build(_settings(tmp_path), store=store, publisher=recording)
    hub.publish_in_background()
    message, _ = store.insert(NewMessage(phone="+14155550123", text="hi"), utcnow())
    assert hub.relay is not None
    hub.relay.put("wa.default", [message])
    hub.close()
    assert [(p.ids, p.queue) for p in recording.published] == [([message.id], "wa.default")]
    assert hub.closed and hub.relay is None


def test_close_lets_the_relay_build_the_publisher_it_waits_for(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay's thread builds the publisher on first use, under the Hub's lock: close() drains it without holding
    that lock, so the drain ends when the publish does, not at its time-out."""
    store = SQLiteStore(str(tmp_path / "waq.db"))
    recording = RecordingPublisher(store)
    monkeypatch.setattr(Hub, "_build_publisher", lambda self: recording)
    drained: list[bool] = []
    real_drain = Relay.drain
    monkeypatch.setattr(Relay, "drain", lambda self, timeout=None: drained.append(real_drain(self, timeout)) or True)
    hub = Hub.build(_settings(tmp_path), store=store)
    hub.publish_in_background()
    message, _ = store.insert(NewMessage(phone="+14155550123", text="hi"), utcnow())
    assert hub.relay is not None and hub._publisher is None
    hub.relay.put("wa.default", [message])
    hub.close()
    assert drained == [True]  # published by the relay's own thread, not left to the time-out
    assert [(p.ids, p.queue) for p in recording.published] == [([message.id], "wa.default")]


def test_the_default_hub_is_one_until_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAQ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WAQ_STORE_URL", f"sqlite:///{tmp_path / 'waq.db'}")
    close_default_hub()
    try:
        first = default_hub()
        assert default_hub() is first
        close_default_hub()
        assert first.closed and default_hub() is not first
    finally:
        close_default_hub()

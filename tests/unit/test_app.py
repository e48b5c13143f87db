"""The App (wa_queue/app.py): parts made on first use, the relay flushed on close, the default App rebuilt after it
is closed. Over real SQLite stores; the broker is never reached (a recording publisher)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_queue.app import App, close_default_app, default_app
from wa_queue.broker.recording import RecordingPublisher
from wa_queue.broker.relay import Relay
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
    app = App.build(_settings(tmp_path, f"sqlite:///{database}"))
    assert app.relay is None and not database.exists()  # the SQLite adapter makes its file when it opens
    assert app.store.count_by_status()["pending"] == 0 and database.exists()
    assert app.store is app.store
    app.close()


def test_close_publishes_what_the_relay_holds(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "waq.db"))
    recording = RecordingPublisher(store)
    app = App.build(_settings(tmp_path), store=store, publisher=recording)
    app.publish_in_background()
    message, _ = store.insert(NewMessage(phone="+14155550123", text="hi"), utcnow())
    assert app.relay is not None
    app.relay.put("wa.default", [message])
    app.close()
    assert [(p.ids, p.queue) for p in recording.published] == [([message.id], "wa.default")]
    assert app.closed and app.relay is None


def test_close_lets_the_relay_build_the_publisher_it_waits_for(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay's thread builds the publisher on first use, under the App's lock: close() drains it without holding
    that lock, so the drain ends when the publish does, not at its time-out."""
    store = SQLiteStore(str(tmp_path / "waq.db"))
    recording = RecordingPublisher(store)
    monkeypatch.setattr(App, "_build_publisher", lambda self: recording)
    drained: list[bool] = []
    real_drain = Relay.drain
    monkeypatch.setattr(Relay, "drain", lambda self, timeout=None: drained.append(real_drain(self, timeout)) or True)
    app = App.build(_settings(tmp_path), store=store)
    app.publish_in_background()
    message, _ = store.insert(NewMessage(phone="+14155550123", text="hi"), utcnow())
    assert app.relay is not None and app._publisher is None
    app.relay.put("wa.default", [message])
    app.close()
    assert drained == [True]  # published by the relay's own thread, not left to the time-out
    assert [(p.ids, p.queue) for p in recording.published] == [([message.id], "wa.default")]


def test_the_default_app_is_one_until_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAQ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WAQ_STORE_URL", f"sqlite:///{tmp_path / 'waq.db'}")
    close_default_app()
    try:
        first = default_app()
        assert default_app() is first
        close_default_app()
        assert first.closed and default_app() is not first
    finally:
        close_default_app()

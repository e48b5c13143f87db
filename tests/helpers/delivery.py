"""A Delivery world for unit tests: settings, a SQLite store, an injected clock, a recording publisher, and a maker of
Deliveries on the fake sender, one per session."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from wa_queue.broker.recording import RecordingPublisher
from wa_queue.delivery import Delivery
from wa_queue.media.files import DirectoryMediaFiles
from wa_queue.settings import Settings
from wa_queue.store.sqlite import SQLiteStore
from wa_queue.transport.fake import FakeSender


class Clock:
    """The time, moved only by sleep(), which also notes each pause."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


World = tuple[Settings, SQLiteStore, Clock, RecordingPublisher, Callable[..., Delivery]]


@contextmanager
def delivery_world(tmp_path: Path, start: datetime, env: dict[str, str]) -> Iterator[World]:
    """Every session of WAQ_SESSIONS connected at `start`; make(session) builds its Delivery."""
    settings = Settings.from_env({"WAQ_DATA_DIR": str(tmp_path), "WAQ_TRANSPORT": "fake", **env})
    store = SQLiteStore(str(tmp_path / "waq.db"))
    clock = Clock(start)
    recording = RecordingPublisher(store, clock=clock)

    def make(session: str = "primary") -> Delivery:
        sender = FakeSender(session, settings.fake_log, settings.fake_control)
        sender.connect()
        return Delivery(store=store, settings=settings, session=session, owner=f"{session}/test/1", sender=sender,
                        rng=random.Random(7), clock=clock, sleep=clock.sleep, publisher=recording,
                        media_files=DirectoryMediaFiles(tmp_path / "media"))

    for name in settings.sessions:
        store.update_session(name, status="connected", heartbeat_at=start)
    try:
        yield settings, store, clock, recording, make
    finally:
        store.close()

"""Beat and each session worker log one line of queue statistics when they start: counts by status, each session
and its sends today. Against a real SQLite store and redis-server (waq_env), with the fake sender."""

from __future__ import annotations

import logging

import pytest

from wa_queue.hub import default_hub
from wa_queue.models import NewMessage, utcnow

pytestmark = pytest.mark.usefixtures("waq_env")


def _two_pending_one_failed() -> None:
    store, now = default_hub().store, utcnow()
    for i in range(3):
        store.insert(NewMessage(phone=f"+141555500{i:02d}", text=f"m{i}"), now)
    failed, _ = store.insert(NewMessage(phone="+14155550099", text="bad"), now)
    store.claim(failed.id, owner="t", session="primary", now=now, lease_s=60)
    store.record_failed(failed.id, owner="t", now=now, error_class="InvalidNumber", error_text="not on WA")
    store.update_session("primary", status="connected", heartbeat_at=now)


def test_beat_logs_queue_statistics_at_start(caplog: pytest.LogCaptureFixture) -> None:
    from workers import tasks

    _two_pending_one_failed()
    with caplog.at_level(logging.INFO, logger="workers.tasks"):
        tasks._beat_started()
    lines = [r.getMessage() for r in caplog.records if "starting" in r.getMessage()]
    assert lines == ["beat starting: queue: pending=3 processing=0 sent=0 failed=1 expired=0 cancelled=0 paused=0; "
                     "sessions: primary connected sent today 0/300, secondary unknown sent today 0/300"]


def test_worker_logs_queue_statistics_at_start(caplog: pytest.LogCaptureFixture) -> None:
    from workers.runtime import SessionWorker

    _two_pending_one_failed()
    worker = SessionWorker(default_hub(), "secondary")
    try:
        with caplog.at_level(logging.INFO, logger="workers.runtime"):
            worker.start()
    finally:
        worker.stop()
    lines = [r.getMessage() for r in caplog.records if "starting:" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("worker secondary starting: queue: pending=3 processing=0 sent=0 "
                                                   "failed=1 expired=0 cancelled=0 paused=0; sessions: primary "
                                                   "connected sent today 0/300")


def test_a_failing_store_does_not_stop_the_start(caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import tasks

    def broken(self: object) -> dict[str, int]:
        raise RuntimeError("disk gone")

    # beat's start builds a Hub of its own: every store of this class fails
    monkeypatch.setattr(type(default_hub().store), "count_by_status", broken)
    with caplog.at_level(logging.INFO, logger="workers.tasks"):
        tasks._beat_started()
    assert "beat starting: queue statistics unavailable: RuntimeError: disk gone" in caplog.text

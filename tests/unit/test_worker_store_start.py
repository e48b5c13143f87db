"""wait_for_store: a starting worker retries its store for WAQ_STORE_START_TIMEOUT_S, then fails naming the setting.
The clock and sleep are injected; the store is a real SQLite file, or a probe that refuses a given number of times."""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_queue.errors import StoreError
from wa_queue.settings import Settings
from workers import runtime as worker_runtime


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def settings(tmp_path: Path, timeout_s: str = "10") -> Settings:
    return Settings.from_env({"WAQ_DATA_DIR": str(tmp_path), "WAQ_STORE_START_TIMEOUT_S": timeout_s})


def test_a_store_that_answers_takes_one_attempt(tmp_path: Path) -> None:
    clock = Clock()
    assert worker_runtime.wait_for_store(settings(tmp_path), clock=clock, sleep=clock.sleep) == 1
    assert clock.sleeps == [] and (tmp_path / "waq.db").exists()


def test_a_store_that_comes_up_late_is_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    refusals = [StoreError("refused"), StoreError("refused"), None]

    def probe(url: str, timeout_s: float) -> None:
        assert 0 < timeout_s <= worker_runtime._PROBE_MAX_S
        error = refusals.pop(0)
        if error:
            raise error

    monkeypatch.setattr(worker_runtime, "_probe_store", probe)
    seen: list[int] = []
    assert worker_runtime.wait_for_store(settings(tmp_path), clock=clock, sleep=clock.sleep,
                                         on_retry=lambda n, exc: seen.append(n)) == 3
    assert seen == [1, 2]


def test_a_store_that_never_answers_fails_at_the_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()

    def probe(url: str, timeout_s: float) -> None:
        clock.now += timeout_s  # each attempt waits as long as it is allowed to
        raise StoreError("MongoDB store unreachable: connection refused")

    monkeypatch.setattr(worker_runtime, "_probe_store", probe)
    with pytest.raises(StoreError, match=r"WAQ_STORE_URL did not answer within 7 s \(\d+ attempt\(s\)\).*refused"):
        worker_runtime.wait_for_store(settings(tmp_path, "7"), clock=clock, sleep=clock.sleep)
    assert 7 <= clock.now <= 7 + worker_runtime._PROBE_MAX_S  # it stopped at the deadline, not later

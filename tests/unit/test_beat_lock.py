"""The beat lock and LockedScheduler in-process, against a real redis-server (waq_env): who may take and free the
lock, and what the scheduler does on taking, keeping and losing it. Jobs are recorded instead of published."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from wa_queue import names
from wa_queue.beat_lock import BeatLock, LockedScheduler
from wa_queue.devstack.redis_server import RedisServer


def test_one_owner_at_a_time_and_only_the_owner_frees_it(waq_env: dict[str, str], redis_server: RedisServer) -> None:
    client = redis_server.client()
    a, b = BeatLock(client, "host-a/1/aa", 30), BeatLock(client, "host-b/2/bb", 30)
    assert a.take() == (True, "host-a/1/aa")
    assert b.take() == (False, "host-a/1/aa")
    assert a.take() == (True, "host-a/1/aa")  # a renewal
    assert 29_000 < client.pttl(names.BEAT_LOCK_KEY) <= 30_000
    assert b.release() is False and a.holder() == "host-a/1/aa"
    assert a.release() is True and a.holder() is None
    assert b.take() == (True, "host-b/2/bb")


def test_an_owner_that_stops_renewing_loses_the_lock_at_its_expiry(waq_env: dict[str, str],
                                                                    redis_server: RedisServer) -> None:
    client = redis_server.client()
    a, b = BeatLock(client, "host-a/1/aa", 0.2), BeatLock(client, "host-b/2/bb", 30)
    assert a.take()[0]
    time.sleep(0.3)
    assert b.take() == (True, "host-b/2/bb")
    assert a.take() == (False, "host-b/2/bb")  # the late renewal finds another owner


@pytest.fixture
def scheduler_factory(waq_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("WAQ_DISPATCH_INTERVAL_S", "60")
    monkeypatch.setenv("WAQ_RECOVER_INTERVAL_S", "60")
    monkeypatch.setenv("WAQ_HEALTH_INTERVAL_S", "60")
    from wa_queue.celery_app import make_celery
    from wa_queue.settings import Settings

    app = make_celery(Settings.from_env())
    made: list[LockedScheduler] = []

    def make(name: str = "a") -> tuple[LockedScheduler, list[str]]:
        scheduler = LockedScheduler(app=app, schedule_filename=str(tmp_path / f"schedule-{name}"))
        sent: list[str] = []
        scheduler.apply_entry = lambda entry, producer=None: sent.append(entry.name)  # type: ignore[method-assign]
        made.append(scheduler)
        return scheduler, sent

    yield make
    for scheduler in made:
        scheduler.close()


def _ticks(scheduler: LockedScheduler, n: int = 8) -> None:
    for _ in range(n):
        scheduler.tick()


def test_a_standby_scheduler_sends_nothing_and_leaves_the_schedule_file_alone(
        scheduler_factory, redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: ANN001
    redis_server.client().set(names.BEAT_LOCK_KEY, "elsewhere/1/cafe", px=60_000)
    scheduler, sent = scheduler_factory()
    wait = scheduler.tick()
    assert not scheduler.holding and sent == []
    assert 0 < wait <= scheduler.lock_period_s
    assert list(tmp_path.glob("schedule-a*")) == []  # a standby beat may share this folder with the holder


def test_taking_over_keeps_the_last_holders_cadence(scheduler_factory, redis_server: RedisServer) -> None:  # noqa: ANN001
    client = redis_server.client()
    scheduler, sent = scheduler_factory()
    now = scheduler.app.now()
    # The last holder ran dispatch-due just now and recover-stuck an hour ago; session-health is not shared.
    client.hset(names.BEAT_LAST_RUN_KEY, mapping={"dispatch-due": now.isoformat(),
                                                  "recover-stuck": (now - timedelta(hours=1)).isoformat()})
    _ticks(scheduler)
    assert scheduler.holding
    assert "recover-stuck" in sent  # overdue: sent at takeover, once
    assert sent.count("recover-stuck") == 1 and "dispatch-due" not in sent  # not due for another minute
    assert scheduler.schedule["dispatch-due"].last_run_at == now
    shared = client.hgetall(names.BEAT_LAST_RUN_KEY)
    assert shared[b"recover-stuck"].decode() > (now - timedelta(minutes=1)).isoformat()  # its new run is shared


def test_a_holder_that_finds_another_owner_stops_at_once_and_waits(scheduler_factory,  # noqa: ANN001
                                                                    redis_server: RedisServer) -> None:
    client = redis_server.client()
    scheduler, sent = scheduler_factory()
    _ticks(scheduler)
    assert scheduler.holding
    client.set(names.BEAT_LOCK_KEY, "elsewhere/1/cafe", px=60_000)  # e.g. ours expired while this process hung
    client.delete(names.BEAT_LAST_RUN_KEY)
    for entry in scheduler.schedule.values():
        entry.last_run_at -= timedelta(hours=1)  # every job due
    scheduler._heap = None
    before = len(sent)
    scheduler._next_check = 0.0  # the renewal is due
    _ticks(scheduler)
    assert not scheduler.holding and len(sent) == before
    assert client.get(names.BEAT_LOCK_KEY) == b"elsewhere/1/cafe"
    scheduler.close()
    assert client.get(names.BEAT_LOCK_KEY) == b"elsewhere/1/cafe"  # a beat that lost the lock never frees it


def test_a_clean_close_frees_the_lock(scheduler_factory, redis_server: RedisServer) -> None:  # noqa: ANN001
    scheduler, _ = scheduler_factory()
    scheduler.tick()
    assert scheduler.holding and redis_server.client().get(names.BEAT_LOCK_KEY) == scheduler.lock.owner.encode()
    scheduler.close()
    assert redis_server.client().get(names.BEAT_LOCK_KEY) is None


def test_a_holder_dead_on_this_host_is_replaced_at_once_a_live_or_foreign_one_is_not(
        scheduler_factory, redis_server: RedisServer) -> None:  # noqa: ANN001
    client = redis_server.client()
    scheduler, _ = scheduler_factory()
    host, namespace = scheduler._hostname, scheduler._pid_namespace
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid names no process now
    for holder in (names.beat_lock_owner(host, os.getppid(), namespace, "live"),  # alive
                   names.beat_lock_owner(host, dead.pid, "1", "ns"),  # another pid namespace: its pid means nothing
                   names.beat_lock_owner("elsewhere", dead.pid, namespace, "host")):  # another host
        client.set(names.BEAT_LOCK_KEY, holder, px=60_000)
        scheduler._next_check = 0.0
        scheduler.tick()
        assert not scheduler.holding and client.get(names.BEAT_LOCK_KEY).decode() == holder
    client.set(names.BEAT_LOCK_KEY, names.beat_lock_owner(host, dead.pid, namespace, "dead"), px=60_000)
    scheduler._next_check = 0.0
    scheduler.tick()
    assert scheduler.holding and client.get(names.BEAT_LOCK_KEY).decode() == scheduler.lock.owner


def test_standby_is_logged_once_per_holder(scheduler_factory, redis_server: RedisServer,  # noqa: ANN001
                                           caplog: pytest.LogCaptureFixture) -> None:
    redis_server.client().set(names.BEAT_LOCK_KEY, "elsewhere/1/1/cafe", px=60_000)
    scheduler, _ = scheduler_factory()
    with caplog.at_level(logging.INFO, logger="wa_queue.beat_lock"):
        for _ in range(3):
            scheduler._next_check = 0.0
            scheduler.tick()
    lines = [r.getMessage() for r in caplog.records if "standby" in r.getMessage()]
    assert lines == ["beat lock: held by elsewhere/1/1/cafe; this beat is standby and sends no jobs until the lock is "
                     "free"]

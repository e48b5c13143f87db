"""One beat, however it is deployed: two real `waq beat` processes (sharing one data folder, one SQLite store and one
real redis-server) send each job once per interval, only the holder of the beat lock sending; when the holder is
SIGKILLed the other takes over once the lock expires, within its expiry plus one try; a beat stopped cleanly frees it.

Runs are counted from the beats' own logs: Celery's beat logs "Sending due task <job>" for every job it sends."""

from __future__ import annotations

import re
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

from tests.conftest import RedisServer, wait_for
from wa_queue import names

TTL_S = 3.0
TRY_S = TTL_S / 3  # the holder renews, and a standby beat tries to take the lock, this often
INTERVALS = {"dispatch-due": 1.0, "recover-stuck": 2.0, "session-health": 2.0}
_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): [A-Z]+/[^\]]+\] (.*)$")
_SEND = re.compile(r"^Scheduler: Sending due task (\S+) ")
_TAKEN = re.compile(r"^beat lock: taken by (\S+) ")
_STANDBY = re.compile(r"^beat lock: held by (\S+); this beat is standby")


def _lines(log: Path) -> list[tuple[datetime, str]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match:
            found.append((datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f"), match.group(2)))
    return found


def _matches(log: Path, pattern: re.Pattern[str]) -> list[tuple[datetime, str]]:
    return [(at, m.group(1)) for at, text in _lines(log) if (m := pattern.match(text))]


def _sends(log: Path, job: str | None = None) -> list[datetime]:
    return [at for at, name in _matches(log, _SEND) if job is None or name == job]


def _assert_once_per_interval(runs: list[datetime], job: str) -> None:
    """A job sent twice for one turn shows as two sends far closer than its interval; and over any stretch there are
    no more sends than turns."""
    interval = INTERVALS[job]
    gaps = [(b - a).total_seconds() for a, b in zip(runs, runs[1:])]
    assert gaps and min(gaps) >= interval / 2, (job, gaps)
    span = (runs[-1] - runs[0]).total_seconds()
    assert len(runs) <= span / interval * 1.05 + 1, (job, len(runs), span)


def test_two_beats_send_each_job_once_and_the_standby_takes_over(waq_env: dict[str, str], procs,  # noqa: ANN001
                                                                  redis_server: RedisServer) -> None:
    env = {**waq_env, "WAQ_BEAT_LOCK_TTL_S": f"{TTL_S:g}"}
    for job, every in INTERVALS.items():
        env[{"dispatch-due": "WAQ_DISPATCH_INTERVAL_S", "recover-stuck": "WAQ_RECOVER_INTERVAL_S",
             "session-health": "WAQ_HEALTH_INTERVAL_S"}[job]] = f"{every:g}"
    client = redis_server.client()

    first = procs(["beat"], env, "beat-a")
    wait_for(lambda: _matches(first.log, _TAKEN), 60, 0.2, "the first beat to take the lock")
    first_owner = _matches(first.log, _TAKEN)[0][1]
    assert client.get(names.BEAT_LOCK_KEY).decode() == first_owner

    second = procs(["beat"], env, "beat-b")
    wait_for(lambda: _matches(second.log, _STANDBY), 60, 0.2, "the second beat to stand by")
    assert _matches(second.log, _STANDBY)[0][1] == first_owner  # it says who holds the lock
    standby_since = _matches(second.log, _STANDBY)[0][0]

    # Both beats running: the holder keeps sending every job, the standby sends nothing.
    def holder_sent_while_both_ran() -> bool:
        return all(len([t for t in _sends(first.log, job) if t > standby_since]) >= 3 for job in INTERVALS)

    wait_for(holder_sent_while_both_ran, 30, 0.2, "the holder to send each job three times with a standby beat up")
    assert _sends(second.log) == []
    assert client.get(names.BEAT_LOCK_KEY).decode() == first_owner

    # SIGKILL the holder (and its worker): nothing frees the lock, so the standby may take it only once it expires.
    lock_left_s = client.pttl(names.BEAT_LOCK_KEY) / 1000
    read_at = datetime.now()
    first.kill(signal.SIGKILL)
    first.proc.wait(10)
    killed_at = datetime.now()
    wait_for(lambda: _matches(second.log, _TAKEN), TTL_S + TRY_S + 20, 0.2, "the standby beat to take over")
    taken_at, second_owner = _matches(second.log, _TAKEN)[0]
    assert second_owner != first_owner and client.get(names.BEAT_LOCK_KEY).decode() == second_owner
    # The log's milliseconds are cut, not rounded: 10 ms of slack on the earliest moment the lock could expire.
    assert taken_at >= read_at + timedelta(seconds=lock_left_s - 0.01), (read_at, lock_left_s, taken_at)
    gap_s = (taken_at - killed_at).total_seconds()
    assert gap_s <= TTL_S + TRY_S + 1.0, f"took over {gap_s:.2f} s after the kill (lock expiry {TTL_S:g} s)"

    def new_holder_sent() -> bool:
        return all(len([t for t in _sends(second.log, job) if t > taken_at]) >= 3 for job in INTERVALS)

    wait_for(new_holder_sent, 30, 0.2, "the new holder to send each job three times")
    assert all(t <= killed_at for t in _sends(first.log))
    assert all(t >= taken_at for t in _sends(second.log))
    for job in INTERVALS:
        _assert_once_per_interval(sorted(_sends(first.log, job) + _sends(second.log, job)), job)
    shared = client.hgetall(names.BEAT_LAST_RUN_KEY)
    assert {name.decode() for name in shared} >= set(INTERVALS)

    # A clean stop (SIGTERM) gives the lock back instead of leaving it to expire.
    second.stop()
    assert client.get(names.BEAT_LOCK_KEY) is None
    assert any(text == f"beat lock: released by {second_owner}" for _, text in _lines(second.log))
    for log in (first.log, second.log):  # two beats on one data folder: neither harmed the other's schedule file
        text = log.read_text(errors="replace")
        assert "ERROR/Beat" not in text and "corrupted schedule" not in text, log


def test_a_standby_beat_sends_nothing_while_another_holds_the_lock(waq_env: dict[str, str], procs,  # noqa: ANN001
                                                                    redis_server: RedisServer) -> None:
    """The lock alone decides: with it held by another owner (another host, say), a beat sends no job at all, and
    starts sending once that owner lets it expire."""
    env = {**waq_env, "WAQ_BEAT_LOCK_TTL_S": f"{TTL_S:g}", "WAQ_DISPATCH_INTERVAL_S": "1"}
    client = redis_server.client()
    client.set(names.BEAT_LOCK_KEY, "elsewhere/1/cafe", px=60_000)
    beat = procs(["beat"], env, "beat")
    wait_for(lambda: _matches(beat.log, _STANDBY), 60, 0.2, "the beat to stand by")
    assert _matches(beat.log, _STANDBY)[0][1] == "elsewhere/1/cafe"
    time.sleep(3 * TRY_S)  # three tries at the lock, each refused
    assert _sends(beat.log) == [] and len(_matches(beat.log, _STANDBY)) == 1  # "standby" is logged once
    client.pexpire(names.BEAT_LOCK_KEY, 1)
    wait_for(lambda: _sends(beat.log, "dispatch-due"), TTL_S + 20, 0.2, "the beat to send once the lock expired")

"""One beat, however it is deployed: two real `waq beat` processes (sharing one data folder, one SQLite store and one
real redis-server) send each job once per interval, only the holder of the beat lock sending. A hung holder (SIGSTOP,
as a host cut off would look) is replaced once its lock expires, and stops sending when it wakes up; a SIGKILLed holder
is replaced at once by the beat on its host (its pid is gone), in any case within the expiry plus one try; a beat
stopped cleanly frees the lock.

Runs are counted from the beats' own logs: Celery's beat logs "Sending due task <job>" for every job it sends."""

from __future__ import annotations

import re
import signal
from datetime import datetime, timedelta
from pathlib import Path

from tests.helpers.waiting import wait_for
from wa_queue import names
from wa_queue.devstack.redis_server import RedisServer

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


def test_two_beats_send_each_job_once_and_take_over_from_each_other(waq_env: dict[str, str], procs,  # noqa: ANN001
                                                                   redis_server: RedisServer) -> None:
    env = {**waq_env, "WAQ_BEAT_LOCK_TTL_S": f"{TTL_S:g}", "WAQ_DISPATCH_INTERVAL_S": "1",
           "WAQ_RECOVER_INTERVAL_S": "2", "WAQ_HEALTH_INTERVAL_S": "2"}
    client = redis_server.client()

    def owner() -> str | None:
        value = client.get(names.BEAT_LOCK_KEY)
        return value.decode() if value is not None else None

    def sends_after(log: Path, since: datetime, n: int) -> bool:
        return all(len([t for t in _sends(log, job) if t > since]) >= n for job in INTERVALS)

    first = procs(["beat"], env, "beat-a")
    wait_for(lambda: _matches(first.log, _TAKEN), 60, 0.2, "the first beat to take the lock")
    first_owner = _matches(first.log, _TAKEN)[0][1]
    assert owner() == first_owner

    second = procs(["beat"], env, "beat-b")
    wait_for(lambda: _matches(second.log, _STANDBY), 60, 0.2, "the second beat to stand by")
    standby_since, named = _matches(second.log, _STANDBY)[0]
    assert named == first_owner  # it says who holds the lock

    # 1. Both up: the holder sends every job, the standby nothing.
    wait_for(lambda: sends_after(first.log, standby_since, 3), 30, 0.2, "the holder to send each job three times")
    assert _sends(second.log) == [] and owner() == first_owner

    # 2. The holder hangs (SIGSTOP: alive, silent, like a host cut off): the standby waits for the lock to expire.
    lock_left_s = client.pttl(names.BEAT_LOCK_KEY) / 1000
    read_at = datetime.now()
    first.kill(signal.SIGSTOP)
    stopped_at = datetime.now()
    wait_for(lambda: _matches(second.log, _TAKEN), TTL_S + TRY_S + 20, 0.2, "the standby beat to take over")
    taken_at, second_owner = _matches(second.log, _TAKEN)[0]
    assert second_owner != first_owner and owner() == second_owner
    # The log's milliseconds are cut, not rounded: 10 ms of slack on the earliest moment the lock could expire.
    assert taken_at >= read_at + timedelta(seconds=lock_left_s - 0.01), (read_at, lock_left_s, taken_at)
    gap_s = (taken_at - stopped_at).total_seconds()
    assert gap_s <= TTL_S + TRY_S + 1.0, f"took over {gap_s:.2f} s after the holder hung (expiry {TTL_S:g} s)"
    print(f"\nbeat lock: {lock_left_s:.2f} s left at the hang, taken over {gap_s:.2f} s after it")

    # 3. The old holder wakes up: its renewal finds the other token, so it stops sending at once and waits.
    first.kill(signal.SIGCONT)
    wait_for(lambda: any(text.startswith(f"beat lock: lost (held by {second_owner} now)") for _, text in
                         _lines(first.log)), TTL_S + 20, 0.2, "the old holder to notice it lost the lock")
    wait_for(lambda: sends_after(second.log, taken_at, 3), 30, 0.2, "the new holder to send each job three times")
    assert [t for t in _sends(first.log) if t > stopped_at] == []
    assert all(t >= taken_at for t in _sends(second.log)) and owner() == second_owner

    # 4. SIGKILL the holder: the beat on the same host sees its pid gone and takes over without waiting.
    second.kill(signal.SIGKILL)
    second.proc.wait(10)
    killed_at = datetime.now()
    wait_for(lambda: len(_matches(first.log, _TAKEN)) == 2, TTL_S + TRY_S + 20, 0.2, "the first beat to take over")
    retaken_at, again = _matches(first.log, _TAKEN)[1]
    assert again == first_owner and owner() == first_owner
    assert any(text.startswith(f"beat lock: its holder {second_owner} is dead") for _, text in _lines(first.log))
    gap_s = (retaken_at - killed_at).total_seconds()
    assert gap_s <= TTL_S + TRY_S + 1.0, f"took over {gap_s:.2f} s after the kill (expiry {TTL_S:g} s)"
    print(f"beat lock: taken over {gap_s:.2f} s after the holder's SIGKILL")
    wait_for(lambda: sends_after(first.log, retaken_at, 2), 30, 0.2, "the first beat to send each job again")

    # Over the whole run, merged across both beats: each job once per interval.
    for job in INTERVALS:
        _assert_once_per_interval(sorted(_sends(first.log, job) + _sends(second.log, job)), job)
    assert {name.decode() for name in client.hgetall(names.BEAT_LAST_RUN_KEY)} >= set(INTERVALS)

    # 5. A clean stop (SIGTERM) gives the lock back instead of leaving it to expire.
    first.stop()
    assert owner() is None
    assert any(text == f"beat lock: released by {first_owner}" for _, text in _lines(first.log))
    for log in (first.log, second.log):  # two beats on one data folder: neither harmed the other's schedule file
        text = log.read_text(errors="replace")
        assert "ERROR/Beat" not in text and "corrupted schedule" not in text, log

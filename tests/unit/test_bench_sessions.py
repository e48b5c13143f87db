"""The pure parts of bench/sessions.py (the bench itself runs Chromiums and is run by hand): the projection, the send
times read from a message's history, percentiles, and the CPU ticks read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench import _stats as stats
from bench import sessions as bench
from tests.helpers.waiting import wait_for
from wa_queue import procs
from wa_queue.models import HistoryEntry, HistoryEvent, Message, MessageStatus

T0 = datetime(2026, 12, 2, 4, 0, tzinfo=timezone.utc)
MIB = 1024
GIB = 1024 * 1024


def projection(**changes: float) -> bench.Projection:
    values = dict(machine_kib=24 * GIB, reserve_kib=2 * GIB, session_pss_kib=472 * MIB, cores=2.0,
                  cpu_s_per_send=0.78, idle_cores=0.036, pace_s=32.5)
    return bench.Projection(**{**values, **changes})


def test_the_projection_is_the_smaller_of_memory_and_cpu() -> None:
    cpu_limited = projection()
    assert cpu_limited.memory_bound == 47  # 22 GiB / 472 MiB = 47.7
    assert cpu_limited.paced_cores == pytest.approx(0.78 / 32.5 + 0.036)
    assert cpu_limited.cpu_bound == 33  # 2 / 0.06 = 33.3
    assert (cpu_limited.sessions, cpu_limited.limit) == (33, "CPU")
    memory_limited = projection(session_pss_kib=1024 * MIB)
    assert (memory_limited.memory_bound, memory_limited.sessions, memory_limited.limit) == (22, 22, "memory")
    assert projection(reserve_kib=30 * GIB).memory_bound == 0  # never negative


def test_the_projection_says_how_it_was_made() -> None:
    lines = projection().explain()
    assert lines[0] == ("memory: (24 GiB - 2 GiB reserve for the OS, redis, the API and beat) / 472 MiB per session "
                        "= 47")
    assert lines[1] == ("CPU: 2 cores / (0.780 CPU-s per send / 32.5 s between sends + 0.0360 cores idle) = "
                        "2 / 0.0600 = 33")
    assert lines[2] == "projection: 33 sessions (CPU is the limit)"


def message(*events: tuple[HistoryEvent, float]) -> Message:
    history = tuple(HistoryEntry(at=T0 + timedelta(seconds=s), event=e, session="s01") for e, s in events)
    return Message(id="m1", phone="+14155550000", text="hi", status=MessageStatus.SENT, created_at=T0, updated_at=T0,
                   next_attempt_at=T0, history=history)


def test_send_time_runs_from_the_last_claim_to_the_send() -> None:
    assert bench.send_seconds(message((HistoryEvent.ENQUEUED, 0), (HistoryEvent.CLAIMED, 1),
                                      (HistoryEvent.SENDING, 1.5), (HistoryEvent.SENT, 3.25))) == 2.25
    retried = message((HistoryEvent.CLAIMED, 1), (HistoryEvent.RETRY, 2), (HistoryEvent.CLAIMED, 10),
                      (HistoryEvent.SENT, 11.5), (HistoryEvent.RECEIPT, 20))
    assert bench.send_seconds(retried) == 1.5
    assert bench.send_seconds(message((HistoryEvent.CLAIMED, 1), (HistoryEvent.FAILED, 2))) is None


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert stats.percentile(values, 0.5) == 50
    assert stats.percentile(values, 0.99) == 99
    assert stats.percentile(values[:10], 0.99) == 100  # the largest of ten
    assert stats.percentile([3.0], 0.5) == 3.0
    with pytest.raises(ValueError):
        stats.percentile([], 0.5)


def test_histogram_quantile() -> None:
    buckets = [("1.0", 10.0), ("2.0", 95.0), ("5.0", 99.0), ("+Inf", 100.0)]
    assert bench.histogram_quantile(buckets, 0.5) == "2.0"
    assert bench.histogram_quantile(buckets, 0.99) == "5.0"
    assert bench.histogram_quantile([("1.0", 0.0), ("+Inf", 0.0)], 0.5) == "n/a"


def test_stat_ticks_reads_after_the_command_name() -> None:
    # utime 7, stime 5, cutime 3, cstime 2; the name holds spaces and a ')'
    line = "4242 (a b) c) S 1 4242 4242 0 -1 4194304 100 0 0 0 7 5 3 2 20 0 1 0 500 1000 200"
    assert bench.stat_ticks(line) == 17


def test_tree_ticks_of_a_busy_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.3: pass\ntime.sleep(30)"])
    try:
        tick = os.sysconf("SC_CLK_TCK")
        wait_for(lambda: bench.tree_ticks([child.pid]) >= 0.25 * tick, 10, 0.05, "the child's CPU")
        assert bench.tree_ticks([child.pid, 2 ** 22 + 1]) == bench.tree_ticks([child.pid])  # a gone pid counts 0
    finally:
        child.kill()
        child.wait()


def test_the_clean_up_finds_what_left_the_tree(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "WAQ_DATA_DIR": str(data_dir)}
    # Two forks and the middle one gone: the sleep is re-parented and its own session, as Chrome's crash handler.
    outer = subprocess.run(["sh", "-c", "setsid sleep 60 >/dev/null 2>&1 & echo $!"], env=env, capture_output=True,
                           text=True, check=True)
    orphan = int(outer.stdout.strip())
    try:
        assert orphan in bench.processes_with_data_dir(data_dir)
        assert orphan not in bench.processes_with_data_dir(tmp_path / "other")
    finally:
        procs.kill_pids([orphan])
    assert not procs.alive(orphan)

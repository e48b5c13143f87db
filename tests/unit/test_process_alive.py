"""One rule of what a live process is (wa_queue/procs.py): a zombie is not alive. A starting worker frees
the leases of its session's dead processes on this host, a zombie's included, and never a live process's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from wa_queue import procs, recovery
from wa_queue.broker.recording import RecordingPublisher
from wa_queue.models import MessageStatus, NewMessage
from wa_queue.settings import Settings
from wa_queue.store.sqlite import SQLiteStore

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _zombie() -> subprocess.Popen:
    """A child that has exited and is not reaped yet: listed in /proc as Z until wait()."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while not _state(child.pid).startswith("Z"):
        assert time.monotonic() < deadline, "the child never became a zombie"
        time.sleep(0.01)
    return child


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2:]


def test_a_zombie_is_not_alive_though_it_can_still_be_signalled() -> None:
    zombie = _zombie()
    try:
        os.kill(zombie.pid, 0)  # the kernel still lists it: a signal check alone would call it alive
        assert not procs.alive(zombie.pid)
        assert zombie.pid not in procs.group_members(os.getpgrp())
        assert procs.alive(os.getpid())
    finally:
        zombie.wait()
    assert not procs.alive(zombie.pid)  # reaped: gone


def test_is_alive_reads_the_state_field() -> None:
    assert procs.is_alive(["S", "1", "1"]) and procs.is_alive(["R"]) and procs.is_alive(["D"])
    assert not procs.is_alive(["Z", "1"]) and not procs.is_alive(["X"]) and not procs.is_alive([])


def test_a_starting_worker_frees_a_zombies_leases_and_keeps_a_live_processs(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "waq.db"))
    settings = Settings.from_env({"WAQ_DATA_DIR": str(tmp_path), "WAQ_SESSIONS": "primary"})
    zombie = _zombie()
    try:
        news = [NewMessage(phone="+14155550101", text="of the zombie"),
                NewMessage(phone="+14155550102", text="of a live process")]
        dead_id, live_id = (m.id for m, _ in store.insert_many(news, T0))
        parent = os.getppid()  # alive, and not this process (whose own leases a worker keeps)
        for message_id, pid in ((dead_id, zombie.pid), (live_id, parent)):
            assert store.claim(message_id, owner=f"primary/host-a/{pid}", session="primary", now=T0, lease_s=600)
        freed = recovery.free_own_leases(store, settings, "primary", "host-a", T0, publisher=RecordingPublisher(store))
        assert freed == 1
        assert store.get(dead_id).status is MessageStatus.PENDING
        assert store.get(live_id).status is MessageStatus.PROCESSING
    finally:
        zombie.wait()
        store.close()

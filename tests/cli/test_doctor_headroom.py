"""`waq doctor`'s headroom check: the judgement on given figures (room, no room, full, strays), and the real command
finding a real `waq worker` running on this machine with its PSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers.constants import ROOT
from tests.helpers.waiting import wait_for
from wa_queue.cli.doctor import check_headroom
from wa_queue.headroom import Headroom, SessionFootprint

MIB = 1024
GIB = 1024 * MIB


def _machine(available_kib: int, *session_mib: int, strays: tuple[int, ...] = ()) -> Headroom:
    sessions = tuple(SessionFootprint(name=f"s{i}", pid=1000 + i, data_dir="/var/waq", worker_pids=(1000 + i,),
                                      browser_pids=(2000 + i,), worker_pss_kib=40 * MIB,
                                      browser_pss_kib=(mib - 40) * MIB) for i, mib in enumerate(session_mib))
    return Headroom(sessions=sessions, stray_pids=strays, stray_pss_kib=300 * MIB * len(strays),
                    mem_total_kib=24 * GIB, mem_available_kib=available_kib, reserve_kib=512 * MIB)


def test_room_for_more_is_ok_and_says_how_many() -> None:
    check = check_headroom(_machine(10 * GIB, 300, 500))
    assert check.status == "ok" and not check.fix
    assert "2 session(s) here, 800 MiB PSS in all" in check.detail
    assert "s0 (pid 1000) 300 MiB" in check.detail and "MemAvailable 10240 of 24576 MiB" in check.detail
    assert "about 24 more fit at 400 MiB each" in check.detail  # (10240 - 512) // 400


def test_no_room_for_another_session_warns() -> None:
    check = check_headroom(_machine(700 * MIB, 400, 400))  # above one session, below one session plus the reserve
    assert check.status == "warn" and "another host" in check.fix
    assert "about 0 more fit" in check.detail


def test_less_than_one_session_available_fails() -> None:
    check = check_headroom(_machine(300 * MIB, 400, 400))
    assert check.status == "fail" and "the machine is full" in check.fix and "WAQ_CHROME_MAX_PSS_MB" in check.fix


def test_no_session_running_and_strays() -> None:
    assert check_headroom(_machine(10 * GIB)).status == "ok"
    assert "no session worker runs here" in check_headroom(_machine(10 * GIB)).detail
    check = check_headroom(_machine(10 * GIB, strays=(4242, 4243)))
    assert check.status == "warn" and "kill 4242 4243" in check.fix
    assert "2 browser process(es) of no running worker, 600 MiB" in check.detail


def test_doctor_reports_a_running_worker(waq_env: dict[str, str], procs) -> None:  # noqa: ANN001
    from wa_queue.hub import default_hub

    worker = procs(["worker", "--session", "primary"], waq_env, "worker-primary")
    wait_for(lambda: default_hub().store.get_session("primary").status == "connected", 60, 0.2, "the worker")
    done = subprocess.run([sys.executable, "-m", "wa_queue.cli", "doctor", "--check", "headroom", "--json"],
                          env={**os.environ, **waq_env}, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    (check,) = json.loads(done.stdout)["checks"]
    assert check["name"] == "headroom" and check["status"] in ("ok", "warn", "fail"), check
    assert done.returncode == (1 if check["status"] == "fail" else 0)
    assert f"primary (pid {worker.proc.pid}) " in check["detail"], check  # found by its environment, measured
    assert "MemAvailable" in check["detail"]

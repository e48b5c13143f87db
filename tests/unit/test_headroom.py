"""wa_queue/headroom.py on real processes: children of this test tagged the way `waq worker` tags a session worker
(WAQ_WORKER_SESSION in the environment, inherited by its pool child, chromedriver and Chrome), or named by a
worker's command line; stand-ins for chromedriver and Chrome are copies of `sleep` under their names, so /proc
shows the same comm a real browser has."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.waiting import wait_for
from wa_queue import headroom, procs


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        base = {k: v for k, v in os.environ.items() if k not in (headroom.SESSION_ENV, headroom.DATA_DIR_ENV)}
        proc = subprocess.Popen(argv, env={**base, **env}, start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        procs.kill_tree(proc.pid)
        proc.wait(5)


@pytest.fixture
def name() -> str:
    return "hr-" + uuid.uuid4().hex[:12]


def as_program(tmp_path: Path, program: str) -> str:
    """A copy of sleep called `program`: its comm is the name a browser process shows."""
    path = tmp_path / program
    shutil.copy(shutil.which("sleep") or "/bin/sleep", path)
    return str(path)


def found(name: str) -> list[headroom.SessionFootprint]:
    return [s for s in headroom.measure().sessions if s.name == name]


def settled(name: str, count: int) -> list[headroom.SessionFootprint]:
    """The session's footprint once `count` of its processes have started (a shell starts its children late)."""
    wait_for(lambda: sum(len(s.worker_pids) + len(s.browser_pids) for s in found(name)) == count, 10, 0.05,
             f"{count} processes of {name}")
    return found(name)


def test_a_worker_found_by_its_environment_with_its_tree_and_browser(spawn, name: str, tmp_path: Path) -> None:
    driver = as_program(tmp_path, "chromedriver")
    chrome = as_program(tmp_path, "chromium")
    worker = spawn(["sh", "-c", f"sleep 60 & {driver} 60 & {chrome} 60 & wait"],
                   {headroom.SESSION_ENV: name, headroom.DATA_DIR_ENV: str(tmp_path)})
    [session] = settled(name, 4)
    assert session.pid == worker.pid
    assert session.data_dir == str(tmp_path)
    assert worker.pid in session.worker_pids and len(session.worker_pids) == 2  # sh and its sleep
    assert sorted(procs.cmdline(p).split()[0] for p in session.browser_pids) == sorted([driver, chrome])
    assert session.worker_pss_kib > 0 and session.browser_pss_kib > 0
    assert session.pss_kib == procs.pss_kib([*session.worker_pids, *session.browser_pids])


def test_a_worker_found_by_its_command_line(spawn, name: str, tmp_path: Path) -> None:
    sleeper = "import time; time.sleep(60)"
    waq = spawn([sys.executable, "-c", sleeper, "worker", "--session", name], {})
    celery = spawn([sys.executable, "-c", sleeper, "celery", "-A", "x", "worker", "-Q",
                    f"wa.session.{name}-c,wa.default"], {})
    spawn([sys.executable, "-c", sleeper, "worker", "--check", "--session", f"{name}-k"], {})  # a health probe
    wait_for(lambda: found(name) and found(f"{name}-c"), 10, 0.05, "both workers")
    assert [s.pid for s in found(name)] == [waq.pid]
    assert [s.pid for s in found(f"{name}-c")] == [celery.pid]
    assert found(f"{name}-k") == []


def test_a_detached_browser_joins_the_worker_of_its_profile_or_is_a_stray(spawn, name: str, tmp_path: Path) -> None:
    handler = as_program(tmp_path, "chrome_crashpad_handler")
    tag = {headroom.SESSION_ENV: name, headroom.DATA_DIR_ENV: str(tmp_path)}
    # The crash handler's parent is not the worker (Chrome's is re-parented to init): only the tag links them.
    attached = spawn([handler, "60"], tag)
    worker = spawn(["sleep", "60"], tag)
    stray = spawn([handler, "61"], {**tag, headroom.DATA_DIR_ENV: str(tmp_path / "other")})
    [session] = settled(name, 2)
    assert session.pid == worker.pid
    assert session.browser_pids == (attached.pid,)
    measured = headroom.measure()
    assert stray.pid in measured.stray_pids and attached.pid not in measured.stray_pids
    assert measured.stray_pss_kib >= procs.pss_kib([stray.pid]) > 0


def test_two_workers_of_one_name_in_two_data_dirs_are_two_sessions(spawn, name: str, tmp_path: Path) -> None:
    for folder in ("a", "b"):
        spawn(["sleep", "60"], {headroom.SESSION_ENV: name, headroom.DATA_DIR_ENV: str(tmp_path / folder)})
    wait_for(lambda: len(found(name)) == 2, 10, 0.05, "two sessions")
    assert sorted(s.data_dir for s in found(name)) == [str(tmp_path / "a"), str(tmp_path / "b")]


def test_headroom_counts_what_fits_at_the_mean_footprint(spawn, name: str, tmp_path: Path) -> None:
    spawn(["sleep", "60"], {headroom.SESSION_ENV: name, headroom.DATA_DIR_ENV: str(tmp_path)})
    settled(name, 1)
    measured = headroom.measure(reserve_kib=1024)
    assert measured.mem_total_kib >= measured.mem_available_kib > 0
    assert measured.total_pss_kib == sum(s.pss_kib for s in measured.sessions)
    mean = measured.mean_pss_kib
    assert mean is not None and mean > 0
    assert measured.more_sessions == (measured.mem_available_kib - 1024) // mean


def test_sessions_that_fit() -> None:
    assert headroom.sessions_that_fit(10_000, 3_000) == 3
    assert headroom.sessions_that_fit(10_000, 3_000, reserve_kib=1_001) == 2
    assert headroom.sessions_that_fit(1_000, 3_000, reserve_kib=2_000) == 0  # never negative
    with pytest.raises(ValueError):
        headroom.sessions_that_fit(10_000, 0)


def test_no_session_running_means_no_footprint_to_go_by() -> None:
    empty = headroom.Headroom(sessions=(), stray_pids=(), stray_pss_kib=0, mem_total_kib=8, mem_available_kib=4,
                              reserve_kib=0)
    assert empty.mean_pss_kib is None and empty.more_sessions is None


def test_read_meminfo(tmp_path: Path) -> None:
    sample = tmp_path / "meminfo"
    sample.write_text("MemTotal:       24684084 kB\nMemAvailable:   23878044 kB\nHugePages_Total:       0\n")
    assert procs.meminfo(sample) == {"MemTotal": 24684084, "MemAvailable": 23878044, "HugePages_Total": 0}
    assert procs.meminfo()["MemTotal"] > 0


@pytest.mark.parametrize(("environ", "cmdline", "session"), [
    ({"WAQ_WORKER_SESSION": "primary"}, "/usr/lib/chromium/chromium --type=renderer", "primary"),
    (None, "/venv/bin/python -m wa_queue.cli worker --session s01", "s01"),
    (None, "/venv/bin/waq worker --session=s-2 --loglevel INFO", "s-2"),
    (None, "python -m celery -A wa_queue.celery_app:app worker -Q wa.session.s03,wa.default -n s03@h", "s03"),
    (None, "python -m celery -A wa_queue.celery_app:app worker -B -Q wa.maintenance,wa.callbacks", None),
    (None, "python -m wa_queue.cli worker --check --session s01", None),
    (None, "python bench/sessions.py --sessions 8", None),
    ({"PATH": "/bin"}, "sleep 60", None),
])
def test_session_of(environ: dict[str, str] | None, cmdline: str, session: str | None) -> None:
    assert headroom.session_of(environ, cmdline) == session


def test_parse_environ() -> None:
    assert procs.parse_environ(b"A=1\0B=x=y\0EMPTY=\0") == {"A": "1", "B": "x=y", "EMPTY": ""}

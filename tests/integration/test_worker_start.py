"""A worker fails loudly and reports honestly, through real processes: `waq worker` with a store that refuses
connections exits 1 naming WAQ_STORE_URL instead of starting Celery; `waq worker --check` reads what the session's
worker last recorded (heartbeat, browser state) from a real worker driving Chromium on the simulator."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.constants import ROOT
from tests.helpers.stack import ACCOUNTS, Stack
from tests.helpers.waiting import wait_for
from wa_queue.devstack.ports import free_port
from wa_queue.devstack.redis_server import RedisServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]  # the workers drive Chromium

START_TIMEOUT_S = 5


@pytest.mark.parametrize(("argv", "what"), [(["worker", "--session", "primary"], "worker primary"),
                                            (["beat"], "beat")], ids=["worker", "beat"])
def test_a_worker_whose_store_refuses_exits_naming_the_setting(waq_env: dict[str, str], procs, argv: list[str],  # noqa: ANN001
                                                               what: str) -> None:
    refused = free_port()  # bound and released: nothing listens there
    env = {**waq_env, "WAQ_STORE_URL": f"mongodb://127.0.0.1:{refused}/waq",
           "WAQ_STORE_START_TIMEOUT_S": str(START_TIMEOUT_S)}
    worker = procs(argv, env, f"{argv[0]}-refused")
    # A guard against a hang, not a measurement: the worker gives up after START_TIMEOUT_S of attempts.
    code = worker.proc.wait(START_TIMEOUT_S + 60)
    worker.handle.flush()
    log = worker.log.read_text()
    assert code == 1, log
    assert f"{what} not started" in log and "WAQ_STORE_URL" in log, log
    assert f"127.0.0.1:{refused}" in log and "Connection refused" in log, log
    assert "retrying for up to 5 s (WAQ_STORE_START_TIMEOUT_S)" in log, log  # it did retry before giving up
    assert "celery@" not in log and "ready." not in log, "Celery started without its store"


def test_a_worker_whose_store_answers_starts(waq_env: dict[str, str], procs) -> None:  # noqa: ANN001
    # The same start with the test's SQLite store reaches Celery: the check above is not simply always failing.
    worker = procs(["worker", "--session", "primary"], {**waq_env, "WAQ_STORE_START_TIMEOUT_S": "5"}, "worker-ok")
    wait_for(lambda: "ready." in worker.log.read_text(errors="replace") or not worker.alive(), 90, 0.2,
             "the worker to start")
    assert worker.alive(), worker.log.read_text(errors="replace")


def _check(stack: Stack, session: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wa_queue.cli", "worker", "--check", "--session", session],
                          env={**_base_env(), **stack.env}, cwd=ROOT, capture_output=True, text=True, timeout=60)


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("WAQ_")}


def test_the_health_check_follows_the_session_not_the_celery_process(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> None:
    redis_server.client().flushall()
    stack = Stack(tmp_path_factory.mktemp("health"), redis_server, sessions=("primary",))
    try:
        before = _check(stack, "primary")
        assert before.returncode == 1 and "heartbeat never" in before.stdout, before.stdout + before.stderr
        stack.start_beat()  # its health sweep is what records the session's state
        stack.start_worker("primary")
        wait_for(lambda: _check(stack, "primary").returncode == 0, 60, 0.5, "a healthy check while connected")
        healthy = _check(stack, "primary")
        assert healthy.stdout.startswith("session primary ok: connected, heartbeat"), healthy.stdout
        assert len(healthy.stdout.strip().splitlines()) == 1

        stack.fault(session=ACCOUNTS["primary"], fault="logged_out")
        wait_for(lambda: stack.session("primary").status != "connected", 60, 0.2, "the sweep to record the logout")
        assert stack.procs["primary"].alive()  # Celery is up and would answer a ping
        sick = _check(stack, "primary")
        assert sick.returncode == 1, sick.stdout + sick.stderr
        assert sick.stdout.startswith("session primary fail: ") and "connected," not in sick.stdout, sick.stdout
        assert "fix: " in sick.stdout and len(sick.stdout.strip().splitlines()) == 1, sick.stdout
    finally:
        leftover = stack.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"

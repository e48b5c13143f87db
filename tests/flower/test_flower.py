"""Flower: the command line (auth required), and a real Flower listing a real Celery worker over a real Redis."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.constants import ROOT
from tests.helpers.processes import Proc
from tests.helpers.services import isolated_redis
from tests.helpers.waiting import wait_for
from wa_queue import names
from wa_queue.devstack.flower import AUTH_ENV, flower_argv, flower_env, parse_flower_auth
from wa_queue.devstack.ports import free_port
from wa_queue.errors import ConfigError
from wa_queue.settings import Settings

AUTH = "ops:flower-password-1"


def test_argv_has_basic_auth_and_binds_localhost() -> None:
    argv = flower_argv(Settings(flower_auth=AUTH), 5566)
    assert argv[:6] == [sys.executable, "-m", "wa_queue.devstack.flower", "-A", "wa_queue.celery_app:app", "flower"]
    assert "--port=5566" in argv and "--address=127.0.0.1" in argv
    assert f"--basic-auth={AUTH}" in argv


def test_auth_can_travel_in_the_environment_instead() -> None:
    settings = Settings(flower_auth=AUTH)
    argv = flower_argv(settings, 5566, auth_in_env=True)
    assert not any(AUTH in part for part in argv)
    assert flower_env(settings) == {AUTH_ENV: AUTH}


def test_refuses_to_start_open_unless_asked() -> None:
    with pytest.raises(ConfigError, match="WAQ_FLOWER_AUTH"):
        flower_argv(Settings(), 5555)
    argv = flower_argv(Settings(), 5555, unauthenticated=True)
    assert not any(part.startswith("--basic-auth") for part in argv)
    assert flower_env(Settings()) == {}


@pytest.mark.parametrize("raw", ["nopassword", ":password1", "user:", "user:short", "a:b,c:defghijkl"])
def test_bad_auth_values_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="WAQ_FLOWER_AUTH"):
        parse_flower_auth(raw)
    with pytest.raises(ConfigError):
        flower_argv(Settings(flower_auth=raw), 5555)


def test_bad_port_is_refused() -> None:
    with pytest.raises(ConfigError):
        flower_argv(Settings(flower_auth=AUTH), 0)


def _get(url: str, auth: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - local test server
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.mark.timeout(180)
def test_real_flower_lists_the_real_worker(tmp_path: Path) -> None:
    redis = isolated_redis(tmp_path / "redis")
    redis.start()
    env = {
        "WAQ_BROKER_URL": redis.url,
        "WAQ_STORE_URL": f"sqlite:///{tmp_path / 'data' / 'waq.db'}",
        "WAQ_DATA_DIR": str(tmp_path / "data"),
        "WAQ_SESSIONS": "primary",
        "WAQ_TRANSPORT": "fake",
        "WAQ_FLOWER_AUTH": AUTH,
    }
    settings = Settings.from_env(env)
    port = free_port()
    started: list[Proc] = []
    try:
        # The session worker exactly as `waq worker` starts it: task events off until Flower switches them on.
        started.append(Proc([sys.executable, "-m", "wa_queue.cli", "worker", "--session", "primary", "--loglevel",
                             "INFO"], env, tmp_path / "worker.log"))
        flower = Proc(flower_argv(settings, port, auth_in_env=True), {**env, **flower_env(settings)},
                      tmp_path / "flower.log")
        started.append(flower)
        base = f"http://127.0.0.1:{port}"
        worker_name = f"primary@{socket.gethostname()}"

        def listed() -> dict | None:
            assert flower.alive(), (tmp_path / "flower.log").read_text()[-3000:]
            # refresh=1 makes Flower run `inspect` now instead of relying on what it learnt at start.
            status, body = _get(f"{base}/api/workers?refresh=1", AUTH)
            if status != 200:
                return None
            workers = json.loads(body)
            return workers if worker_name in workers else None

        workers = wait_for(listed, 120, 1.0, f"Flower to list {worker_name}")
        queues = {q["name"] for q in workers[worker_name].get("active_queues", [])}
        assert {"wa.session.primary", "wa.default"} <= queues
        assert _get(f"{base}/api/workers", None)[0] == 401
        assert _get(f"{base}/api/workers", "ops:wrong-password")[0] == 401
        # A message sent after Flower started shows up among its tasks: Flower turned the worker's events on.
        subprocess.run([sys.executable, "-c", "import wa_queue; wa_queue.enqueue('+14155550100', 'seen by Flower')"],
                       check=True, cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)})

        def task_seen() -> dict | None:
            status, body = _get(f"{base}/api/tasks", AUTH)
            tasks = json.loads(body) if status == 200 else {}
            done = [t for t in tasks.values() if t.get("name") == names.TASK_SEND and t.get("state") == "SUCCESS"]
            return done[0] if done else None

        task = wait_for(task_seen, 90, 1.0, "Flower to see the send task succeed")
        assert task["worker"] == worker_name
        # The credentials never appear on Flower's command line.
        cmdline = Path(f"/proc/{flower.proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert AUTH not in cmdline
    finally:
        for proc in started:
            proc.stop()
        redis.stop()
    assert all(not proc.alive() for proc in started)

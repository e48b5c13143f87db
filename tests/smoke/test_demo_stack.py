"""`make demo` as the README says: the stack starts in the background (its own redis-server, the API under gunicorn,
one worker per session driving Chromium on the simulator, beat, Flower), messages go through the REST API and reach
the simulator, then Ctrl-C (SIGINT) stops it and no process of it is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.helpers.constants import ROOT
from tests.helpers.processes import processes_of
from tests.helpers.waiting import wait_for
from wa_queue.devstack.ports import free_port

pytestmark = pytest.mark.timeout(400)


def test_demo_stack_runs_and_stops_clean(tmp_path: Path) -> None:
    data = tmp_path / "var"
    ports = {"api": free_port(), "flower": free_port(), "sim": free_port(), "redis": free_port()}
    env = {
        **os.environ, "WAQ_DATA_DIR": str(data), "WAQ_BROKER_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "WAQ_API_PORT": str(ports["api"]), "WAQ_FLOWER_PORT": str(ports["flower"]), "WAQ_SIM_PORT": str(ports["sim"]),
        "WAQ_MIN_DELAY_S": "0.5", "WAQ_MAX_DELAY_S": "1",
    }
    for key in ("WAQ_STORE_URL", "WAQ_API_KEYS", "WAQ_FLOWER_AUTH", "WAQ_TRANSPORT", "WAQ_SESSIONS"):
        env.pop(key, None)
    log = open(tmp_path / "stack.log", "wb")  # noqa: SIM115
    stack = subprocess.Popen([sys.executable, "-m", "wa_queue.devstack.launcher", "--demo"], cwd=ROOT, env=env,
                             stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    api, sim = f"http://127.0.0.1:{ports['api']}", f"http://127.0.0.1:{ports['sim']}"
    try:
        wait_for(lambda: (data / "admin.key").exists(), 30, 0.2, "the generated admin key")
        key = (data / "admin.key").read_text().strip()
        headers = {"X-API-Key": key}
        wait_for(lambda: _ok(f"{api}/healthz"), 90, 0.5, "the API")
        response = requests.post(f"{api}/api/whatsapp/messages", headers=headers, timeout=10,
                                 json={"phone": "+14155557001", "text": "smoke test"})
        assert response.status_code == 202, response.text
        mid = response.json()["id"]

        def sent() -> bool:
            return requests.get(f"{api}/api/whatsapp/messages/{mid}", headers=headers, timeout=5).json().get(
                "status") == "sent"

        wait_for(sent, 180, 1, "the smoke message to be sent")
        texts = [m["text"] for m in requests.get(f"{sim}/__sim__/sent", timeout=5).json()]
        assert texts.count("smoke test") == 1
        # The demo's own producer: its handful arrives, and the unregistered number fails.
        wait_for(lambda: sum("wa-queue demo" in t for t in
                             (m["text"] for m in requests.get(f"{sim}/__sim__/sent", timeout=5).json())) >= 5,
                 180, 1, "the demo messages")
        wait_for(lambda: requests.get(f"{api}/api/whatsapp/failed", headers=headers, timeout=5).json()["total"] >= 1,
                 120, 1, "the unregistered number to fail")
        assert _ok(f"http://127.0.0.1:{ports['flower']}/healthcheck")
        assert (data / "admin.key").stat().st_mode & 0o077 == 0
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGINT)
        try:
            stack.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            raise
        finally:
            log.close()
    wait_for(lambda: not processes_of(data), 30, 0.5, "every process of the stack to exit")


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False

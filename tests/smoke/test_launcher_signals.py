"""A stop finishes the send in hand (issue 17): the real launcher (`python -m wa_queue.devstack.launcher`, what `make
run` runs) with its real processes (gunicorn, a Celery worker, beat, Flower, its own redis-server) on the scripted
fake sender with a slow send. While a message is being sent, the stack is stopped by SIGTERM to the launcher, or by
Ctrl-C typed into the terminal of `make run` (a pseudo-terminal, the real Makefile's run recipe). The message ends
sent exactly once, after the stop began; no worker process was lost; the launcher (or make) exits 0 with no "make:
***" line; no process of the stack is left."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import requests

from tests.helpers.constants import ROOT
from tests.helpers.processes import processes_of
from tests.helpers.waiting import wait_for
from wa_queue.devstack.launcher import Supervisor
from wa_queue.devstack.ports import free_port
from wa_queue.errors import ConfigError
from wa_queue.settings import Settings
from wa_queue.store import open_store

pytestmark = pytest.mark.timeout(240)

SEND_DELAY_S = 6  # long enough that the stop lands while the send is in hand; far below the grace period


def _stack_env(tmp: Path) -> dict[str, str]:
    data = tmp / "var"
    env = {
        **os.environ, "WAQ_DATA_DIR": str(data), "WAQ_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "WAQ_API_PORT": str(free_port()), "WAQ_FLOWER_PORT": str(free_port()), "WAQ_TRANSPORT": "fake",
        "WAQ_SESSIONS": "primary", "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0",
    }
    # A make of its own, not a sub-make of `make test` (whose messages say "make[2]:" and share its job server).
    for key in ("WAQ_STORE_URL", "WAQ_API_KEYS", "WAQ_FLOWER_AUTH", "WAQ_FAKE_LOG", "WAQ_FAKE_CONTROL",
                "WAQ_STOP_GRACE_S", "MAKELEVEL", "MAKEFLAGS", "MFLAGS"):
        env.pop(key, None)
    data.mkdir(parents=True)
    (data / "fake-control.json").write_text(json.dumps({"send_delay_s": SEND_DELAY_S}))
    return env


def _enqueue_and_wait_for_send(env: dict[str, str], alive: Callable[[], bool],
                               queue_next: bool = False) -> tuple[str, str | None]:
    """Enqueue one message through the REST API and return its id once its send has begun (sending_at recorded);
    with queue_next, also the id of a second message, once it has been published to the broker behind the first."""
    data = Path(env["WAQ_DATA_DIR"])
    api = f"http://127.0.0.1:{env['WAQ_API_PORT']}"

    def api_up() -> bool:
        assert alive(), "the stack stopped by itself"
        try:
            return requests.get(f"{api}/healthz", timeout=2).status_code in (200, 503)
        except requests.RequestException:
            return False

    wait_for(lambda: (data / "admin.key").exists(), 60, 0.2, "the generated admin key")
    wait_for(api_up, 90, 0.3, "the API")

    def enqueue(phone: str, text: str) -> str:
        response = requests.post(f"{api}/api/whatsapp/messages", timeout=10,
                                 headers={"X-API-Key": (data / "admin.key").read_text().strip()},
                                 json={"phone": phone, "text": text})
        assert response.status_code == 202, response.text
        return response.json()["id"]

    mid = enqueue("+14155557001", "in hand at the stop")
    store = open_store(f"sqlite:///{data / 'waq.db'}")
    try:
        wait_for(lambda: store.get(mid).sending_at, 90, 0.1, "the send to begin")
        if not queue_next:
            return mid, None
        next_id = enqueue("+14155557002", "queued behind it")
        wait_for(lambda: store.get(next_id).dispatched_at, 30, 0.1, "the second message to be published")
        assert store.get(mid).sent_at is None, "the first send ended before the second was queued"
        return mid, next_id
    finally:
        store.close()


def _check_sent_once_after(env: dict[str, str], mid: str, stop_at: float, output: str) -> None:
    data = Path(env["WAQ_DATA_DIR"])
    sends = [json.loads(line) for line in (data / "fake-sent.jsonl").read_text().splitlines() if line.strip()]
    assert [s["ref"] for s in sends] == [mid], output
    # The send finished after the stop began: the stop waited for it.
    assert datetime.fromisoformat(sends[0]["at"]).timestamp() > stop_at, (sends, stop_at)
    store = open_store(f"sqlite:///{data / 'waq.db'}")
    try:
        message = store.get(mid)
    finally:
        store.close()
    assert message.status.value == "sent", (message.status, output)
    assert "WorkerLostError" not in output and "exited prematurely" not in output, output
    assert "Warm shutdown" in output, output
    wait_for(lambda: not processes_of(data), 30, 0.5, "every process of the stack to exit")


def test_sigterm_to_the_launcher_finishes_the_send_in_hand(tmp_path: Path) -> None:
    env = _stack_env(tmp_path)
    log_path = tmp_path / "stack.log"
    with open(log_path, "wb") as log:
        stack = subprocess.Popen([sys.executable, "-m", "wa_queue.devstack.launcher"], cwd=ROOT, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            mid, next_id = _enqueue_and_wait_for_send(env, lambda: stack.poll() is None, queue_next=True)
            stop_at = time.time()
            stack.send_signal(signal.SIGTERM)  # the launcher only, as `kill <pid>` or a service manager does
            code = stack.wait(200)
        finally:
            if stack.poll() is None:
                os.killpg(stack.pid, signal.SIGKILL)
                stack.wait(10)
    output = log_path.read_text(errors="replace")
    assert code == 0, output
    assert "worker_primary | " in output, output  # each line names its process
    _check_sent_once_after(env, mid, stop_at, output)
    # The worker took no new message after the stop: the second one waits, untouched, for the next start.
    store = open_store(f"sqlite:///{tmp_path / 'var' / 'waq.db'}")
    try:
        queued = store.get(next_id)
    finally:
        store.close()
    assert queued.status.value == "pending" and queued.attempts == 0 and queued.claimed_by is None, queued


def test_ctrl_c_on_make_run_finishes_the_send_and_make_exits_0(tmp_path: Path) -> None:
    env = _stack_env(tmp_path)
    # The real run recipe; its deps (the virtual environment) are this test's own interpreter.
    argv = ["make", "--no-print-directory", "-C", str(ROOT), "-o", "deps", "run", f"VPY={sys.executable}"]
    pid, master = pty.fork()
    if pid == 0:  # the child: a session of its own whose terminal is the pseudo-terminal, as in a shell
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    chunks: list[bytes] = []

    def drain(seconds: float) -> bool:
        """Read the terminal for up to `seconds`; False once it is closed (make and everything of it exited)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return False
                if not chunk:
                    return False
                chunks.append(chunk)
        return True

    status: list[int] = []

    def make_alive() -> bool:
        drain(0.05)
        if not status:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status.append(code)
        return not status

    try:
        mid, _ = _enqueue_and_wait_for_send(env, make_alive)
        stop_at = time.time()
        os.write(master, b"\x03")  # Ctrl-C: the terminal sends SIGINT to its foreground process group
        deadline = time.monotonic() + 200
        while drain(1) and time.monotonic() < deadline:
            pass
        status.append(os.waitpid(pid, 0)[1])
    finally:
        if not status:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)
    output = b"".join(chunks).decode(errors="replace")
    assert os.waitstatus_to_exitcode(status[0]) == 0, output
    assert not re.search(r"make(\[\d+\])?: \*\*\*", output), output  # make's error line, "Interrupt" or "Error 130"
    assert "SIGINT received" in output, output
    _check_sent_once_after(env, mid, stop_at, output)


def test_the_supervisor_kills_what_outlives_the_grace_period() -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready'); time.sleep(120)"
    commands = {"stubborn": [sys.executable, "-c", stubborn],
                "polite": [sys.executable, "-c", "import time; print('ready'); time.sleep(120)"]}
    out = io.BytesIO()
    supervisor = Supervisor(commands, dict(os.environ), grace_s=1.0, out=out)
    supervisor.start()
    wait_for(lambda: out.getvalue().count(b" | ready") == 2, 30, 0.1, "both processes to start")
    supervisor.request_stop(signal.SIGTERM)
    assert supervisor.run() == 1  # not a clean stop: one process had to be killed
    text = out.getvalue().decode()
    assert "stubborn | ready" in text and "polite   | ready" in text, text
    assert "stubborn did not stop within 1 s: killed" in text, text
    assert "polite did not stop" not in text, text
    assert all(proc.poll() is not None for proc in supervisor.procs.values())


def test_a_process_that_exits_by_itself_stops_the_others() -> None:
    commands = {"short": [sys.executable, "-c", "print('bye')"],
                "long": [sys.executable, "-c", "import time; time.sleep(120)"]}
    out = io.BytesIO()
    supervisor = Supervisor(commands, dict(os.environ), grace_s=30.0, out=out)
    supervisor.start()
    assert supervisor.run() == 1
    text = out.getvalue().decode()
    assert "short exited with status 0: stopping the others" in text, text
    assert "short  | bye" in text and "long stopped" in text, text
    assert supervisor.procs["long"].returncode == -signal.SIGTERM


def test_the_stop_grace_must_outlast_a_send() -> None:
    assert Settings.from_env({}).stop_grace_s > Settings.from_env({}).send_timeout_s
    with pytest.raises(ConfigError, match="WAQ_STOP_GRACE_S"):
        Settings.from_env({"WAQ_SEND_TIMEOUT_S": "30", "WAQ_STOP_GRACE_S": "30"})


def test_a_second_stop_signal_kills_at_once_and_the_stop_is_not_clean() -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready'); time.sleep(120)"
    out = io.BytesIO()
    supervisor = Supervisor({"stubborn": [sys.executable, "-c", stubborn]}, dict(os.environ), grace_s=100.0, out=out)
    supervisor.start()
    wait_for(lambda: b" | ready" in out.getvalue(), 30, 0.1, "the process to start")
    supervisor.request_stop(signal.SIGINT)

    def second_ctrl_c() -> None:  # as the handler would run it: once the stop is waiting for the stubborn process
        wait_for(lambda: b"waiting up to 100 s for: stubborn" in out.getvalue(), 30, 0.05, "the stop to wait")
        supervisor.request_stop(signal.SIGINT)

    threading.Thread(target=second_ctrl_c, daemon=True).start()
    assert supervisor.run() == 1
    text = out.getvalue().decode()
    assert "SIGINT again: killing everything now" in text, text
    assert "did not stop within" not in text, text  # killed by the second Ctrl-C, not by the end of the grace
    assert supervisor.procs["stubborn"].returncode == -signal.SIGKILL

"""The whole system as real processes, for end-to-end and chaos tests: the WhatsApp Web simulator, a redis-server,
session workers driving Chromium, beat, and the API, all sharing one store: a SQLite file, or `store_url` (a database on
a MongoDB server: FerretDB or WAQ_TEST_MONGO_URL's, tests/conftest.py's mongo_store_url)."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.helpers import procfile
from tests.helpers.processes import Proc, processes_of
from tests.helpers.waiting import wait_for
from wa_queue.devstack.ports import free_port
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import MessageStatus
from wa_queue.simulator.app import SimServer
from wa_queue.simulator.profiles import DEFAULT_MARKUP

ACCOUNTS = {"primary": "15550000001", "secondary": "15550000002", "third": "15550000003"}
ADMIN_KEY = "chaos-admin-key-0123456789abcdef"


class Stack:
    def __init__(self, tmp: Path, redis: RedisServer, *, sessions: tuple[str, ...] = ("primary", "secondary"),
                 extra_env: dict[str, str] | None = None, markup: str = DEFAULT_MARKUP,
                 store_url: str | None = None) -> None:
        self.tmp = tmp
        self.redis = redis
        self.sessions = sessions
        self.sim = SimServer(markup=markup).start()
        self.api_port = free_port()
        self.env = {
            "WAQ_DATA_DIR": str(tmp / "data"), "WAQ_STORE_URL": store_url or f"sqlite:///{tmp / 'data' / 'waq.db'}",
            "WAQ_BROKER_URL": redis.url, "WAQ_SESSIONS": ",".join(sessions), "WAQ_TRANSPORT": "selenium",
            "WAQ_WHATSAPP_URL": self.sim.url, "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0",
            "WAQ_RETRY_DELAYS": "1s,1s,2s,2s,3s", "WAQ_LEASE_S": "45", "WAQ_DISPATCH_INTERVAL_S": "1",
            "WAQ_RECOVER_INTERVAL_S": "2", "WAQ_HEALTH_INTERVAL_S": "1", "WAQ_RECONNECT_UNIT_S": "1",
            "WAQ_REDISPATCH_AFTER_S": "10", "WAQ_SEND_TIMEOUT_S": "15",
            "WAQ_WARMUP_CAPS": "",  # no warm-up ramp: a new session's 20 a day would park most messages till midnight
            "WAQ_API_KEYS": f"chaos:admin:{ADMIN_KEY}", **(extra_env or {}),
        }
        self.procs: dict[str, Proc] = {}
        self.api_ports: dict[str, int] = {}
        self._old_env = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        close_default_hub()

    # ---- processes -----------------------------------------------------------------------------------------
    def start_worker(self, session: str, scan: bool = True) -> None:
        before = {d["id"] for d in self.devices()}
        self.procs[session] = Proc([sys.executable, "-m", "wa_queue.cli", "worker", "--session", session], self.env,
                                   self.tmp / f"worker-{session}.log")
        if scan:
            # QR login through the control API: the worker's browser shows a QR; "the phone" scans it.
            wait_for(lambda: any(not d["linked"] and d["id"] not in before for d in self.devices()), 60, 0.2,
                     f"{session}'s QR")
            response = requests.post(f"{self.sim.url}/__sim__/sessions/{ACCOUNTS[session]}/scan", timeout=5)
            assert response.ok, response.text
        wait_for(lambda: self.session(session).status == "connected", 90, 0.2, f"{session} connected")

    def restart_worker(self, session: str) -> None:
        """A new worker on the same Chrome profile: still logged in, no scan."""
        self.procs[session] = Proc([sys.executable, "-m", "wa_queue.cli", "worker", "--session", session], self.env,
                                   self.tmp / f"worker-{session}.log")

    def start_beat(self) -> None:
        self.procs["beat"] = Proc([sys.executable, "-m", "wa_queue.cli", "beat"], self.env, self.tmp / "beat.log")

    def start_callbacks(self) -> None:
        """The status callbacks' own worker (`waq callbacks`): beat no longer consumes wa.callbacks."""
        self.procs["callbacks"] = Proc([sys.executable, "-m", "wa_queue.cli", "callbacks"], self.env,
                                       self.tmp / "callbacks.log")

    def start_api(self, name: str = "api") -> None:
        """An API process (gunicorn); another `name` starts another one, on its own port (api_url_of)."""
        port = self.api_ports.setdefault(name, self.api_port if name == "api" else free_port())
        self.procs[name] = Proc(
            procfile.api_command(port, workers=1), self.env, self.tmp / f"{name}.log")
        wait_for(lambda: self.api_up(name), 30, 0.2, f"the API {name}")

    def api_up(self, name: str = "api") -> bool:
        try:
            return requests.get(f"{self.api_url_of(name)}/healthz", timeout=2).status_code in (200, 503)
        except requests.RequestException:
            return False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def api_url_of(self, name: str) -> str:
        return f"http://127.0.0.1:{self.api_ports.get(name, self.api_port)}"

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.kill(signal.SIGKILL)
        proc.proc.wait(10)
        proc.handle.close()

    def kill_chrome(self, session: str) -> int:
        profile = str(self.tmp / "data" / "profiles" / session)
        found = subprocess.run(["pkill", "-KILL", "-f", f"user-data-dir={profile}"], check=False)
        return found.returncode

    # ---- simulator -----------------------------------------------------------------------------------------
    def devices(self) -> list[dict]:
        return requests.get(f"{self.sim.url}/__sim__/devices", timeout=5).json()

    def sent(self) -> list[dict]:
        return requests.get(f"{self.sim.url}/__sim__/sent", timeout=5).json()

    def fault(self, **body: object) -> None:
        response = requests.post(f"{self.sim.url}/__sim__/faults", json=body, timeout=5)
        assert response.ok, response.text

    def clear_faults(self) -> None:
        faults = requests.get(f"{self.sim.url}/__sim__/faults", timeout=5).json()
        for number in faults.get("numbers", {}):
            self.fault(number=number, fault=None)
        for account in faults.get("sessions", {}):
            self.fault(session=account, fault=None)

    # ---- checks --------------------------------------------------------------------------------------------
    def session(self, name: str):  # noqa: ANN201
        return default_hub().store.get_session(name)

    def wait_done(self, ids: list[str], timeout: float = 180, stall_s: float | None = None) -> None:
        """Wait until every message is sent, failed, expired or cancelled, for `timeout` seconds; with `stall_s`, for
        as long as one finishes at least every stall_s seconds (a long run's pace depends on the machine, a stall
        does not)."""
        final = (MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.EXPIRED, MessageStatus.CANCELLED)
        if stall_s is None:
            wait_for(lambda: all(default_hub().store.get(i).status in final for i in ids), timeout, 0.5,
                     f"{len(ids)} messages to finish: {default_hub().store.count_by_status()}")
            return
        left, last_progress = set(ids), time.monotonic()
        while left:
            finished = {i for i in left if default_hub().store.get(i).status in final}
            left -= finished
            now = time.monotonic()
            last_progress = now if finished else last_progress
            assert now - last_progress < stall_s, (f"no message of {len(ids)} finished in {stall_s:g}s: "
                                                   f"{default_hub().store.count_by_status()}")
            time.sleep(0.5 if left else 0)

    def sent_counts(self) -> collections.Counter:
        return collections.Counter((m["to"], m["text"]) for m in self.sent())

    def assert_exactly_once(self, items: list[tuple[str, str]]) -> collections.Counter:
        counts = self.sent_counts()
        for phone, text in items:
            assert counts[(phone.lstrip("+"), text)] == 1, (phone, text, counts[(phone.lstrip("+"), text)])
        return counts

    def stop(self) -> list[str]:
        """Stop everything; returns the pids of any Chrome that outlived its worker (killed here)."""
        for proc in self.procs.values():
            proc.stop()
        self.sim.stop()
        for key, value in self._old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        close_default_hub()
        try:
            wait_for(lambda: not processes_of(self.tmp / "data"), 10, 0.25, "the stack's processes to exit")
        except AssertionError:
            pass
        leftover = processes_of(self.tmp / "data")
        details = [f"{pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()[:80]!r}" for pid in leftover
                   if Path(f"/proc/{pid}").exists()]
        for pid in leftover:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return details

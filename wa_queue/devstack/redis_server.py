"""A redis-server this process starts and stops, on the loopback: the launcher's broker when none answers, and the
one the tests and the benches start for themselves (never the machine's own Redis)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from wa_queue.devstack.ports import free_port


class RedisMissing(RuntimeError):
    """No redis-server on the PATH."""


class RedisDidNotStart(RuntimeError):
    """redis-server was started but never answered a ping."""


class RedisServer:
    """One redis-server on 127.0.0.1. Nothing is written to disk unless `append_only` (the launcher's broker keeps
    its queues across a restart; a test's or a bench's starts empty). `own_session` keeps a terminal's Ctrl-C from
    reaching it, so whoever started it stops it last. `env` is its environment (None: this process's)."""

    def __init__(self, workdir: Path, port: int | None = None, *, append_only: bool = False,
                 own_session: bool = False, env: dict[str, str] | None = None, start_timeout_s: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisMissing("redis-server is not installed: `make run` and `make test` install it "
                               "(apt-get install redis-server)")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.append_only = append_only
        self.own_session = own_session
        self.env = env
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes" if self.append_only else "no", "--dir", str(self.workdir)]

    def start(self) -> RedisServer:
        """Start it and return once it answers a ping; RedisDidNotStart when it never does."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=self.env, start_new_session=self.own_session)
        deadline = time.monotonic() + self.start_timeout_s
        client = self.client(socket_connect_timeout=1)
        while not _pings(client):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RedisDidNotStart(f"redis-server did not answer on port {self.port} "
                                       f"within {self.start_timeout_s:g} s")
            time.sleep(0.05)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL when it has not exited within grace_s (an append-only file is flushed on SIGTERM)."""
        if not self.running():
            return
        self.proc.terminate()
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: what a crash does."""
        if self.running():
            self.proc.kill()
            self.proc.wait(10)

    def restart_empty(self) -> None:
        """Kill it and start a new one on the same port with nothing in it (a crash of a cache-only Redis)."""
        self.kill()
        self.start()

    def client(self, **options: object):  # noqa: ANN201 - redis is imported only when a client is made
        import redis

        return redis.Redis(port=self.port, **options)


def _pings(client) -> bool:  # noqa: ANN001
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False

"""Services the benchmarks start for themselves (never the machine's own Redis)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from wa_queue.devstack.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    """A redis-server of the bench's own, in its own session (so stop() ends it like the rest): its process and URL."""
    server = RedisServer(workdir, own_session=True).start()
    return server.proc, server.url


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(argv, env={**os.environ, **env}, cwd=ROOT, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            continue


PYTHON = sys.executable

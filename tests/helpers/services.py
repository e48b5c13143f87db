"""The services a test starts for itself: a redis-server (wa_queue/devstack/redis_server.py) kept out of any stack."""

from __future__ import annotations

import os
from pathlib import Path

from wa_queue.devstack.redis_server import RedisServer


def isolated_redis(workdir: Path, port: int | None = None) -> RedisServer:
    """A redis-server on a free port, nothing on disk, not yet started. Its environment has no WAQ_ variable, so it is
    not part of any stack (processes_of() never finds it among a test's processes)."""
    return RedisServer(workdir, port, env={k: v for k, v in os.environ.items() if not k.startswith("WAQ_")})


"""Memory of `waq worker` per Celery pool (WAQ_WORKER_POOL): prefork (a main process and its child) against threads
and solo (one process), with the fake sender and with Chromium on the strict simulator.

    python bench/worker_memory.py [--pools prefork,threads] [--transports fake,selenium] [--sends 20] [--repeat 3]

Each run starts its own redis-server, SQLite store and (for selenium) `waq simulator --auto-scan`, then one real
`waq worker`, sends --sends messages through it with pacing off, waits 2 s and reads PSS (/proc/<pid>/smaps_rollup)
of the worker's own processes (the Celery processes) and, apart, of its chromedriver and Chrome tree, as
wa_queue/headroom.py finds them. Runs alternate the pools, so machine drift touches each alike; the table shows the
median of --repeat runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._services import PYTHON, spawn, start_redis, stop  # noqa: E402
from wa_queue import headroom, procs  # noqa: E402
from wa_queue.devstack.ports import free_port  # noqa: E402


def _wait(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def one_run(pool: str, transport: str, sends: int, root: Path) -> tuple[float, float, int]:
    """(worker PSS MiB, browser PSS MiB, worker processes) of one `waq worker` after `sends` sends."""
    work = Path(tempfile.mkdtemp(prefix=f"{pool}-{transport}-", dir=root))
    session = f"wm{os.getpid() % 100000}"
    redis_proc, broker = start_redis(work / "redis")
    env = {"WAQ_DATA_DIR": str(work / "data"), "WAQ_STORE_URL": f"sqlite:///{work / 'data' / 'waq.db'}",
           "WAQ_BROKER_URL": broker, "WAQ_SESSIONS": session, "WAQ_TRANSPORT": transport, "WAQ_WORKER_POOL": pool,
           "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0", "WAQ_WARMUP_CAPS": "", "WAQ_MAX_DAILY_PER_SESSION": "100000"}
    started = [redis_proc]
    try:
        if transport == "selenium":
            port = free_port()
            started.append(spawn([PYTHON, "-m", "wa_queue.cli", "simulator", "--auto-scan", "--port", str(port)],
                                 env, work / "simulator.log"))
            env["WAQ_WHATSAPP_URL"] = f"http://127.0.0.1:{port}"
        (work / "data").mkdir(parents=True, exist_ok=True)
        worker = spawn([PYTHON, "-m", "wa_queue.cli", "worker", "--session", session, "--loglevel", "WARNING"], env,
                       work / "worker.log")
        started.append(worker)
        os.environ.update(env)
        from wa_queue.hub import Hub
        from wa_queue.settings import Settings

        hub = Hub.build(settings=Settings.from_env(env))
        try:
            store = hub.store
            _wait(lambda: (r := store.get_session(session)) is not None and r.status == "connected", 120,
                  "the session to connect")
            from wa_queue import operations

            operations.enqueue_many(hub, [{"phone": f"+1415555{1000 + i:04d}", "text": f"memory {i}"}
                                       for i in range(sends)])
            _wait(lambda: store.count_by_status()["sent"] >= sends, 60 + 10 * sends, f"{sends} sends")
            time.sleep(2)
            trees = [t for t in headroom.find_sessions()[0] if t.pid == worker.pid]
            if not trees:
                raise RuntimeError("the worker was not found in /proc")
            tree = trees[0]
            return (procs.pss_kib(list(tree.worker_pids)) / 1024, procs.pss_kib(list(tree.browser_pids)) / 1024,
                    len(tree.worker_pids))
        finally:
            hub.close()
    finally:
        for proc in reversed(started):
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pools", default="prefork,threads")
    parser.add_argument("--transports", default="fake,selenium")
    parser.add_argument("--sends", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pools, transports = args.pools.split(","), args.transports.split(",")
    rows: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="waq-bench-wm-") as root:
        for run in range(args.repeat):
            for transport in transports:
                for pool in pools:
                    result = one_run(pool, transport, args.sends, Path(root))
                    rows.setdefault((pool, transport), []).append(result)
                    print(f"run {run + 1}: {pool:8} {transport:8} worker {result[0]:6.1f} MiB in {result[2]} "
                          f"process(es), browser {result[1]:6.1f} MiB", flush=True)
    print(f"\nmedians over {args.repeat} runs, PSS in MiB after {args.sends} sends")
    print(f"{'pool':8} {'sender':8} {'worker':>7} {'procs':>5} {'browser':>8}")
    for (pool, transport), results in rows.items():
        print(f"{pool:8} {transport:8} {statistics.median(r[0] for r in results):7.1f} {results[0][2]:>5} "
              f"{statistics.median(r[1] for r in results):8.1f}")


if __name__ == "__main__":
    main()

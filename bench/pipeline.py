"""Throughput of the delivery pipeline against bare Celery on the same Redis, and enqueue rates.

    python bench/pipeline.py [--messages 2000] [--enqueue 2000]

Prints messages/s through one session worker (fake sender, pacing off) beside bare Celery no-op tasks (same
reliability settings: acks late, prefetch 1), their ratio (goal >= 0.5), and enqueue rates one by one and batched
(goal: batched >= 5x). Each figure is the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._services import PYTHON, spawn, start_redis, stop


def bare_celery(broker: str, n: int, tmp: Path) -> float:
    import redis

    env = {"BENCH_BROKER_URL": broker, "PYTHONPATH": str(Path(__file__).parent)}
    worker = spawn([PYTHON, "-m", "celery", "-A", "noop_app:app", "worker", "-Q", "noop", "--concurrency", "1",
                    "--pool", "prefork", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                   env, tmp / "noop.log")
    try:
        sys.path.insert(0, str(Path(__file__).parent))
        import os

        os.environ["BENCH_BROKER_URL"] = broker
        import importlib

        import noop_app

        app = importlib.reload(noop_app).app  # a fresh app on this run's broker

        client = redis.Redis.from_url(broker)
        client.delete("bench:done")
        app.send_task("bench.noop", args=["warm", 0], queue="noop")
        _wait(lambda: int(client.get("bench:done") or 0) >= 1, 60)
        client.delete("bench:done")
        start = time.perf_counter()
        for i in range(n):
            app.send_task("bench.noop", args=[str(i), 0], queue="noop")
        _wait(lambda: int(client.get("bench:done") or 0) >= n, 600)
        return n / (time.perf_counter() - start)
    finally:
        stop(worker)


def waq_pipeline(broker: str, n: int, tmp: Path) -> float:
    env, waq = _waq_env(broker, tmp)
    from wa_queue import service

    worker = spawn([PYTHON, "-m", "wa_queue.cli", "worker", "--session", "primary", "--loglevel", "WARNING"],
                   env, tmp / "worker.log")
    try:
        store = waq.store
        _wait(lambda: store.get_session("primary").status == "connected", 60)
        service.enqueue(waq, "+14155550000", "warm-up")
        _wait(lambda: store.count_by_status()["sent"] >= 1, 60)
        start = time.perf_counter()
        for chunk in range(0, n, 500):
            service.enqueue_many(waq, [{"phone": f"+1415555{(i % 9000) + 1000:04d}", "text": f"bench {i}"}
                                       for i in range(chunk, min(n, chunk + 500))])
        _wait(lambda: store.count_by_status()["sent"] >= n + 1, 900)
        return n / (time.perf_counter() - start)
    finally:
        stop(worker)
        waq.close()


def enqueue_rates(broker: str, n: int, tmp: Path) -> tuple[float, float]:
    _, waq = _waq_env(broker, tmp)
    from wa_queue import service

    try:
        start = time.perf_counter()
        for i in range(n):
            service.enqueue(waq, f"+1415555{(i % 9000) + 1000:04d}", f"one {i}")
        one = n / (time.perf_counter() - start)
        start = time.perf_counter()
        for chunk in range(0, n, 500):
            service.enqueue_many(waq, [{"phone": f"+1415555{(i % 9000) + 1000:04d}", "text": f"batch {i}"}
                                       for i in range(chunk, min(n, chunk + 500))])
        return one, n / (time.perf_counter() - start)
    finally:
        waq.close()


def _waq_env(broker: str, tmp: Path):  # noqa: ANN202 - (the environment, an App over it)
    import os

    from wa_queue.app import App
    from wa_queue.settings import reset_settings

    env = {"WAQ_DATA_DIR": str(tmp), "WAQ_STORE_URL": f"sqlite:///{tmp / 'waq.db'}", "WAQ_BROKER_URL": broker,
           "WAQ_SESSIONS": "primary", "WAQ_TRANSPORT": "fake", "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0",
           "WAQ_MAX_DAILY_PER_SESSION": "10000000", "WAQ_WARMUP_CAPS": ""}
    os.environ.update(env)
    reset_settings()
    return env, App.build()


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--enqueue", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {"bare": [], "waq": [], "one": [], "batch": []}
    with tempfile.TemporaryDirectory(prefix="waq-bench-") as root:
        for run in range(args.repeat):
            base = Path(root) / f"run{run}"
            redis_proc, broker = start_redis(base / "redis")
            try:
                rows["bare"].append(bare_celery(broker, args.messages, base))
                rows["waq"].append(waq_pipeline(broker, args.messages, base / "pipe"))
                one, batch = enqueue_rates(broker, args.enqueue, base / "enq")
                rows["one"].append(one)
                rows["batch"].append(batch)
            finally:
                stop(redis_proc)
            print(f"run {run + 1}: bare {rows['bare'][-1]:.0f}/s  waq {rows['waq'][-1]:.0f}/s  "
                  f"enqueue one {rows['one'][-1]:.0f}/s  batched {rows['batch'][-1]:.0f}/s", flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"\nmedians over {args.repeat} runs, {args.messages} messages each")
    print(f"  bare Celery no-op tasks      {med['bare']:8.0f} tasks/s")
    print(f"  wa-queue, one session worker {med['waq']:8.0f} messages/s")
    print(f"  ratio wa-queue / bare        {med['waq'] / med['bare']:8.2f}   (goal >= 0.5)")
    print(f"  enqueue one by one           {med['one']:8.0f} messages/s")
    print(f"  enqueue batched (500)        {med['batch']:8.0f} messages/s")
    print(f"  ratio batched / one          {med['batch'] / med['one']:8.1f}x  (goal >= 5x)")


if __name__ == "__main__":
    main()

"""Throughput of the delivery pipeline against bare Celery on the same Redis, and enqueue rates.

    python bench/pipeline.py [--messages 2000] [--enqueue 2000] [--store mongodb://127.0.0.1:27017]

Prints messages/s through one session worker (fake sender, pacing off) beside bare Celery no-op tasks (same
reliability settings: acks late, prefetch 1), their ratio (goal >= 0.5), and enqueue rates one by one and batched
(goal: batched >= 5x), and the pipeline again with a mix of priorities (one message in ten high, one in ten low: the
broker's priority steps, one list per step). Each figure is the median of --repeat runs. With --store, the pipeline
and the enqueue rates also run on that store (a fresh database of the server per run, dropped after it), in the
same runs, and the figures of both stores are printed with their ratio (that store / SQLite): figures, not goals.
FerretDB, for one, is not tuned for speed (BENCHMARKS.md).
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


MIX = ("high",) + ("normal",) * 8 + ("low",)  # --mix's priorities, message i taking MIX[i % 10]


def waq_pipeline(broker: str, n: int, tmp: Path, store_url: str | None = None, *, mixed: bool = False) -> float:
    env, hub = _waq_env(broker, tmp, store_url)
    from wa_queue import operations

    worker = spawn([PYTHON, "-m", "wa_queue.cli", "worker", "--session", "primary", "--loglevel", "WARNING"],
                   env, tmp / "worker.log")
    try:
        store = hub.store
        _wait(lambda: store.get_session("primary").status == "connected", 60)
        operations.enqueue(hub, "+14155550000", "warm-up")
        _wait(lambda: store.count_by_status()["sent"] >= 1, 60)
        start = time.perf_counter()
        for chunk in range(0, n, 500):
            operations.enqueue_many(hub, [{"phone": f"+1415555{(i % 9000) + 1000:04d}", "text": f"bench {i}",
                                        **({"priority": MIX[i % len(MIX)]} if mixed else {})}
                                       for i in range(chunk, min(n, chunk + 500))])
        # A count of every status 50 times a second costs SQLite nothing, but a slow server (FerretDB) spends on it
        # the CPU the worker needs; there a run is long, and half a second between looks barely moves its figure.
        _wait(lambda: store.count_by_status()["sent"] >= n + 1, 3600, 0.02 if store_url is None else 0.5)
        return n / (time.perf_counter() - start)
    finally:
        stop(worker)
        hub.close()


def enqueue_rates(broker: str, n: int, tmp: Path, store_url: str | None = None) -> tuple[float, float]:
    _, hub = _waq_env(broker, tmp, store_url)
    from wa_queue import operations

    try:
        start = time.perf_counter()
        for i in range(n):
            operations.enqueue(hub, f"+1415555{(i % 9000) + 1000:04d}", f"one {i}")
        one = n / (time.perf_counter() - start)
        start = time.perf_counter()
        for chunk in range(0, n, 500):
            operations.enqueue_many(hub, [{"phone": f"+1415555{(i % 9000) + 1000:04d}", "text": f"batch {i}"}
                                       for i in range(chunk, min(n, chunk + 500))])
        return one, n / (time.perf_counter() - start)
    finally:
        hub.close()


def _waq_env(broker: str, tmp: Path, store_url: str | None = None):  # noqa: ANN202 - (the environment, a Hub)
    import os

    from wa_queue.hub import Hub

    store = store_url or f"sqlite:///{tmp / 'waq.db'}"
    env = {"WAQ_DATA_DIR": str(tmp), "WAQ_STORE_URL": store, "WAQ_BROKER_URL": broker,
           "WAQ_SESSIONS": "primary", "WAQ_TRANSPORT": "fake", "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0",
           "WAQ_MAX_DAILY_PER_SESSION": "10000000", "WAQ_WARMUP_CAPS": ""}
    os.environ.update(env)
    return env, Hub.build()


def fresh_database(url: str, name: str) -> str:
    """`url` (mongodb://host:port[/db][?options]) with the database `name` instead of its own."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(url: str) -> None:
    import pymongo

    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(url.rsplit("/", 1)[1].split("?")[0])
    finally:
        client.close()


def _wait(predicate, timeout: float, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--enqueue", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", default=None, help="a MongoDB server's URL: also run on it, beside SQLite")
    args = parser.parse_args()
    rows: dict[str, list[float]] = {"bare": [], "waq": [], "mixed": [], "one": [], "batch": [],
                                    "store waq": [], "store one": [], "store batch": []}
    with tempfile.TemporaryDirectory(prefix="waq-bench-") as root:
        for run in range(args.repeat):
            base = Path(root) / f"run{run}"
            redis_proc, broker = start_redis(base / "redis")
            try:
                rows["bare"].append(bare_celery(broker, args.messages, base))
                rows["waq"].append(waq_pipeline(broker, args.messages, base / "pipe"))
                rows["mixed"].append(waq_pipeline(broker, args.messages, base / "mixed", mixed=True))
                one, batch = enqueue_rates(broker, args.enqueue, base / "enq")
                rows["one"].append(one)
                rows["batch"].append(batch)
                if args.store:
                    _on_store(args, rows, broker, base, run)
            finally:
                stop(redis_proc)
            line = (f"run {run + 1}: bare {rows['bare'][-1]:.0f}/s  waq {rows['waq'][-1]:.0f}/s  "
                    f"mixed priorities {rows['mixed'][-1]:.0f}/s  "
                    f"enqueue one {rows['one'][-1]:.0f}/s  batched {rows['batch'][-1]:.0f}/s")
            if args.store:
                line += (f"  | store: waq {rows['store waq'][-1]:.0f}/s  one {rows['store one'][-1]:.0f}/s  "
                         f"batched {rows['store batch'][-1]:.0f}/s")
            print(line, flush=True)
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    print(f"\nmedians over {args.repeat} runs, {args.messages} messages each")
    print(f"  bare Celery no-op tasks      {med['bare']:8.0f} tasks/s")
    print(f"  wa-queue, one session worker {med['waq']:8.0f} messages/s")
    print(f"  ratio wa-queue / bare        {med['waq'] / med['bare']:8.2f}   (goal >= 0.5)")
    print(f"  mixed priorities (1:8:1)     {med['mixed']:8.0f} messages/s  (ratio to one priority "
          f"{med['mixed'] / med['waq']:.2f}; to bare {med['mixed'] / med['bare']:.2f})")
    print(f"  enqueue one by one           {med['one']:8.0f} messages/s")
    print(f"  enqueue batched (500)        {med['batch']:8.0f} messages/s")
    print(f"  ratio batched / one          {med['batch'] / med['one']:8.1f}x  (goal >= 5x)")
    if args.store:
        print(f"\n  on {args.store}, beside SQLite (ratio: that store / SQLite; figures, not goals)")
        for label, key in (("one session worker", "waq"), ("enqueue one by one", "one"),
                           ("enqueue batched (500)", "batch")):
            print(f"  {label:28} {med['store ' + key]:8.0f} messages/s  SQLite {med[key]:8.0f}  "
                  f"ratio {med['store ' + key] / med[key]:6.2f}")
        print(f"  ratio wa-queue / bare        {med['store waq'] / med['bare']:8.2f}   (on that store)")


def _on_store(args: argparse.Namespace, rows: dict[str, list[float]], broker: str, base: Path, run: int) -> None:
    """The pipeline and the enqueue rates once more, on a fresh database of --store's server each."""
    for step in ("pipe", "enq"):
        url = fresh_database(args.store, f"waq_bench_{run}_{step}_{time.time_ns() % 10**9}")
        try:
            if step == "pipe":
                rows["store waq"].append(waq_pipeline(broker, args.messages, base / f"store-{step}", url))
            else:
                one, batch = enqueue_rates(broker, args.enqueue, base / f"store-{step}", url)
                rows["store one"].append(one)
                rows["store batch"].append(batch)
        finally:
            drop_database(url)


if __name__ == "__main__":
    main()

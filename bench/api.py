"""REST API throughput against a bare Flask app, and monitoring latency over a large store.

    python bench/api.py [--seconds 10] [--clients 8] [--messages 1000000] [--repeat 3] [--store mongodb://…]

1. Enqueue: gunicorn (2 workers) serving api.app:create_app() on a SQLite store and a real redis-server, beside a
   bare Flask app whose POST answers 202 doing nothing, under the same gunicorn settings. --clients threads keep one
   HTTP/1.1 connection each and POST for --seconds, --repeat times for each app, alternating. Prints req/s of both
   and the median ratio (goal >= 0.4). With --store (a MongoDB server's URL), a third gunicorn serves the same API on
   a fresh database of that server, in the same alternation: its req/s and its ratio to SQLite's are printed
   (figures, not goals; the database is dropped at the end).
2. Monitoring: fills a fresh SQLite store with --messages messages (insert_many in batches of 10,000), serves it and
   prints the median latency of GET /api/whatsapp/health and /api/whatsapp/stats (goal < 50 ms).

gunicorn runs `-k gthread --threads 4`: the sync worker closes the connection after every response, so each request
would pay a TCP handshake and the comparison would measure connection setup; gthread keeps connections alive and lets
a worker overlap requests waiting on the SQLite commit (fsync) and the broker round trip. Both apps get the same
settings, so the ratio compares the work per request only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    # Run as a script, this file's folder is first on sys.path, where "api" would name this very file.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
    sys.path.insert(0, str(ROOT))

ADMIN_KEY = "bench-admin-key-0123456789"
PRODUCER_KEY = "bench-producer-key-0123456789"
BODY = json.dumps({"phone": "+14155550123", "text": "benchmark message"}).encode()
BATCH = 10_000


def bare_app():  # noqa: ANN201 - a WSGI app for gunicorn: 'bench.api:bare_app()'
    """The baseline: Flask parsing the same JSON body and answering 202, storing nothing."""
    from flask import Flask, jsonify, request

    app = Flask("bare")

    @app.post("/api/whatsapp/messages")
    def enqueue():  # noqa: ANN202
        request.get_json()
        return jsonify({"id": "0" * 32, "status": "pending"}), 202

    return app


def gunicorn(target: str, port: int, env: dict[str, str], log: Path):  # noqa: ANN201
    from bench._services import PYTHON, spawn

    proc = spawn([PYTHON, "-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "4", "-b",
                  f"127.0.0.1:{port}", "--log-level", "warning", target], env, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn {target} did not start; see {log}")


def hammer(port: int, seconds: float, clients: int, expect: int) -> float:
    """POST enqueue requests from `clients` threads for `seconds`; returns successful requests per second."""
    counts = [0] * clients
    errors: list[str] = []
    start = threading.Barrier(clients + 1)
    headers = {"Content-Type": "application/json", "X-API-Key": PRODUCER_KEY}

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start.wait()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            conn.request("POST", "/api/whatsapp/messages", body=BODY, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == expect:
                counts[index] += 1
            elif len(errors) < 5:
                errors.append(f"{response.status}")
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    if errors:
        print(f"  unexpected statuses (first few): {errors}")
    return sum(counts) / elapsed


def median_ms(port: int, path: str, runs: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        conn.request("GET", path, headers={"X-API-Key": ADMIN_KEY})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def fill(db: Path, count: int) -> None:
    from datetime import timedelta

    from wa_queue.models import NewMessage, utcnow
    from wa_queue.store.sqlite import SQLiteStore

    store = SQLiteStore(str(db))
    began = time.perf_counter()
    created = utcnow() - timedelta(hours=2)
    for first in range(0, count, BATCH):
        news = [NewMessage(phone=f"+1415555{i % 10_000:04d}", text=f"message {i}")
                for i in range(first, min(count, first + BATCH))]
        store.insert_many(news, created)
    elapsed = time.perf_counter() - began
    print(f"fill: {count:,} messages in {elapsed:.1f} s ({count / elapsed:,.0f}/s)")
    # Some sent and failed ones, so the sent/failed indexes have something to find.
    ids = [m.id for m, _ in store.insert_many([NewMessage(phone="+14155550123", text=f"x{i}") for i in range(200)],
                                              created)]
    now = utcnow()
    for n, message_id in enumerate(ids):
        store.claim(message_id, owner="bench", session="primary", now=now, lease_s=60)
        if n % 2:
            store.record_sent(message_id, owner="bench", now=now - timedelta(minutes=n), session="primary",
                              wa_id=None)
        else:
            store.record_failed(message_id, owner="bench", now=now, error_class="E", error_text="bench")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads (one connection each)")
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages in the store for the latency run")
    parser.add_argument("--runs", type=int, default=51, help="requests per latency median")
    parser.add_argument("--repeat", type=int, default=3, help="enqueue/bare pairs; the ratio quoted is their median")
    parser.add_argument("--store", default=None, help="a MongoDB server's URL: the enqueue run on it too")
    parser.add_argument("--skip-monitoring", action="store_true", help="only the enqueue runs")
    args = parser.parse_args()

    from bench._services import start_redis, stop
    from wa_queue.devstack.ports import free_port

    tmp = Path(tempfile.mkdtemp(prefix="waq-bench-api-"))
    redis_proc, broker = start_redis(tmp / "redis")
    procs = [redis_proc]
    env = {"WAQ_DATA_DIR": str(tmp / "data"), "WAQ_STORE_URL": f"sqlite:///{tmp / 'data' / 'waq.db'}",
           "WAQ_BROKER_URL": broker, "WAQ_API_KEYS": f"bench:admin:{ADMIN_KEY},shop:producer:{PRODUCER_KEY}",
           "WAQ_SESSIONS": "primary,secondary", "PYTHONPATH": str(ROOT),
           # The figure is the work of a request; the one bench key's rate limit would make it the limit's.
           "WAQ_RATE_REQUESTS_PER_S": "0", "WAQ_RATE_MESSAGES_PER_S": "0"}
    try:
        api_port, bare_port = free_port(), free_port()
        procs.append(gunicorn("api.app:create_app()", api_port, env, tmp / "api.log"))
        procs.append(gunicorn("bench.api:bare_app()", bare_port, env, tmp / "bare.log"))
        hammer(api_port, 1.0, args.clients, 202)  # warm up: imports, SQLite schema, broker connections
        hammer(bare_port, 1.0, args.clients, 202)
        store_url = store_port = None
        if args.store:
            from bench.pipeline import fresh_database

            store_url, store_port = fresh_database(args.store, f"waq_bench_api_{time.time_ns() % 10**9}"), free_port()
            procs.append(gunicorn("api.app:create_app()", store_port, {**env, "WAQ_STORE_URL": store_url},
                                  tmp / "api-store.log"))
            hammer(store_port, 1.0, args.clients, 202)
        ratios, enqueues, bares, stored, store_ratios = [], [], [], [], []
        for run in range(args.repeat):  # alternated, so a busy spell on the machine hits both
            enqueues.append(hammer(api_port, args.seconds, args.clients, 202))
            bares.append(hammer(bare_port, args.seconds, args.clients, 202))
            ratios.append(enqueues[-1] / bares[-1])
            line = (f"run {run + 1}: enqueue {enqueues[-1]:7,.0f} req/s, bare {bares[-1]:7,.0f} req/s, "
                    f"ratio {ratios[-1]:.2f}")
            if store_port:
                stored.append(hammer(store_port, args.seconds, args.clients, 202))
                store_ratios.append(stored[-1] / enqueues[-1])
                line += f"; on --store {stored[-1]:7,.0f} req/s, {store_ratios[-1]:.2f} of SQLite's"
            print(line, flush=True)
        print(f"enqueue (api, SQLite + Redis publish): {statistics.median(enqueues):8,.0f} req/s (median)")
        print(f"bare Flask 202:                        {statistics.median(bares):8,.0f} req/s (median)")
        print(f"ratio: {statistics.median(ratios):.2f} median of {args.repeat} (goal >= 0.4); {args.clients} client "
              f"threads, {args.seconds:.0f} s each, {os.cpu_count()} CPUs shared by clients, servers and Redis")
        if store_port:
            print(f"enqueue (api, --store + Redis publish): {statistics.median(stored):7,.0f} req/s (median); "
                  f"ratio to SQLite {statistics.median(store_ratios):.2f}, to bare "
                  f"{statistics.median(stored) / statistics.median(bares):.2f} (figures, not goals)")
        for proc in procs[1:]:
            stop(proc)
        del procs[1:]
        if store_url:
            from bench.pipeline import drop_database

            drop_database(store_url)
        if args.skip_monitoring:
            return

        big = tmp / "big" / "waq.db"
        fill(big, args.messages)
        big_env = {**env, "WAQ_STORE_URL": f"sqlite:///{big}"}
        port = free_port()
        procs.append(gunicorn("api.app:create_app()", port, big_env, tmp / "api-big.log"))
        for path in ("/api/whatsapp/health", "/api/whatsapp/stats"):
            median_ms(port, path, 3)  # warm the page cache and the worker
            print(f"GET {path:<24} median {median_ms(port, path, args.runs):7.2f} ms over {args.runs} "
                  f"(store of {args.messages:,} messages; goal < 50 ms)")
    finally:
        for proc in reversed(procs[1:]):
            stop(proc)
        # _services.stop() signals a process group, and start_redis() does not make one: stop Redis directly.
        redis_proc.kill()
        redis_proc.wait(10)
    print(f"logs and databases: {tmp}")


if __name__ == "__main__":
    main()

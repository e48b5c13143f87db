"""Load generator: many concurrent producers against the REST API, then a check that no accepted message is missing.

    python bench/load.py [--seconds 20] [--producers 16]             # starts redis-server + gunicorn on a new SQLite
    python bench/load.py --url http://host:8000 --key PRODUCER_KEY   # targets an API that already runs

Without --url it starts its own redis-server and gunicorn (2 workers, gthread, 4 threads) serving
api.app:create_app() on a fresh SQLite store. Each producer is a thread with one keep-alive HTTP/1.1 connection that
POSTs /api/whatsapp/messages (a unique text and Idempotency-Key per message) for --seconds. Prints requests/s,
p50/p99 latency and the errors, then looks up every accepted id (2xx answer): directly in the SQLite store when this
script started the API (--check store, the default then), otherwise through GET /api/whatsapp/messages/<id>
(--check api). The stored phone and text must be the ones sent. Prints "accepted N, found N, missing 0"; exits 1 when
any accepted message is missing or differs, or when nothing was accepted at all.
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
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for bench._services when run as a script

from bench._stats import percentile  # noqa: E402

PRODUCER_KEY = "load-producer-key-0123456789"
ADMIN_KEY = "load-admin-key-0123456789ab"
PATH = "/api/whatsapp/messages"
PHONE = "+14155550123"
TIMEOUT_S = 30.0


@dataclass
class ProducerResult:
    """What one producer thread saw: accepted ids with the text sent, latencies, and every failure by kind."""

    accepted: dict[str, str] = field(default_factory=dict)  # id -> text
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    requests: int = 0


class Target:
    """Where the API is: host, port, TLS, and a factory of keep-alive connections."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SystemExit(f"--url must be http(s)://host[:port], not {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")

    def connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=TIMEOUT_S)


def produce(target: Target, key: str, index: int, seconds: float, start: threading.Barrier) -> ProducerResult:
    """POST messages for `seconds` over one connection (reopened after a network error)."""
    result = ProducerResult()
    conn = target.connect()
    run = uuid.uuid4().hex[:8]
    start.wait()
    deadline = time.monotonic() + seconds
    seq = 0
    while time.monotonic() < deadline:
        seq += 1
        text = f"load {run} producer {index} message {seq}"
        body = json.dumps({"phone": PHONE, "text": text}).encode()
        headers = {"Content-Type": "application/json", "X-API-Key": key, "Idempotency-Key": f"{run}-{index}-{seq}"}
        began = time.perf_counter()
        try:
            conn.request("POST", target.prefix + PATH, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            result.errors[type(exc).__name__] += 1
            conn.close()
            conn = target.connect()
            continue
        finally:
            result.requests += 1
        result.latencies_ms.append((time.perf_counter() - began) * 1000)
        if 200 <= response.status < 300:
            try:
                result.accepted[json.loads(payload)["id"]] = text
            except (ValueError, KeyError, TypeError):
                result.errors[f"{response.status} without an id"] += 1
        else:
            result.errors[str(response.status)] += 1
    conn.close()
    return result


def run_load(target: Target, key: str, producers: int, seconds: float) -> tuple[list[ProducerResult], float]:
    start = threading.Barrier(producers + 1)
    with ThreadPoolExecutor(producers) as pool:
        futures = [pool.submit(produce, target, key, i, seconds, start) for i in range(producers)]
        start.wait()
        began = time.monotonic()
        results = [f.result() for f in futures]
    return results, time.monotonic() - began


def report(results: list[ProducerResult], elapsed: float) -> dict[str, str]:
    """Print the throughput figures; return every accepted id with its text."""
    accepted: dict[str, str] = {}
    errors: Counter = Counter()
    latencies: list[float] = []
    requests = 0
    duplicates = 0
    for r in results:
        duplicates += len(accepted.keys() & r.accepted.keys())
        accepted.update(r.accepted)
        errors.update(r.errors)
        latencies += r.latencies_ms
        requests += r.requests
    latencies.sort()
    print(f"requests {requests:,} in {elapsed:.1f} s: {requests / elapsed:,.0f} req/s, "
          f"accepted {len(accepted) / elapsed:,.0f}/s")
    worst = latencies[-1] if latencies else float("nan")
    p50, p99 = (percentile(latencies, q) if latencies else float("nan") for q in (0.50, 0.99))
    print(f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {worst:.1f} ms, mean {statistics.fmean(latencies or [0]):.1f} ms")
    print(f"errors {sum(errors.values())}" + (f": {dict(errors)}" if errors else ""))
    if duplicates:
        print(f"DUPLICATE ids handed to different requests: {duplicates}")
    return accepted


def check_store(db_path: str) -> Callable[[str], str | None]:
    """A lookup of the stored text by id, straight from the SQLite file (one connection per thread)."""
    from wa_queue.errors import NotFound
    from wa_queue.store.sqlite import SQLiteStore

    store = SQLiteStore(db_path)

    def lookup(message_id: str) -> str | None:
        try:
            message = store.get(message_id)
        except NotFound:
            return None
        return message.text if message.phone == PHONE else f"<phone {message.phone}>"

    return lookup


def check_api(target: Target, key: str) -> Callable[[str], str | None]:
    """A lookup of the stored text by id through GET /api/whatsapp/messages/<id> (one connection per thread)."""
    local = threading.local()

    def lookup(message_id: str) -> str | None:
        for attempt in range(3):
            conn = getattr(local, "conn", None) or target.connect()
            local.conn = conn
            try:
                conn.request("GET", f"{target.prefix}{PATH}/{message_id}", headers={"X-API-Key": key})
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                local.conn = None
                time.sleep(0.2 * (attempt + 1))
                continue
            if response.status == 404:
                return None
            if response.status != 200:
                raise RuntimeError(f"GET {message_id}: {response.status} {payload[:200]!r}")
            body = json.loads(payload)
            return body["text"] if body["phone"] == PHONE else f"<phone {body['phone']}>"
        raise RuntimeError(f"GET {message_id}: the API did not answer")

    return lookup


def verify(accepted: dict[str, str], lookup: Callable[[str], str | None], workers: int = 8) -> int:
    """Look every accepted id up; print the tally; return how many are missing or differ."""
    ids = list(accepted)
    with ThreadPoolExecutor(workers) as pool:
        stored = list(pool.map(lookup, ids, chunksize=256))
    missing = [i for i, text in zip(ids, stored, strict=True) if text is None]
    wrong = [i for i, text in zip(ids, stored, strict=True) if text is not None and text != accepted[i]]
    print(f"accepted {len(ids)}, found {len(ids) - len(missing)}, missing {len(missing)}"
          + (f", content differs {len(wrong)}" if wrong else ""))
    for message_id in (missing + wrong)[:10]:
        print(f"  lost or altered: {message_id}")
    return len(missing) + len(wrong)


def start_stack(tmp: Path) -> tuple[list, str, str]:
    """redis-server + gunicorn on a fresh SQLite store; returns (processes, base URL, database path)."""
    from bench._services import PYTHON, spawn, start_redis
    from wa_queue.devstack.ports import free_port

    redis_proc, broker = start_redis(tmp / "redis")
    db = tmp / "data" / "waq.db"
    env = {"WAQ_DATA_DIR": str(tmp / "data"), "WAQ_STORE_URL": f"sqlite:///{db}", "WAQ_BROKER_URL": broker,
           "WAQ_API_KEYS": f"load:producer:{PRODUCER_KEY},ops:admin:{ADMIN_KEY}",
           "WAQ_SESSIONS": "primary,secondary", "PYTHONPATH": str(ROOT)}
    port = free_port()
    procs = [redis_proc]
    procs.append(spawn([PYTHON, "-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "4", "-b",
                        f"127.0.0.1:{port}", "--log-level", "warning", "api.app:create_app()"], env, tmp / "api.log"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or procs[-1].poll() is not None:
            stop_stack(procs)
            raise SystemExit(f"gunicorn did not start; see {tmp / 'api.log'}")
        time.sleep(0.2)
    return procs, url, str(db)


def stop_stack(procs: list) -> None:
    from bench._services import stop

    for proc in reversed(procs):
        stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the producers POST (default 20)")
    parser.add_argument("--producers", type=int, default=16, help="concurrent producer threads (default 16)")
    parser.add_argument("--url", help="base URL of a running API (default: start redis-server + gunicorn here)")
    parser.add_argument("--key", help="producer (or admin) API key for --url")
    parser.add_argument("--check", choices=("store", "api"), help="where accepted ids are looked up "
                                                                   "(default: store when self-started, else api)")
    args = parser.parse_args(argv)
    if args.url and not args.key:
        parser.error("--url needs --key")
    if args.url and args.check == "store":
        parser.error("--check store needs the self-started stack (its SQLite file); use --check api with --url")

    procs: list = []
    tmp = Path(tempfile.mkdtemp(prefix="waq-load-"))
    try:
        if args.url:
            url, key, db = args.url, args.key, None
        else:
            procs, url, db = start_stack(tmp)
            key = PRODUCER_KEY
        target = Target(url)
        print(f"{args.producers} producers, {args.seconds:.0f} s against {url} ({os.cpu_count()} CPUs shared by "
              "clients, servers and Redis)")
        results, elapsed = run_load(target, key, args.producers, args.seconds)
        accepted = report(results, elapsed)
        check = args.check or ("store" if db else "api")
        lookup = check_store(db) if check == "store" and db else check_api(target, key)
        print(f"checking every accepted message through the {check}")
        bad = verify(accepted, lookup)
        if db:
            from wa_queue.store.sqlite import SQLiteStore

            counts = SQLiteStore(db).count_by_status()
            print(f"store holds {sum(counts.values())} messages {counts} (more than accepted only if a request "
                  "failed after the commit)")
    finally:
        stop_stack(procs)
    if procs:
        print(f"logs and database: {tmp}")
    if not accepted:
        print("nothing was accepted: check --url and --key")
    return 1 if bad or not accepted else 0


if __name__ == "__main__":
    sys.exit(main())

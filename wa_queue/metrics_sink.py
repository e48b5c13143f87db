"""Worker-side metrics, shared with the API process through the broker's Redis.

Workers are separate processes (one per session), so prometheus-client's in-process
metrics would only ever be seen by the process that recorded them. Instead every send outcome is added to Redis
hashes in the broker Redis, and the API's /metrics collector (api/metrics.py) reads them at scrape time:

    waq:metrics:send:<session>:<outcome>   hash  field "<le>" -> sends whose duration fell in that bucket
                                                 (NOT cumulative: the collector accumulates), "+Inf" for the rest,
                                                 "sum" -> total seconds (HINCRBYFLOAT)
    waq:metrics:send-series                set   the send:<session>:<outcome> keys written so far (the reader
                                                 uses it instead of a SCAN of the whole broker keyspace)
    waq:metrics:retries                    hash  field <session> -> transient failures that were retried
    waq:metrics:sent-kinds                 hash  field <session>:<kind> -> messages sent (text, image, document,
                                                 audio, video)

One record is one pipelined round trip (HINCRBY / HINCRBYFLOAT, atomic per field), so any number of workers can
write concurrently and nothing is lost between scrapes. Session workers record through a SendBuffer instead: counts
add up in memory and a daemon thread writes them in one round trip a second, so a send never waits for Redis
(BENCHMARKS.md, figures behind other choices); a SIGKILLed worker loses at most its last second of counts (metrics,
not messages).

The values are counters: when the broker restarts empty (which it may, invariant 2) they start again from zero, and
Prometheus' rate()/increase() treat that as an ordinary counter reset. Recording never raises: a metric is never
worth failing a send for.

The key names are wa_queue/names.py's, like every other shared name.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from wa_queue.names import (
    METRICS_KINDS_KEY,
    METRICS_RETRIES_KEY,
    METRICS_SEND_KEY_PREFIX,
    METRICS_SERIES_KEY,
    metrics_send_key,
)

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

# Sending through WhatsApp Web takes seconds (typing, clicking, waiting for the tick), not milliseconds.
DURATION_BUCKETS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
OUTCOMES = ("sent", "retry", "failed", "released")
KINDS = ("text", "image", "document", "audio", "video")
INF = "+Inf"


def bucket_field(seconds: float) -> str:
    """The (non-cumulative) bucket a duration falls into, named by its upper bound."""
    for bound in DURATION_BUCKETS:
        if seconds <= bound:
            return _bound_name(bound)
    return INF


def _bound_name(bound: float) -> str:
    return repr(float(bound))


def record_send(session: str, seconds: float, outcome: str, kind: str = "text", *,
                client: redis.Redis | None = None) -> bool:
    """Count one send attempt of `session` that took `seconds` and ended in `outcome` (sent, retry, failed,
    released); a message of `kind` (text, or a media kind). An outcome of 'retry' also counts in the retries counter,
    one of 'sent' in the sent-by-kind counter. Returns False when Redis was unreachable (logged, never raised)."""
    tally = _Tally()
    tally.add(session, seconds, outcome, kind)
    return tally.write(client)


class _Tally:
    """Increments not yet written: (key, field) -> count, key -> seconds, session -> retries."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.sums: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()

    def __bool__(self) -> bool:
        return bool(self.counts)

    def add(self, session: str, seconds: float, outcome: str, kind: str = "text") -> None:
        if outcome not in OUTCOMES:
            outcome = "other"
        seconds = max(0.0, float(seconds))
        key = metrics_send_key(session, outcome)
        self.counts[(key, bucket_field(seconds))] += 1
        self.sums[key] += seconds
        if outcome == "retry":
            self.retries[session] += 1
        if outcome == "sent":
            self.kinds[f"{session}:{kind if kind in KINDS else 'other'}"] += 1

    def merge(self, other: _Tally) -> None:
        self.counts.update(other.counts)
        self.sums.update(other.sums)
        self.retries.update(other.retries)
        self.kinds.update(other.kinds)

    def write(self, client: redis.Redis | None = None) -> bool:
        try:
            if client is None:
                client = _client_from_settings()
            pipe = client.pipeline(transaction=False)
            for (key, field), count in self.counts.items():
                pipe.hincrby(key, field, count)
            for key, seconds in self.sums.items():
                pipe.hincrbyfloat(key, "sum", seconds)
            pipe.sadd(METRICS_SERIES_KEY, *self.sums)
            for session, count in self.retries.items():
                pipe.hincrby(METRICS_RETRIES_KEY, session, count)
            for field, count in self.kinds.items():
                pipe.hincrby(METRICS_KINDS_KEY, field, count)
            pipe.execute()
            return True
        except Exception as exc:  # noqa: BLE001 - metrics must never fail a send
            log.debug("metrics not recorded for %s: %s", sorted(self.sums), exc)
            return False


def _client_from_settings() -> redis.Redis:
    """For a caller that has no Hub (a one-off record_send): a client of its own."""
    import redis as redis_lib

    from wa_queue.settings import read_settings

    return redis_lib.Redis.from_url(read_settings().broker_url, socket_timeout=10, socket_connect_timeout=5)


class SendBuffer:
    """record_send() for a session worker: counts in memory, written by a daemon thread every `interval_s`.

    A failed write keeps its counts for the next one (they are sums, so the buffer never grows past one entry per
    bucket). flush() writes now; the worker calls it when it stops."""

    def __init__(self, interval_s: float = 1.0, client: Callable[[], redis.Redis] | None = None) -> None:
        self.interval_s = interval_s
        self._client = client
        self._lock = threading.Lock()
        self._pending = _Tally()
        self._thread: threading.Thread | None = None

    def record(self, session: str, seconds: float, outcome: str, kind: str = "text") -> None:
        with self._lock:
            self._pending.add(session, seconds, outcome, kind)
            if self._thread is None or not self._thread.is_alive():
                # Started on first use, in the process that sends (a prefork child after the fork, if any).
                self._thread = threading.Thread(target=self._run, name="waq-metrics", daemon=True)
                self._thread.start()

    def flush(self) -> bool:
        with self._lock:
            tally, self._pending = self._pending, _Tally()
        if not tally:
            return True
        if tally.write(self._client() if self._client else None):
            return True
        with self._lock:
            self._pending.merge(tally)
        return False

    def _run(self) -> None:
        while True:
            time.sleep(self.interval_s)
            self.flush()


# ---- reading (the API's collector) -----------------------------------------------------------------------------
def read_send_histograms(client: redis.Redis) -> Iterator[tuple[str, str, list[tuple[str, float]], float]]:
    """(session, outcome, cumulative buckets [(le, count)...ending with +Inf], sum) for every recorded series."""
    for key in sorted(_text(k) for k in client.smembers(METRICS_SERIES_KEY)):
        session, _, outcome = key[len(METRICS_SEND_KEY_PREFIX):].rpartition(":")
        fields = {_text(k): _text(v) for k, v in client.hgetall(key).items()}
        if not key.startswith(METRICS_SEND_KEY_PREFIX) or not session or not fields:
            continue
        running = 0.0
        buckets: list[tuple[str, float]] = []
        for bound in DURATION_BUCKETS:
            running += float(fields.get(_bound_name(bound), 0))
            buckets.append((_bound_name(bound), running))
        running += float(fields.get(INF, 0))
        buckets.append((INF, running))
        yield session, outcome, buckets, float(fields.get("sum", 0.0))


def read_sent_kinds(client: redis.Redis) -> dict[tuple[str, str], float]:
    """(session, kind) -> messages sent."""
    out = {}
    for field, count in client.hgetall(METRICS_KINDS_KEY).items():
        session, _, kind = _text(field).rpartition(":")
        out[(session, kind)] = float(count)
    return out


def read_retries(client: redis.Redis) -> dict[str, float]:
    return {_text(k): float(_text(v)) for k, v in client.hgetall(METRICS_RETRIES_KEY).items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

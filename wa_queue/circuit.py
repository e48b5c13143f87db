"""A circuit breaker per receiving host, for status callbacks: a host that keeps failing is called less often.

Why: each failed delivery to a dead or slow receiver costs a callbacks worker up to its deadline, and every message
of that producer has its own retries. Without a breaker, one producer's broken endpoint keeps the callbacks pool busy
with hopeless calls while other producers' callbacks wait.

State lives in the broker's Redis (one hash per host, `names.circuit_key`): the callbacks pool has several processes,
possibly on several hosts, and they must agree that a host is failing. Per process, each of them would learn it
alone, paying FAILURES_TO_OPEN deadlines each.

- closed: deliveries go through; consecutive failures are counted, a success forgets them.
- open: FAILURES_TO_OPEN consecutive failures open the circuit for a cool-down (OPEN_BASE_S, doubling with each
  opening up to OPEN_CAP_S). Deliveries to the host wait until it ends, without a call and without using a retry.
- half-open: after the cool-down one delivery at a time goes through, the trial: it takes the host's trial lock
  (`SET NX` with an expiry of the trial's longest run, `names.circuit_trial_key`), and the others wait for as long as
  the lock has left, without a call. The trial's failure re-opens at once (the failure count is still at the
  threshold) and frees the lock for the trial after the next cool-down; its success closes the circuit and frees it.
  A trial that ends neither way (its URL refused, its process killed) holds the lock until it expires: then the next
  delivery is the trial. Without the lock, every delivery waiting for the cool-down to end would call a host that is
  likely still down, each paying its deadline.

When Redis cannot be read the breaker says "go" (fail open): it slows deliveries, it must never stop them.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from wa_queue import names

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

FAILURES_TO_OPEN = 5
OPEN_BASE_S = 30.0
OPEN_CAP_S = 600.0
KEY_TTL_S = 86400  # a host not heard of for a day is forgotten
MIN_WAIT_S = 0.5  # a delivery that lost the trial lock as it expired waits this long rather than not at all


@dataclasses.dataclass(frozen=True)
class HostCircuit:
    host: str
    failures: int
    opened: int  # how many times the circuit opened since the host last succeeded
    open_until: float  # unix time; 0 when never opened

    def is_open(self, now: float) -> bool:
        return self.open_until > now

    def state(self, now: float) -> str:
        if self.is_open(now):
            return "open"
        return "half_open" if self.failures >= FAILURES_TO_OPEN else "closed"


class Breaker:
    """The breaker over one Redis client (the Hub's broker client)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def wait_s(self, host: str, now: float, *, trial_s: float) -> float:
        """Seconds a delivery to `host` should wait before it is tried (0: go now). While the circuit is half-open,
        the one delivery that gets 0 is the trial, which holds the host's trial lock for `trial_s` (its longest run)
        unless failed() or succeeded() frees it first."""
        try:
            circuit = self.get(host)
            if circuit is None:
                return 0.0
            if circuit.is_open(now):
                return circuit.open_until - now
            if circuit.state(now) != "half_open":
                return 0.0
            key = names.circuit_trial_key(host)
            if self._redis.set(key, "trial", nx=True, px=max(1, int(trial_s * 1000))):
                log.info("callbacks to %s: cool-down over; one trial delivery", host)
                return 0.0
            left_ms = self._redis.pttl(key)
            return max(MIN_WAIT_S, left_ms / 1000 if left_ms and left_ms > 0 else 0.0)
        except Exception as exc:  # noqa: BLE001 - fail open: the breaker slows deliveries, never stops them
            log.warning("circuit breaker unreadable (%s: %s); delivering", type(exc).__name__, exc)
            return 0.0

    def failed(self, host: str, now: float) -> HostCircuit | None:
        """Count a failure; open (or re-open) the circuit at the threshold. Returns the new state."""
        key = names.circuit_key(host)
        try:
            failures = int(self._redis.hincrby(key, "failures", 1))
            if failures >= FAILURES_TO_OPEN:
                opened = int(self._redis.hincrby(key, "opened", 1))
                cool_down = min(OPEN_CAP_S, OPEN_BASE_S * 2 ** (opened - 1))
                self._redis.hset(key, "open_until", repr(now + cool_down))
                self._redis.delete(names.circuit_trial_key(host))  # the next cool-down's end admits a new trial
                log.warning("callbacks to %s: %d failures in a row; circuit open for %.0f s", host, failures,
                            cool_down)
            self._redis.expire(key, KEY_TTL_S)
            return self.get(host)
        except Exception as exc:  # noqa: BLE001 - see wait_s
            log.warning("circuit breaker not updated (%s: %s)", type(exc).__name__, exc)
            return None

    def succeeded(self, host: str) -> None:
        try:
            self._redis.delete(names.circuit_key(host), names.circuit_trial_key(host))
        except Exception as exc:  # noqa: BLE001 - see wait_s
            log.warning("circuit breaker not updated (%s: %s)", type(exc).__name__, exc)

    def get(self, host: str) -> HostCircuit | None:
        fields = self._redis.hgetall(names.circuit_key(host))
        return _circuit(host, fields) if fields else None

    def all(self) -> list[HostCircuit]:
        """Every host the breaker knows (for /metrics and /health); a few keys, found with SCAN."""
        found = []
        for key in self._redis.scan_iter(match=names.CIRCUIT_KEY_PREFIX + "*", count=100):
            text = key.decode() if isinstance(key, bytes) else key
            fields = self._redis.hgetall(text)
            if fields:
                found.append(_circuit(text[len(names.CIRCUIT_KEY_PREFIX):], fields))
        return sorted(found, key=lambda circuit: circuit.host)


def _circuit(host: str, fields: dict) -> HostCircuit:
    def value(name: str) -> str:
        raw = fields.get(name.encode(), fields.get(name, b"0"))
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    return HostCircuit(host, int(value("failures")), int(value("opened")), float(value("open_until")))

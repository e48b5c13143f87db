"""Rate limits per API key for enqueue: a token bucket of requests and one of messages, shared by every API process.

Why per key: one producer that floods the API (a loop gone wrong, a leaked key) must not take the capacity of the
others. Why in Redis: several API processes (gunicorn workers, several hosts) answer the same key; a bucket per
process would let N processes accept N times the limit.

A bucket holds `burst_s` seconds of its rate and refills continuously. A request takes one request token and one
message token per message it carries (a bulk request of 500 takes 500); it is admitted only when both buckets hold
enough, and then takes from both at once, in one Lua script, so that two processes can never spend the same tokens.
The script reads Redis's own clock (TIME): the API hosts' clocks need not agree.

Over the limit the caller learns how long until the request would pass (Retry-After). When Redis cannot be reached,
each process keeps its own bucket with the same limits until Redis answers again: a producer is then limited per
process instead of in all, never unlimited, and enqueue (which does not need the broker: beat republishes) keeps
working through a broker outage.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from wa_queue import names
from wa_queue.errors import RateLimited

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

# After Redis failed once, this long with the local buckets before it is asked again: a broker that hangs must not
# add its time-out to every request.
FALLBACK_S = 10.0

_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate_req, cap_req = tonumber(ARGV[1]), tonumber(ARGV[2])
local rate_msg, cap_msg = tonumber(ARGV[3]), tonumber(ARGV[4])
local count, ttl_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local held = redis.call('HMGET', KEYS[1], 'req', 'msg', 'at')
local elapsed = math.max(0, now - (tonumber(held[3]) or now))
local function level(value, rate, cap)
  local tokens = tonumber(value) or cap
  return math.min(cap, tokens + elapsed * rate)
end
local req, msg = level(held[1], rate_req, cap_req), level(held[2], rate_msg, cap_msg)
local wait = 0
if rate_req > 0 and req < 1 then wait = math.max(wait, (1 - req) / rate_req) end
if rate_msg > 0 and msg < count then wait = math.max(wait, (count - msg) / rate_msg) end
if wait == 0 then
  if rate_req > 0 then req = req - 1 end
  if rate_msg > 0 then msg = msg - count end
end
redis.call('HSET', KEYS[1], 'req', tostring(req), 'msg', tostring(msg), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ttl_ms)
return tostring(wait)
"""


@dataclasses.dataclass(frozen=True)
class Rate:
    """One key's enqueue limits: requests and messages a second (0: that bucket is off), and the buckets' depth."""

    requests_per_s: float
    messages_per_s: float
    burst_s: float

    @property
    def off(self) -> bool:
        return self.requests_per_s <= 0 and self.messages_per_s <= 0

    @property
    def request_capacity(self) -> float:
        return max(1.0, self.requests_per_s * self.burst_s)

    @property
    def message_capacity(self) -> float:
        return self.messages_per_s * self.burst_s

    @property
    def refill_s(self) -> float:
        """How long an empty bucket takes to fill: after that a bucket that was forgotten reads the same (full)."""
        return max((capacity / per_s for capacity, per_s in ((self.request_capacity, self.requests_per_s),
                                                              (self.message_capacity, self.messages_per_s))
                    if per_s > 0), default=0.0)


class _LocalBuckets:
    """The same buckets in this process, for when Redis cannot be asked (and for a memory:// broker)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, tuple[float, float, float]] = {}

    def take(self, key: str, rate: Rate, count: int) -> float:
        with self._lock:
            now = self._clock()
            req, msg, at = self._held.get(key, (rate.request_capacity, rate.message_capacity, now))
            elapsed = max(0.0, now - at)
            req = min(rate.request_capacity, req + elapsed * rate.requests_per_s)
            msg = min(rate.message_capacity, msg + elapsed * rate.messages_per_s)
            wait = 0.0
            if rate.requests_per_s > 0 and req < 1:
                wait = max(wait, (1 - req) / rate.requests_per_s)
            if rate.messages_per_s > 0 and msg < count:
                wait = max(wait, (count - msg) / rate.messages_per_s)
            if wait == 0:
                req -= 1 if rate.requests_per_s > 0 else 0
                msg -= count if rate.messages_per_s > 0 else 0
            self._held[key] = (req, msg, now)
            return wait


class RateLimiter:
    """admit(key name, messages, rate): returns when the request may go on; RateLimited(retry_after_s) otherwise."""

    def __init__(self, redis_client: Callable[[], redis.Redis] | None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._redis = redis_client
        self._clock = clock
        self._local = _LocalBuckets(clock)
        self._script = None
        self._redis_failed_at: float | None = None
        self._lock = threading.Lock()
        self.local_decisions = 0  # requests decided by this process's buckets because Redis could not be asked

    def admit(self, key_name: str, messages: int, rate: Rate) -> None:
        if rate.off:
            return
        if rate.messages_per_s > 0 and messages > rate.message_capacity:
            # Settings refuse a message bucket smaller than the largest request (validation.MAX_BULK); a smaller
            # one could never admit it, and waiting would not help.
            raise RateLimited(key_name, None)
        wait = self._take_shared(key_name, messages, rate)
        if wait is None:
            with self._lock:
                self.local_decisions += 1
            wait = self._local.take(key_name, rate, messages)
        if wait > 0:
            raise RateLimited(key_name, wait)

    def _take_shared(self, key_name: str, messages: int, rate: Rate) -> float | None:
        """The wait Redis's buckets give (0: admitted); None when Redis cannot be asked now."""
        if self._redis is None:
            return None
        with self._lock:
            failed_at = self._redis_failed_at
        if failed_at is not None and self._clock() - failed_at < FALLBACK_S:
            return None
        import redis as redis_lib

        try:
            client = self._redis()
            if self._script is None:
                self._script = client.register_script(_SCRIPT)
            ttl_ms = int(1000 * rate.refill_s) + 1000
            wait = self._script(keys=[names.rate_limit_key(key_name)],
                                args=[rate.requests_per_s, rate.request_capacity, rate.messages_per_s,
                                      rate.message_capacity, messages, ttl_ms], client=client)
        except (redis_lib.RedisError, OSError) as exc:
            with self._lock:
                first = self._redis_failed_at is None
                self._redis_failed_at = self._clock()
            if first:
                log.warning("rate limits: Redis cannot be asked (%s: %s); each API process limits on its own until "
                            "it answers", type(exc).__name__, exc)
            return None
        with self._lock:
            if self._redis_failed_at is not None:
                log.info("rate limits: Redis answers again; the limits are shared again")
            self._redis_failed_at = None
        return float(wait)

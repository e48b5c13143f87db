"""The enqueue rate limiter (wa_queue/rate_limit.py): its buckets' arithmetic, shared through a real redis-server by
several limiters (as by several API processes), the fallback to per-process buckets when Redis cannot be asked, and
the settings that configure it."""

from __future__ import annotations

import pytest
import redis

from wa_queue.errors import ConfigError, RateLimited
from wa_queue.rate_limit import FALLBACK_S, Rate, RateLimiter
from wa_queue.settings import Settings

KEYS = "shop:producer:shop-key-0123456789,crm:producer:crm-key-01234567890"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admitted(limiter: RateLimiter, name: str, rate: Rate, attempts: int, messages: int = 1) -> int:
    count = 0
    for _ in range(attempts):
        try:
            limiter.admit(name, messages, rate)
            count += 1
        except RateLimited:
            pass
    return count


def test_the_local_bucket_admits_its_burst_then_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock=clock)
    rate = Rate(requests_per_s=5, messages_per_s=0, burst_s=2)
    assert admitted(limiter, "shop", rate, 50) == 10  # the bucket holds 2 s of 5/s
    clock.now += 1.0
    assert admitted(limiter, "shop", rate, 50) == 5
    with pytest.raises(RateLimited) as refused:
        limiter.admit("shop", 1, rate)
    assert refused.value.retry_after_s == pytest.approx(0.2)  # one token comes back every 1/5 s
    assert admitted(limiter, "crm", rate, 50) == 10  # another key has its own bucket


def test_a_request_takes_a_message_token_per_message_and_both_buckets_at_once() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock=clock)
    rate = Rate(requests_per_s=100, messages_per_s=500, burst_s=2)
    limiter.admit("shop", 1000, rate)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("shop", 100, rate)
    assert refused.value.retry_after_s == pytest.approx(0.2)
    clock.now += 0.2
    limiter.admit("shop", 100, rate)  # the refused request took nothing: its request token is still there
    with pytest.raises(RateLimited) as never:
        limiter.admit("shop", 1001, rate)
    assert never.value.retry_after_s is None  # more than the bucket holds: waiting would not help


def test_off_means_no_limit() -> None:
    limiter = RateLimiter(None, clock=Clock())
    assert admitted(limiter, "shop", Rate(0, 0, 2), 10_000, messages=1000) == 10_000


def test_limiters_sharing_a_redis_share_the_buckets(redis_server) -> None:  # noqa: ANN001
    # Three limiters are three API processes: together they admit what one bucket holds, not three times that.
    client = redis.Redis.from_url(redis_server.url)
    client.delete("waq:rate:shared")
    limiters = [RateLimiter(lambda: client) for _ in range(3)]
    rate = Rate(requests_per_s=0.01, messages_per_s=0, burst_s=1000)  # 10 requests, hardly any refill
    total = sum(admitted(limiter, "shared", rate, 10) for limiter in limiters)
    assert total == 10
    assert all(limiter.local_decisions == 0 for limiter in limiters)


def test_redis_buckets_refill_from_redis_own_clock(redis_server) -> None:  # noqa: ANN001
    client = redis.Redis.from_url(redis_server.url)
    client.delete("waq:rate:refill")
    limiter = RateLimiter(lambda: client, clock=Clock())  # this clock never moves: only Redis's TIME can refill
    rate = Rate(requests_per_s=20, messages_per_s=0, burst_s=0.5)
    assert admitted(limiter, "refill", rate, 10) == 10
    with pytest.raises(RateLimited) as refused:
        limiter.admit("refill", 1, rate)
    assert 0 < refused.value.retry_after_s <= 0.05
    client.hset("waq:rate:refill", "at", float(client.hget("waq:rate:refill", "at")) - 1.0)  # a second ago
    assert admitted(limiter, "refill", rate, 20) == 10  # full again, never more than the bucket holds


def test_without_redis_each_process_still_limits_then_shares_again(redis_server) -> None:  # noqa: ANN001
    clock = Clock()
    healthy = redis.Redis.from_url(redis_server.url)
    healthy.delete("waq:rate:outage")
    dead = redis.Redis(port=1, socket_connect_timeout=0.2)  # nothing listens on port 1
    current = {"client": dead}
    limiter = RateLimiter(lambda: current["client"], clock=clock)
    rate = Rate(requests_per_s=1, messages_per_s=0, burst_s=5)
    assert admitted(limiter, "outage", rate, 20) == 5  # the local bucket: limited, not open
    assert limiter.local_decisions == 20
    current["client"] = healthy
    with pytest.raises(RateLimited):  # within FALLBACK_S of the failure Redis is not asked: the local bucket is empty
        limiter.admit("outage", 1, rate)
    clock.now += FALLBACK_S + 0.1
    before = limiter.local_decisions
    assert admitted(limiter, "outage", rate, 20) == 5  # Redis's bucket, full: it never saw this key
    assert limiter.local_decisions == before


def test_settings_per_key_limits() -> None:
    settings = Settings.from_env({"WAQ_API_KEYS": KEYS, "WAQ_KEY_LIMITS": "shop:requests=5",
                                  "WAQ_RATE_MESSAGES_PER_S": "2000"})
    assert settings.rate_for("shop") == Rate(5.0, 2000.0, 2.0)
    assert settings.rate_for("crm") == Rate(100.0, 2000.0, 2.0)


@pytest.mark.parametrize(("env", "says"), [
    ({"WAQ_KEY_LIMITS": "nobody:requests=5"}, "is not the name of a key"),
    ({"WAQ_KEY_LIMITS": "shop:requests=5,shop:messages=3000"}, "given twice"),
    ({"WAQ_KEY_LIMITS": "shop:speed=5"}, "not one of requests, messages"),
    ({"WAQ_KEY_LIMITS": "shop:requests=5:requests=6"}, "given twice"),
    ({"WAQ_KEY_LIMITS": "shop"}, "accepts name:requests=R"),
    ({"WAQ_KEY_LIMITS": "shop:requests=-1"}, "cannot be negative"),
    ({"WAQ_RATE_MESSAGES_PER_S": "100"}, "fewer than a bulk request may carry (1000)"),
    ({"WAQ_KEY_LIMITS": "crm:messages=10"}, "the limits of 'crm'"),
    ({"WAQ_RATE_BURST_S": "0"}, "WAQ_RATE_BURST_S"),
])
def test_settings_refuse_limits_that_cannot_work(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match="LIMITS|RATE|limits") as refused:
        Settings.from_env({"WAQ_API_KEYS": KEYS, **env})
    assert says in str(refused.value)


def test_a_slow_bucket_outlives_its_refill_in_redis(redis_server) -> None:  # noqa: ANN001
    # One request every 10 s, bucket of one (0.1/s x 2 s rounds up to one request): the empty bucket must live until
    # it has refilled, 10 s, not burst_s; an expired key would read as a full bucket and let the next request in.
    client = redis.Redis.from_url(redis_server.url)
    client.delete("waq:rate:slow")
    limiter = RateLimiter(lambda: client)
    rate = Rate(requests_per_s=0.1, messages_per_s=0, burst_s=2)
    limiter.admit("slow", 1, rate)
    assert client.pttl("waq:rate:slow") >= 10_000


def test_settings_daily_quota_default_and_per_key() -> None:
    settings = Settings.from_env({"WAQ_API_KEYS": KEYS, "WAQ_DAILY_QUOTA": "500",
                                  "WAQ_KEY_LIMITS": "shop:daily=0:requests=5,crm:daily=20"})
    assert (settings.daily_quota_for("shop"), settings.daily_quota_for("crm")) == (0, 20)
    assert settings.daily_quota_for("other") == 500
    assert settings.daily_quota_for(None) == 0  # the Python API and the CLI enqueue without a key
    assert Settings.from_env({"WAQ_API_KEYS": KEYS}).daily_quota_for("shop") == 0


@pytest.mark.parametrize(("env", "says"), [
    ({"WAQ_DAILY_QUOTA": "-1"}, "WAQ_DAILY_QUOTA: a daily quota cannot be negative"),
    ({"WAQ_DAILY_QUOTA": "ten"}, "WAQ_DAILY_QUOTA"),
    ({"WAQ_KEY_LIMITS": "shop:daily=-3"}, "the daily quota of 'shop' cannot be negative"),
    ({"WAQ_KEY_LIMITS": "shop:daily=1.5"}, "whole number"),
    ({"WAQ_KEY_LIMITS": "shop:daily=1:daily=2"}, "given twice"),
])
def test_settings_refuse_a_daily_quota_that_cannot_work(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"WAQ_API_KEYS": KEYS, **env})
    assert says in str(refused.value)

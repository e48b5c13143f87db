"""The callbacks' circuit breaker (wa_queue/circuit.py) over a real redis-server: closed, open for the cool-down,
then half-open with one trial delivery at a time (the others wait for the trial lock), the trial's outcome closing
or re-opening it, and "go" whenever Redis cannot be read."""

from __future__ import annotations

import threading

import pytest
import redis

from wa_queue import circuit, names
from wa_queue.circuit import FAILURES_TO_OPEN, OPEN_BASE_S, Breaker

HOST = "hooks.example"
TRIAL_S = 12.0
NOW = 1_000_000.0


@pytest.fixture
def breaker(redis_server) -> Breaker:  # noqa: ANN001
    client = redis_server.client()
    client.flushall()
    return Breaker(client)


def open_circuit(breaker: Breaker, now: float = NOW) -> None:
    for _ in range(FAILURES_TO_OPEN):
        breaker.failed(HOST, now)


def test_closed_goes_and_open_waits_for_the_cool_down(breaker: Breaker) -> None:
    assert breaker.wait_s(HOST, NOW, trial_s=TRIAL_S) == 0.0
    open_circuit(breaker)
    assert breaker.wait_s(HOST, NOW + 10, trial_s=TRIAL_S) == pytest.approx(OPEN_BASE_S - 10)


def test_half_open_admits_one_trial_and_the_others_wait_for_its_lock(breaker: Breaker) -> None:
    open_circuit(breaker)
    after = NOW + OPEN_BASE_S + 1
    assert breaker.get(HOST).state(after) == "half_open"  # type: ignore[union-attr]
    waits = [breaker.wait_s(HOST, after, trial_s=TRIAL_S) for _ in range(5)]
    assert waits[0] == 0.0  # the trial
    assert all(0 < wait <= TRIAL_S for wait in waits[1:]), waits  # the lock's time left
    assert 0 < breaker._redis.pttl(names.circuit_trial_key(HOST)) <= TRIAL_S * 1000


def test_concurrent_deliveries_get_exactly_one_trial(breaker: Breaker) -> None:
    open_circuit(breaker)
    after = NOW + OPEN_BASE_S + 1
    waits: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def deliver() -> None:
        start.wait()
        wait = breaker.wait_s(HOST, after, trial_s=TRIAL_S)
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=deliver) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert waits.count(0.0) == 1, waits


def test_the_trial_s_success_closes_and_lets_every_delivery_go(breaker: Breaker) -> None:
    open_circuit(breaker)
    after = NOW + OPEN_BASE_S + 1
    assert breaker.wait_s(HOST, after, trial_s=TRIAL_S) == 0.0
    breaker.succeeded(HOST)
    assert breaker.get(HOST) is None
    assert [breaker.wait_s(HOST, after, trial_s=TRIAL_S) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_the_trial_s_failure_re_opens_and_the_next_cool_down_admits_a_new_trial(breaker: Breaker) -> None:
    open_circuit(breaker)
    after = NOW + OPEN_BASE_S + 1
    assert breaker.wait_s(HOST, after, trial_s=TRIAL_S) == 0.0
    state = breaker.failed(HOST, after)
    assert state is not None and state.is_open(after) and state.opened == 2
    assert breaker.wait_s(HOST, after, trial_s=TRIAL_S) == pytest.approx(2 * OPEN_BASE_S)  # open, doubled
    later = after + 2 * OPEN_BASE_S + 1
    assert breaker.wait_s(HOST, later, trial_s=TRIAL_S) == 0.0  # the lock was freed: a new trial
    assert breaker.wait_s(HOST, later, trial_s=TRIAL_S) > 0


def test_a_trial_that_never_reports_holds_the_lock_only_until_it_expires(breaker: Breaker) -> None:
    import time

    open_circuit(breaker)
    after = NOW + OPEN_BASE_S + 1
    assert breaker.wait_s(HOST, after, trial_s=0.2) == 0.0
    assert breaker.wait_s(HOST, after, trial_s=0.2) >= circuit.MIN_WAIT_S
    time.sleep(0.3)
    assert breaker.wait_s(HOST, after, trial_s=0.2) == 0.0  # the next delivery is the trial


def test_redis_unreadable_says_go() -> None:
    dead = Breaker(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    assert dead.wait_s(HOST, NOW, trial_s=TRIAL_S) == 0.0
    assert dead.failed(HOST, NOW) is None
    dead.succeeded(HOST)  # logged, never raised

"""Chaos: the whole stack as real processes (redis-server, two session workers driving Chromium on the simulator, beat,
the API under gunicorn) while a seeded random generator applies rounds of faults: SIGKILL a worker, SIGKILL a Chrome,
restart Redis with its data gone, restart beat or the API, and simulator faults (drops before and after the click, a
disconnected phone, slow sends). A producer keeps enqueuing through the API meanwhile, retrying with the same
Idempotency-Key when the API is down; a fifth of its messages carry a file (a PDF, a JPEG or an MP4 uploaded through
POST /media), which must arrive byte for byte. At the end every accepted message must be `sent` exactly once
according to the simulator, or `failed` with its reason: none lost, none sent twice. The producer mixes priorities
and gives some messages a short time-to-live, and a second client cancels some of what was accepted: a message
`expired` or `cancelled` must never have reached the simulator, and none was marked for its click at or after its
expiry.

Recipients answer meanwhile (tests/chaos/recipients.py): ordinary replies, STOP from numbers that still have messages
queued, and START later from some of them, posted to the simulator whether the session's worker is up or not. From
its `wave_at`th message on, the producer waits (a bounded time) for the STOPs to be on the list, so that some of the
rest is for stopped numbers: those are refused with 409, or cancelled unclicked when queued before. Every reply must
be recorded exactly once as posted; nothing may be clicked to a number while it is on the list.

The short form runs in `make test` with a fixed seed: each kind of fault once, in a seeded order. `make test-long`
(pytest --long) runs the long one with a random seed and the page's clock 4 minutes behind the workers'. Any seed
replays with `pytest tests/chaos --chaos-seed N` (it is printed); `--chaos-clock-skew-s S` sets the page's clock.
Both forms run twice: on a SQLite store and on a MongoDB one (FerretDB built by the suite, or WAQ_TEST_MONGO_URL)."""

from __future__ import annotations

import collections
import hashlib
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.chaos.recipients import Recipient, check_opt_outs, check_replies
from tests.helpers import media_samples as samples
from tests.helpers.services import isolated_redis
from tests.helpers.stack import ACCOUNTS, ADMIN_KEY, Stack
from tests.helpers.stores import STORES
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus
from wa_queue.send_window import recipient_day_start
from wa_queue.sessions import daily_cap

FAULTS = ("kill_worker", "kill_chrome", "restart_redis", "restart_beat", "restart_api", "drop_before_click",
          "drop_after_click", "phone_disconnected", "slow")


@dataclass
class Producer:
    """Enqueues through the REST API; a message counts as accepted once the API answered 2xx for it."""

    stack: Stack
    total: int
    rng: random.Random
    phones: list[str]
    pause_s: tuple[float, float] = (0.02, 0.15)  # between two messages
    # Message number `wave_at` and the rest wait (at most wave_wait_s) for `wave`: the recipients' STOPs recorded.
    wave_at: int | None = None
    wave: threading.Event = field(default_factory=threading.Event)
    wave_wait_s: float = 0.0
    accepted: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (phone, text)
    files: dict[str, str] = field(default_factory=dict)  # id -> the SHA-256 of a media message's file
    # Idempotency key -> (phone, text, when the 409 came, whether an earlier try's outcome was never learned): a
    # number on the suppression list is refused, an expected answer, and that message is not the producer's to count.
    refused: dict[str, tuple[str, str, float, bool]] = field(default_factory=dict)
    errors: int = 0
    took_s: float = 0.0

    def upload(self, session: requests.Session, n: int) -> tuple[str, str]:
        """A file stored through POST /media (retried while the API is down): its upload id and SHA-256."""
        name, data = self.rng.choice((("invoice.pdf", samples.pdf), ("photo.jpg", samples.jpeg),
                                      ("clip.mp4", samples.mp4)))
        data = data(self.rng.randint(20_000, 60_000))
        while True:
            try:
                response = session.post(f"{self.stack.api_url}/api/whatsapp/media", timeout=10,
                                        files={"file": (f"{n}-{name}", data)}, headers={"X-API-Key": ADMIN_KEY})
                if response.status_code == 201:
                    return response.json()["id"], hashlib.sha256(data).hexdigest()
                assert response.status_code >= 500, response.text
            except requests.RequestException:
                pass
            self.errors += 1
            time.sleep(0.3)

    def run(self) -> None:
        session, started = requests.Session(), time.monotonic()
        for n in range(self.total):
            if n == self.wave_at:
                self.wave.wait(self.wave_wait_s)
            phone = self.rng.choice(self.phones)
            text = f"chaos {n} {uuid.uuid4().hex[:8]}"
            key = f"chaos-{n}"
            body = {"phone": phone, "text": text, "priority": self.rng.choice(("high", "normal", "normal", "low"))}
            digest = None
            if self.rng.random() < 0.2:  # a media message: the text is its caption
                upload, digest = self.upload(session, n)
                body["media"] = {"id": upload}
            if self.rng.random() < 0.2:  # some expire while the faults hold the queue up
                body["ttl_s"] = self.rng.randint(5, 60)
            unsure = False
            while True:  # a producer that wants its message in: same key until the API says yes (or 409 OptedOut)
                try:
                    response = session.post(f"{self.stack.api_url}/api/whatsapp/messages", timeout=10,
                                            json=body,
                                            headers={"X-API-Key": ADMIN_KEY, "Idempotency-Key": key})
                    if response.status_code in (200, 202):
                        self.accepted[response.json()["id"]] = (phone, text)
                        if digest is not None:
                            self.files[response.json()["id"]] = digest
                        break
                    if response.status_code == 409 and response.json()["details"].get("field") == "phone":
                        assert "suppression list" in response.json()["error"], response.text
                        self.refused[key] = (phone, text, time.time(), unsure)  # it replied STOP: not sent to
                        break
                    assert response.status_code >= 500, response.text  # never another 4xx for a good request
                except requests.RequestException:
                    pass
                unsure = True  # that try may have been stored
                self.errors += 1
                time.sleep(0.3)
            time.sleep(self.rng.uniform(*self.pause_s))
        self.took_s = time.monotonic() - started


@dataclass
class Canceller:
    """Cancels some accepted messages through the REST API while they wait, racing the workers' claims. A 200 means
    the cancel won: that message must never be sent."""

    stack: Stack
    producer: Producer
    rng: random.Random
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: set[str] = field(default_factory=set)
    tried: set[str] = field(default_factory=set)  # every cancel asked for, answered or not
    refused: int = 0

    def run(self) -> None:
        session = requests.Session()
        while not self.done.is_set():
            waiting = [mid for mid in list(self.producer.accepted) if mid not in self.tried]
            if waiting and self.rng.random() < 0.25:
                mid = self.rng.choice(waiting)
                self.tried.add(mid)
                try:
                    response = session.post(f"{self.stack.api_url}/api/whatsapp/messages/{mid}/cancel", timeout=10,
                                            headers={"X-API-Key": ADMIN_KEY})
                except requests.RequestException:
                    continue  # the API restarting: whether it cancelled is read from the store at the end
                if response.status_code == 200:
                    self.cancelled.add(mid)
                elif response.status_code == 409:
                    self.refused += 1
                else:
                    assert response.status_code >= 500, response.text
            time.sleep(self.rng.uniform(0.2, 0.8))


def apply_fault(stack: Stack, redis: RedisServer, fault: str, rng: random.Random, phones: list[str]) -> str:
    session = rng.choice(stack.sessions)
    if fault == "kill_worker":
        stack.kill(session)
        time.sleep(rng.uniform(0.5, 2))
        stack.restart_worker(session)
        return f"SIGKILL worker {session}, restarted"
    if fault == "kill_chrome":
        stack.kill_chrome(session)
        return f"SIGKILL Chrome of {session}"
    if fault == "restart_redis":
        redis.restart_empty()
        return "Redis restarted with its data gone"
    if fault in ("restart_beat", "restart_api"):
        name = fault.removeprefix("restart_")
        stack.kill(name)
        time.sleep(rng.uniform(0.5, 2))
        stack.start_beat() if name == "beat" else stack.start_api()
        return f"SIGKILL {name}, restarted"
    if fault == "phone_disconnected":
        account = ACCOUNTS[session]
        stack.fault(session=account, fault="phone_disconnected")
        time.sleep(rng.uniform(2, 5))
        stack.fault(session=account, fault=None)
        return f"phone of {session} disconnected for a while"
    number = rng.choice(phones).lstrip("+")
    body = {"number": number, "fault": fault, "count": rng.randint(1, 2)}
    if fault == "slow":
        body["delay_s"] = rng.uniform(1, 4)
    stack.fault(**body)
    return f"{fault} on {number} x{body['count']}"


@dataclass(frozen=True)
class Replies:
    """What the recipients answer during the faults (tests/chaos/recipients.py), and the producer's second wave: from
    message `wave_at` on it waits (at most wave_wait_s) for the STOPs to be recorded, so that some of the rest is for
    numbers on the list."""

    stops: int
    starts: int
    ordinary: int
    pause_s: tuple[float, float]
    wave_at: int
    wave_wait_s: float


def run_chaos(tmp: Path, seed: int, messages: int, rounds: int, replies: Replies, clock_skew_s: float = 0.0,
              store_url: str | None = None) -> None:
    rng = random.Random(seed)
    store = "SQLite" if store_url is None else f"MongoDB at {store_url}"
    print(f"\nchaos seed {seed}: {messages} messages, {rounds} rounds of faults, page clock {clock_skew_s:+g}s, "
          f"store {store}; replies: {replies.stops} STOP, {replies.starts} START, {replies.ordinary} others")
    redis = isolated_redis(tmp / "redis")
    redis.start()
    # Every retry waits in the store and beat publishes it (WAQ_MAX_COUNTDOWN_S=0), through the faults below.
    stack = Stack(tmp, redis, store_url=store_url, extra_env={"WAQ_MAX_COUNTDOWN_S": "0"})
    stack.sim.state.set_config({"clock_skew_s": clock_skew_s})  # every time the page shows is off by this
    phones = [f"+1415555{6000 + i:04d}" for i in range(25)]
    leftover: list[str] = []
    try:
        stack.start_beat()
        stack.start_api()
        for name in stack.sessions:
            stack.start_worker(name)
        producer = Producer(stack, messages, random.Random(seed + 1), phones, wave_at=replies.wave_at,
                            wave_wait_s=replies.wave_wait_s)
        thread = threading.Thread(target=producer.run, daemon=True)
        thread.start()
        canceller = Canceller(stack, producer, random.Random(seed + 2))
        cancelling = threading.Thread(target=canceller.run, daemon=True)
        cancelling.start()
        recipient = Recipient(stack, producer, random.Random(seed + 3), replies.stops, replies.starts,
                              replies.ordinary, replies.pause_s, recorded=producer.wave)
        replying = threading.Thread(target=recipient.run, daemon=True)
        replying.start()
        applied, timeline = [], []  # timeline: (when it began, the fault), for a lost reply's report
        # Every kind of fault at least once, in a seeded order; further rounds drawn at random.
        plan = rng.sample(FAULTS, len(FAULTS)) + [rng.choice(FAULTS) for _ in range(max(0, rounds - len(FAULTS)))]
        for round_no, fault in enumerate(plan):
            time.sleep(rng.uniform(2, 6))
            began = time.time()
            applied.append(apply_fault(stack, redis, fault, rng, phones))
            timeline.append((began, applied[-1]))
            print(f"  round {round_no + 1}: {applied[-1]}", flush=True)
        thread.join(600)
        assert not thread.is_alive(), "the producer never got all its messages in"
        canceller.done.set()
        cancelling.join(30)
        recipient.done.set()
        replying.join(30)
        stack.clear_faults()
        for name in stack.sessions:  # a worker killed in the last round may still be starting: all must run
            if not stack.procs[name].alive():
                stack.restart_worker(name)
        ids = list(producer.accepted)
        # Sent at the pace the machine allows (the long form's 400 take 10-15 min on 2 busy cores, far longer on
        # FerretDB, which reads a whole collection for most queries: docs/testing.md); a stall fails.
        stack.wait_done(ids, stall_s=300 if store_url is None else 600)
        recipient.settle(120)  # idle workers read what is left, a chat each health check
        check(stack, producer, applied, canceller)
        # The store keeps times cut to the microsecond (SQLite) or the millisecond (MongoDB).
        opt_outs = check_opt_outs(stack, producer, canceller, recipient, 1e-6 if store_url is None else 1e-3)
        answered = check_replies(recipient, timeline)
        print(f"  replies posted {len(recipient.replies)}: {dict(answered)}; STOPs recorded {recipient.delays()}s "
              f"after they were posted, the producer done {producer.took_s:.0f}s after its start; START: "
              f"{sorted(recipient.started)}; {dict(opt_outs)}")
    finally:
        leftover = stack.stop()
        redis.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"


def check(stack: Stack, producer: Producer, applied: list[str], canceller: Canceller) -> None:
    store = default_hub().store
    counts = stack.sent_counts()
    statuses: collections.Counter = collections.Counter()
    for mid, (phone, text) in producer.accepted.items():
        message = store.get(mid)
        statuses[message.status.value] += 1
        seen = counts[(phone.lstrip("+"), text)]
        marks = [entry.at for entry in message.history if entry.event == "sending"]
        if message.expires_at is not None:
            assert all(mark < message.expires_at for mark in marks), f"{mid} marked for a click after its expiry"
        if mid in canceller.cancelled:
            assert message.status is MessageStatus.CANCELLED, (mid, message.status)
        if message.status in (MessageStatus.EXPIRED, MessageStatus.CANCELLED):
            assert seen == 0, f"{mid} is {message.status.value} but the simulator has it {seen} times"
        elif message.status is MessageStatus.SENT:
            assert seen == 1, f"{mid} marked sent but the simulator has it {seen} times"
        else:
            assert message.status is MessageStatus.FAILED, (mid, message.status)
            assert message.last_error_class, f"{mid} failed without a reason"
            assert seen <= 1, f"{mid} failed but was sent {seen} times"
    # Media messages: what arrived is the file that was uploaded, byte for byte.
    arrived = {(str(m["to"]), str(m["caption"])): m["sha256"] for m in stack.sim.state.media_messages()}
    for mid, digest in producer.files.items():
        phone, text = producer.accepted[mid]
        if store.get(mid).status is MessageStatus.SENT:
            assert arrived[(phone.lstrip("+"), text)] == digest, f"{mid}: another file arrived"
    ours = {(p.lstrip("+"), t) for p, t in producer.accepted.values()}
    strangers = [k for k in counts if k not in ours]
    assert not strangers, f"the simulator got messages nobody accepted: {strangers[:3]}"
    assert sum(counts.values()) == len(counts), "a message was sent twice"
    # The daily cap (warm-up included) per session and day, and the recipient limit, by what the simulator received.
    settings = default_hub().settings
    accounts = {number: name for name, number in ACCOUNTS.items()}
    per_session = collections.Counter((accounts.get(m["from"], m["from"]), day(m["time"], settings.zone))
                                      for m in stack.sent())
    for (name, _), sent in per_session.items():
        cap = daily_cap(store.get_session(name), settings, datetime.now(UTC)).cap
        assert sent <= cap, f"{name} sent {sent} in a day, over its cap of {cap}"
    if settings.max_per_recipient_per_day:
        per_number = collections.Counter((m["to"], recipient_day_start(f"+{m['to']}", at(m["time"])))
                                         for m in stack.sent())
        assert max(per_number.values(), default=0) <= settings.max_per_recipient_per_day, per_number
    print(f"  sends per session and day: {sorted(per_session.values())}")
    print(f"  faults applied: {len(applied)}; producer retries: {producer.errors}; cancels won "
          f"{len(canceller.cancelled)}, refused {canceller.refused}")
    print(f"  accepted {len(producer.accepted)} ({len(producer.files)} with a file): {dict(statuses)}; simulator "
          f"received {sum(counts.values())} ({len(arrived)} files)")


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def day(seconds: float, zone: ZoneInfo) -> date:
    return at(seconds).astimezone(zone).date()


SHORT_SEED = 20261128  # make test replays one known sequence; --chaos-seed or the long form explore others


LONG_CLOCK_SKEW_S = -240.0  # the long form's page shows its times 4 minutes behind the workers' clock


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int | None:
    return request.config.getoption("--chaos-seed")


@pytest.fixture
def clock_skew_s(request: pytest.FixtureRequest) -> float | None:
    return request.config.getoption("--chaos-clock-skew-s")


@pytest.fixture
def chaos_store(store_backend: str, request: pytest.FixtureRequest) -> str | None:
    """The stack's store: None (a SQLite file of the stack's own) or a fresh database on the MongoDB server."""
    return request.getfixturevalue("mongo_store_url") if store_backend == "ferretdb" else None


@pytest.mark.timeout(900)
@pytest.mark.parametrize("store_backend", STORES, indirect=True)
def test_chaos_short(tmp_path: Path, seed: int | None, clock_skew_s: float | None, chaos_store: str | None) -> None:
    run_chaos(tmp_path, SHORT_SEED if seed is None else seed, messages=60, rounds=len(FAULTS),
              replies=Replies(stops=3, starts=1, ordinary=8, pause_s=(0.5, 4), wave_at=40, wave_wait_s=30),
              clock_skew_s=clock_skew_s or 0.0,
              store_url=chaos_store)


@pytest.mark.long
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("store_backend", STORES, indirect=True)
def test_chaos_long(tmp_path: Path, seed: int | None, clock_skew_s: float | None, chaos_store: str | None) -> None:
    run_chaos(tmp_path, random.SystemRandom().randrange(1, 10**6) if seed is None else seed, messages=400,
              rounds=40, replies=Replies(stops=6, starts=2, ordinary=40, pause_s=(1, 6), wave_at=300, wave_wait_s=90),
              clock_skew_s=LONG_CLOCK_SKEW_S if clock_skew_s is None else clock_skew_s, store_url=chaos_store)

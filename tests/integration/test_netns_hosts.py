"""Issue 23, part 4: the project's hosts really apart, each in its own network namespace, and cut from each other.

Four hosts on one bridge (tests/helpers/netns.py): infra (redis-server and FerretDB, on the infra host's address),
app (the API under gunicorn, and beat), and two worker hosts with one session each. The simulator, standing for
WhatsApp's servers, runs in the test's own namespace on the bridge's address, which every host reaches. A producer
enqueues through the app host's address with the API key, retrying with its Idempotency-Key until it gets a 2xx.

Two cuts, each longer than a lease (WAQ_LEASE_S is shortened for the test), silent and both ways:
1. Worker host w1 (session primary) from the infra host, right after its click on a message whose ack the simulator
   delays: the outcome is unknown to the store. While cut, /health names primary as not connected; the lease ends,
   beat recovers the message, which stays in doubt for primary (the lifecycle's doubt rule: only the session that
   clicked may settle it, and it waits for it within the reconnection window); the messages queued for primary move
   on to secondary. After the heal, primary reads its chat and records the message sent without a second click.
2. The app host from the infra host, while the producer keeps posting: the API cannot commit and says so (/health:
   the store unreachable), beat cannot reach the broker; after the heal every key ends as one message.
At the end every accepted message is sent exactly once by the simulator's own record: none lost, none twice.
"""

from __future__ import annotations

import collections
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.helpers import ferretdb
from tests.helpers.netns import NetnsUnavailable, Network
from tests.helpers.processes import Proc
from tests.helpers.stack import ACCOUNTS
from tests.helpers.waiting import wait_for
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import HistoryEvent, MessageStatus
from wa_queue.simulator.app import SimServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]  # the workers drive Chromium

KEY = "netns-admin-key-0123456789abcdef"
SESSIONS = {"w1": "primary", "w2": "secondary"}
REDIS_PORT, MONGO_PORT, API_PORT = 6379, 27017, 8000  # each host has its own ports: fixed ones cannot collide
LEASE_S = 8.0
CUT_S = 2.5 * LEASE_S  # longer than a lease, plus beat's recovery interval: the lease runs out while cut
RECONNECT_UNIT_S = 4.0  # reconnection window 15 units = 60 s: a message in doubt waits for its session past the cut
DOUBT_ACK_DELAY_S = 8.0  # the simulator acks the doubt message this late: its record_sent meets the cut
PHASE_MESSAGES = 14


@dataclass
class Producer:
    """Posts messages through the app host's API; a message counts once the API answered 2xx for its key."""

    api: str
    items: list[tuple[str, str, str | None]]  # phone, text, preferred session
    accepted: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)  # id -> item
    retries: int = 0
    refused: collections.Counter = field(default_factory=collections.Counter)  # status or error class -> n
    problem: str | None = None  # a 4xx: the thread stops, and the test fails on it


    def post(self, item: tuple[str, str, str | None], key: str) -> str:
        phone, text, session = item
        while True:
            try:
                response = requests.post(f"{self.api}/api/whatsapp/messages", timeout=5,
                                         json={"phone": phone, "text": text, "session": session},
                                         headers={"X-API-Key": KEY, "Idempotency-Key": key})
                if response.status_code in (200, 202):
                    mid = response.json()["id"]
                    self.accepted[mid] = item
                    return mid
                if response.status_code < 500:  # never a 4xx for a good request
                    self.problem = f"{response.status_code} for {key}: {response.text}"
                    raise RuntimeError(self.problem)
                self.refused[str(response.status_code)] += 1
            except requests.RequestException as exc:
                self.refused[type(exc).__name__] += 1
            self.retries += 1
            time.sleep(0.3)

    def run(self, pause_s: float = 0.4) -> None:
        for item in self.items:
            self.post(item, "netns-" + item[1].replace(" ", "-"))
            time.sleep(pause_s)

    def join(self, thread: threading.Thread, timeout_s: float) -> None:
        thread.join(timeout_s)
        assert self.problem is None, self.problem
        assert not thread.is_alive(), f"the producer never got its messages in: {len(self.accepted)} accepted"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


class Hosts:
    """The processes of each host, started inside its namespace, and the simulator on the bridge."""

    def __init__(self, net: Network, tmp: Path) -> None:
        self.net, self.tmp = net, tmp
        self.procs: dict[str, Proc] = {}
        infra = net.hosts["infra"].address
        self.store_url = f"mongodb://{infra}:{MONGO_PORT}/waq"
        # On the bridge this test made, reachable only from its own namespaces: it may listen off loopback.
        self.sim = SimServer(host=net.gateway, unsafe_listen=True).start()
        self.env = {
            "WAQ_STORE_URL": self.store_url, "WAQ_BROKER_URL": f"redis://{infra}:{REDIS_PORT}/0",
            "WAQ_SESSIONS": ",".join(SESSIONS.values()), "WAQ_TRANSPORT": "selenium", "WAQ_WHATSAPP_URL": self.sim.url,
            "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0", "WAQ_RETRY_DELAYS": "1s,1s,2s,2s,3s",
            "WAQ_LEASE_S": str(LEASE_S), "WAQ_DISPATCH_INTERVAL_S": "1", "WAQ_RECOVER_INTERVAL_S": "2",
            "WAQ_HEALTH_INTERVAL_S": "1", "WAQ_RECONNECT_UNIT_S": str(RECONNECT_UNIT_S), "WAQ_REDISPATCH_AFTER_S": "10",
            "WAQ_SEND_TIMEOUT_S": "15", "WAQ_BEAT_LOCK_TTL_S": "6", "WAQ_WARMUP_CAPS": "",
            "WAQ_API_KEYS": f"netns:admin:{KEY}",
        }

    @property
    def api(self) -> str:
        return f"http://{self.net.hosts['app'].address}:{API_PORT}"

    def start(self, name: str, host: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        data = self.tmp / host / "data"  # each host its own disk: Chrome profiles, beat's schedule file
        data.mkdir(parents=True, exist_ok=True)
        full_env = {**self.env, "WAQ_DATA_DIR": str(data)} if env is None else env
        self.procs[name] = Proc(self.net.hosts[host].argv(argv), full_env, self.tmp / f"{name}.log")
        return self.procs[name]

    def start_infra(self) -> None:
        infra = self.net.hosts["infra"]
        plain = {k: v for k, v in os.environ.items() if not k.startswith(("WAQ_", "FERRETDB_"))}
        redis_dir = self.tmp / "infra" / "redis"
        redis_dir.mkdir(parents=True)
        self.start("redis", "infra", [shutil.which("redis-server") or "redis-server", "--port", str(REDIS_PORT),
                                      "--bind", infra.address, "--protected-mode", "no", "--save", "",
                                      "--appendonly", "no", "--dir", str(redis_dir)], plain)
        mongo = ferretdb.command(self.tmp / "infra" / "ferretdb", f"{infra.address}:{MONGO_PORT}")
        self.start("ferretdb", "infra", mongo, plain)
        for port in (REDIS_PORT, MONGO_PORT):
            wait_for(lambda p=port: self.net.reachable("app", infra.address, p), 30, 0.2, f"infra port {port}")

    def start_app(self) -> None:
        self.start("beat", "app", [sys.executable, "-m", "wa_queue.cli", "beat"])
        self.start("api", "app", [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "8", "--bind",
                                  f"{self.net.hosts['app'].address}:{API_PORT}", "api.app:create_app()"])
        wait_for(self._api_up, 60, 0.3, "the API on the app host")

    def _api_up(self) -> bool:
        try:
            return requests.get(f"{self.api}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def start_worker(self, host: str) -> None:
        session = SESSIONS[host]
        before = {d["id"] for d in self.devices()}
        self.start(session, host, [sys.executable, "-m", "wa_queue.cli", "worker", "--session", session])
        # QR login through the control API: the worker's browser shows a QR; "the phone" scans it.
        wait_for(lambda: any(not d["linked"] and d["id"] not in before for d in self.devices()), 90, 0.3,
                 f"{session}'s QR")
        response = requests.post(f"{self.sim.url}/__sim__/sessions/{ACCOUNTS[session]}/scan", timeout=5)
        assert response.ok, response.text

    def devices(self) -> list[dict]:
        return requests.get(f"{self.sim.url}/__sim__/devices", timeout=5).json()

    def sent(self) -> list[dict]:
        return requests.get(f"{self.sim.url}/__sim__/sent", timeout=5).json()

    def health(self) -> dict | None:
        try:
            response = requests.get(f"{self.api}/api/whatsapp/health", headers={"X-API-Key": KEY}, timeout=8)
            return response.json() if response.ok else {"http": response.status_code}
        except requests.RequestException as exc:
            return {"error": type(exc).__name__}

    def stop(self) -> None:
        for name in ("primary", "secondary", "api", "beat", "ferretdb", "redis"):
            if name in self.procs:
                self.procs[name].stop(timeout=10)
        self.sim.stop()


@pytest.fixture
def network() -> Network:
    tag = os.getpid() % 10**7  # link names are at most 15 characters: wq<tag>h<n>p
    net = Network(tag)
    try:
        net.setup(["infra", "app", "w1", "w2"])
    except NetnsUnavailable as exc:
        pytest.skip(f"network-namespace hosts: {exc}")
    yield net
    net.remove()


@pytest.fixture
def hosts(network: Network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hosts:
    monkeypatch.delenv(ferretdb.MONGO_URL_VARIABLE, raising=False)  # the infra host runs its own FerretDB
    problem = ferretdb.go_problem()
    if problem:
        pytest.skip(problem)
    stack = Hosts(network, tmp_path)
    for key, value in {**stack.env, "WAQ_DATA_DIR": str(tmp_path / "test" / "data")}.items():
        monkeypatch.setenv(key, value)  # the test's own Hub reads the store on the infra host, as an operator would
    close_default_hub()
    try:
        yield stack
    finally:
        close_default_hub()
        stack.stop()


def _items(phase: str, count: int, sessions: tuple[str | None, ...]) -> list[tuple[str, str, str | None]]:
    return [(f"+1415555{7000 + n:04d}", f"{phase} {n} {os.getpid()}", sessions[n % len(sessions)])
            for n in range(count)]


def _status(mid: str) -> MessageStatus:
    return default_hub().store.get(mid).status


@dataclass
class Facts:
    """What the run saw, for the summary line and the assertions."""

    say: list[str] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)

    def line(self, text: str) -> None:
        self.say.append(text)
        print(text, flush=True)


def test_hosts_apart_cut_from_infra_lose_nothing_and_send_once(hosts: Hosts) -> None:
    facts = Facts()
    started = time.monotonic()
    hosts.start_infra()
    hosts.start_app()
    for host in SESSIONS:
        hosts.start_worker(host)
    store = default_hub().store
    wait_for(lambda: all(store.get_session(s).status == "connected" for s in SESSIONS.values()), 90, 0.3,
             "both sessions connected")
    facts.line(f"\nhosts up in {time.monotonic() - started:.0f}s: " + ", ".join(
        f"{h.name} {h.address}" for h in hosts.net.hosts.values()) + f"; simulator {hosts.sim.url}")

    first, doubt_id, clicked, sent_during, doubt_during = _cut_worker(hosts, facts)
    second = _cut_app(hosts, facts)

    accepted = {**first.accepted, **second.accepted}
    ids = list(accepted)
    wait_for(lambda: all(_status(m) in (MessageStatus.SENT, MessageStatus.FAILED) for m in ids), 150, 0.5,
             f"{len(ids)} messages to finish: {store.count_by_status()}")
    messages = {mid: store.get(mid) for mid in ids}
    sends = collections.Counter(m["text"] for m in hosts.sent())
    twice = {mid: sends[item[1]] for mid, item in accepted.items() if sends[item[1]] > 1}
    lost = [mid for mid, item in accepted.items() if sends[item[1]] == 0]
    failed = {mid: m.last_error_class for mid, m in messages.items() if m.status is not MessageStatus.SENT}
    by_session = collections.Counter(m.sent_by for m in messages.values())
    moved_on = [mid for mid, item in first.accepted.items()
                if item[2] == "primary" and mid != doubt_id and messages[mid].sent_by == "secondary"]
    primary_in_cut = [m for m in sent_during if m["from"] == ACCOUNTS["primary"]]
    doubt = messages[doubt_id]
    doubt_events = [(h.event.value if hasattr(h.event, "value") else h.event, h.session) for h in doubt.history]
    others_marked = [s for e, s in doubt_events if e == HistoryEvent.SENDING.value and s != "primary"]
    n = facts.numbers
    summary = (f"cut 1: w1 (primary) from infra for {n['cut1']:.1f}s (lease {LEASE_S:g}s), /health named primary "
               f"after {n['named']:.1f}s, {len(sent_during)} sent meanwhile ({len(primary_in_cut)} by primary), "
               f"{len(moved_on)} of primary's moved on to secondary; the doubt message {doubt.status.value} by "
               f"{doubt.sent_by} {n['settled']:.0f}s after the heal, {sends[clicked['text']]} click(s), marked by "
               f"others {others_marked}; cut 2: app from infra for {n['cut2']:.1f}s, {n['in_cut2']:.0f} accepted "
               f"meanwhile, producer retries {second.retries} {dict(second.refused)}; {len(ids)} accepted, sent by "
               f"{dict(by_session)}, lost {len(lost)}, twice {len(twice)}, not sent {len(failed)}; "
               f"{time.monotonic() - started:.0f}s in all")
    facts.line(summary)
    assert not lost and not twice and not failed, (summary, lost, twice, failed)
    stored = sum(store.count_by_status().values())
    assert stored == len(ids) == len({(m.phone, m.text) for m in messages.values()}) == 2 * PHASE_MESSAGES + 1, (
        summary, stored)  # one message per key, however often the producer posted it
    # The doubt rule: the lease ran out while cut (recovered), the message stayed in doubt for primary and was not
    # sent by the session that could reach the store; primary, back, settled it from its own chat, with no click.
    assert doubt.sent_by == "primary" and sends[clicked["text"]] == 1 and not others_marked, (summary, doubt_events)
    assert ("recovered", "primary") in doubt_events, (summary, doubt_events)
    assert doubt_during.doubt_session == "primary" and doubt_during.status not in (
        MessageStatus.SENT, MessageStatus.FAILED), (summary, doubt_during.status)
    assert not primary_in_cut, (summary, primary_in_cut)  # a session cut off from the store clicks nothing
    assert moved_on, summary  # the lifecycle: primary's queued messages went on to secondary, not waited for it
    assert second.retries and n["in_cut2"] == 0, summary  # no 2xx without the store; the keys got them in after


def _cut_worker(hosts: Hosts, facts: Facts) -> tuple[Producer, str, dict, list[dict], object]:
    """Cut 1: w1 (primary) from infra right after its click on a message whose ack comes late, while a producer
    posts; returns the producer, the doubt message's id and its click, what was sent while cut, and the doubt
    message as it stood at the heal."""
    net, store = hosts.net, default_hub().store
    doubt_phone = "+14155558999"
    hosts.sim.state.set_fault({"number": doubt_phone.lstrip("+"), "fault": "slow", "delay_s": DOUBT_ACK_DELAY_S,
                               "count": 1})
    producer = Producer(hosts.api, _items("before-w1-cut", PHASE_MESSAGES, ("primary", "secondary", None)))
    doubt_id = producer.post((doubt_phone, f"in doubt {os.getpid()}", "primary"), "netns-doubt")
    clicked = wait_for(lambda: next((m for m in hosts.sent() if m["text"].startswith("in doubt")), None), 60, 0.05,
                       "primary's click on the doubt message")
    net.cut("w1", "infra")
    cut_at = time.monotonic()
    facts.line(f"cut w1 (primary) <-> infra right after primary clicked {doubt_id} (ack {DOUBT_ACK_DELAY_S:g}s late)")
    producing = producer.start()
    named = wait_for(lambda: _names_down(hosts.health(), "primary"), CUT_S, 0.5, "/health to name primary")
    facts.numbers["named"] = time.monotonic() - cut_at
    while time.monotonic() - cut_at < CUT_S:
        time.sleep(0.5)
    doubt_during = store.get(doubt_id)
    sent_during = [m for m in hosts.sent() if m["time"] > clicked["time"]]
    net.heal("w1", "infra")
    healed_at = time.monotonic()
    facts.numbers["cut1"] = healed_at - cut_at
    facts.line(f"healed w1 <-> infra after {facts.numbers['cut1']:.1f}s; /health named primary after "
               f"{facts.numbers['named']:.1f}s: {named}; the doubt message then {doubt_during.status.value}, in doubt "
               f"for {doubt_during.doubt_session}")
    producer.join(producing, 120)
    wait_for(lambda: _status(doubt_id) is MessageStatus.SENT, 120, 0.5, f"{doubt_id} settled after the heal")
    facts.numbers["settled"] = time.monotonic() - healed_at
    return producer, doubt_id, clicked, sent_during, doubt_during


def _cut_app(hosts: Hosts, facts: Facts) -> Producer:
    """Cut 2: the app host (API and beat) from infra while the producer posts through the API."""
    net, store = hosts.net, default_hub().store
    wait_for(lambda: all(store.get_session(s).status == "connected" for s in SESSIONS.values())
             and not _names_down(hosts.health(), "primary"), 90, 0.5, "primary back in /health")
    producer = Producer(hosts.api, _items("around-app-cut", PHASE_MESSAGES, (None,)))
    producing = producer.start()
    wait_for(lambda: len(producer.accepted) >= PHASE_MESSAGES // 3, 60, 0.1, "the first of the second phase")
    net.cut("app", "infra")
    cut_at = time.monotonic()
    time.sleep(1)  # an answer already on its way at the cut (its commit done before) is no answer without the store
    before = len(producer.accepted)
    facts.line(f"cut app <-> infra with {before} of phase 2 accepted")
    app_health = wait_for(lambda: _store_down(hosts.health()), CUT_S, 0.5, "/health to say the store is down")
    while time.monotonic() - cut_at < CUT_S:
        time.sleep(0.5)
    facts.numbers["in_cut2"] = len(producer.accepted) - before
    net.heal("app", "infra")
    facts.numbers["cut2"] = time.monotonic() - cut_at
    facts.line(f"healed app <-> infra after {facts.numbers['cut2']:.1f}s; /health while cut: "
               f"{app_health.get('overall')} {app_health.get('reasons')}; accepted while cut "
               f"{facts.numbers['in_cut2']:.0f}")
    producer.join(producing, 150)
    return producer


def _names_down(health: dict | None, session: str) -> dict | None:
    """The /health answer when it names `session` as not connected."""
    view = (health or {}).get("sessions", {}).get(session)
    if view and not view["connected"] and any(session in reason for reason in health.get("reasons", [])):
        return {"overall": health["overall"], "reasons": health["reasons"]}
    return None


def _store_down(health: dict | None) -> dict | None:
    return health if health and health.get("checks", {}).get("store") == "down" else None

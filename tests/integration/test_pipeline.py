"""The pipeline with real parts: a redis-server on a free port, real `waq worker` and `waq beat` processes
(Celery), a real SQLite file, and the scripted fake sender. Each check reads the fake sender's log: every message
must have been sent exactly once. The crash tests (a worker SIGKILLed mid-send, the broker flushed) also run on a
MongoDB store (FerretDB, or WAQ_TEST_MONGO_URL's server), the 200 messages with --long."""

from __future__ import annotations

import collections
import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.helpers.stores import STORES, STORES_MONGO_LONG
from tests.helpers.waiting import wait_for
from wa_queue import operations
from wa_queue.devstack.ports import free_port
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus
from wa_queue.transport.fake import FakeControl, read_log

pytestmark = pytest.mark.timeout(240)


def _phones(n: int) -> list[str]:
    return [f"+1415555{i:04d}" for i in range(n)]


def _start_stack(procs, env: dict[str, str], sessions=("primary", "secondary"), beat: bool = True) -> dict:  # noqa: ANN001
    started = {name: procs(["worker", "--session", name], env, f"worker-{name}") for name in sessions}
    if beat:
        started["beat"] = procs(["beat"], env, "beat")
    # Workers report connected on start; wait so that routing sees them.
    wait_for(lambda: all(default_hub().store.get_session(n).status == "connected" for n in sessions), 60, 0.2,
             "session workers to connect")
    return started


def _wait_done(ids: list[str], timeout: float = 120) -> dict[str, int]:
    def done() -> bool:
        counts = default_hub().store.count_by_status()
        return counts["pending"] == 0 and counts["processing"] == 0 and counts["sent"] + counts["failed"] >= len(ids)

    wait_for(done, timeout, 0.25, f"{len(ids)} messages to finish: {default_hub().store.count_by_status()}")
    return default_hub().store.count_by_status()


def _sent_counts(env: dict[str, str]) -> collections.Counter:
    return collections.Counter(entry["ref"] for entry in read_log(Path(env["WAQ_DATA_DIR"]) / "fake-sent.jsonl"))


def _assert_exactly_once(env: dict[str, str], ids: list[str]) -> None:
    counts = _sent_counts(env)
    twice = {i: n for i, n in counts.items() if n > 1}
    missing = [i for i in ids if counts[i] == 0]
    assert not twice, f"sent more than once: {twice}"
    assert not missing, f"never sent: {len(missing)}"
    for mid in ids:
        assert default_hub().store.get(mid).status is MessageStatus.SENT


@pytest.mark.parametrize("store_backend", STORES_MONGO_LONG, indirect=True)
def test_200_messages_over_two_sessions_each_sent_exactly_once(waq_env, procs) -> None:  # noqa: ANN001
    _start_stack(procs, waq_env, beat=False)
    ids = operations.enqueue_many(default_hub(), [{"phone": p, "text": f"hello {p}"} for p in _phones(200)])
    _wait_done(ids)
    _assert_exactly_once(waq_env, ids)
    by_session = collections.Counter(default_hub().store.get(i).sent_by for i in ids)
    assert set(by_session) == {"primary", "secondary"}, by_session


def test_retry_schedule_is_observed_then_failure_notifies(waq_env, procs, redis_server) -> None:  # noqa: ANN001
    import base64
    from datetime import datetime, timedelta

    from wa_queue import names

    hook = _Webhook()
    waq_env["WAQ_NOTIFY_WEBHOOK_URL"] = hook.url
    waq_env["WAQ_OUTBOUND_ALLOW"] = "127.0.0.1"  # the webhook receiver is on loopback
    control = FakeControl(Path(waq_env["WAQ_DATA_DIR"]) / "fake-control.json")
    flaky, dead = _phones(2)
    control.set_number_fault(flaky, "transient", count=2)
    control.set_number_fault(dead, "transient")
    # Every send task in the broker, by (message id, attempts): the eta in its headers. A countdown task stays in
    # Redis until it ran: in its queue, then in kombu's unacked hash once a worker holds it (acks_late), so reading
    # both every 20 ms sees each one that waits a second or more.
    etas: dict[tuple[str, int], set[str | None]] = collections.defaultdict(set)
    broker, stop = redis_server.client(), threading.Event()
    queues = [names.priority_list(queue, priority) for queue in (names.DEFAULT_QUEUE, *(names.session_queue(s) for s in
                                                                ("primary", "secondary")))
              for priority in names.PRIORITY_STEPS]

    def watch() -> None:
        while not stop.is_set():
            envelopes = [json.loads(raw)[0] for raw in broker.hvals("unacked")]
            for queue in queues:
                envelopes += [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]
            for envelope in envelopes:
                if envelope["headers"].get("task") == names.TASK_SEND:
                    message_id, attempts = json.loads(base64.b64decode(envelope["body"]))[0]
                    etas[(message_id, attempts)].add(envelope["headers"].get("eta"))
            stop.wait(0.02)

    watcher = threading.Thread(target=watch, name="broker-watch", daemon=True)
    watcher.start()
    _start_stack(procs, waq_env)
    ok_id = operations.enqueue(default_hub(), flaky, "comes through on the third attempt")
    dead_id = operations.enqueue(default_hub(), dead, "never comes through")
    _wait_done([ok_id, dead_id], 120)
    stop.set()
    watcher.join(10)
    ok, failed = default_hub().store.get(ok_id), default_hub().store.get(dead_id)
    assert ok.status is MessageStatus.SENT and ok.attempts == 2
    assert failed.status is MessageStatus.FAILED and failed.attempts == 6
    retries = [h.at for h in failed.history if h.event == "retry"]
    claims = [h.at for h in failed.history if h.event == "claimed"]
    gaps = [(claims[i + 1] - retries[i]).total_seconds() for i in range(5)]
    for gap, delay in zip(gaps, (1, 1, 2, 2, 3)):
        assert gap >= delay - 0.05, gaps
    # The countdown reached the broker: the task of each retry carries an eta `delay` after the retry was recorded
    # (Celery adds the countdown to its own clock, read just after), and the next attempt was claimed at it or later.
    assert etas[(dead_id, 0)] <= {None}, etas  # the first publish has no countdown (if it was seen)
    for i, delay in enumerate((1, 1, 2, 2, 3)):
        published = {datetime.fromisoformat(eta) for eta in etas[(dead_id, i + 1)] if eta}
        assert published, f"retry {i + 1}: no task with an eta in the broker: {etas[(dead_id, i + 1)]}"
        assert any(retries[i] + timedelta(seconds=delay) <= eta <= claims[i + 1] + timedelta(seconds=0.05)
                   for eta in published), (i, retries[i], claims[i + 1], published)
    wait_for(lambda: hook.events, 20, what="the admin webhook")
    assert hook.events[0]["event"] == "message_failed" and hook.events[0]["details"]["message_id"] == dead_id
    hook.close()


def test_session_at_its_cap_hands_over(waq_env, procs) -> None:  # noqa: ANN001
    waq_env["WAQ_MAX_DAILY_PER_SESSION"] = "5"
    _start_stack(procs, waq_env, beat=False)
    ids = [operations.enqueue(default_hub(), p, "capped", session="primary") for p in _phones(10)]
    _wait_done(ids)
    _assert_exactly_once(waq_env, ids)
    assert collections.Counter(default_hub().store.get(i).sent_by for i in ids) == {"primary": 5, "secondary": 5}


def test_disconnected_session_hands_its_messages_over(waq_env, procs) -> None:  # noqa: ANN001
    _start_stack(procs, waq_env, beat=True)
    FakeControl(Path(waq_env["WAQ_DATA_DIR"]) / "fake-control.json").set_session_state("primary",
                                                                                       "phone_disconnected")
    ids = [operations.enqueue(default_hub(), p, "to primary", session="primary") for p in _phones(20)]
    _wait_done(ids, 90)
    _assert_exactly_once(waq_env, ids)
    assert {default_hub().store.get(i).sent_by for i in ids} == {"secondary"}


@pytest.mark.parametrize("store_backend", STORES, indirect=True)
def test_sigkilled_worker_holding_leases_loses_nothing(waq_env, procs) -> None:  # noqa: ANN001
    Path(waq_env["WAQ_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    # Slow sends, so that the kill lands while a message is claimed (most of each task is the send).
    control = FakeControl(Path(waq_env["WAQ_DATA_DIR"]) / "fake-control.json")
    control.write({"send_delay_s": 0.2})
    stack = _start_stack(procs, waq_env, sessions=("primary",), beat=True)
    ids = operations.enqueue_many(default_hub(), [{"phone": p, "text": "survive a crash"} for p in _phones(60)])
    wait_for(lambda: default_hub().store.count_by_status()["sent"] >= 10, 60, what="some sends")
    # The next send holds its lease far longer than the kill takes to land, on however loaded a machine: a kill
    # that fell between two messages would test nothing.
    control.write({"send_delay_s": 60})
    time.sleep(1)
    wait_for(lambda: default_hub().store.count_by_status()["processing"] >= 1, 30, 0.005, what="a lease in hand")
    stack["primary"].kill(signal.SIGKILL)
    stack["primary"].proc.wait(10)
    held = [i for i in ids if default_hub().store.get(i).status is MessageStatus.PROCESSING]
    assert held and default_hub().store.count_by_status()["sent"] < len(ids)
    control.write({"send_delay_s": 0.2})
    procs(["worker", "--session", "primary"], waq_env, "worker-primary-2")
    _wait_done(ids, 150)
    _assert_exactly_once(waq_env, ids)
    assert any(h.event == "recovered" for h in default_hub().store.get(held[0]).history)


@pytest.mark.parametrize("store_backend", STORES, indirect=True)
def test_broker_flushed_mid_run_loses_nothing(waq_env, procs, redis_server, store_backend) -> None:  # noqa: ANN001
    Path(waq_env["WAQ_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    FakeControl(Path(waq_env["WAQ_DATA_DIR"]) / "fake-control.json").write({"send_delay_s": 0.03})
    _start_stack(procs, waq_env)
    # FerretDB is several times slower than SQLite here (BENCHMARKS.md): fewer messages, the flush still mid-run.
    total = 150 if store_backend == "sqlite" else 60
    ids = operations.enqueue_many(default_hub(), [{"phone": p, "text": "survive a flush"} for p in _phones(total)])
    wait_for(lambda: default_hub().store.count_by_status()["sent"] >= 15, 60, what="some sends")
    redis_server.client().flushall()
    assert default_hub().store.count_by_status()["sent"] < len(ids)
    _wait_done(ids, 150)
    _assert_exactly_once(waq_env, ids)


class _Webhook:
    """A local HTTP server that records the admin notifications it receives."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        events = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                events.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = HTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()




def test_sigterm_finishes_the_message_in_hand_and_exits(waq_env, procs) -> None:  # noqa: ANN001
    Path(waq_env["WAQ_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    FakeControl(Path(waq_env["WAQ_DATA_DIR"]) / "fake-control.json").write({"send_delay_s": 1.5})
    stack = _start_stack(procs, waq_env, sessions=("primary",), beat=False)
    ids = operations.enqueue_many(default_hub(), [{"phone": p, "text": "graceful"} for p in _phones(5)])
    wait_for(lambda: default_hub().store.count_by_status()["processing"] == 1, 30, 0.02, what="a message in hand")
    in_hand = next(i for i in ids if default_hub().store.get(i).status is MessageStatus.PROCESSING)
    stack["primary"].proc.send_signal(signal.SIGTERM)  # to the main process, as docker stop and honcho do
    stack["primary"].proc.wait(60)
    assert default_hub().store.get(in_hand).status is MessageStatus.SENT  # finished, not abandoned
    counts = default_hub().store.count_by_status()
    assert counts["processing"] == 0 and counts["sent"] < len(ids)  # and it took no new message
    assert _sent_counts(waq_env)[in_hand] == 1

"""Issue 26's end-to-end runs: real `waq worker` and `waq beat` processes (the fake sender), a real redis-server and
store. Priorities, a scheduled send and an expiry meet one paced backlog; cancels race the claims of two workers on
both stores. The fake sender's log, written by the worker processes, is what was sent."""

from __future__ import annotations

import collections
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers.receiver import SECRET, Receiver
from tests.helpers.stores import STORES_MONGO_LONG
from tests.helpers.waiting import wait_for
from wa_queue import operations
from wa_queue.errors import NotCancellable
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import MessageStatus, utcnow
from wa_queue.transport.fake import FakeControl, read_log

pytestmark = pytest.mark.timeout(240)
PHONE = "+14155550123"
BACKLOG = 200


def _settings(waq_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    waq_env.update(values)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    close_default_hub()


def _sent_at(entry: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(entry["at"]))


def test_high_goes_next_a_scheduled_one_not_before_its_time_and_an_expired_one_never(  # noqa: ANN001
        waq_env, procs, monkeypatch, tmp_path: Path) -> None:
    _settings(waq_env, monkeypatch, WAQ_SESSIONS="primary", WAQ_MIN_DELAY_S="0.5", WAQ_MAX_DELAY_S="1",
              WAQ_CALLBACK_SECRET=SECRET, WAQ_OUTBOUND_ALLOW="127.0.0.1")
    hub, log_path = default_hub(), Path(waq_env["WAQ_DATA_DIR"]) / "fake-sent.jsonl"
    with Receiver([200]) as receiver:
        procs(["worker", "--session", "primary"], waq_env, "worker")
        procs(["beat"], waq_env, "beat")
        procs(["callbacks"], waq_env, "callbacks")
        wait_for(lambda: hub.store.get_session("primary").status == "connected", 60, 0.2, "the worker connected")
        backlog = operations.enqueue_many(hub, [{"phone": PHONE, "text": f"campaign {i}"} for i in range(BACKLOG)])
        wait_for(lambda: len(read_log(log_path)) >= 3, 60, 0.05, "the backlog started")

        due = utcnow() + timedelta(seconds=10)
        scheduled = operations.enqueue(hub, PHONE, "at ten", send_at=due, priority="high")
        doomed = operations.enqueue(hub, PHONE, "code 0000", ttl_s=3, callback_url=receiver.url)
        before = len(read_log(log_path))
        high = operations.enqueue(hub, PHONE, "code 1234", priority="high")
        published = hub.store.get(high).dispatched_at
        wait_for(lambda: hub.store.get(high).status is MessageStatus.SENT, 30, 0.05, "the high message sent")
        wait_for(lambda: hub.store.get(scheduled).status is MessageStatus.SENT, 60, 0.1, "the scheduled one sent")
        wait_for(lambda: hub.store.get(doomed).status is MessageStatus.EXPIRED, 30, 0.1, "the expiry")
        wait_for(lambda: len(receiver.requests) >= 1, 30, 0.1, "the expiry's callback")

    log = read_log(log_path)
    refs = [entry["ref"] for entry in log]
    assert len(refs) == len(set(refs)), "a message was sent twice"
    # The high message is the next one sent. The only send allowed before it is the one whose click was under way
    # when it was published (marked before, or a few milliseconds after: past its last look at the queue). The
    # message a worker holds in its pacing pause gives its place up; kept, it would be marked up to a pause later.
    ahead = refs[before:refs.index(high)]
    assert len(ahead) <= 1, ahead
    for ref in ahead:
        marked = next(e.at for e in hub.store.get(ref).history if e.event == "sending")
        assert published is not None and marked < published + timedelta(seconds=0.25), (ref, marked, published)
    # Within one priority, first in, first out (a message that gave its place up went back to the front).
    normals = [ref for ref in refs if ref in set(backlog)]
    assert normals == [ref for ref in backlog if ref in set(normals)]
    # Never before its time; an expired message never clicked, its callback said so.
    assert _sent_at(log[refs.index(scheduled)]) >= due
    assert doomed not in refs
    payload = json.loads(receiver.requests[0][1])
    assert (payload["id"], payload["event"], payload["status"]) == (doomed, "expired", "expired")
    assert hub.store.get(doomed).history[-1].event == "expired"
    print(f"sent {len(refs)}; before the high one after its enqueue: {len(ahead)}; scheduled sent "
          f"{(_sent_at(log[refs.index(scheduled)]) - due).total_seconds():.2f} s after its time")


@pytest.mark.parametrize("store_backend", STORES_MONGO_LONG, indirect=True)
def test_cancels_raced_against_two_workers_claims_end_sent_or_cancelled(waq_env, procs, monkeypatch,  # noqa: ANN001
                                                                        store_backend) -> None:
    count = 500
    _settings(waq_env, monkeypatch)
    hub, data = default_hub(), Path(waq_env["WAQ_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    FakeControl(data / "fake-control.json").write({"send_delay_s": 0.002})
    for name in ("primary", "secondary"):
        procs(["worker", "--session", name], waq_env, f"worker-{name}")
    procs(["beat"], waq_env, "beat")
    wait_for(lambda: all(hub.store.get_session(n).status == "connected" for n in ("primary", "secondary")), 60, 0.2,
             "the workers connected")
    ids = operations.enqueue_many(hub, [{"phone": PHONE, "text": f"reminder {i}"} for i in range(count)])
    answers: dict[str, str] = {}
    lock = threading.Lock()
    # In a random order and spread over the workers' run: a cancel meets its message before, at or after its claim.
    order = random.Random(26).sample(ids, len(ids))

    def cancel(message_id: str) -> None:
        time.sleep(0.01)
        try:
            answer = operations.cancel(hub, message_id, actor="race").status.value
        except NotCancellable as exc:
            answer = f"409 {exc.status}"
        with lock:
            answers[message_id] = answer

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(cancel, order))

    def settled() -> bool:
        counts = hub.store.count_by_status()
        return counts["sent"] + counts["cancelled"] == count

    wait_for(settled, 180, 0.25, f"every message sent or cancelled: {hub.store.count_by_status()}")
    sends = collections.Counter(entry["ref"] for entry in read_log(data / "fake-sent.jsonl"))
    twice = {ref: n for ref, n in sends.items() if n > 1}
    cancelled = [i for i in ids if hub.store.get(i).status is MessageStatus.CANCELLED]
    clicked_cancelled = [i for i in cancelled if i in sends]
    sent_ok = [i for i in ids if hub.store.get(i).status is MessageStatus.SENT]
    print(f"{store_backend}: cancelled {len(cancelled)}, sent {len(sent_ok)}; answers "
          f"{collections.Counter(answers.values())}")
    assert not twice and not clicked_cancelled, (twice, clicked_cancelled)
    assert all(answers[i] == "cancelled" for i in cancelled)
    assert all(answers[i].startswith("409") and sends[i] == 1 for i in sent_ok)
    assert cancelled and sent_ok  # the race had both outcomes, so it raced

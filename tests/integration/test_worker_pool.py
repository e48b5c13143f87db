"""`waq worker`'s Celery pool (WAQ_WORKER_POOL; threads by default): one Python process per session that keeps what
the prefork child gave. While a send is in hand the worker answers Flower's ping and inspect (its main thread is
free); SIGTERM finishes and acknowledges the send in hand, takes no new message, and stops. Real redis-server, real
`waq worker` processes, the scripted fake sender (so no Chrome is among the worker's processes)."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.helpers.waiting import wait_for
from wa_queue import operations
from wa_queue import procs as proc_tree
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus
from wa_queue.settings import Settings
from wa_queue.transport.fake import FakeControl, read_log

pytestmark = pytest.mark.timeout(120)


def _tasks_in_broker(client, message_id: str) -> list[str]:  # noqa: ANN001
    """Where the broker still holds a task of message_id: any queue (list) or kombu's unacked hash."""
    found = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"list" and any(message_id.encode() in item for item in client.lrange(key, 0, -1)):
            found.append(key.decode())
        elif kind == b"hash" and any(message_id.encode() in value for value in client.hvals(key)):
            found.append(key.decode())
    return found


def test_default_pool_is_one_process_answering_flower_and_finishing_its_send_on_sigterm(
        waq_env, procs, redis_server) -> None:  # noqa: ANN001
    assert Settings.from_env(waq_env).worker_pool == "threads"
    data = Path(waq_env["WAQ_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    FakeControl(data / "fake-control.json").write({"send_delay_s": 4})
    worker = procs(["worker", "--session", "primary"], waq_env, "worker-primary")
    wait_for(lambda: default_hub().store.get_session("primary").status == "connected", 60, 0.2, "the worker")
    assert proc_tree.descendants(worker.proc.pid) == [], "a pool child: not one process"
    ids = operations.enqueue_many(default_hub(), [{"phone": f"+1415555700{i}", "text": "in hand"} for i in range(3)])
    wait_for(lambda: default_hub().store.count_by_status()["processing"] == 1, 30, 0.02, "a message in hand")
    in_hand = next(i for i in ids if default_hub().store.get(i).status is MessageStatus.PROCESSING)

    # What Flower asks (its worker list runs these): answered by the worker while its only task is busy sending.
    name = f"primary@{socket.gethostname()}"
    control = default_hub().celery.control
    assert control.ping(destination=[name], timeout=2.0), "no ping reply while a send is in hand"
    active = control.inspect(destination=[name], timeout=2.0).active() or {}
    assert [t["args"][0] for t in active.get(name, [])] == [in_hand], active
    assert default_hub().store.get(in_hand).status is MessageStatus.PROCESSING  # all that while, still in hand

    worker.proc.send_signal(signal.SIGTERM)  # the main process, as docker stop, honcho and the launcher do
    assert worker.proc.wait(60) == 0
    assert default_hub().store.get(in_hand).status is MessageStatus.SENT  # finished, not abandoned
    assert [e["ref"] for e in read_log(data / "fake-sent.jsonl")] == [in_hand]  # and took no new message
    # Acknowledged before the process ended: the broker would otherwise deliver it again at the next start.
    assert _tasks_in_broker(redis_server.client(), in_hand) == []
    assert all(_tasks_in_broker(redis_server.client(), i) for i in ids if i != in_hand)  # the others wait

"""Long form: a hung Chrome inside a real `waq worker` on the default pool (threads, one process) is killed with its
whole tree by the sender's own WebDriver command time-out, not by a pool child dying (no Celery time limit is set);
the worker process lives on, starts a new Chrome on the same profile, and sends the message. Real Chromium, the
simulator, redis-server and SQLite."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.helpers.stack import Stack
from wa_queue import operations, procs
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus

pytestmark = [pytest.mark.long, pytest.mark.browser, pytest.mark.timeout(300)]


def test_a_hung_chrome_is_killed_with_its_tree_and_the_worker_sends(tmp_path: Path, redis_server: RedisServer) -> None:
    redis_server.client().flushall()
    # WAQ_SEND_TIMEOUT_S 10: a WebDriver command times out after 40 s (the send time-out plus 30 s).
    stack = Stack(tmp_path, redis_server, sessions=("primary",), extra_env={"WAQ_SEND_TIMEOUT_S": "10"})
    try:
        stack.start_beat()  # its health check notices the scanned QR
        stack.start_worker("primary")
        stack.procs["beat"].stop()  # no health check from here on: the send is what meets the hung browser
        worker = stack.procs["primary"].proc
        assert [p for p in procs.descendants(worker.pid) if "chrom" not in procs.cmdline(p)] == []  # one process
        hung = procs.pids_with_arg(f"--user-data-dir={tmp_path / 'data' / 'profiles' / 'primary'}")
        assert hung
        for pid in hung:
            os.kill(pid, signal.SIGSTOP)  # alive, silent: every command now waits for its time-out
        mid = operations.enqueue(default_hub(), "+14155558001", "after the hang")
        stack.wait_done([mid], 150)
        message = default_hub().store.get(mid)
        assert message.status is MessageStatus.SENT, message.history
        events = [(h.event.value, h.error_class, h.error_text) for h in message.history]
        # The claim that met the hung browser gave the message back (the session was down), the next one sent it.
        assert [e for e, _, _ in events if e in ("released", "retry", "sent")][0] in ("released", "retry"), events
        assert not [p for p in hung if procs.alive(p)]  # the hung tree was killed, every process of it
        assert worker.poll() is None  # by the worker process itself, which lives on
        assert stack.sent_counts()[("14155558001", "after the hang")] == 1
    finally:
        leftover = stack.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"

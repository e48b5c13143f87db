"""End to end through real parts: the WhatsApp Web simulator, real Chromium driven by Selenium inside real
`waq worker` processes (Celery), a redis-server and a SQLite file. What the simulated servers accepted
(/__sim__/sent) must show every message exactly once."""

from __future__ import annotations

import collections
import subprocess

import pytest

from tests.helpers.stack import ACCOUNTS, Stack
from tests.helpers.waiting import wait_for
from tests.integration.test_pipeline import _Webhook
from wa_queue import operations
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]  # the workers drive Chromium

@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer):  # noqa: ANN201
    redis_server.client().flushall()
    hook = _Webhook()
    # The webhook receiver is on loopback: the outbound rule lets the admin webhook reach it only when allowed.
    env = {"WAQ_NOTIFY_WEBHOOK_URL": hook.url, "WAQ_OUTBOUND_ALLOW": "127.0.0.1"}
    stack = Stack(tmp_path_factory.mktemp("e2e"), redis_server, extra_env=env)
    stack.hook = hook
    try:
        stack.start_beat()  # its health checks are what notice a scanned QR
        stack.start_worker("primary")
        stack.start_worker("secondary")
        yield stack
    finally:
        leftover = stack.stop()
        hook.close()
    assert not leftover, f"Chrome outlived its worker: {leftover}"


def test_two_sessions_send_thirty_messages_exactly_once(stack: Stack) -> None:
    items = [(f"+1415555{2000 + i:04d}", f"e2e message {i} \U0001f600\nsecond line") for i in range(30)]
    ids = operations.enqueue_many(default_hub(), [{"phone": p, "text": t} for p, t in items])
    stack.wait_done(ids)
    stack.assert_exactly_once(items)
    senders = collections.Counter(default_hub().store.get(i).sent_by for i in ids)
    assert set(senders) == {"primary", "secondary"}, senders
    assert all(default_hub().store.get(i).status is MessageStatus.SENT for i in ids)


def test_unregistered_number_fails_without_retries(stack: Stack) -> None:
    stack.fault(number="14155553001", fault="unregistered")
    mid = operations.enqueue(default_hub(), "+14155553001", "nobody home")
    stack.wait_done([mid], 60)
    message = default_hub().store.get(mid)
    assert message.status is MessageStatus.FAILED and message.last_error_class == "InvalidNumber"
    assert message.attempts <= 1 and not [h for h in message.history if h.event == "retry"]


def test_transient_fault_is_retried(stack: Stack) -> None:
    stack.fault(number="14155553002", fault="drop_before_click", count=1)
    mid = operations.enqueue(default_hub(), "+14155553002", "second time lucky")
    stack.wait_done([mid], 90)
    message = default_hub().store.get(mid)
    assert message.status is MessageStatus.SENT and message.attempts >= 1
    stack.assert_exactly_once([("+14155553002", "second time lucky")])


def test_chrome_killed_mid_send_still_sends_exactly_once(stack: Stack) -> None:
    # The simulated server holds the send for a while, so Chrome dies with the message in flight.
    stack.fault(number="14155553003", fault="slow", delay_s=4, count=1)
    mid = operations.enqueue(default_hub(), "+14155553003", "through a browser crash", session="primary")
    wait_for(lambda: default_hub().store.get(mid).sending_at is not None, 60, 0.05, "the send to start")
    profile = str(stack.tmp / "data" / "profiles" / "primary")
    subprocess.run(["pkill", "-KILL", "-f", f"user-data-dir={profile}"], check=False)
    stack.wait_done([mid], 120)
    message = default_hub().store.get(mid)
    story = "\n".join(f"{h.at} {h.event} {h.session} {h.error_class} {h.error_text}" for h in message.history)
    assert message.status is MessageStatus.SENT, story
    stack.assert_exactly_once([("+14155553003", "through a browser crash")])


def test_disconnected_phone_hands_messages_over_and_reconnects_with_back_off(stack: Stack) -> None:
    stack.fault(session=ACCOUNTS["primary"], fault="phone_disconnected")
    wait_for(lambda: stack.session("primary").status == "phone_disconnected", 30, 0.2, "primary to notice")
    items = [(f"+1415555{4000 + i:04d}", f"while primary is down {i}") for i in range(6)]
    ids = [operations.enqueue(default_hub(), p, t, session="primary") for p, t in items]
    stack.wait_done(ids, 120)
    stack.assert_exactly_once(items)
    assert {default_hub().store.get(i).sent_by for i in ids} == {"secondary"}
    wait_for(lambda: stack.session("primary").reconnect_attempts >= 2, 30, 0.2, "reconnect attempts")
    stack.fault(session=ACCOUNTS["primary"], fault=None)
    wait_for(lambda: stack.session("primary").status == "connected", 60, 0.2, "primary back")
    assert stack.session("primary").reconnect_attempts == 0


def test_logged_out_session_needs_an_operator_after_five_tries(stack: Stack) -> None:
    stack.fault(session=ACCOUNTS["secondary"], fault="logged_out")
    wait_for(lambda: stack.session("secondary").needs_operator, 120, 0.5, "secondary to need an operator")
    record = stack.session("secondary")
    assert record.reconnect_attempts == 5 and record.status == "needs_operator"
    wait_for(lambda: any(e["event"] == "session_needs_operator" for e in stack.hook.events), 30, 0.2,
             "the admin notification")
    # Its work goes to the session that is still connected.
    mid = operations.enqueue(default_hub(), "+14155555001", "after the logout", session="secondary")
    stack.wait_done([mid], 60)
    assert default_hub().store.get(mid).sent_by == "primary"



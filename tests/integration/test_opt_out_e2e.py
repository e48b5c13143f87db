"""A STOP while 20 messages to that number are queued, end to end: a real `waq worker` and `waq beat` driving Chromium
on the simulator (2026-11), paced, reading replies in its pauses. The contact answers STOP after the first sends:
none of the queued messages is clicked after the STOP is recorded, each ends cancelled naming the opt-out, a new
enqueue is refused; START lets the next one through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from tests.helpers.stack import ACCOUNTS, Stack
from tests.helpers.waiting import wait_for
from wa_queue import errors, operations
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]  # the workers drive Chromium

PHONE = "+14155558301"


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Stack]:
    redis_server.client().flushall()
    # Paced (a 4 s pause, one read of 3 s fits in it) so that the 20 are still queued when the STOP comes.
    stack = Stack(tmp_path_factory.mktemp("opt-out-e2e"), redis_server, sessions=("primary",),
                  extra_env={"WAQ_MIN_DELAY_S": "4", "WAQ_MAX_DELAY_S": "4", "WAQ_CHAT_SETTLE_S": "0.5",
                             "WAQ_HEALTH_INTERVAL_S": "5"})
    try:
        stack.start_beat()
        stack.start_worker("primary")
        yield stack
    finally:
        leftover = stack.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"


def test_a_stop_with_twenty_queued_stops_every_click(stack: Stack) -> None:
    hub = default_hub()
    ids = [operations.enqueue(hub, PHONE, f"Reminder {i}: your appointment") for i in range(22)]
    wait_for(lambda: len(stack.sim.state.sent(to=PHONE.lstrip("+"))) >= 2, 120, 0.2, "the first two sends")
    stack.sim.state.receive(ACCOUNTS["primary"], PHONE.lstrip("+"), "STOP")
    wait_for(lambda: hub.store.get_suppression(PHONE) is not None, 120, 0.2, "the STOP to be recorded")
    stack.wait_done(ids, 300)
    since = hub.store.get_suppression(PHONE).since
    clicked = [datetime.fromtimestamp(m["time"], tz=timezone.utc) for m in stack.sim.state.sent(to=PHONE.lstrip("+"))]
    assert all(at <= since for at in clicked), "a message was clicked after the STOP was recorded"
    messages = [hub.store.get(i) for i in ids]
    sent = [m for m in messages if m.status is MessageStatus.SENT]
    cancelled = [m for m in messages if m.status is MessageStatus.CANCELLED]
    assert len(sent) == len(clicked) and len(sent) + len(cancelled) == len(ids) and len(cancelled) >= 10
    assert all(m.last_error_class == "OptedOut" and "suppression list" in m.last_error_text for m in cancelled)
    [stop] = [r for r in hub.store.list_inbound(phone=PHONE)[0] if r.text == "STOP"]
    assert stop.opt.value == "out" and stop.reply_to in {m.id for m in sent}
    with pytest.raises(errors.OptedOut):
        operations.enqueue(hub, PHONE, "one more")
    stack.sim.state.receive(ACCOUNTS["primary"], PHONE.lstrip("+"), "START")
    wait_for(lambda: hub.store.get_suppression(PHONE) is None, 120, 0.2, "the START to be recorded")
    after = operations.enqueue(hub, PHONE, "Welcome back")
    stack.wait_done([after], 120)
    assert hub.store.get(after).status is MessageStatus.SENT

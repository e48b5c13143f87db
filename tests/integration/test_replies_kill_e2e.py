"""A SIGKILL of the worker during a read of replies, end to end: a real `waq worker` and `waq beat`
driving Chromium on the simulator, whose chats show their rows 4 s after they open. The worker is killed after it
clicked an unread chat (the page dropped the badge) and before it recorded the replies there; the next worker reads
the chat its store noted and records every reply, none twice. The control: the replies of that chat are unrecorded
and the chat shows no badge when the kill lands, so without the note they would be lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.stack import ACCOUNTS, Stack
from tests.helpers.waiting import wait_for
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import default_hub

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]  # the workers drive Chromium

ACCOUNT = ACCOUNTS["primary"]
CONTACTS = {"14155558401": ["STOP", "please stop"], "14155558402": ["thanks"], "14155558403": ["who is this?"]}


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Stack]:
    redis_server.client().flushall()
    stack = Stack(tmp_path_factory.mktemp("replies-kill"), redis_server, sessions=("primary",),
                  extra_env={"WAQ_CHAT_SETTLE_S": "0.5", "WAQ_HEALTH_INTERVAL_S": "1"})
    stack.sim.state.set_config({"history_delay_ms": 4000})  # the window: the badge gone, the rows not yet shown
    try:
        stack.start_beat()
        stack.start_worker("primary")
        yield stack
    finally:
        leftover = stack.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"


def recorded(hub) -> list[tuple[str, str | None]]:  # noqa: ANN001
    rows, _ = hub.store.list_inbound(session="primary", limit=1000)
    return sorted((r.text, r.phone) for r in rows)


def test_a_kill_between_opening_a_chat_and_recording_its_replies_loses_none(stack: Stack) -> None:
    hub = default_hub()
    for digits, texts in CONTACTS.items():
        for text in texts:
            stack.sim.state.receive(ACCOUNT, digits, text)
    posted = sorted((m["text"], "+" + m["from"]) for m in stack.sim.state.received(ACCOUNT))
    assert len(posted) == 4

    def opening() -> str | None:
        notes = hub.store.chat_notes("primary")
        if not notes or notes[-1].chat is None or not notes[-1].unread:
            return None
        digits = next((d for d in CONTACTS if stack.sim.state.unread.get((ACCOUNT, d), 0) == 0
                       and not any(r[1] == "+" + d for r in recorded(hub))), None)
        return digits  # a chat clicked (no badge), its replies not recorded: inside the window

    victim = wait_for(opening, 60, 0.05, "the worker inside a chat's read")
    stack.kill("primary")  # its Chrome lives on until the next worker kills what holds the profile
    assert not any(r[1] == "+" + victim for r in recorded(hub)), "the kill landed after the record: no window"
    assert stack.sim.state.unread.get((ACCOUNT, victim), 0) == 0  # no badge left to find the replies by

    stack.restart_worker("primary")
    wait_for(lambda: len(recorded(hub)) >= len(posted), 120, 0.2, "every reply recorded")
    wait_for(lambda: hub.store.get_suppression("+14155558401") is not None, 30, 0.2, "the STOP applied")
    assert recorded(hub) == posted  # each once: none lost, none twice (the same rows read again are one)
    rows, total = hub.store.list_inbound(session="primary", limit=1000)
    assert total == len(posted) and len({r.wa_id for r in rows}) == len(posted)

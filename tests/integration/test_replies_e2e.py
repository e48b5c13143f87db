"""Replies during a run of sends, end to end on the markup profiles: a real `waq worker` (paced, reading replies in
its pauses and before each send), `waq beat` and `waq callbacks`, Chromium on the simulator. While the messages go
out, contacts answer: recipients (some right after their message, while the next send is under way), numbers never
written to, and a contact who hides the number (an @lid id, shown by name). Every reply must be recorded exactly once,
as posted, and reach WAQ_INBOUND_WEBHOOK_URL exactly once as a `message.received` event whose signature verifies;
every message is sent exactly once.

make test runs the 2026-11 form with 20 messages; `make test-long` runs every form that a driver reads with 60 (the
unknown form's rows are never guessed at: tests/browser/test_profiles.py)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers.receiver import SECRET, Receiver
from tests.helpers.stack import ACCOUNTS, Stack
from tests.helpers.waiting import wait_for
from wa_queue import operations
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import default_hub
from wa_queue.simulator.profiles import MARKUPS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]  # the workers drive Chromium

READ_FORMS = [m for m in MARKUPS if m != "unknown"]
SHORT = ("2026-11", 20)
TEXTS = ("thanks", "ok 👍", "wrong number", "Can I move it to 11:00?\nThanks", "received", "who is this?")


@dataclass(frozen=True)
class Posted:
    phone: str | None  # E.164; None for the contact who hides the number
    text: str
    wa_id: str  # the simulator's id of the incoming row


def row_key(wa_id: str) -> str:
    """A row's key in every profile: a packed id's last part (false_<chat>@c.us_<HEX>) or the bare <HEX>."""
    return wa_id.rsplit("_", 1)[-1]


class Contacts:
    """Posts replies to the session's account while the sends run: about one a second, to a number just sent to
    (its chat is the open one, or the next send's is loading), to one sent to earlier, to a stranger, and once from
    an @lid contact."""

    def __init__(self, stack: Stack, rng: random.Random, count: int) -> None:
        self.stack, self.rng, self.count = stack, rng, count
        self.posted: list[Posted] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and len(self.posted) < self.count:
            sent = self.stack.sim.state.sent()
            if sent:
                roll = self.rng.random()
                if roll < 0.4:
                    phone = f"+{sent[-1]['to']}"  # the latest: open in the page, or the one just left
                elif roll < 0.75:
                    phone = f"+{self.rng.choice(sent)['to']}"
                else:
                    phone = f"+1555888{len(self.posted):04d}"  # never written to: a new chat in the list
                self.post(phone, self.rng.choice(TEXTS))
                if len(self.posted) == self.count // 2:
                    self.post(None, "hi, it's me")
            time.sleep(self.rng.uniform(0.3, 1.5))

    def post(self, phone: str | None, text: str) -> None:
        account = ACCOUNTS["primary"]
        if phone is None:
            message = self.stack.sim.state.receive(account, None, text, lid="88877766655544", name="Ana (username)")
        else:
            message = self.stack.sim.state.receive(account, phone.lstrip("+"), text)
        self.posted.append(Posted(phone, text, str(message.public()["id"])))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver([204]) as hook:
        yield hook


def make_stack(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer, markup: str, hook: Receiver) -> Stack:
    redis.client().flushall()
    # Paced (a 2 s pause, which one read of 1.5 s fits in) so that the worker reads in its pauses, as in production.
    stack = Stack(tmp_path_factory.mktemp(f"replies-{markup}"), redis, sessions=("primary",), markup=markup,
                  extra_env={"WAQ_MIN_DELAY_S": "2", "WAQ_MAX_DELAY_S": "2", "WAQ_CHAT_SETTLE_S": "0.5",
                             "WAQ_HEALTH_INTERVAL_S": "3", "WAQ_INBOUND_WEBHOOK_URL": hook.url,
                             "WAQ_OUTBOUND_ALLOW": "127.0.0.1", "WAQ_CALLBACK_SECRET": SECRET})
    stack.start_beat()
    stack.start_callbacks()
    stack.start_worker("primary")
    return stack


@pytest.mark.parametrize("markup,messages", [
    pytest.param(markup, 60, marks=[pytest.mark.long], id=f"{markup}-60") for markup in READ_FORMS
] + [pytest.param(*SHORT, id=f"{SHORT[0]}-{SHORT[1]}")])
def test_replies_during_a_run_are_recorded_and_delivered_once(markup: str, messages: int, receiver: Receiver,
                                                               tmp_path_factory: pytest.TempPathFactory,
                                                               redis_server: RedisServer) -> None:
    stack = make_stack(tmp_path_factory, redis_server, markup, receiver)
    try:
        contacts = Contacts(stack, random.Random(f"replies-{markup}-{messages}"), count=messages // 2)
        items = [(f"+1415555{8400 + i:04d}", f"{markup} reminder {i}") for i in range(messages)]
        ids = operations.enqueue_many(default_hub(), [{"phone": p, "text": t} for p, t in items])
        posting = threading.Thread(target=contacts.run, daemon=True)
        posting.start()
        stack.wait_done(ids, 120 + messages * 10)
        contacts.done.set()
        posting.join(10)
        stack.assert_exactly_once(items)

        store = default_hub().store
        wanted = {row_key(p.wa_id) for p in contacts.posted}

        def recorded() -> list:
            rows, _ = store.list_inbound(limit=10_000)
            return rows

        # The last replies are read by the idle worker, a chat at each health check.
        wait_for(lambda: wanted <= {row_key(r.wa_id) for r in recorded()}, 120, 0.5,
                 f"{len(contacts.posted)} replies to be recorded")
        rows = recorded()
        by_key = Counter(row_key(r.wa_id) for r in rows)
        assert set(by_key) == wanted, f"recorded but never posted: {set(by_key) - wanted}"
        assert all(n == 1 for n in by_key.values()), [k for k, n in by_key.items() if n > 1]
        row_of = {row_key(r.wa_id): r for r in rows}
        for posted in contacts.posted:
            row = row_of[row_key(posted.wa_id)]
            shown = (row.text, row.phone, row.to_dict()["has_number"])
            assert shown == (posted.text, posted.phone, posted.phone is not None)
            if posted.phone is None:
                assert row.chat == "Ana (username)"
        sent_to = {m.phone: m.id for m in (store.get(i) for i in ids)}  # one message per number
        assert [row_of[row_key(p.wa_id)].reply_to for p in contacts.posted] == [
            sent_to.get(p.phone) for p in contacts.posted]  # a stranger's: None

        wait_for(lambda: len(receiver.requests) >= len(rows), 60, 0.2, "every message.received event")
        time.sleep(2)  # a duplicate would come within the callbacks worker's next poll
        assert all(receiver.verified()), "an event whose signature does not verify"
        events = [json.loads(body) for _, body in receiver.requests]
        assert {e["event"] for e in events} == {"message.received"}
        delivered = Counter(e["id"] for e in events)
        assert delivered == Counter(r.id for r in rows), "an event missing or delivered twice"
    finally:
        leftover = stack.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"

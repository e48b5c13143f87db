"""Never twice, whatever the page's clock (issue 22): real `waq worker` processes driving Chromium on the simulator,
whose every shown time is skewed from the worker's clock, with Chrome SIGKILLed right after two of eight clicks. One
number's chat already holds the same text, sent 5 minutes and 1 hour before: the new message is sent once more,
exactly once, and a crash right after its click is settled by the chat's ids, not by its times.

In `make test`: 2026-11 with the page 4 minutes behind, 2026-05 with it 10 minutes ahead. The rest of the matrix
(both profiles, 4 and 10 minutes, behind and ahead) runs with --long.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from collections.abc import Iterator

import pytest

from tests.helpers.stack import ACCOUNTS, Stack
from wa_queue import operations
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus
from wa_queue.simulator.state import Message

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]  # the workers drive Chromium

SHORT = [("2026-11", -240), ("2026-05", 600)]
LONG = [(m, s) for m in ("2026-05", "2026-11") for s in (-600, -240, 240, 600) if (m, s) not in SHORT]
REPEATED = "Reminder: your appointment is tomorrow at 10:00"
REPEAT_TO = "+14155558800"


def seed_history(stack: Stack, to: str, text: str, ago_s: float) -> None:
    """A message this account sent `ago_s` before now, as the servers keep it (its chat shows it after a reload)."""
    state, account, digits = stack.sim.state, ACCOUNTS["primary"], to.lstrip("+")
    device = next(d["id"] for d in stack.devices() if d.get("account") == account)
    at = time.time() - ago_s
    msg = Message(f"true_{digits}@c.us_3EB0{secrets.token_hex(10).upper()}", account, digits, text, at, device, at)
    with state.lock:
        state.messages.append(msg)
        state.by_id[msg.id] = msg


def kill_chrome_after_clicks(stack: Stack, targets: set[str], seeded: int, stop: threading.Event) -> list[str]:
    """SIGKILL the session's Chrome the moment the simulated servers record one of `targets` (beyond the seeded
    ones): the click landed, the page has not had the acknowledgement yet."""
    killed: list[str] = []

    def watch() -> None:
        while not stop.is_set() and len(killed) < len(targets):
            counts = collections.Counter(m["text"] for m in stack.sim.state.sent())
            for text in targets - set(killed):
                if counts[text] > (seeded if text == REPEATED else 0):
                    stack.kill_chrome("primary")
                    killed.append(text)
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    return killed


@pytest.fixture
def skewed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           redis_server: RedisServer) -> Iterator[tuple[Stack, str, int]]:
    markup, skew = request.param
    redis_server.client().flushall()
    stack = Stack(tmp_path_factory.mktemp(f"skew-{markup}"), redis_server, sessions=("primary",), markup=markup)
    stack.sim.state.set_config({"clock_skew_s": skew})
    try:
        stack.start_beat()
        stack.start_worker("primary")
        yield stack, markup, skew
    finally:
        leftover = stack.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"


def run(stack: Stack, markup: str, skew: int) -> None:
    seed_history(stack, REPEAT_TO, REPEATED, 3600)
    seed_history(stack, REPEAT_TO, REPEATED, 300)
    items = [(f"+1415555{8100 + i:04d}", f"{markup} skew {skew}s, message {i} *bold* 😀") for i in range(7)]
    items.insert(3, (REPEAT_TO, REPEATED))
    targets = {REPEATED, items[6][1]}  # the repeated text among them: its crash is settled by ids alone
    stop = threading.Event()
    killed = kill_chrome_after_clicks(stack, targets, 2, stop)
    try:
        ids = operations.enqueue_many(default_hub(), [{"phone": p, "text": t} for p, t in items])
        stack.wait_done(ids, 400)
    finally:
        stop.set()
    assert sorted(killed) == sorted(targets)
    counts = stack.sent_counts()
    for phone, text in items:
        expected = 3 if text == REPEATED else 1  # the repeated text: twice before, once now
        assert counts[(phone.lstrip("+"), text)] == expected, (phone, text, counts[(phone.lstrip("+"), text)])
    store = default_hub().store
    messages = [store.get(i) for i in ids]
    split = collections.Counter(m.status.value if m.status is MessageStatus.SENT else m.last_error_class
                                for m in messages)
    offset = stack.session("primary").page_clock_offset_s
    print(f"\n{markup}, page clock {skew:+d}s: {dict(split)}; Chrome killed after {sorted(killed)}; estimated page "
          f"clock offset {offset}s")
    # On these profiles the page leaves enough to tell (the rows seen before each click are shown again): every
    # message ends sent, each crash settled by the row it made.
    assert all(m.status is MessageStatus.SENT for m in messages), split
    crashed = [m for m in messages if m.text in targets]
    assert all(m.wa_id and [h.event for h in m.history].count("sending") == 1 for m in crashed)
    # The page's clock is estimated within a minute of the skew (minute resolution, the middle of each sample).
    assert offset is not None and abs(offset - skew) <= 60


@pytest.mark.parametrize("skewed", SHORT, indirect=True, ids=[f"{m}{s:+d}s" for m, s in SHORT])
def test_a_skewed_page_clock_sends_each_message_once(skewed: tuple[Stack, str, int]) -> None:
    run(*skewed)


@pytest.mark.long
@pytest.mark.parametrize("skewed", LONG, indirect=True, ids=[f"{m}{s:+d}s" for m, s in LONG])
def test_a_skewed_page_clock_sends_each_message_once_long(skewed: tuple[Stack, str, int]) -> None:
    run(*skewed)

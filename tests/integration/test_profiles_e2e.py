"""End to end on the markup profiles, through real `waq worker` processes driving Chromium: the bare-id form of
April-May 2026, the 2026-11 form (tails on a run's first bubble, ticks by aria-label, a div send control) and that
form with bare ids, each with Chrome SIGKILLed right after two clicks (every message once, all `sent`), and a form no
driver knows (nothing clicked twice: the message fails as unverified, and an operator's mark-sent and retry work)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.helpers.stack import ACCOUNTS, ADMIN_KEY, Stack
from tests.helpers.waiting import wait_for
from wa_queue import operations
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]  # the workers drive Chromium


def make_stack(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer, markup: str,
               sim_config: dict | None = None, **env: str) -> Stack:
    redis.client().flushall()
    stack = Stack(tmp_path_factory.mktemp(f"e2e-{markup}"), redis, sessions=("primary",), markup=markup,
                  extra_env=env)
    stack.sim.state.set_config(sim_config or {})  # before the worker's first page load
    stack.start_beat()
    stack.start_worker("primary")
    return stack


# name -> (profile, simulator config): direction by class (2026-05), by packed id (2026-11), by tails and runs only.
KNOWN_FORMS = {"2026-05": ("2026-05", {}), "2026-11": ("2026-11", {}), "2026-11-bare": ("2026-11", {"row_ids": "bare"})}


# make test runs the bare ids only: test_clock_skew_e2e runs this same kill on 2026-05 and 2026-11, with the clock off.
@pytest.fixture(params=[pytest.param(form, marks=[] if form == "2026-11-bare" else [pytest.mark.long])
                        for form in KNOWN_FORMS])
def stack_known(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                redis_server: RedisServer) -> Iterator[Stack]:
    markup, config = KNOWN_FORMS[request.param]
    stack = make_stack(tmp_path_factory, redis_server, markup, config)
    stack.form = request.param
    try:
        yield stack
    finally:
        leftover = stack.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"


@pytest.fixture
def stack_unknown(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Stack]:
    stack = make_stack(tmp_path_factory, redis_server, "unknown", WAQ_SEND_TIMEOUT_S="6")
    stack.start_api()
    try:
        yield stack
    finally:
        leftover = stack.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"


def kill_chrome_after_clicks(stack: Stack, texts: set[str], stop: threading.Event) -> list[str]:
    """SIGKILL the session's Chrome the moment the simulated servers record one of `texts` (the click landed; the
    page has not had the ack yet)."""
    killed: list[str] = []

    def watch() -> None:
        while not stop.is_set() and len(killed) < len(texts):
            for message in stack.sim.state.sent():
                if message["text"] in texts and message["text"] not in killed:
                    stack.kill_chrome("primary")
                    killed.append(message["text"])
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    return killed


def test_known_forms_with_chrome_killed_after_two_clicks_send_each_message_once(stack_known: Stack) -> None:
    stack = stack_known
    items = [(f"+1415555{7000 + i:04d}", f"{stack.form} message {i} *bold* 😀") for i in range(8)]
    targets = {items[2][1], items[5][1]}
    stop = threading.Event()
    killed = kill_chrome_after_clicks(stack, targets, stop)
    try:
        ids = operations.enqueue_many(default_hub(), [{"phone": p, "text": t} for p, t in items])
        stack.wait_done(ids, 300)
    finally:
        stop.set()
    assert sorted(killed) == sorted(targets)
    stack.assert_exactly_once(items)
    store = default_hub().store
    assert all(store.get(i).status is MessageStatus.SENT for i in ids)
    crashed = [store.get(i) for i in ids if store.get(i).text in targets]
    assert all(m.wa_id for m in crashed)  # recorded from the row read in the chat, by its id (bare or packed)
    assert stack.session("primary").number == "+" + ACCOUNTS["primary"]  # read from the page (last-wid-md)


def test_unknown_markup_is_never_clicked_twice_and_an_operator_decides(stack_unknown: Stack) -> None:
    stack = stack_unknown
    headers = {"X-API-Key": ADMIN_KEY}
    first = operations.enqueue(default_hub(), "+14155557101", "unknown form: mark me as sent")
    second = operations.enqueue(default_hub(), "+14155557102", "unknown form: retry me")
    stack.wait_done([first, second], 240)
    store = default_hub().store
    for mid in (first, second):
        message = store.get(mid)
        assert message.status is MessageStatus.FAILED and message.last_error_class == "OutcomeUnverified"
        assert [h.event for h in message.history].count("sending") == 1  # clicked once, never again
    stack.assert_exactly_once([("+14155557101", "unknown form: mark me as sent"),
                               ("+14155557102", "unknown form: retry me")])
    marked = requests.post(f"{stack.api_url}/api/whatsapp/failed/{first}/mark-sent", json={"note": "seen on the phone"},
                           headers=headers, timeout=10)
    assert marked.status_code == 200, marked.text
    assert marked.json()["data"]["status"] == "sent" and store.get(first).status is MessageStatus.SENT
    retried = requests.post(f"{stack.api_url}/api/whatsapp/failed/{second}/retry", headers=headers, timeout=10)
    assert retried.status_code in (200, 202), retried.text
    wait_for(lambda: store.get(second).status is MessageStatus.FAILED
             and [h.event for h in store.get(second).history].count("sending") == 2, 120, 0.3,
             "the operator's retry to send once more and end unverified again")
    sent = [m["text"] for m in stack.sent()]
    assert sent.count("unknown form: retry me") == 2  # the operator chose to send again; the driver did not
    assert sent.count("unknown form: mark me as sent") == 1

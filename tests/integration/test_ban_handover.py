"""The ban detector with real parts (issue 16.2): redis-server, two `waq worker` processes, `waq beat`, SQLite and
the scripted fake sender. The primary session is banned midway through its queue: every message is sent exactly
once, each one after the ban by the secondary session; the admin webhook gets one session_banned with the page's
words; and the primary session stays banned through later health checks, even once its page no longer shows it.
With --long, also on a MongoDB store (FerretDB, or WAQ_TEST_MONGO_URL's server)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from tests.helpers.stores import STORES_MONGO_LONG
from tests.helpers.waiting import wait_for
from tests.integration.test_pipeline import _assert_exactly_once, _phones, _start_stack, _wait_done, _Webhook
from wa_queue import operations
from wa_queue.hub import default_hub
from wa_queue.models import SessionStatus
from wa_queue.transport.fake import BAN_WORDS, FakeControl, read_log

pytestmark = pytest.mark.timeout(240)


@pytest.mark.parametrize("store_backend", STORES_MONGO_LONG, indirect=True)
def test_a_session_banned_midway_hands_its_queue_over_and_stays_banned(waq_env, procs) -> None:  # noqa: ANN001
    hook = _Webhook()
    waq_env["WAQ_NOTIFY_WEBHOOK_URL"] = hook.url
    waq_env["WAQ_OUTBOUND_ALLOW"] = "127.0.0.1"  # the webhook receiver is on loopback
    data = Path(waq_env["WAQ_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    control = FakeControl(data / "fake-control.json")
    phones = _phones(30)
    control.write({"send_delay_s": 0.05})
    control.set_number_fault(phones[10], "ban", count=1)  # the ban screen shows when primary opens this chat
    _start_stack(procs, waq_env, beat=True)
    ids = [operations.enqueue(default_hub(), p, f"to {p}", session="primary") for p in phones]
    _wait_done(ids, 120)
    _assert_exactly_once(waq_env, ids)

    log = read_log(data / "fake-sent.jsonl")
    sessions = [entry["session"] for entry in log]
    first_secondary = sessions.index("secondary")
    assert set(sessions[first_secondary:]) == {"secondary"}, sessions  # nothing from primary after the ban
    assert {e["phone"] for e in log if e["session"] == "secondary"} >= {phones[10]}
    by = collections.Counter(sessions)
    assert by["primary"] >= 1 and by["primary"] + by["secondary"] == len(phones), by

    wait_for(lambda: [e for e in hook.events if e["event"] == "session_banned"], 20, what="the admin webhook")
    record = default_hub().store.get_session("primary")
    assert record.status == SessionStatus.BANNED and record.last_error == BAN_WORDS and record.needs_operator

    # The page no longer shows the ban: the health checks that follow leave the session banned all the same.
    control.set_session_state("primary", None)
    banned_at = record.heartbeat_at
    wait_for(lambda: default_hub().store.get_session("primary").heartbeat_at > banned_at, 30, 0.2,
             what="a health check after the ban")
    seen = default_hub().store.get_session("primary").heartbeat_at
    wait_for(lambda: default_hub().store.get_session("primary").heartbeat_at > seen, 30, 0.2,
             what="a second health check")
    record = default_hub().store.get_session("primary")
    assert record.status == SessionStatus.BANNED and record.reconnect_attempts == 0
    banned_events = [e for e in hook.events if e["event"] == "session_banned"]
    assert len(banned_events) == 1, hook.events
    assert banned_events[0]["details"] == {"session": "primary", "words": BAN_WORDS}
    assert BAN_WORDS in banned_events[0]["summary"]
    assert operations.sessions_overview(default_hub())["primary"]["status"] == "banned"
    hook.close()

"""The ban detector's decisions (issue 16.2) with the scripted fake, a real SQLite store and an injected clock: a
banned session stops at once, hands its messages to the other session, tells the admin once with the page's words,
is never reconnected on its own, and comes back only through an operator's restart."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.constants import PHONE
from wa_queue import errors, sessions
from wa_queue.broker.recording import RecordingPublisher
from wa_queue.delivery import Delivery
from wa_queue.models import HistoryEvent, MessageStatus, NewMessage, SessionStatus
from wa_queue.notify import Notifier
from wa_queue.settings import Settings
from wa_queue.store.sqlite import SQLiteStore
from wa_queue.transport.base import SessionState
from wa_queue.transport.fake import BAN_WORDS, FakeControl, FakeSender, read_log

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
RESTRICTED = "Your account is restricted until 29 Nov 2026, 09:00 UTC. You can't send messages right now."


class Told(Notifier):
    """A Notifier that keeps what it was told (and logs it, as the real one does without a webhook)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def notify_admin(self, event: str, summary: str, **details: Any) -> threading.Thread | None:
        self.events.append((event, summary, details))
        return super().notify_admin(event, summary, **details)


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings.from_env({
            "WAQ_DATA_DIR": str(tmp_path), "WAQ_TRANSPORT": "fake", "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0",
            "WAQ_SESSIONS": "primary,secondary", "WAQ_WARMUP_CAPS": "",
        })
        self.store = SQLiteStore(str(tmp_path / "waq.db"))
        self.now = T0
        self.publisher = RecordingPublisher(self.store, clock=self.clock)
        self.told = Told()
        self.control = FakeControl(self.settings.fake_control)
        self.senders = {name: FakeSender(name, self.settings.fake_log, self.settings.fake_control)
                        for name in self.settings.sessions}
        for name, sender in self.senders.items():
            sender.connect()
            self.store.update_session(name, status="connected", heartbeat_at=T0)

    def clock(self) -> datetime:
        return self.now

    def delivery(self, session: str) -> Delivery:
        return Delivery(store=self.store, settings=self.settings, session=session, owner=f"{session}/test/1",
                        sender=self.senders[session], rng=random.Random(7), clock=self.clock,
                        sleep=lambda s: None, publisher=self.publisher, notifier=self.told)

    def health(self, session: str) -> Any:
        return sessions.check_health(self.store, self.senders[session], self.settings, self.now, notifier=self.told)

    def queued(self) -> list[tuple[list[str], str]]:
        return [(p.ids, p.queue) for p in self.publisher.published]


@pytest.fixture
def env(tmp_path: Path) -> Any:
    environment = Env(tmp_path)
    yield environment
    environment.store.close()


def new(env: Env, text: str) -> str:
    return env.store.insert(NewMessage(phone=PHONE, text=text), env.now)[0].id


def test_a_ban_hands_the_messages_on_tells_once_and_holds_until_a_restart(env: Env) -> None:
    ids = [new(env, f"m{i}") for i in range(4)]
    primary, secondary = env.delivery("primary"), env.delivery("secondary")
    assert primary.process(ids[0], 0).kind == "sent"
    env.control.set_number_fault(PHONE, "ban", count=1)  # the page shows the ban when the next chat opens
    first = primary.process(ids[1], 0)
    assert first.kind == "released" and env.queued()[-1] == ([ids[1]], "wa.session.secondary")
    released = env.store.get(ids[1])
    assert released.status is MessageStatus.PENDING and released.attempts == 0 and not released.in_doubt
    assert released.history[-1].event is HistoryEvent.RELEASED and released.history[-1].error_class == "SessionBanned"
    record = env.store.get_session("primary")
    assert record.status == SessionStatus.BANNED and record.last_error == BAN_WORDS and record.needs_operator
    assert record.last_error_hint == sessions.BAN_HINT.format(session="primary")
    assert env.told.events == [("session_banned", f"session primary is banned: {BAN_WORDS}",
                                {"session": "primary", "words": BAN_WORDS})]
    # Those already in its queue are handed on when its worker takes them; no second notification.
    env.now += timedelta(seconds=5)
    assert primary.process(ids[2], 0).kind == "released" and env.queued()[-1] == ([ids[2]], "wa.session.secondary")
    # The page no longer shows it (lifted, or a restriction past its end): still banned until an operator says so.
    env.control.set_session_state("primary", None)
    assert env.senders["primary"].state() is SessionState.CONNECTED
    assert primary.process(ids[3], 0).kind == "released"
    assert "session banned: " + BAN_WORDS in (env.store.get(ids[3]).history[-1].error_text or "")
    for _ in range(8):  # health checks well past the whole reconnection back-off
        env.now += timedelta(seconds=env.settings.reconnect_unit_s * 2)
        assert env.health("primary").status == SessionStatus.BANNED
    assert sessions.pick_session(env.store, env.settings, env.now, exclude="secondary") is None
    assert env.store.get_session("primary").reconnect_attempts == 0
    env.store.update_session("secondary", heartbeat_at=env.now)
    assert [secondary.process(i, 0).kind for i in ids[1:]] == ["sent"] * 3
    log = read_log(env.settings.fake_log)
    assert [(e["ref"], e["session"]) for e in log] == [(ids[0], "primary")] + [(i, "secondary") for i in ids[1:]]
    assert [e[0] for e in env.told.events] == ["session_banned"]
    # The operator's restart: the next health check reconnects, and the session is connected again.
    sessions.request_restart(env.store, "primary")
    record = env.health("primary")
    assert record.status == SessionStatus.CONNECTED and not record.needs_operator and record.last_error is None
    assert [e[0] for e in env.told.events] == ["session_banned"]


def test_a_restriction_found_by_a_health_check_keeps_the_pages_words(env: Env) -> None:
    env.control.set_session_state("primary", "banned", words=RESTRICTED)
    record = env.health("primary")
    assert record.status == SessionStatus.BANNED and record.last_error == RESTRICTED and record.last_error_at == T0
    env.now += timedelta(days=2)  # past the end time the words give: no resumption on its own
    env.control.set_session_state("primary", None)
    assert env.health("primary").status == SessionStatus.BANNED
    assert env.told.events == [("session_banned", f"session primary is banned: {RESTRICTED}",
                                {"session": "primary", "words": RESTRICTED})]
    with pytest.raises(errors.SessionBanned):
        env.control.set_session_state("primary", "banned", words=RESTRICTED)
        env.senders["primary"].send(PHONE, "x", ref="r")
    assert read_log(env.settings.fake_log) == []


def test_a_restart_that_finds_the_ban_still_there_keeps_it_without_telling_again(env: Env) -> None:
    env.control.set_session_state("primary", "banned")
    assert env.health("primary").status == SessionStatus.BANNED
    sessions.request_restart(env.store, "primary")
    record = env.health("primary")
    assert record.status == SessionStatus.BANNED and record.needs_operator and not record.restart_requested
    assert len(env.told.events) == 1


def test_a_restarted_worker_keeps_the_ban(env: Env) -> None:
    env.control.set_session_state("primary", "banned")
    sender = env.senders["primary"]
    record = sessions.record_started(env.store, sender, env.settings, env.now, sender.connect(), notifier=env.told)
    assert record.status == SessionStatus.BANNED and len(env.told.events) == 1
    env.control.set_session_state("primary", None)  # the process restarts; the page shows the app again
    record = sessions.record_started(env.store, sender, env.settings, env.now, sender.connect(), notifier=env.told)
    assert record.status == SessionStatus.BANNED and len(env.told.events) == 1
    sessions.request_restart(env.store, "primary")  # an operator's restart before the process comes back
    record = sessions.record_started(env.store, sender, env.settings, env.now, sender.connect(), notifier=env.told)
    assert record.status == SessionStatus.CONNECTED


def test_a_ban_pauses_the_batches_that_asked_for_the_session_and_tells_the_admin(tmp_path: Path) -> None:
    env = Env(tmp_path)
    store = env.store
    mine = [store.insert(NewMessage(phone=PHONE, text=f"r{i}", session="primary", batch="december"), T0)[0]
            for i in range(2)]
    anywhere = store.insert(NewMessage(phone=PHONE, text="any", batch="december"), T0)[0]  # same batch, no session
    other = store.insert(NewMessage(phone=PHONE, text="o", session="secondary", batch="other"), T0)[0]
    sessions.record_ban(store, "primary", "This account is banned", env.settings, T0, notifier=env.told)
    assert {store.get(m.id).status for m in (*mine, anywhere)} == {MessageStatus.PAUSED}  # the whole batch
    assert store.get(other.id).status is MessageStatus.PENDING
    assert store.get(mine[0].id).history[-1].error_text.startswith("its session primary is banned")
    paused = [details for event, _, details in env.told.events if event == "batch_paused"]
    assert paused == [{"batch": "december", "session": "primary", "paused": 3}]
    sessions.record_ban(store, "primary", "still banned", env.settings, T0, notifier=env.told)  # told once
    assert len([e for e in env.told.events if e[0] == "batch_paused"]) == 1

"""Beat's recovery jobs against a real SQLite store and a real redis-server: what they find through the store's
dispatch-queue queries, past one batch, and what they do when the broker refuses a publish."""

from __future__ import annotations

from datetime import timedelta

import pytest

from wa_queue import names, recovery, runtime
from wa_queue.broker import publisher
from wa_queue.models import NewMessage, utcnow
from wa_queue.settings import get_settings

pytestmark = pytest.mark.usefixtures("waq_env")


def _stored(count: int, *, queue: str, dispatched_ago_s: float, session: str | None = None) -> list[str]:
    now = utcnow()
    store = runtime.store()
    news = [NewMessage(phone=f"+1415555{i:04d}", text=f"m{i}", session=session) for i in range(count)]
    ids = [m.id for m, _ in store.insert_many(news, now - timedelta(hours=1))]
    store.mark_dispatched(ids, now=now - timedelta(seconds=dispatched_ago_s), epoch="old", queue=queue)
    return ids


def _connect(name: str) -> None:
    runtime.store().update_session(name, status="connected", heartbeat_at=utcnow(), needs_operator=False)


def _queued(queue: str) -> int:
    return runtime.broker_redis().llen(queue)


def test_reroute_moves_every_stranded_message_past_one_batch_and_those_of_a_retired_session() -> None:
    _connect("secondary")  # primary never reported: unavailable
    stranded = _stored(1_203, queue=names.session_queue("primary"), dispatched_ago_s=600)
    retired = _stored(3, queue=names.session_queue("retired"), dispatched_ago_s=600)  # no longer in WAQ_SESSIONS
    fresh = _stored(4, queue=names.session_queue("primary"), dispatched_ago_s=0)  # may still be picked up: waits
    waiting = _stored(2, queue=names.session_queue("secondary"), dispatched_ago_s=600)  # its session is fine

    moved = recovery.reroute_from_dead_sessions(runtime.store(), get_settings(), utcnow())

    assert moved == len(stranded) + len(retired)
    store = runtime.store()
    target = names.session_queue("secondary")
    assert {store.get(i).dispatch_queue for i in stranded + retired} == {target}
    assert {store.get(i).dispatch_queue for i in fresh} == {names.session_queue("primary")}
    assert _queued(target) == moved  # one task each, published for real
    assert all(utcnow() - store.get(i).dispatched_at > timedelta(seconds=500) for i in waiting)  # not published again
    assert recovery.reroute_from_dead_sessions(store, get_settings(), utcnow()) == 0  # nothing left behind


def test_republish_overdue_only_from_empty_queues() -> None:
    _connect("primary")
    _connect("secondary")
    settings = get_settings()
    overdue = _stored(700, queue=names.session_queue("primary"), dispatched_ago_s=settings.redispatch_after_s + 60,
                      session="primary")  # back to the session the producer asked for: it can send
    backlogged = _stored(5, queue=names.session_queue("secondary"), dispatched_ago_s=settings.redispatch_after_s + 60)
    runtime.broker_redis().lpush(names.session_queue("secondary"), "a task ahead of them")

    again = recovery.republish_overdue(runtime.store(), settings, utcnow())

    assert again == len(overdue)
    assert _queued(names.session_queue("primary")) == len(overdue)
    store = runtime.store()
    assert all(utcnow() - store.get(i).dispatched_at < timedelta(seconds=30) for i in overdue)
    assert all(store.get(i).dispatched_at < utcnow() - timedelta(seconds=60) for i in backlogged)


def test_republish_queue_at_worker_start_covers_the_whole_queue() -> None:
    queue = names.session_queue("primary")
    ids = _stored(1_100, queue=queue, dispatched_ago_s=5)
    _stored(3, queue=names.DEFAULT_QUEUE, dispatched_ago_s=5)

    assert recovery.republish_queue(runtime.store(), get_settings(), queue, utcnow()) == len(ids)
    assert _queued(queue) == len(ids)


def test_a_refusing_broker_stops_the_jobs_after_one_try(monkeypatch: pytest.MonkeyPatch) -> None:
    _connect("secondary")
    queue = names.session_queue("primary")
    ids = _stored(1_200, queue=queue, dispatched_ago_s=600)
    calls = []

    def refuse(messages, queue, **_):  # noqa: ANN001, ANN003, ANN202
        calls.append(len(messages))
        return False

    monkeypatch.setattr(recovery, "publish", refuse)
    assert recovery.reroute_from_dead_sessions(runtime.store(), get_settings(), utcnow()) == 0
    assert recovery.republish_queue(runtime.store(), get_settings(), queue, utcnow()) == 0
    assert calls == [500, 500]  # one batch each, not the same batch again and again
    assert {runtime.store().get(i).dispatch_queue for i in ids} == {queue}  # nothing recorded as moved


def test_publish_says_whether_the_broker_took_the_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    message, _ = runtime.store().insert(NewMessage(phone="+14155550123", text="x"), utcnow())
    assert publisher.publish([message], names.DEFAULT_QUEUE) is True
    assert runtime.store().get(message.id).dispatch_queue == names.DEFAULT_QUEUE

    def down() -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(publisher, "current_epoch", down)
    assert publisher.publish([message], names.session_queue("primary")) is False
    assert runtime.store().get(message.id).dispatch_queue == names.DEFAULT_QUEUE

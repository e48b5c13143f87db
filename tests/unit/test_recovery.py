"""Beat's recovery jobs against a real SQLite store and a real redis-server: what they find through the store's
dispatch-queue queries, past one batch, and what they do when the broker refuses a publish."""

from __future__ import annotations

from datetime import timedelta

import pytest

from wa_queue import names, recovery
from wa_queue.broker.recording import RecordingPublisher
from wa_queue.hub import default_hub
from wa_queue.models import NewMessage, utcnow

pytestmark = pytest.mark.usefixtures("waq_env")


def _stored(count: int, *, queue: str, dispatched_ago_s: float, session: str | None = None) -> list[str]:
    now = utcnow()
    store = default_hub().store
    news = [NewMessage(phone=f"+1415555{i:04d}", text=f"m{i}", session=session) for i in range(count)]
    ids = [m.id for m, _ in store.insert_many(news, now - timedelta(hours=1))]
    store.mark_dispatched(ids, now=now - timedelta(seconds=dispatched_ago_s), epoch="old", queue=queue)
    return ids


def _connect(name: str) -> None:
    default_hub().store.update_session(name, status="connected", heartbeat_at=utcnow(), needs_operator=False)


def _reroute() -> int:
    hub = default_hub()
    return recovery.reroute_from_dead_sessions(hub.store, hub.settings, utcnow(), publisher=hub.publisher)


def _queued(queue: str) -> int:
    return default_hub().publisher.queue_length(queue)


def test_reroute_moves_every_stranded_message_past_one_batch_and_those_of_a_retired_session() -> None:
    _connect("secondary")  # primary never reported: unavailable
    stranded = _stored(1_203, queue=names.session_queue("primary"), dispatched_ago_s=600)
    retired = _stored(3, queue=names.session_queue("retired"), dispatched_ago_s=600)  # no longer in WAQ_SESSIONS
    fresh = _stored(4, queue=names.session_queue("primary"), dispatched_ago_s=0)  # may still be picked up: waits
    waiting = _stored(2, queue=names.session_queue("secondary"), dispatched_ago_s=600)  # its session is fine

    moved = _reroute()

    assert moved == len(stranded) + len(retired)
    store = default_hub().store
    target = names.session_queue("secondary")
    assert {store.get(i).dispatch_queue for i in stranded + retired} == {target}
    assert {store.get(i).dispatch_queue for i in fresh} == {names.session_queue("primary")}
    assert _queued(target) == moved  # one task each, published for real
    assert all(utcnow() - store.get(i).dispatched_at > timedelta(seconds=500) for i in waiting)  # not published again
    assert _reroute() == 0  # nothing left behind


def test_republish_overdue_only_from_empty_queues() -> None:
    _connect("primary")
    _connect("secondary")
    settings = default_hub().settings
    overdue = _stored(700, queue=names.session_queue("primary"), dispatched_ago_s=settings.redispatch_after_s + 60,
                      session="primary")  # back to the session the producer asked for: it can send
    backlogged = _stored(5, queue=names.session_queue("secondary"), dispatched_ago_s=settings.redispatch_after_s + 60)
    default_hub().broker.lpush(names.session_queue("secondary"), "a task ahead of them")

    again = recovery.republish_overdue(default_hub().store, settings, utcnow(),
                                      publisher=default_hub().publisher)

    assert again == len(overdue)
    assert _queued(names.session_queue("primary")) == len(overdue)
    store = default_hub().store
    assert all(utcnow() - store.get(i).dispatched_at < timedelta(seconds=30) for i in overdue)
    assert all(store.get(i).dispatched_at < utcnow() - timedelta(seconds=60) for i in backlogged)


def test_republish_queue_at_worker_start_covers_the_whole_queue() -> None:
    queue = names.session_queue("primary")
    ids = _stored(1_100, queue=queue, dispatched_ago_s=5)
    _stored(3, queue=names.DEFAULT_QUEUE, dispatched_ago_s=5)

    hub = default_hub()
    assert recovery.republish_queue(hub.store, hub.settings, queue, utcnow(), publisher=hub.publisher) == len(ids)
    assert _queued(queue) == len(ids)


def test_a_refusing_broker_stops_the_jobs_after_one_try() -> None:
    _connect("secondary")
    queue = names.session_queue("primary")
    ids = _stored(1_200, queue=queue, dispatched_ago_s=600)
    refusing = RecordingPublisher(default_hub().store, refuse=True)
    calls = []
    publish = refusing.publish
    refusing.publish = lambda messages, queue, **kw: calls.append(len(messages)) or publish(messages, queue, **kw)
    store, settings = default_hub().store, default_hub().settings
    assert recovery.reroute_from_dead_sessions(store, settings, utcnow(), publisher=refusing) == 0
    assert recovery.republish_queue(store, settings, queue, utcnow(), publisher=refusing) == 0
    assert calls == [500, 500]  # one batch each, not the same batch again and again
    assert {default_hub().store.get(i).dispatch_queue for i in ids} == {queue}  # nothing recorded as moved

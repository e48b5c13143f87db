"""The Publisher contract (wa_queue/broker/publisher.py): the Celery publisher on a real redis-server and the
recording one of the unit tests pass the same tests, each over a real SQLite store."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wa_queue.broker.publisher import CeleryPublisher, Publisher
from wa_queue.broker.recording import RecordingPublisher
from wa_queue.devstack.ports import free_port
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import Hub
from wa_queue.models import Message, NewMessage, Priority
from wa_queue.settings import Settings
from wa_queue.store import MessageStore
from wa_queue.store.sqlite import SQLiteStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
QUEUE = "wa.session.primary"


@dataclasses.dataclass
class Subject:
    publisher: Publisher
    refusing: Publisher  # the same kind of publisher, over a broker that refuses everything
    store: MessageStore


def _celery(tmp_path: Path, redis_server: RedisServer) -> Iterator[Subject]:
    redis_server.client().flushall()

    def hub_on(broker_url: str) -> Hub:
        settings = Settings.from_env({"WAQ_DATA_DIR": str(tmp_path), "WAQ_BROKER_URL": broker_url,
                                      "WAQ_SESSIONS": "primary,secondary"})
        return Hub.build(settings)

    hub, nowhere = hub_on(redis_server.url), hub_on(f"redis://127.0.0.1:{free_port()}/0")
    refusing = CeleryPublisher(hub.store, nowhere.celery, nowhere.broker_quick(1.0))
    yield Subject(hub.publisher, refusing, hub.store)
    nowhere.close()
    hub.close()


def _recording(tmp_path: Path, _: RedisServer) -> Iterator[Subject]:
    store = SQLiteStore(str(tmp_path / "waq.db"))
    yield Subject(RecordingPublisher(store), RecordingPublisher(store, refuse=True), store)
    store.close()


KINDS: dict[str, Callable[[Path, RedisServer], Iterator[Subject]]] = {"celery": _celery, "recording": _recording}


@pytest.fixture(params=sorted(KINDS))
def subject(request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer) -> Iterator[Subject]:
    yield from KINDS[request.param](tmp_path, redis_server)


def _stored(store: MessageStore, count: int) -> list[Message]:
    news = [NewMessage(phone=f"+1415555{i:04d}", text=f"m{i}") for i in range(count)]
    return [message for message, _ in store.insert_many(news, NOW)]


def test_publishing_nothing_is_true_and_queues_nothing(subject: Subject) -> None:
    assert subject.publisher.publish([], QUEUE) is True
    assert subject.refusing.publish([], QUEUE) is True
    assert subject.publisher.queue_length(QUEUE) == 0


def test_publish_records_the_dispatch_with_the_epoch_and_the_queue(subject: Subject) -> None:
    messages = _stored(subject.store, 2)
    assert subject.publisher.publish(messages, QUEUE, now=NOW) is True
    epoch = subject.publisher.current_epoch()
    assert epoch and subject.publisher.current_epoch(fresh=True) == epoch
    for message in messages:
        stored = subject.store.get(message.id)
        assert (stored.dispatched_at, stored.dispatch_epoch, stored.dispatch_queue) == (NOW, epoch, QUEUE)


def test_queue_length_counts_the_tasks_of_each_queue(subject: Subject) -> None:
    first, second, third = _stored(subject.store, 3)
    assert subject.publisher.publish([first, second], QUEUE) is True
    assert subject.publisher.publish([third], "wa.default", countdown=30.0) is True
    assert subject.publisher.queue_length(QUEUE) == 2
    assert subject.publisher.queue_length("wa.default") == 1
    assert subject.publisher.queue_length("wa.session.secondary") == 0


def test_queue_length_counts_each_priority_apart(subject: Subject) -> None:
    high, normal, low, later = (subject.store.insert(NewMessage(phone=f"+141555500{i:02d}", text=f"p{i}",
                                                                priority=priority), NOW)[0]
                                for i, priority in enumerate((Priority.HIGH, Priority.NORMAL, Priority.LOW,
                                                              Priority.NORMAL)))
    assert subject.publisher.publish([low, normal, high], QUEUE) is True
    assert subject.publisher.publish([later], QUEUE, front=True) is True
    assert subject.publisher.queue_length(QUEUE) == 4
    assert subject.publisher.queue_length(QUEUE, ["high"]) == 1
    assert subject.publisher.queue_length(QUEUE, ["normal"]) == 2
    assert subject.publisher.queue_length(QUEUE, ["high", "low"]) == 2
    assert subject.publisher.queue_length(QUEUE, []) == 0


def test_a_refusing_broker_returns_false_raises_nothing_records_nothing(subject: Subject) -> None:
    messages = _stored(subject.store, 2)
    assert subject.refusing.publish(messages, QUEUE, now=NOW) is False
    assert subject.refusing.publish(messages, QUEUE, countdown=5.0) is False
    for message in messages:
        stored = subject.store.get(message.id)
        assert (stored.dispatched_at, stored.dispatch_epoch, stored.dispatch_queue) == (None, None, None)
    assert subject.publisher.queue_length(QUEUE) == 0

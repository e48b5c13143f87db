"""What the store contract tests share: times after NOW, new messages, and messages brought to a status."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from tests.helpers.constants import NOW
from wa_queue.models import Message, NewMessage
from wa_queue.store.base import MessageStore


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def new(i: int = 0, **kwargs: object) -> NewMessage:
    return NewMessage(phone=f"+155500{i:05d}", text=f"hello {i}", **kwargs)  # type: ignore[arg-type]


def insert(store: MessageStore, i: int = 0, now: datetime = NOW, **kwargs: object) -> Message:
    return store.insert(new(i, **kwargs), now)[0]


def claimed(
    store: MessageStore, i: int = 0, owner: str = "s1/host/1", session: str = "s1", **kwargs: object
) -> Message:
    message = insert(store, i, **kwargs)
    result = store.claim(message.id, owner=owner, session=session, now=NOW, lease_s=60)
    assert result is not None
    return result


def failed(store: MessageStore, i: int = 0, now: datetime = NOW, error: str = "PermanentSendError",
           text: str = "bad number", session: str = "s1") -> Message:
    message = claimed(store, i, owner=f"{session}/h/1", session=session)
    result = store.record_failed(message.id, owner=f"{session}/h/1", now=now, error_class=error, error_text=text)
    assert result is not None
    return result


def events(message: Message) -> list[str]:
    return [entry.event for entry in message.history]


def run_threads(count: int, target: Callable[[int], object]) -> list[object]:
    results: list[object] = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results

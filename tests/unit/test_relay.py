"""The background publisher: everything handed over is published once, batched per queue; failures are left to the
sweeper; draining and stopping leave nothing behind."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from wa_queue.broker.relay import Relay


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def __call__(self, messages: list, queue: str, *, now: object) -> None:
        with self.lock:
            if self.fail_first:
                self.fail_first -= 1
                raise ConnectionError("broker away")
            self.calls.append((queue, [m.id for m in messages]))


def msgs(*ids: str) -> list:
    return [SimpleNamespace(id=i) for i in ids]


def test_everything_is_published_once_in_batches_per_queue() -> None:
    recorder = Recorder()
    relay = Relay(recorder, gather_s=0.02)
    threads = [threading.Thread(target=relay.put, args=(f"q{i % 2}", msgs(f"m{i}"))) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert relay.drain(10)
    published = [(queue, i) for queue, ids in recorder.calls for i in ids]
    assert sorted(published) == sorted((f"q{i % 2}", f"m{i}") for i in range(40))
    assert len(recorder.calls) < 40  # gathered: fewer publishes than hand-overs


def test_a_failed_publish_is_left_to_the_sweeper_and_the_relay_goes_on() -> None:
    recorder = Recorder(fail_first=1)
    relay = Relay(recorder, gather_s=0)
    relay.put("q", msgs("lost"))
    assert relay.drain(10)
    relay.put("q", msgs("next"))
    assert relay.drain(10)
    assert recorder.calls == [("q", ["next"])]  # "lost" stays committed and undispatched: dispatch_due sends it


def test_stop_publishes_what_is_left_in_the_calling_thread() -> None:
    recorder = Recorder()
    relay = Relay(recorder, gather_s=60)  # its own thread would wait a minute
    relay.put("q", msgs("a", "b"))
    relay.stop()
    assert recorder.calls == [("q", ["a", "b"])]
    assert relay.drain(0)

"""Media end to end on 2026-05: real `waq worker` and `waq beat` processes driving Chromium on the simulator, one
message of each kind (a PDF, a JPEG with a caption, a photo as a document, an audio file, an MP4) among texts, and
Chrome SIGKILLed right after the click of each media message, the moment its file reached the servers. Each arrives
exactly once, byte for byte (SHA-256), and ends `sent`: every crash is settled by reading the chat."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import pytest

from tests.helpers import media_samples as samples
from tests.helpers.stack import Stack
from wa_queue import operations
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]  # the workers drive Chromium

FILES = [  # (name, bytes, kind asked, caption)
    ("invoice 42.pdf", samples.pdf(200_000), None, "Your invoice"),
    ("photo.jpg", samples.jpeg(150_000), None, "Your *order*, photographed"),
    ("scan.jpg", samples.jpeg(90_000), "as_document", ""),
    ("note.mp3", samples.mp3(60_000), None, ""),
    ("clip.mp4", samples.mp4(300_000), None, "The clip"),
]


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Stack]:
    redis_server.client().flushall()
    stack = Stack(tmp_path_factory.mktemp("media-e2e"), redis_server, sessions=("primary",), markup="2026-05")
    try:
        stack.start_beat()
        stack.start_worker("primary")
        yield stack
    finally:
        leftover = stack.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"


def kill_after_each_upload(stack: Stack, expected: int, stop: threading.Event) -> list[str]:
    """SIGKILL the session's Chrome each time the simulated servers record a new media message."""
    killed: list[str] = []

    def watch() -> None:
        while not stop.is_set() and len(killed) < expected:
            for media in stack.sim.state.media_messages():
                if media["filename"] not in killed:
                    stack.kill_chrome("primary")
                    killed.append(str(media["filename"]))
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    return killed


def test_each_kind_arrives_once_with_chrome_killed_after_its_click(stack: Stack) -> None:
    hub = default_hub()
    stop = threading.Event()
    killed = kill_after_each_upload(stack, len(FILES), stop)
    try:
        ids = [operations.enqueue(hub, f"+1415555{8200 + i:04d}", media=data, filename=name, caption=caption or None,
                                  as_document=kind == "as_document")
               for i, (name, data, kind, caption) in enumerate(FILES)]
        ids += [operations.enqueue(hub, "+14155558299", f"a text among the files, {i}") for i in range(2)]
        stack.wait_done(ids, 500)
    finally:
        stop.set()
    assert sorted(killed) == sorted(name for name, *_ in FILES)
    arrived = stack.sim.state.media_messages()
    assert sorted(m["filename"] for m in arrived) == sorted(name for name, *_ in FILES)  # once each
    for name, data, kind, caption in FILES:
        got = next(m for m in arrived if m["filename"] == name)
        assert got["sha256"] == hashlib.sha256(data).hexdigest() and got["caption"] == caption
        assert got["kind"] == ("document" if kind == "as_document" or name.endswith(".pdf") else
                               {"jpg": "image", "mp3": "audio", "mp4": "video"}[name.rsplit(".", 1)[1]])
    messages = [hub.store.get(i) for i in ids]
    assert all(m.status is MessageStatus.SENT for m in messages), [(m.id, m.status, m.last_error_text)
                                                                    for m in messages]
    # Each crash was settled by the chat: one click each, never a second.
    assert all([h.event for h in m.history].count("sending") == 1 for m in messages[:len(FILES)])
    assert [m["text"] for m in stack.sim.state.sent() if m["media"] is None] == [
        "a text among the files, 0", "a text among the files, 1"]

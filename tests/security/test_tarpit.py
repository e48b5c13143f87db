"""A tarpit callback cannot stall the system: a receiver that drips one byte every 1.5 s for 60 s, while real
`waq worker`, `waq beat` and `waq callbacks` processes (the scripted fake sender, a real Redis and SQLite) keep
working. beat's jobs run on time (recover-stuck frees a stuck message, dispatch-due publishes an unpublished one), a
message enqueued meanwhile is sent at its normal pace, and the delivery itself is cut at its deadline.

Why it held before: wa.callbacks was consumed by beat's worker at concurrency 1, beside the maintenance jobs, and the
10 s time-out bounded each socket read, not the call."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import wait_for
from wa_queue import callbacks, service
from wa_queue.app import close_default_app, default_app
from wa_queue.models import MessageStatus, NewMessage, utcnow
from wa_queue.settings import reset_settings

pytestmark = pytest.mark.timeout(180)
DRIP_S = 1.5
TARPIT_S = 60.0


class Tarpit:
    """Answers every POST with a status line and headers dripped one byte every DRIP_S, for up to TARPIT_S; records
    when each connection began and when the client gave up on it."""

    def __init__(self) -> None:
        self.calls: list[list[float]] = []  # [started, ended or 0]
        tarpit = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                call = [time.monotonic(), 0.0]
                tarpit.calls.append(call)
                answer = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b"x" * 40
                try:
                    for byte in answer:
                        if time.monotonic() - call[0] > TARPIT_S:
                            break
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(DRIP_S)
                except OSError:
                    pass
                call[1] = time.monotonic()
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cb"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_tarpit_callback_stalls_neither_beat_nor_sending(waq_env: dict[str, str], procs,  # noqa: ANN001
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    tarpit = Tarpit()
    env = {**waq_env, "WAQ_OUTBOUND_ALLOW": "127.0.0.1", "WAQ_CALLBACK_CONCURRENCY": "2"}
    monkeypatch.setenv("WAQ_OUTBOUND_ALLOW", "127.0.0.1")  # this process enqueues the loopback callbacks
    reset_settings()
    close_default_app()
    try:
        for name in ("primary", "secondary"):
            procs(["worker", "--session", name], env, f"worker-{name}")
        procs(["beat"], env, "beat")
        procs(["callbacks"], env, "callbacks")
        store = default_app().store
        wait_for(lambda: all(store.get_session(n).status == "connected" for n in ("primary", "secondary")), 60, 0.2,
                 "session workers to connect")
        # Two sent messages whose callbacks go to the tarpit: each holds a callbacks process while it drips.
        hooked = [service.enqueue(default_app(), phone=f"+1415555010{i}", text="hooked", callback_url=tarpit.url)
                  for i in range(2)]
        wait_for(lambda: len(tarpit.calls) >= 1, 60, 0.2, "the tarpit to hold a callback")
        held_since = time.monotonic()

        # A message stuck in processing under a dead worker's lease: only recover-stuck frees it.
        stuck, _ = store.insert(NewMessage(phone="+14155550201", text="stuck"), utcnow())
        assert store.claim(stuck.id, owner="primary/gone/1", session="primary", now=utcnow(), lease_s=1)
        # A message committed but never published: only dispatch-due publishes it.
        unpublished, _ = store.insert(NewMessage(phone="+14155550202", text="unpublished"), utcnow())
        # And one enqueued as a producer would, meanwhile.
        fresh = service.enqueue(default_app(), phone="+14155550203", text="fresh")

        def sent(message_id: str) -> bool:
            return store.get(message_id).status is MessageStatus.SENT

        # recover every 2 s, dispatch every 1 s (waq_env), no pacing: well within 20 s unless something waits.
        wait_for(lambda: all(sent(i) for i in (stuck.id, unpublished.id, fresh)), 20, 0.2,
                 "beat's jobs and the fresh send while the tarpit holds a callback")
        assert time.monotonic() - held_since < 20
        assert any(entry.event.value == "recovered" for entry in store.get(stuck.id).history)
        assert all(sent(i) for i in hooked)
        # The delivery gave up on the tarpit at its deadline, not after the tarpit's 60 s.
        wait_for(lambda: tarpit.calls[0][1] > 0, callbacks.DEADLINE_S + 10, 0.2, "the deadline to cut the tarpit")
        assert tarpit.calls[0][1] - tarpit.calls[0][0] < callbacks.DEADLINE_S + 2 * DRIP_S + 1
    finally:
        tarpit.close()

"""A local HTTP receiver of status callbacks: it answers POSTs with a scripted list of statuses and keeps what it
got, for the callback tests and the end-to-end runs that check a message's callback."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from wa_queue import callbacks
from wa_queue.callbacks import verify_signature

SECRET = "callback-secret-for-tests-0123456789"  # noqa: S105 - a test value


class Receiver:
    """A local HTTP server answering POSTs with a scripted list of statuses (the last one repeats)."""

    def __init__(self, statuses: list[int], headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses)
        self.extra_headers = headers or {}
        self.requests: list[tuple[Any, bytes]] = []  # (case-insensitive HTTPMessage headers, raw body)
        self.arrived: list[float] = []  # when each came (time.time()): its signature's timestamp is judged then
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.arrived.append(time.time())
                receiver.requests.append((self.headers, body))
                index = min(len(receiver.requests), len(receiver.statuses)) - 1
                self.send_response(receiver.statuses[index])
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: shutdown() waits for the loop's next one.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def verified(self, secret: str = SECRET) -> list[bool]:
        """Each request's signature as a receiver checks it on arrival (a long run checks them minutes later)."""
        got = list(self.requests)  # each arrival is noted before its request: the first len(got) are theirs
        return [verify_signature(body, secret, h.get(callbacks.TIMESTAMP_HEADER), h.get(callbacks.SIGNATURE_HEADER),
                                 now=at) for (h, body), at in zip(got, self.arrived[:len(got)], strict=True)]

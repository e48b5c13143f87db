"""The worker class gunicorn runs the API with (the Procfile, both compose files and the launcher of `make run`:
`--worker-class api.gunicorn_worker.JsonErrorWorker`): gunicorn's threaded worker, whose own refusals are JSON like
every other answer of the API.

gunicorn refuses some requests before the app sees them: a request line over `limit_request_line` (4,094 bytes),
headers over their limits, a malformed request. It writes those as an HTML page, the first two as 414 and 431.
This worker answers them 400, the status every client (and OpenAPI tooling's list of refusals) knows for a request
to correct, in the API's Error shape: `{"error": "<a sentence>", "details": {"limit": "<gunicorn's setting>"}}`;
the document (api/openapi.py's `with_server_refusals`) lists that 400 on every operation. The limits themselves
stay: they keep a client from making a worker buffer an unbounded line.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker

# What each over-limit refusal says, by gunicorn's exception; the setting an operator raises to allow more.
_OVER_LIMIT = {
    LimitRequestLine: ("The request line (method, path and query) is over the server's limit of {line} bytes; send "
                       "fewer or shorter query parameters.", "limit_request_line"),
    LimitRequestHeaders: ("The request's headers are over the server's limits ({fields} fields of at most "
                          "{field_size} bytes each).", "limit_request_fields, limit_request_field_size"),
}


class JsonErrorWorker(ThreadWorker):
    """gunicorn's gthread worker; only the body and type of its own error answers differ."""

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:  # noqa: ANN401
        super().handle_error(req, _JsonAnswer(client, exc, self.cfg), addr, exc)


class _JsonAnswer:
    """The client socket as gunicorn's error path uses it. gunicorn writes its whole error answer in one sendall
    (util.write_error); this sends the same status line as JSON instead. Every other use passes through."""

    def __init__(self, sock: socket.socket, exc: BaseException, cfg: Any) -> None:  # noqa: ANN401
        self._sock = sock
        self._exc = exc
        self._cfg = cfg

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401
        return getattr(self._sock, name)

    def sendall(self, data: bytes) -> None:
        status_line = data.split(b"\r\n", 1)[0].decode("latin-1")  # "HTTP/1.1 414 URI Too Long"
        _, code, reason = status_line.split(" ", 2)
        status = int(code)
        over = next((kind for kind in _OVER_LIMIT if isinstance(self._exc, kind)), None)
        if over is not None:
            template, setting = _OVER_LIMIT[over]
            status, reason = 400, "Bad Request"
            error = template.format(line=self._cfg.limit_request_line, fields=self._cfg.limit_request_fields,
                                    field_size=self._cfg.limit_request_field_size)
            details = {"limit": setting}
        elif status < 500:  # a malformed request: gunicorn's words name what it could not read
            error = f"{reason}: {self._exc}" if str(self._exc) else f"{reason}."
            details = {}
        else:  # the server's own fault: its text stays in gunicorn's log, as the app's own 500s do
            error, details = "The server failed to answer this request; it is logged.", {}
        body = json.dumps({"error": error, "details": details}).encode()
        head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        self._sock.sendall(head + body)

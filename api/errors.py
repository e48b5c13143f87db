"""One error shape for every answer that is not a success: `{"error": "<human sentence>", "details": {...}}`.

Flask-level handlers cover routes outside Flask-RESTX (unknown paths, the dashboard, /metrics) and RESTX's own
`handle_error` is overridden (see app.JsonApi) to call `error_response` too, so 404/405/413/415/500 all look alike.
`details` is always an object (possibly empty) so clients and the OpenAPI schema need no null case.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, json, request
from flask_restx import Model, Namespace, fields
from werkzeug.exceptions import HTTPException

from wa_queue import errors as core

log = logging.getLogger(__name__)

# Headers of an HTTPException worth keeping (405 must say which methods are allowed).
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
MAX_ID = 64  # longer than any id new_message_id() makes: such ids are answered 404 without a look-up

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class ApiError(Exception):
    """An error the API answers on purpose, with its status code."""

    def __init__(self, status: int, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def bad_request(message: str, **details: Any) -> ApiError:
    return ApiError(400, message, details)


def refuse_unknown_fields(body: dict[str, Any], allowed: set[str] | frozenset[str]) -> None:
    """400 naming the first field of a JSON body that the operation does not take."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(f"Unknown field(s): {', '.join(unknown)}.", field=unknown[0], unknown=unknown)


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _describe_http(exc: HTTPException) -> tuple[str, dict[str, Any]]:
    code = exc.code or 500
    if code == 404:
        return f"Nothing is found at {request.path}.", {"path": request.path}
    if code == 405:
        allowed = sorted(set(exc.valid_methods or []) - {"OPTIONS", "HEAD"})  # type: ignore[attr-defined]
        return (f"Method {request.method} is not allowed on {request.path}; use {', '.join(allowed) or 'none'}.",
                {"allowed": allowed})
    if code == 413:
        limit = request.max_content_length  # the app's MAX_CONTENT_LENGTH, or an operation's own (api/media.py)
        return f"The request body is larger than the limit of {limit} bytes.", {"limit_bytes": limit}
    # Werkzeug's descriptions are already sentences ("The browser (or proxy) sent a request that ...").
    return exc.description or exc.name, {}


def error_response(exc: BaseException) -> Response:
    """Turn any exception into the JSON error shape. Never raises."""
    try:
        return _error_response(exc)
    except Exception:  # noqa: BLE001 - the error path itself must not produce a 500 without a body
        log.exception("error while rendering an error")
        return json_response({"error": "Internal server error.", "details": {}}, 500)


def _error_response(exc: BaseException) -> Response:
    if isinstance(exc, ApiError):
        return json_response({"error": exc.message, "details": exc.details}, exc.status, exc.headers)
    if isinstance(exc, core.MediaTooLarge):
        return json_response({"error": str(exc), "details": {"field": exc.field, "limit_bytes": exc.limit_bytes}},
                             413)
    if isinstance(exc, core.MediaMissing):
        return json_response({"error": str(exc), "details": {"field": "media"}}, 404)
    if isinstance(exc, core.MediaNotFound):
        return json_response({"error": str(exc), "details": {"field": exc.field}}, 404)
    if isinstance(exc, core.StateConflict):
        return json_response({"error": str(exc), "details": {"field": exc.field}}, 409)
    if isinstance(exc, core.ValidationError):
        return json_response({"error": str(exc), "details": {"field": exc.field}}, 400)
    if isinstance(exc, core.NotCancellable):
        return json_response({"error": str(exc), "details": {"status": exc.status}}, 409)
    if isinstance(exc, core.NotFound):
        return json_response({"error": str(exc) or "Not found.", "details": {}}, 404)
    if isinstance(exc, core.IdempotencyConflict | core.InvalidTransition):
        return json_response({"error": str(exc), "details": {}}, 409)
    if isinstance(exc, core.RateLimited | core.QuotaExceeded):
        return limited_response(exc)
    if isinstance(exc, core.StoreError):
        # Nothing was committed (the store failed before answering): the client may safely retry.
        log.error("store error: %s: %s", type(exc).__name__, exc)
        return json_response({"error": "The message store is unavailable; nothing was changed, retry later.",
                              "details": {"component": "store"}}, 503, {"Retry-After": "5"})
    if isinstance(exc, HTTPException):
        message, details = _describe_http(exc)
        headers = {k: v for k, v in exc.get_headers() if k in _KEPT_HEADERS}
        return json_response({"error": message, "details": details}, exc.code or 500, headers)
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return json_response({"error": "Internal server error; it was logged.", "details": {}}, 500)


def limited_response(exc: core.RateLimited | core.QuotaExceeded) -> Response:
    """429 for a key over its rate limit or its daily quota, with Retry-After in whole seconds (rounded up: a client
    that waits that long passes); none when waiting cannot help (more messages than the key's bucket holds)."""
    if isinstance(exc, core.QuotaExceeded):
        retry = max(1, math.ceil(exc.retry_after_s))
        message = (f"The key {exc.key_name!r} has enqueued {exc.used} of its {exc.quota} messages for today (UTC); "
                   f"{exc.requested} more would pass the quota. Retry after {retry} s (the next UTC midnight). "
                   "Nothing was stored.")
        details = {"limit": "daily_quota", "quota": exc.quota, "used": exc.used, "requested": exc.requested,
                   "retry_after_s": retry}
        return json_response({"error": message, "details": details}, 429, {"Retry-After": str(retry)})
    if exc.retry_after_s is None:
        message = (f"The key {exc.key_name!r} may never enqueue this many messages in one request: its message rate "
                   "limit holds fewer. Split the request. Nothing was stored.")
        return json_response({"error": message, "details": {"limit": "rate"}}, 429)
    retry = max(1, math.ceil(exc.retry_after_s))
    message = (f"The key {exc.key_name!r} is enqueuing faster than its rate limit; retry after {retry} s. "
               "Nothing was stored.")
    return json_response({"error": message, "details": {"limit": "rate", "retry_after_s": retry}}, 429,
                         {"Retry-After": str(retry)})


def register(app: Flask) -> None:
    """Flask-level handlers: every route of the app, RESTX or not, answers errors as JSON."""
    app.register_error_handler(HTTPException, error_response)
    app.register_error_handler(Exception, error_response)


error_model = Model("Error", {
    "error": fields.String(required=True, description="A sentence saying what went wrong", example="Not found."),
    "details": fields.Raw(required=True, description="Machine-readable context (an object, maybe empty)",
                          example={}),
})


# ---- the standard error answers, documented once ------------------------------------------------------------------
STORE_DOWN = "The store is unavailable; nothing was changed, retry later"
RETRY_AFTER = {"Retry-After": {"type": "integer", "description": "Seconds until the same request would pass"}}
RATE_LIMITED = ("The key is over its enqueue rate limit (WAQ_RATE_REQUESTS_PER_S, WAQ_RATE_MESSAGES_PER_S, per key "
                "WAQ_KEY_LIMITS; details.limit is 'rate'), or the request's new messages would pass the key's daily "
                "quota (WAQ_DAILY_QUOTA, per key WAQ_KEY_LIMITS daily=; details.limit is 'daily_quota', with quota, "
                "used and requested; Retry-After: the next UTC midnight; idempotent replays do not count). Nothing "
                "was stored")
# code -> (the sentence an operation's document gives unless it says more, extra arguments of Namespace.response)
ERROR_RESPONSES: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("Invalid input", {}),
    401: ("No or unknown API key", {}),
    403: ("The key's role may not do this", {}),
    404: ("No such message", {}),
    413: ("Body too large", {}),
    415: ("Body is not JSON", {}),
    429: (RATE_LIMITED, {"headers": RETRY_AFTER}),
    503: (STORE_DOWN, {}),
}


def responses(namespace: Namespace, *answers: int | tuple[int, str]) -> Callable[[F], F]:
    """Document error answers of an operation, each with the error shape: a code alone with ERROR_RESPONSES'
    sentence, (code, sentence) with its own (a code the table lacks needs one). Listed in the order of the
    @namespace.response lines they stand for, so the document keeps its order."""
    def decorate(func: F) -> F:
        for answer in reversed(answers):  # stacked decorators apply bottom-up
            code, text = answer if isinstance(answer, tuple) else (answer, ERROR_RESPONSES[answer][0])
            extra = ERROR_RESPONSES.get(code, ("", {}))[1]
            func = namespace.response(code, text, error_model, **extra)(func)
        return func

    return decorate


# ---- look-ups ----------------------------------------------------------------------------------------------------
def load_or_404(get: Callable[[str], T], message_id: str, *, what: str = "message",
                visible: Callable[[T], bool] | None = None) -> T:
    """`get(message_id)`, or ApiError 404 "No <what> has the id ...": for an id longer than any real one (not looked
    up), one `get` does not find (wa_queue.errors.NotFound) and one `visible` says the caller may not see (the same
    answer as for an unknown id, so a producer cannot tell another's message from none)."""
    if len(message_id) > MAX_ID:
        raise ApiError(404, f"No {what} has the id {message_id[:MAX_ID]!r}...", {"id": message_id[:MAX_ID]})
    try:
        found: T | None = get(message_id)
    except core.NotFound:
        found = None
    if found is None or (visible is not None and not visible(found)):
        raise ApiError(404, f"No {what} has the id {message_id!r}.", {"id": message_id})
    return found

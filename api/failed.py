"""Failed-message administration (admin): list, retry, retry all, mark as sent, delete; and the query of a page of
failed messages that /archive shares (api/archive.py). The routes join the "monitoring" namespace of api/health.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from flask import g, request
from flask_restx import Namespace, Resource, fields

from api.auth import admin_only
from api.context import current_hub
from api.errors import bad_request, refuse_unknown_fields, responses
from api.fields import NullableString
from api.health import ns
from api.messages import load, message_out, message_view, read_json_object
from api.openapi import MESSAGE_ID_PATTERN, SessionFilter
from wa_queue import operations
from wa_queue.models import Message
from wa_queue.store.common import MAX_OPERATOR_NOTE

MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 50
NOT_FAILED = "The message is not failed"

failed_page = ns.model("FailedPage", {
    "items": fields.List(fields.Nested(message_out), required=True),
    "page": fields.Integer(required=True),
    "per_page": fields.Integer(required=True),
    "total": fields.Integer(required=True),
    "pages": fields.Integer(required=True),
})
requeued = ns.model("Requeued", {"requeued": fields.Integer(required=True)})
QUEUED_FOR_RETRY = "Message queued for retry"
retried = ns.model("Retried", {
    "message": fields.String(required=True, enum=[QUEUED_FOR_RETRY]),
    "data": fields.Nested(message_out, required=True,
                          description="The message, now pending with its attempts reset (as GET /messages/<id>)"),
})
mark_sent_in = ns.model("MarkSent", {
    "note": NullableString(max_length=MAX_OPERATOR_NOTE,
                           description="Why, for the history (e.g. 'seen in the chat 14:02')"),
}, strict=True)
MARKED_SENT = "Message marked as sent"
marked_sent = ns.model("MarkedSent", {
    "message": fields.String(required=True, enum=[MARKED_SENT]),
    "data": fields.Nested(message_out, required=True, description="The message, now sent"),
})


# ---- failed messages --------------------------------------------------------------------------------------------
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}\Z")  # what OpenAPI's integer means in a query string (no "", "+1", "1_0")


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _WHOLE_NUMBER.match(raw):
        raise bad_request(f"{name} must be a whole number from {low} to {high}.", field=name)
    value = int(raw)
    if not low <= value <= high:
        raise bad_request(f"{name} must be from {low} to {high}, not {value}.", field=name)
    return value


def _session_arg() -> str | None:
    session = request.args.get("session") or None
    sessions = current_hub().settings.sessions
    if session is not None and session not in sessions:
        raise bad_request(f"session must be one of: {', '.join(sessions)}.", field="session")
    return session


MAX_ERROR_FILTER = 200


def failed_query_params(namespace: Namespace) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The query parameters of a page of failed messages (/failed, /archive), documented once."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name, text, kwargs in (
            ("error", "Only messages whose error class or text contains this (empty: no filter)",
             {"type": str, "maxLength": MAX_ERROR_FILTER}),
            ("session", "Only messages claimed or sent by this session (empty: every session)",
             {"type": str, "enum": SessionFilter()}),
            ("per_page", f"Items per page, 1-{MAX_PER_PAGE}", {"type": int, "default": DEFAULT_PER_PAGE,
                                                              "minimum": 1, "maximum": MAX_PER_PAGE}),
            ("page", "Page number from 1", {"type": int, "default": 1, "minimum": 1, "maximum": 10**9}),
        ):
            fn = namespace.param(name, text, **kwargs)(fn)
        return fn
    return wrap


def failed_query_page(list_page: Callable[..., tuple[list[Message], int]]) -> dict[str, Any]:
    """One page of failed messages from `list_page` (store.list_failed or list_archived), by the request's query."""
    page = _int_arg("page", 1, 1, 10**9)
    per_page = _int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    error = request.args.get("error") or None
    if error is not None and len(error) > MAX_ERROR_FILTER:
        raise bad_request(f"error must be at most {MAX_ERROR_FILTER} characters.", field="error")
    items, total = list_page(offset=(page - 1) * per_page, limit=per_page, session=_session_arg(), error=error)
    return {"items": [message_view(m) for m in items], "page": page, "per_page": per_page, "total": total,
            "pages": math.ceil(total / per_page)}


@ns.route("/failed")
class Failed(Resource):
    @admin_only(ns)
    @failed_query_params(ns)
    @ns.response(200, "One page, newest failure first", failed_page)
    @responses(ns, (400, "Invalid query"))
    def get(self) -> dict[str, Any]:
        """Failed messages, paged and filtered."""
        return failed_query_page(lambda **query: operations.list_failed(current_hub(), **query))


@ns.route("/failed/retry-all")
class FailedRetryAll(Resource):
    @admin_only(ns)
    @ns.param("session", "Only failed messages of this session (empty: every session)", type=str,
              enum=SessionFilter())
    @ns.response(200, "How many failed messages went back to pending", requeued)
    @responses(ns, (400, "Unknown session"), 503)
    def post(self) -> dict[str, int]:
        """Retry every failed message (optionally of one session)."""
        return {"requeued": operations.retry_all_failed(current_hub(), _session_arg())}


@ns.route("/failed/<message_id:message_id>")
@ns.param("message_id", "A failed message's id", pattern=MESSAGE_ID_PATTERN)
class FailedItem(Resource):
    @admin_only(ns)
    @ns.response(204, "Deleted for good")
    @responses(ns, 404, (409, NOT_FAILED), 503)
    def delete(self, message_id: str) -> tuple[str, int]:
        """Delete a failed message for good (only failed ones)."""
        load(message_id)  # 404 with a clear sentence before the store's own checks
        operations.delete_failed(current_hub(), message_id)
        return "", 204


@ns.route("/failed/<message_id:message_id>/retry")
@ns.param("message_id", "A failed message's id", pattern=MESSAGE_ID_PATTERN)
class FailedRetry(Resource):
    @admin_only(ns)
    @ns.response(200, "Back to pending with its attempts reset; the message in data", retried)
    @responses(ns, 404, (409, NOT_FAILED), 503)
    def post(self, message_id: str) -> dict[str, Any]:
        """Retry one failed message."""
        load(message_id)
        message = operations.retry_failed(current_hub(), message_id)
        return {"message": QUEUED_FOR_RETRY, "data": message_view(message)}


@ns.route("/failed/<message_id:message_id>/mark-sent")
@ns.param("message_id", "A failed message's id", pattern=MESSAGE_ID_PATTERN)
class FailedMarkSent(Resource):
    @admin_only(ns)
    @ns.expect(mark_sent_in, validate=False)
    @ns.doc(params={"payload": {"required": False}})  # the body may be left out: a note is optional
    @ns.response(200, "Sent: it will never be sent again; the producer's callback hears 'sent'", marked_sent)
    @responses(ns, (400, "Invalid body (an unknown field, a note that is not a string of at most 500 characters)"),
                   404, (409, NOT_FAILED), 413, 415, 503)
    def post(self, message_id: str) -> dict[str, Any]:
        """Mark one failed message as sent: the operator saw it in the phone's chat (see OutcomeUnverified)."""
        note = _note_arg()
        load(message_id)
        message = operations.mark_sent(current_hub(), message_id, actor=f"api:{g.api_key.name}", note=note)
        return {"message": MARKED_SENT, "data": message_view(message)}


def _note_arg() -> str | None:
    """The optional body {"note": str | null}; no body at all is the same as no note."""
    if not request.get_data(cache=True):
        return None
    body = read_json_object()
    refuse_unknown_fields(body, {"note"})
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_OPERATOR_NOTE):
        raise bad_request(f"note must be a string of at most {MAX_OPERATOR_NOTE} characters.", field="note")
    return note

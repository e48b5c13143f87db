"""The archive (admin, read-only): failed messages moved there after 30 days (beat's archive job)."""

from __future__ import annotations

import math
from typing import Any

from flask import request
from flask_restx import Namespace, Resource, fields

from api.errors import ApiError, bad_request, error_model
from api.messages import message_out, message_view
from api.monitoring import DEFAULT_PER_PAGE, MAX_PER_PAGE, _int_arg, _session_arg, admin_only
from wa_queue import runtime
from wa_queue.errors import NotFound
from wa_queue.models import Message

ns = Namespace("archive", path="/api/whatsapp", description="Archived failed messages, read-only (admin)")
ns.add_model(error_model.name, error_model)

MAX_ID = 64  # like /messages/<id>: longer ids are not looked up
MAX_ERROR_FILTER = 200  # like /failed

archive_page = ns.model("ArchivePage", {
    "items": fields.List(fields.Nested(message_out), required=True),
    "page": fields.Integer(required=True),
    "per_page": fields.Integer(required=True),
    "total": fields.Integer(required=True),
    "pages": fields.Integer(required=True),
})


@ns.route("/archive")
class Archive(Resource):
    @admin_only(ns)
    @ns.param("page", "Page number from 1", type=int, default=1, minimum=1, maximum=10**9)
    @ns.param("per_page", f"Items per page, 1-{MAX_PER_PAGE}", type=int, default=DEFAULT_PER_PAGE, minimum=1,
              maximum=MAX_PER_PAGE)
    @ns.param("session", "Only messages claimed or sent by this session", type=str)
    @ns.param("error", "Only messages whose error class or text contains this", type=str)
    @ns.response(200, "One page, newest failure first", archive_page)
    @ns.response(400, "Invalid query", error_model)
    def get(self) -> dict[str, Any]:
        """Archived messages, paged and filtered like the failed ones."""
        page = _int_arg("page", 1, 1, 10**9)
        per_page = _int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
        error = request.args.get("error") or None
        if error is not None and len(error) > MAX_ERROR_FILTER:
            raise bad_request(f"error must be at most {MAX_ERROR_FILTER} characters.", field="error")
        items, total = runtime.store().list_archived(offset=(page - 1) * per_page, limit=per_page,
                                                     session=_session_arg(), error=error)
        return {"items": [message_view(m) for m in items], "page": page, "per_page": per_page, "total": total,
                "pages": math.ceil(total / per_page)}


@ns.route("/archive/<string:message_id>")
@ns.param("message_id", "An archived message's id")
class ArchiveItem(Resource):
    @admin_only(ns)
    @ns.response(200, "The archived message, its attempts, timestamps and history", message_out)
    @ns.response(404, "No archived message has this id", error_model)
    def get(self, message_id: str) -> dict[str, Any]:
        """One archived message."""
        return message_view(load_archived(message_id))


def load_archived(message_id: str) -> Message:
    """The archived message, or ApiError 404."""
    if len(message_id) > MAX_ID:
        raise ApiError(404, f"No archived message has the id {message_id[:MAX_ID]!r}...", {"id": message_id[:MAX_ID]})
    try:
        return runtime.store().get_archived(message_id)
    except NotFound:
        raise ApiError(404, f"No archived message has the id {message_id!r}.", {"id": message_id}) from None

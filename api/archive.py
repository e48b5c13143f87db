"""The archive (admin, read-only): failed messages moved there after 30 days (beat's archive job)."""

from __future__ import annotations

from typing import Any

from flask_restx import Namespace, Resource, fields

from api.context import current_hub
from api.errors import ApiError, error_model
from api.messages import message_out, message_view
from api.monitoring import admin_only, failed_query_page, failed_query_params
from api.openapi import MESSAGE_ID_PATTERN
from wa_queue import operations
from wa_queue.errors import NotFound
from wa_queue.models import Message

ns = Namespace("archive", path="/api/whatsapp", description="Archived failed messages, read-only (admin)")
ns.add_model(error_model.name, error_model)

MAX_ID = 64  # like /messages/<id>: longer ids are not looked up

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
    @failed_query_params(ns)
    @ns.response(200, "One page, newest failure first", archive_page)
    @ns.response(400, "Invalid query", error_model)
    def get(self) -> dict[str, Any]:
        """Archived messages, paged and filtered like the failed ones."""
        return failed_query_page(lambda **query: operations.list_archived(current_hub(), **query))


@ns.route("/archive/<message_id:message_id>")
@ns.param("message_id", "An archived message's id", pattern=MESSAGE_ID_PATTERN)
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
        return operations.get_archived(current_hub(), message_id)
    except NotFound:
        raise ApiError(404, f"No archived message has the id {message_id!r}.", {"id": message_id}) from None

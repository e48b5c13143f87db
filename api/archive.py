"""The archive (admin, read-only): failed messages moved there after 30 days (beat's archive job)."""

from __future__ import annotations

from typing import Any

from flask_restx import Namespace, Resource, fields

from api.auth import admin_only
from api.context import current_hub
from api.errors import error_model, load_or_404, responses
from api.failed import failed_query_page, failed_query_params
from api.messages import message_out, message_view
from api.openapi import MESSAGE_ID_PATTERN
from wa_queue import operations
from wa_queue.models import Message

ns = Namespace("archive", path="/api/whatsapp", description="Archived failed messages, read-only (admin)")
ns.add_model(error_model.name, error_model)

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
    @responses(ns, (400, "Invalid query"))
    def get(self) -> dict[str, Any]:
        """Archived messages, paged and filtered like the failed ones."""
        return failed_query_page(lambda **query: operations.list_archived(current_hub(), **query))


@ns.route("/archive/<message_id:message_id>")
@ns.param("message_id", "An archived message's id", pattern=MESSAGE_ID_PATTERN)
class ArchiveItem(Resource):
    @admin_only(ns)
    @ns.response(200, "The archived message, its attempts, timestamps and history", message_out)
    @responses(ns, (404, "No archived message has this id"))
    def get(self, message_id: str) -> dict[str, Any]:
        """One archived message."""
        return message_view(load_archived(message_id))


def load_archived(message_id: str) -> Message:
    """The archived message, or ApiError 404."""
    return load_or_404(lambda found: operations.get_archived(current_hub(), found), message_id, what="archived message")

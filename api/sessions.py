"""WhatsApp sessions (admin): overview, the login QR code, restart, the warm-up ramp."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response
from flask_restx import Namespace, Resource, fields

from api.auth import admin_only
from api.context import current_hub
from api.errors import ApiError, bad_request, error_model, refuse_unknown_fields, responses
from api.fields import NullableFloat, NullableString
from api.health import warmup_model
from api.messages import read_json_object
from api.openapi import SessionEnum
from wa_queue import operations

log = logging.getLogger(__name__)

ns = Namespace("sessions", path="/api/whatsapp", description="WhatsApp sessions (admin)")
ns.add_model(error_model.name, error_model)
ns.add_model(warmup_model.name, warmup_model)

session_out = ns.model("Session", {
    "name": fields.String(required=True),
    "status": fields.String(required=True),
    "number": NullableString(),
    "connected": fields.Boolean(required=True),
    "needs_operator": fields.Boolean(required=True),
    "reconnect_attempts": fields.Integer(required=True),
    "next_reconnect_at": NullableString(description="ISO 8601 time"),
    "heartbeat_at": NullableString(description="ISO 8601 time"),
    "last_error": NullableString(description="Why the session is not connected (null once it connects)"),
    "last_error_at": NullableString(description="ISO 8601 time the last error was seen"),
    "hint": NullableString(description="What to do about last_error"),
    "sends_today": fields.Integer(required=True),
    "daily_cap": fields.Integer(required=True, description="Today's cap: the warm-up's while it ramps"),
    "warmup": fields.Nested(warmup_model, required=True, description="Where the session stands in the warm-up ramp"),
    "page_clock_offset_s": NullableFloat(description="The page's clock minus the worker's, in seconds (null: no "
                                                     "estimate yet)"),
})
warmup_in = ns.model("WarmupAction", {
    "action": fields.String(required=True, enum=["reset", "skip"],
                            description="reset: the ramp starts again from the session's next send (a number "
                                        "re-registered or that lost its reputation); skip: the normal cap at once "
                                        "(a number warmed up elsewhere)"),
}, strict=True)
sessions_out = ns.model("Sessions", {"sessions": fields.List(fields.Nested(session_out), required=True)})
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class PngFile(fields.Raw):
    """Swagger 2.0's `file`: a response body of raw bytes (here image/png)."""

    __schema_type__ = "file"


def _known(name: str) -> str:
    sessions = current_hub().settings.sessions
    if name not in sessions:
        raise ApiError(404, f"There is no session named {name[:64]!r}; sessions: {', '.join(sessions)}.",
                       {"sessions": list(sessions)})
    return name


@ns.route("/sessions")
class Sessions(Resource):
    @admin_only(ns)
    @ns.response(200, "Every configured session", sessions_out)
    @responses(ns, 503)
    def get(self) -> dict[str, Any]:
        """State, pacing and reconnection of every session."""
        return {"sessions": list(operations.sessions_overview(current_hub()).values())}


@ns.route("/sessions/<string:name>/qr")
@ns.param("name", "Session name (one of WAQ_SESSIONS; any other is 404)", enum=SessionEnum())
class SessionQr(Resource):
    @admin_only(ns)
    @ns.produces(["image/png", "application/json"])  # the PNG, or the JSON error shape
    @ns.response(200, "The QR code to scan with the phone (image/png)", PngFile())
    @responses(ns, (404, "Unknown session"), (409, "The session is not waiting for a scan"),
                   (503, "The broker (which holds the QR image) or the store is unreachable"))
    def get(self, name: str) -> Response:
        """The login QR code while the session waits for a scan.

        The session's worker (which owns the browser) writes the PNG to the broker Redis with a short expiry;
        no key means no scan is pending."""
        _known(name)
        try:
            png = operations.session_qr(current_hub(), name)
        except Exception as exc:  # noqa: BLE001 - redis errors of every kind mean the same to the caller
            log.warning("reading the QR of %s failed: %s: %s", name, type(exc).__name__, exc)
            raise ApiError(503, "The broker is unreachable, so the QR code cannot be read; retry later.",
                           {"component": "broker"}, {"Retry-After": "5"}) from None
        if not png or not bytes(png).startswith(PNG_MAGIC):
            status = operations.sessions_overview(current_hub())[name]["status"]
            raise ApiError(409, f"Session {name} is not waiting for a QR scan (status: {status}).",
                           {"status": status})
        return Response(bytes(png), 200, mimetype="image/png", headers={"Cache-Control": "no-store"})


@ns.route("/sessions/<string:name>/restart")
@ns.param("name", "Session name (one of WAQ_SESSIONS; any other is 404)", enum=SessionEnum())
class SessionRestart(Resource):
    @admin_only(ns)
    @ns.response(202, "Restart requested: the session's next health check reconnects with a fresh counter",
                 session_out)
    @responses(ns, (404, "Unknown session"), 503)
    def post(self, name: str) -> tuple[dict[str, Any], int]:
        """Restart a session (also clears 'needs operator')."""
        return operations.restart_session(current_hub(), _known(name)), 202


@ns.route("/sessions/<string:name>/warmup")
@ns.param("name", "Session name (one of WAQ_SESSIONS; any other is 404)", enum=SessionEnum())
class SessionWarmup(Resource):
    @admin_only(ns)
    @ns.expect(warmup_in, validate=False)
    @ns.response(200, "Done: the session with its cap for today and its place in the ramp", session_out)
    @responses(ns, (400, "Invalid body (an unknown field, an action other than reset or skip)"),
                   (404, "Unknown session"), 413, 415, 503)
    def post(self, name: str) -> dict[str, Any]:
        """Reset or skip a session's warm-up ramp."""
        _known(name)
        body = read_json_object()
        refuse_unknown_fields(body, {"action"})
        if "action" not in body:
            raise bad_request('action is required: "reset" or "skip".', field="action")
        action = body["action"]
        if not isinstance(action, str):
            raise bad_request('action must be "reset" or "skip".', field="action")
        return operations.warmup_action(current_hub(), name, action)

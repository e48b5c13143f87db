"""The suppression list (admin): the numbers nothing is sent to. List it, put a number on it, take one off; each
change records the API key's name as who made it (`by`). The rules are wa_queue/operations.py's: a number is
validated and normalised as an enqueue's, so a bad one is a 400 naming phone, and the list's effect (enqueue refused
with 409, queued messages cancelled unclicked) is the store's (docs/opt-out.md).
"""

from __future__ import annotations

from typing import Any

from flask import g
from flask_restx import Namespace, Resource, fields

from api.auth import admin_only
from api.context import current_hub
from api.errors import ApiError, bad_request, error_model, refuse_unknown_fields, responses
from api.fields import NullableString
from api.inbound import page_model, page_of, page_params
from api.messages import read_json_object
from wa_queue import operations
from wa_queue.validation import MAX_PHONE_CHARS, MIN_PHONE_DIGITS, PHONE_PATTERN

ns = Namespace("suppressions", path="/api/whatsapp", description="The suppression list: numbers nothing is sent to "
                                                                  "(admin)")
ns.add_model(error_model.name, error_model)

PHONE_TEXT = ("A possible number in E.164's shape, written as an enqueue takes it (with its country code, or "
              "without a + as WAQ_DEFAULT_REGION's or international); stored as E.164")
suppression_out = ns.model("Suppression", {
    "phone": fields.String(required=True, description="E.164"),
    "since": fields.DateTime(required=True, description="When it was put on the list"),
    "by": fields.String(required=True, description="Who put it there: an API key's name, cli:<user>, import:<file>, "
                                                   "or the session that read its opt-out reply"),
    "session": NullableString(description="The session that read the opt-out reply; null for an operator's entry"),
    "word": NullableString(description="The opt-out word it replied; null for an operator's entry"),
})
suppression_page = page_model(ns, "SuppressionPage", suppression_out)
suppression_in = ns.model("NewSuppression", {
    "phone": fields.String(required=True, min_length=MIN_PHONE_DIGITS, max_length=MAX_PHONE_CHARS,
                           pattern=PHONE_PATTERN, description=PHONE_TEXT, example="+14155550123"),
}, strict=True)
REMOVED_MEANWHILE = (409, "Taken off the list by another request while this one was answered; send it again")


@ns.route("/suppressions")
class Suppressions(Resource):
    @admin_only(ns)
    @page_params(ns)
    @ns.response(200, "One page of the list, newest entry first", suppression_page)
    @responses(ns, (400, "Invalid query"), 503)
    def get(self) -> dict[str, Any]:
        """The suppression list, newest entry first."""
        return page_of(lambda **page: operations.list_suppressions(current_hub(), **page))

    @admin_only(ns)
    @ns.expect(suppression_in, validate=False)
    @ns.response(201, "Put on the list: refused at enqueue from now on, its queued messages cancelled unclicked",
                 suppression_out)
    @ns.response(200, "It was on the list already: the entry as it stands (its first since, by and word)",
                 suppression_out)
    @responses(ns, (400, "Invalid body (details.field names it: phone, or an unknown field)"), REMOVED_MEANWHILE,
               413, 415, 503)
    def post(self) -> tuple[dict[str, Any], int]:
        """Put a number on the suppression list (by: this key's name)."""
        body = read_json_object()
        refuse_unknown_fields(body, {"phone"})
        if "phone" not in body:
            raise bad_request("phone is required.", field="phone")
        hub = current_hub()
        added = operations.add_suppression(hub, body["phone"], by=g.api_key.name)
        entry = operations.get_suppression(hub, body["phone"])
        if entry is None:
            raise ApiError(REMOVED_MEANWHILE[0], f"{body['phone']} was taken off the suppression list while it was "
                                                 "being put on it; send the request again.", {"field": "phone"})
        return entry.to_dict(), 201 if added else 200


@ns.route("/suppressions/<path:phone>")  # path: the pattern allows "/" between digits
@ns.param("phone", PHONE_TEXT, pattern=PHONE_PATTERN, minLength=MIN_PHONE_DIGITS, maxLength=MAX_PHONE_CHARS)
class SuppressionItem(Resource):
    @admin_only(ns)
    @ns.response(204, "Taken off the list: messages to it are accepted again")
    @responses(ns, (400, "Invalid phone (details.field: phone)"), (404, "The number is not on the list"), 503)
    def delete(self, phone: str) -> tuple[str, int]:
        """Take a number off the suppression list (by: this key's name, in the list's log)."""
        if not operations.remove_suppression(current_hub(), phone, by=g.api_key.name):
            raise ApiError(404, f"{phone} is not on the suppression list.", {"field": "phone"})
        return "", 204

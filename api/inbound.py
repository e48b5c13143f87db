"""The replies the sessions read (admin, read-only): `GET /inbound`, newest first, filtered by number, session and read
time; and the page query (page, per_page) that this list and the suppression list (api/suppressions.py) share with
/failed. The filters' rules are operations.list_inbound's (wa_queue/validation.py), so a bad one is a 400 naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flask import request
from flask_restx import Namespace, Resource, fields

from api.auth import admin_only
from api.context import current_hub
from api.errors import bad_request, error_model, responses
from api.failed import DEFAULT_PER_PAGE, MAX_PER_PAGE, _int_arg
from api.fields import NullableDateTime, NullableString
from api.openapi import SessionFilter
from wa_queue import operations
from wa_queue.models import OptChange
from wa_queue.validation import DATETIME_PATTERN, MAX_DATETIME_CHARS, MAX_PHONE_CHARS, MIN_PHONE_DIGITS, PHONE_PATTERN

ns = Namespace("inbound", path="/api/whatsapp", description="Replies the sessions read (admin)")
ns.add_model(error_model.name, error_model)

MAX_PAGE = 10**9
# A time past year 9999 once in UTC (9999-12-31T23:00:00-05:00) is well-formed and cannot be held: TimeConflict.
TIME_BEYOND = (409, "since or until is beyond the year 9999 in UTC (details.field names it)")

inbound_out = ns.model("Inbound", {
    "id": fields.String(required=True, description="The reply's id (the key of its message.received event)"),
    "session": fields.String(required=True, description="The session that read it"),
    "chat": fields.String(required=True, description="What the page shows for the chat: a number, or the name of a "
                                                     "contact who hides it"),
    "wa_id": fields.String(required=True, description="WhatsApp's id of the row"),
    "text": fields.String(required=True, description="As the contact wrote it: their text, never markup"),
    "phone": NullableString(description="Its E.164 number; null when the page shows none (usernames, @lid ids)"),
    "has_number": fields.Boolean(required=True),
    "received_at": fields.DateTime(required=True, description="When the worker read it"),
    "shown_at": NullableDateTime(description="The time the page printed (its clock); null when unreadable"),
    "reply_to": NullableString(description="The last message this system sent to the number"),
    # null among the values: a nullable enum's null is one of its values for the schema's readers.
    "opt": NullableString(enum=[*(o.value for o in OptChange), None],
                          description="What it did to the suppression list: out (an opt-out word put the number on "
                                      "it), in (an opt-in word took it off), null (nothing)"),
})


def page_model(namespace: Namespace, name: str, item: Any) -> Any:
    """The envelope of one page of `item`s, as /failed's: items, page, per_page, total, pages."""
    return namespace.model(name, {
        "items": fields.List(fields.Nested(item), required=True),
        "page": fields.Integer(required=True),
        "per_page": fields.Integer(required=True),
        "total": fields.Integer(required=True),
        "pages": fields.Integer(required=True),
    })


inbound_page = page_model(ns, "InboundPage", inbound_out)


# ---- the page query, as /failed has it ------------------------------------------------------------------------------
def page_params(namespace: Namespace) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document `page` and `per_page` as /failed does (api/failed.py)."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = namespace.param("per_page", f"Items per page, 1-{MAX_PER_PAGE}", type=int, default=DEFAULT_PER_PAGE,
                             minimum=1, maximum=MAX_PER_PAGE)(fn)
        return namespace.param("page", "Page number from 1", type=int, default=1, minimum=1, maximum=MAX_PAGE)(fn)
    return wrap


def page_of(list_page: Callable[..., tuple[list[Any], int]], **query: Any) -> dict[str, Any]:
    """One page from `list_page(limit=, offset=, **query)` (an operations list) by the request's page and per_page,
    in /failed's envelope; each item by its to_dict()."""
    page = _int_arg("page", 1, 1, MAX_PAGE)
    per_page = _int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    items, total = list_page(limit=per_page, offset=(page - 1) * per_page, **query)
    return {"items": [item.to_dict() for item in items], "page": page, "per_page": per_page, "total": total,
            "pages": math.ceil(total / per_page)}


# ---- GET /inbound -------------------------------------------------------------------------------------------------
def _filters(namespace: Namespace) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name, text, kwargs in (
            ("until", "Only replies read before this time (RFC 3339 with seconds and an offset)",
             {"type": str, "format": "date-time", "pattern": DATETIME_PATTERN, "maxLength": MAX_DATETIME_CHARS}),
            ("since", "Only replies read at or after this time (RFC 3339 with seconds and an offset)",
             {"type": str, "format": "date-time", "pattern": DATETIME_PATTERN, "maxLength": MAX_DATETIME_CHARS}),
            ("session", "Only replies this session read (empty: every session)",
             {"type": str, "enum": SessionFilter()}),
            ("phone", "Only replies from this number, written as an enqueue takes it (stored as E.164)",
             {"type": str, "pattern": PHONE_PATTERN, "minLength": MIN_PHONE_DIGITS, "maxLength": MAX_PHONE_CHARS}),
        ):
            fn = namespace.param(name, text, **kwargs)(fn)
        return fn
    return wrap


@ns.route("/inbound")
class Inbound(Resource):
    @admin_only(ns)
    @_filters(ns)
    @page_params(ns)
    @ns.response(200, "One page, newest first", inbound_page)
    @responses(ns, (400, "Invalid query (details.field names it)"), TIME_BEYOND, 503)
    def get(self) -> dict[str, Any]:
        """Replies read in the sessions' chats, newest first."""
        phone = request.args.get("phone")
        if phone == "":  # operations reads an empty phone as no filter; the document's pattern refuses it
            raise bad_request("phone must not be empty; leave it out for every number.", field="phone")
        return page_of(lambda **page: operations.list_inbound(current_hub(), **page), phone=phone,
                       session=request.args.get("session") or None, since=request.args.get("since"),
                       until=request.args.get("until"))

"""What the OpenAPI document needs beyond Flask-RESTX's models: rules that depend on settings, and routing that keeps
the document and the URL map in step.

- `SessionEnum`, `SessionNames` and `SessionFilter` stand in for an enum of the configured sessions (WAQ_SESSIONS).
  The models are module-level and shared by every app, so the names are filled in per app, when its document is
  built (`filled_schema`), never in the shared models.
- `with_server_refusals` lists on every operation the 400 gunicorn gives before the app runs (a request line or
  headers over its limits), which api/gunicorn_worker.py writes in the Error shape.
- `CallbackUrlPattern` stands in for the callback URL's pattern, which depends on WAQ_OUTBOUND_ALLOW (the dotted
  quads it admits): filled the same way, from `validation.callback_url_pattern(allow)`.
- `MessageIdConverter` routes `<message_id:...>`: a message id never equals a sibling route's fixed word, so
  `GET /messages/bulk` or `DELETE /failed/retry-all` answer 405 with an `Allow` header naming the documented
  methods, instead of reaching the item route and answering 404.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from werkzeug.routing import BaseConverter

from wa_queue.outbound import NOTHING_ALLOWED, AllowList
from wa_queue.validation import callback_url_pattern

# What new_message_id() makes (a UUIDv7 in hex). Other ids are answered 404, like an id that is not stored.
MESSAGE_ID_PATTERN = "^[0-9a-f]{32}$"
# Fixed words of routes that sit beside an item route (/messages/bulk, /failed/retry-all).
RESERVED_IDS = frozenset({"bulk", "retry-all"})


class SessionEnum(list):
    """Marker: the configured session names (a path parameter)."""


class SessionNames(list):
    """Marker: the configured session names, or null (a request body's optional session)."""


class SessionFilter(list):
    """Marker: the configured session names, or "" (a query filter left empty means every session)."""


class CallbackUrlPattern(str):
    """Marker: the callback URL's pattern for this app's WAQ_OUTBOUND_ALLOW (the value is the pattern with nothing
    allowed, what a document built without an app says)."""


class MessageIdConverter(BaseConverter):
    """Any path segment but the reserved words. Excluded in the regex itself (not in to_python), because werkzeug
    gathers the methods of an OPTIONS answer's Allow header from the rules whose regex matches."""

    regex = "(?!(?:" + "|".join(re.escape(word) for word in sorted(RESERVED_IDS)) + ")$)[^/]+"


def filled_schema(schema: dict[str, Any], session_names: Sequence[str],
                  allow: AllowList = NOTHING_ALLOWED) -> dict[str, Any]:
    """A copy of Flask-RESTX's document with every session marker replaced by this app's session names, and the
    callback URL's pattern by the one for this app's allowance."""
    sessions = list(session_names)
    filled = copy.deepcopy(schema)
    stack: list[Any] = [filled]
    while stack:
        item = stack.pop()
        children = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, value in list(children):
            if isinstance(value, SessionEnum):
                item[key] = sessions
            elif isinstance(value, SessionNames):
                item[key] = [*sessions, None]
            elif isinstance(value, SessionFilter):
                item[key] = ["", *sessions]
            elif isinstance(value, CallbackUrlPattern):
                item[key] = callback_url_pattern(allow)
            else:
                stack.append(value)
    return filled


# gunicorn's own refusal (api/gunicorn_worker.py answers it in the Error shape), possible on any operation; where an
# operation documents 400 already, its description stands (the shape is the same).
SERVER_REFUSALS = {
    "400": "The request line (method, path and query) or the headers are over the server's limits (gunicorn's "
           "limit_request_line, 4,094 bytes by default, and limit_request_fields / limit_request_field_size)",
}


def with_server_refusals(schema: dict[str, Any], error_ref: str = "#/definitions/Error") -> dict[str, Any]:
    """`schema` with SERVER_REFUSALS among every operation's responses (in place; returned for chaining)."""
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            responses = operation.setdefault("responses", {})
            for status, description in SERVER_REFUSALS.items():
                responses.setdefault(status, {"description": description, "schema": {"$ref": error_ref}})
    return schema


# A message carries text, or media with an optional caption (as `caption`, or as `text`, not both): what Swagger 2.0
# cannot say is said in JSON Schema's own anyOf and not, which validators and generators of the body (schemathesis,
# hypothesis-jsonschema) read; the descriptions say it in words for the rest.
MESSAGE_SHAPES = [
    {"required": ["text"], "properties": {"media": {"not": {}}, "caption": {"not": {}}}},
    {"required": ["media"], "not": {"required": ["text", "caption"]}},
]


# A media input names an upload (id) or a URL (with its optional filename), never both; as_document is for a photo,
# a video or a document, not an audio file.
MEDIA_SHAPES = {
    "anyOf": [{"required": ["id"], "properties": {"url": {"not": {}}, "filename": {"not": {}}}},
              {"required": ["url"], "properties": {"id": {"not": {}}}}],
    "not": {"required": ["kind", "as_document"],
            "properties": {"kind": {"enum": ["audio"]}, "as_document": {"enum": [True]}}},
}


def with_message_shapes(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with MESSAGE_SHAPES on the new-message model and MEDIA_SHAPES on the media input (in place;
    returned for chaining)."""
    definitions = schema.get("definitions", {})
    if "NewMessage" in definitions:
        definitions["NewMessage"]["anyOf"] = copy.deepcopy(MESSAGE_SHAPES)
    if "MediaInput" in definitions:
        definitions["MediaInput"].update(copy.deepcopy(MEDIA_SHAPES))
    return schema

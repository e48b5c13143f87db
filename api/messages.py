"""Producer endpoints: enqueue one or many messages, look one up.

A 202 is answered only after operations.submit() returned, i.e. after the store committed (invariant 1); a failing
store answers 503 and nothing is stored. Validation happens before anything is written: a bulk request with one bad
item stores nothing and names every bad item. The rules, and the patterns and limits this document publishes, are
wa_queue/validation.py's, shared with the Python API and the CLI; this module adds only the request's shape
(unknown and missing fields, the bulk envelope) and the idempotency key's scope.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from flask import Response, current_app, g, request
from flask_restx import Namespace, Resource, fields

from api import auth
from api.context import current_hub
from api.errors import (
    RATE_LIMITED,
    ApiError,
    bad_request,
    error_model,
    json_response,
    load_or_404,
    refuse_unknown_fields,
    responses,
)
from api.fields import (
    NullableDateTime,
    NullableDateTimeText,
    NullableInteger,
    NullableNested,
    NullableRaw,
    NullableString,
)
from api.openapi import MESSAGE_ID_PATTERN, CallbackUrlPattern, SessionNames
from wa_queue import operations, owners
from wa_queue.errors import MediaNotFound, MediaTooLarge, StateConflict, ValidationError
from wa_queue.media.rules import KINDS, MAX_CAPTION_CHARS, MAX_FILENAME_CHARS, UPLOAD_ID_PATTERN
from wa_queue.models import Category, Message, MessageStatus, NewMessage
from wa_queue.validation import (
    BATCH_PATTERN,
    CALLBACK_URL_PATTERN,
    CATEGORIES,
    DATETIME_PATTERN,
    HH_MM_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_BATCH_CHARS,
    MAX_BULK,
    MAX_CALLBACK_URL,
    MAX_DATETIME_CHARS,
    MAX_IDEMPOTENCY_KEY,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_PHONE_CHARS,
    MAX_TEXT_CHARS,
    MAX_TTL_S,
    MIN_PHONE_DIGITS,
    PHONE_PATTERN,
    PRIORITIES,
    TEXT_PATTERN,
    json_type,
    validate_batch,
    validate_idempotency_key,
)

ns = Namespace("messages", path="/api/whatsapp", description="Enqueue WhatsApp messages and follow them")
ns.add_model(error_model.name, error_model)

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_PARAM = {"in": "header", "type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN, "minLength": 1,
                     "maxLength": MAX_IDEMPOTENCY_KEY}
MESSAGE_FIELDS = frozenset({"phone", "text", "session", "callback_url", "metadata", "send_window", "send_at",
                            "expires_at", "ttl_s", "priority", "batch", "media", "caption", "category"})
STATUSES = [status.value for status in MessageStatus]


class SessionField(NullableString):
    """A session name or null; the document's enum is this app's WAQ_SESSIONS (filled in by api/openapi.py)."""

    def schema(self) -> dict[str, Any]:
        schema = super().schema()
        schema["enum"] = SessionNames()
        return schema


send_window_model = ns.model("SendWindow", {
    "start": fields.String(required=True, pattern=HH_MM_PATTERN, min_length=5, max_length=5,
                           description="Opens at this local time (24-hour HH:MM)", example="08:00"),
    "end": fields.String(required=True, pattern=HH_MM_PATTERN, min_length=5, max_length=5,
                         description="Closes at this local time (excluded); before start: the window runs past "
                                     "midnight", example="21:00"),
}, strict=True)
media_in = ns.model("MediaInput", {
    "id": fields.String(description="A file stored by POST /api/whatsapp/media with this key (not with url)",
                        pattern=UPLOAD_ID_PATTERN, min_length=32, max_length=32,
                        example="0193b2c4e5f67a8b9c0d1e2f3a4b5c6d"),
    "url": fields.String(description="An http(s) URL the file is fetched from before the answer (not with id), of "
                                     "the callback URL's form: through the outbound rule (a name resolving to an "
                                     "internal address is refused unless WAQ_OUTBOUND_ALLOW names it), no redirect "
                                     "followed, within WAQ_MEDIA_FETCH_TIMEOUT_S and the size caps. A fetch that "
                                     "fails, or bytes that cannot be sent: 409 naming media (what is at the URL "
                                     "decides)", max_length=MAX_CALLBACK_URL,
                         pattern=CallbackUrlPattern(CALLBACK_URL_PATTERN),
                         example="https://shop.example/invoices/42.pdf"),
    "filename": NullableString(description="With url: the name the recipient sees (default: the URL's last path "
                                           "segment)", min_length=1, max_length=MAX_FILENAME_CHARS,
                               example="invoice-42.pdf"),
    "kind": NullableString(description="How it is sent; from the file's type when null", enum=list(KINDS)),
    "as_document": fields.Boolean(description="A photo or video sent as a file, uncompressed", default=False),
}, strict=True)
message_in = ns.model("NewMessage", {
    "phone": fields.String(required=True, min_length=MIN_PHONE_DIGITS, max_length=MAX_PHONE_CHARS,
                           pattern=PHONE_PATTERN,
                           description="A possible number in E.164's shape: with its country code (+44...), or "
                                       "without a + either as long as a number of WAQ_DEFAULT_REGION (read as one) "
                                       "or international without its +; spaces and ( ) . - / allowed; stored as "
                                       "E.164. Whether it is on WhatsApp is known at send time (InvalidNumber)",
                           example="+14155550123"),
    "text": fields.String(min_length=1, max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN,
                          description="Not only whitespace; no NUL character. Required unless media is given; with "
                                      "media it is the caption (or give caption)", example="Your code is 1234"),
    "media": fields.Nested(media_in, description="A file to send: {id} of an upload, or {url}; the message's text "
                                                 "is then its optional caption. 400 (413 when too big) naming media "
                                                 "for a file that cannot be sent"),
    "caption": fields.String(min_length=1, max_length=MAX_CAPTION_CHARS, pattern=TEXT_PATTERN,
                             description="A media message's caption (the text rules, at most 1,024 characters; none "
                                         "on audio); not with text", example="Your invoice"),
    "session": SessionField(description="Preferred WhatsApp session (any available one when null)"),
    "callback_url": NullableString(description="http(s) URL told about status changes. Its host: a name whose last "
                                               "label starts with a letter, of labels of 1-63 characters, or a "
                                               "dotted quad of a public IPv4 address (or one WAQ_OUTBOUND_ALLOW "
                                               "names): the pattern is the whole rule of its form. A name is judged "
                                               "at delivery: one over 253 characters, or resolving to an internal "
                                               "address (loopback, private, link-local, ...) that "
                                               "WAQ_OUTBOUND_ALLOW does not allow, is refused then",
                                   max_length=MAX_CALLBACK_URL, pattern=CallbackUrlPattern(CALLBACK_URL_PATTERN),
                                   example="https://shop.example/hooks/whatsapp"),
    "metadata": NullableRaw(description=f"Any JSON object, returned as is: at most {MAX_METADATA_BYTES} bytes as "
                                        f"JSON and nested at most {MAX_METADATA_DEPTH} levels (400 naming metadata "
                                        "otherwise)",
                            example={"order": 42}),
    "send_window": NullableNested(send_window_model,
                                  description="Quiet hours in the recipient's time zone (from the number; where it "
                                              "has several, the window must be open in all of them): outside it the "
                                              "message waits, using no attempt. A start equal to its end is the "
                                              "whole day; a window that never opens for the number is answered 409 "
                                              "naming send_window. Null: WAQ_SEND_WINDOW, if set"),
    "send_at": NullableDateTimeText(
        description="Not sent before this time (RFC 3339 with seconds and an offset). The message waits in the store, "
                    "pending, and is published when it falls due; with a send window, the later of the two wins. A "
                    "time already past means now; more than WAQ_MAX_SCHEDULE_DAYS (35) days ahead is answered 409 "
                    "naming send_at", pattern=DATETIME_PATTERN, max_length=MAX_DATETIME_CHARS,
        example="2026-12-24T09:30:00+01:00"),
    "expires_at": NullableDateTimeText(
        description="Never sent from this time on: still unsent then (and not in doubt), the message ends `expired`, "
                    "with its callback. Not with ttl_s. Already past, or not after send_at: 409 naming it. Neither "
                    "given: WAQ_DEFAULT_TTL_S, if set", pattern=DATETIME_PATTERN, max_length=MAX_DATETIME_CHARS,
        example="2026-12-24T10:00:00+01:00"),
    "ttl_s": NullableInteger(description="Seconds from the enqueue until it expires (see expires_at); not with "
                                         "expires_at", min=1, max=MAX_TTL_S, example=300),
    "priority": NullableString(description="What the session sends first: every due high message before any due "
                                           "normal one, normal before low; first in, first out within one. Pacing, "
                                           "caps, warm-up and windows apply to all (WAQ_HIGH_SKIPS_WINDOW lets high "
                                           "skip the window). Null: normal", enum=list(PRIORITIES), example="high"),
    "batch": NullableString(description="The batch it belongs to, which GET /batches/<batch> follows and which can be "
                                        "paused, resumed and cancelled; a bulk request without one is given one",
                            pattern=BATCH_PATTERN, min_length=1, max_length=MAX_BATCH_CHARS, example="reminders-1224"),
    "category": NullableString(description="transactional (a receipt, a code, a reminder; null: this) or marketing. "
                                           "With WAQ_OPT_OUT_SCOPE=marketing, a number on the suppression list still "
                                           "gets transactional messages; by default (all) it gets none",
                               enum=list(CATEGORIES), example="marketing"),
}, strict=True)
bulk_in = ns.model("NewMessages", {
    "messages": fields.List(fields.Nested(message_in), required=True, min_items=1, max_items=MAX_BULK),
    "batch": NullableString(description="The batch of every item that names none; null: a new batch is made",
                            pattern=BATCH_PATTERN, min_length=1, max_length=MAX_BATCH_CHARS, example="reminders-1224"),
}, strict=True)
accepted = ns.model("Accepted", {
    "id": fields.String(required=True),
    "status": fields.String(required=True, enum=STATUSES),
})
bulk_accepted = ns.model("BulkAccepted", {
    "count": fields.Integer(required=True),
    "batch": fields.String(required=True, description="The batch of these messages (given, or made for them)"),
    "created": fields.Integer(required=True, description="How many are new (the rest are idempotent replays)"),
    "messages": fields.List(fields.Nested(accepted), required=True),
})
history_entry = ns.model("HistoryEntry", {
    "at": fields.DateTime(required=True),
    "event": fields.String(required=True),
    "session": NullableString(),
    "error_class": NullableString(),
    "error_text": NullableString(),
})
media_out = ns.model("MediaFile", {
    "kind": fields.String(required=True, enum=list(KINDS)),
    "filename": fields.String(required=True),
    "size": fields.Integer(required=True, description="Bytes"),
    "mimetype": fields.String(required=True),
    "sha256": fields.String(required=True),
})
message_out = ns.model("Message", {
    "id": fields.String(required=True),
    "phone": fields.String(required=True),
    "text": fields.String(required=True, description="The text, or a media message's caption (may be empty)"),
    "media": NullableNested(media_out, description="A media message's file: its kind, name, size, type and SHA-256"),
    "status": fields.String(required=True, enum=STATUSES),
    "session": NullableString(description="The session the producer asked for"),
    "priority": fields.String(required=True, enum=list(PRIORITIES)),
    "category": fields.String(required=True, enum=[c.value for c in Category],
                              description="opt_out_reply: the confirmation WAQ_OPT_OUT_REPLY queued"),
    "batch": NullableString(),
    "send_at": NullableDateTime(description="Not sent before (as asked; next_attempt_at starts there)"),
    "expires_at": NullableDateTime(description="Never sent from then on"),
    "expired_at": NullableDateTime(),
    "cancelled_at": NullableDateTime(),
    "attempts": fields.Integer(required=True, description="Attempts that ended in an error"),
    "idempotency_key": NullableString(description="As stored: '<key name> <Idempotency-Key>', and '<key name> "
                                                  "<Idempotency-Key> <i>' for item i of a bulk request"),
    "enqueued_by": NullableString(description="The owner: the name (never the value) of the API key that queued it; "
                                              "null when queued by the Python API or the CLI. Only admin keys see "
                                              "messages of other owners"),
    "callback_url": NullableString(),
    "metadata": NullableRaw(),
    "send_window": NullableNested(send_window_model, description="The message's own window (null: WAQ_SEND_WINDOW)"),
    "created_at": fields.DateTime(required=True),
    "updated_at": fields.DateTime(required=True),
    "next_attempt_at": fields.DateTime(required=True),
    "last_attempt_at": NullableDateTime(description="When a worker last claimed it for an attempt"),
    "sent_at": NullableDateTime(),
    "sent_by": NullableString(),
    "wa_id": NullableString(),
    "delivered_at": NullableDateTime(),
    "read_at": NullableDateTime(),
    "failed_at": NullableDateTime(),
    "last_error_class": NullableString(),
    "last_error_text": NullableString(),
    "in_doubt": fields.Boolean(required=True, description="A send started and its outcome is not known yet"),
    "history": fields.List(fields.Nested(history_entry), required=True),
})

_PUBLIC = ("id", "phone", "text", "status", "session", "attempts", "idempotency_key", "callback_url", "metadata",
           "send_window", "created_at", "updated_at", "next_attempt_at", "last_attempt_at", "sent_at", "sent_by",
           "wa_id", "delivered_at", "read_at", "failed_at", "last_error_class", "last_error_text", "history",
           "enqueued_by", "priority", "batch", "send_at", "expires_at", "expired_at", "cancelled_at", "media",
           "category")


def message_view(message: Message) -> dict[str, Any]:
    """What clients see of a message: leases, dispatch bookkeeping and hashes stay internal."""
    data = message.to_dict()
    view = {name: data[name] for name in _PUBLIC}
    view["in_doubt"] = message.in_doubt
    return view


def read_json_object() -> dict[str, Any]:
    """The request body as a JSON object, or ApiError 415 (not JSON) / 400 (malformed, not an object)."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "The request body must be JSON, sent with Content-Type: application/json.",
                       {"content_type": request.content_type or ""})
    raw = request.get_data(cache=True)  # 413 comes from here when the body is over MAX_CONTENT_LENGTH
    cap = current_app.config.get("MAX_CONTENT_LENGTH")
    if cap and request.content_length is None and len(raw) >= cap and request.stream.read(1):
        # A chunked body has no Content-Length: werkzeug stops reading at the cap without complaint.
        raise ApiError(413, f"The request body is larger than {cap} bytes.", {"limit_bytes": cap})
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        # Lone surrogates ("\ud800") parse but cannot be stored as UTF-8: refuse them here, not with a 500 later.
        # Only a \u escape can make one (strict UTF-8 decoding refuses encoded surrogates), so most bodies skip this.
        if b"\\u" in raw:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as exc:  # UnicodeError and JSONDecodeError are ValueErrors
        raise bad_request(f"The request body is not valid JSON: {_short(exc)}.") from None
    if not isinstance(body, dict):
        raise bad_request(f"The request body must be a JSON object, not {json_type(body)}.")
    return body


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _short(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0][:200] or type(exc).__name__


def _idempotency_key() -> str | None:
    """The Idempotency-Key header as given (checked); build() scopes it by the caller's key name, so one producer
    can never replay (and read) another's (wa_queue/owners.py)."""
    return validate_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER), IDEMPOTENCY_HEADER)


def build(item: dict[str, Any], idempotency_key: str | None, index: int | None = None,
          batch: str | None = None) -> NewMessage:
    """One item of a request -> NewMessage owned by the caller's key; ValidationError naming the field (unknown
    fields included). `idempotency_key` is the checked header; `index` the item's place in a bulk request. Both are
    scoped here, after the item's rules ran. `batch`: a bulk request's batch, which each item naming none joins (an
    item's own is validated and wins, as the document says)."""
    unknown = sorted(set(item) - MESSAGE_FIELDS)
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(unknown)}", unknown[0])
    if "phone" not in item:
        raise ValidationError("phone is required", "phone")
    if "text" not in item and item.get("media") is None:
        raise ValidationError("text is required (or media, with an optional caption)", "text")
    if item.get("media") is not None and not isinstance(item["media"], dict):
        raise ValidationError(f"media must be an object {{id}} or {{url, filename}}, not {json_type(item['media'])}",
                              "media")
    window = item.get("send_window")
    if window is not None and not isinstance(window, dict):  # the CLI's and the CSV's "HH:MM-HH:MM" is not JSON's
        raise ValidationError(f'send_window must be an object {{"start": "HH:MM", "end": "HH:MM"}}, not '
                              f"{json_type(window)}", "send_window")
    for name in ("send_at", "expires_at"):  # a datetime only from Python: JSON's is a string
        if item.get(name) is not None and not isinstance(item[name], str):
            raise ValidationError(f"{name} must be a string (an RFC 3339 date and time), not {json_type(item[name])}",
                                  name)
    new = operations.build_message(current_hub(), item["phone"], item.get("text"), session=item.get("session"),
                                callback_url=item.get("callback_url"), metadata=item.get("metadata"),
                                send_window=item.get("send_window"), send_at=item.get("send_at"),
                                expires_at=item.get("expires_at"), ttl_s=item.get("ttl_s"),
                                priority=item.get("priority"), category=item.get("category"),
                                batch=item["batch"] if item.get("batch") is not None else batch,
                                media=item.get("media"), caption=item.get("caption"), enqueued_by=g.api_key.name)
    name = g.api_key.name
    if idempotency_key is None:
        return dataclasses.replace(new, enqueued_by=name)
    return dataclasses.replace(new, enqueued_by=name,
                               idempotency_key=owners.scoped_idempotency_key(name, idempotency_key, index),
                               legacy_idempotency_key=owners.legacy_idempotency_key(name, idempotency_key, index))


def _accepted(message: Message) -> dict[str, str]:
    return {"id": message.id, "status": message.status.value}


LOCATION = {"Location": {"type": "string", "description": "/api/whatsapp/messages/<id>: where to follow it"}}


def _location(message_id: str) -> dict[str, str]:
    return {"Location": f"/api/whatsapp/messages/{message_id}"}


@ns.route("/messages")
class Messages(Resource):
    @ns.doc(security=auth.SCHEME, params={IDEMPOTENCY_HEADER: {
        **IDEMPOTENCY_PARAM, "description": "Same key and body again: 200 with the same message; "
                                                          "same key, other body: 409"}})
    @ns.expect(message_in, validate=False)
    @ns.response(202, "Committed to the store; delivery is queued", accepted, headers=LOCATION)
    @ns.response(200, "Idempotent replay: the message stored earlier with this key and body", accepted,
                 headers=LOCATION)
    @responses(ns, 400, 401, 403, (404, "media.id is not an upload of this key (or it was collected, or is older "
                                        "than WAQ_MEDIA_UPLOAD_TTL_H); details.field: media"),
               (409, "The Idempotency-Key is used with another body, or a time cannot hold now "
                     "(send_at too far ahead, an expiry already past or before send_at, a "
                     "send window never open for the number), or media.url gave no file that can be sent now, or "
                     "the number is on the suppression list (it opted out; details.field: phone)"),
               (413, "The body is over WAQ_MAX_REQUEST_BYTES, or the file is over its kind's cap "
                     "(details.field: media, details.limit_bytes)"), 415, 429,
                   (503, "The store is unavailable; nothing was stored"))
    @auth.requires(auth.PRODUCER)
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Queue one message."""
        return enqueue_one()


def admit(count: int) -> None:
    """The caller's key may enqueue `count` messages now (its rate limits, wa_queue/rate_limit.py), or RateLimited,
    answered 429 with Retry-After. Checked before any validation or store work, so a flood costs little."""
    hub, name = current_hub(), g.api_key.name
    hub.rate_limiter.admit(name, count, hub.settings.rate_for(name))


def enqueue_one() -> tuple[dict[str, Any], int, dict[str, str]]:
    """POST /messages once the caller is authenticated: (body, status, headers)."""
    body = read_json_object()
    admit(1)
    key = _idempotency_key()
    new = build(body, key)
    message, created = operations.submit(current_hub(), [new])[0]
    return _accepted(message), 202 if created else 200, _location(message.id)


def enqueue_view() -> Response:
    """The view app.create_app() serves POST /messages with: Messages.post without Flask-RESTX's dispatch and
    representation layers, which cost every enqueue and add nothing to it. The resource above still documents the
    operation, and errors take the same path (RESTX routes them by endpoint)."""
    auth.authenticate(auth.PRODUCER)
    return json_response(*enqueue_one())


enqueue_view.view_class = Messages  # type: ignore[attr-defined] - what RESTX checks when an endpoint is reused


@ns.route("/messages/bulk")
class BulkMessages(Resource):
    @ns.doc(security=auth.SCHEME, params={IDEMPOTENCY_HEADER: {
        **IDEMPOTENCY_PARAM, "description": "Item i is stored under its own key (the message's "
                                                          "idempotency_key: '<key name> <key> <i>'): resending the "
                                                          "same request replays every item, and no single request's "
                                                          "key can meet a bulk item's"}})
    @ns.expect(bulk_in, validate=False)
    @ns.response(202, "All committed in one transaction", bulk_accepted)
    @ns.response(200, "Every item was an idempotent replay", bulk_accepted)
    @responses(ns, (400, "Invalid input; details.items lists every bad item; nothing was stored"), 401, 403,
                   (404, "An item's media.id is not an upload of this key (details.items); nothing was stored"),
                   (409, "An Idempotency-Key is used with another body, or only times that cannot hold now "
                         "(send_at, expiry, a send window never open for the number), media URLs that gave no "
                         "file that can be sent, or numbers on the suppression list (details.items); nothing was "
                         "stored"),
                   (413, "The body is over WAQ_MAX_REQUEST_BYTES, or an item's file over its kind's cap"), 415,
                   (429, RATE_LIMITED + " (a bulk request takes one message token and one unit of the quota per "
                                        "item, and is refused whole)"),
                   (503, "The store is unavailable; nothing was stored"))
    @auth.requires(auth.PRODUCER)
    def post(self) -> tuple[dict[str, Any], int]:
        """Queue up to 1,000 messages: all or nothing."""
        body = read_json_object()
        key = _idempotency_key()
        items = _bulk_items(body)
        admit(len(items))
        batch = validate_batch(body.get("batch")) or operations.new_batch_name()
        news, problems, conflicts, missing, large = [], [], 0, 0, 0
        for index, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise ValidationError(f"each message must be a JSON object, not {json_type(item)}", None)
                news.append(build(item, key, index, batch))
            except ValidationError as exc:
                conflicts += isinstance(exc, StateConflict)
                missing += isinstance(exc, MediaNotFound)
                large += isinstance(exc, MediaTooLarge)
                problems.append({"index": index, "field": exc.field, "message": str(exc)})
        if problems:
            # Times that cannot hold now (and nothing else) are a conflict, as for one message: 409.
            # The same for media ids not found (404) and files too big (413); ids not found among conflicts: 409
            # (each is a state of the world, not a mistake in the request).
            status = next((code for code, n in ((409, conflicts), (404, missing), (413, large)) if n == len(problems)),
                          409 if conflicts + missing == len(problems) else 400)
            raise ApiError(status, f"{len(problems)} of {len(items)} messages are invalid; nothing was stored.",
                           {"items": problems})
        results = operations.submit(current_hub(), news)
        created = sum(1 for _, fresh in results if fresh)
        if not created:  # a replay reports the batch its messages were stored in
            batch = results[0][0].batch or batch
        out = {"count": len(results), "created": created, "batch": batch,
               "messages": [_accepted(m) for m, _ in results]}
        return out, 202 if created else 200


def _bulk_items(body: dict[str, Any]) -> list[Any]:
    refuse_unknown_fields(body, {"messages", "batch"})
    items = body.get("messages")
    if not isinstance(items, list):
        raise bad_request("messages must be an array of message objects.", field="messages")
    if not 1 <= len(items) <= MAX_BULK:
        raise bad_request(f"messages must hold 1 to {MAX_BULK} items, not {len(items)}.", field="messages")
    return items


@ns.route("/messages/<message_id:message_id>")
@ns.param("message_id", "The id returned when the message was queued (32 hex digits; any other is 404)",
          pattern=MESSAGE_ID_PATTERN)
class MessageItem(Resource):
    @ns.doc(security=auth.SCHEME)
    @ns.response(200, "The message, its attempts, timestamps and history", message_out)
    @responses(ns, 401, 403,
                   (404, "No such message, or one another key queued (a producer key sees only its own: the "
                         "answer is the same, so ids of others cannot be probed)"),
                   (503, "The store is unavailable; retry later"))
    @auth.requires(auth.PRODUCER)
    def get(self, message_id: str) -> dict[str, Any]:
        """Status, attempts, timestamps and history of one message (a producer key: only of its own)."""
        return message_view(load(message_id))


@ns.route("/messages/<message_id:message_id>/cancel")
@ns.param("message_id", "The id returned when the message was queued", pattern=MESSAGE_ID_PATTERN)
class CancelMessage(Resource):
    @ns.doc(security=auth.SCHEME)
    @ns.response(200, "Cancelled (or it already was): never sent from now on; its callback says `cancelled`",
                 message_out)
    @responses(ns, 401, 403, (404, "No such message, or one another key queued"),
                   (409, "Not cancellable: being sent, sent, in doubt, failed or expired; the error says which "
                         "(details.status)"),
                   (503, "The store is unavailable; nothing was changed"))
    @auth.requires(auth.PRODUCER)
    def post(self, message_id: str) -> dict[str, Any]:
        """Cancel a pending or scheduled message (a producer key: only of its own)."""
        message = load(message_id)
        return message_view(operations.cancel(current_hub(), message.id, actor=actor_name()))


def actor_name() -> str:
    """Who acts, as the history names them: the API key's name (never its value)."""
    return f"key {g.api_key.name}"


def load(message_id: str) -> Message:
    """The message, when the caller's key may see it (owners.visible_to); ApiError 404 otherwise, the same answer as
    for an unknown id, so a producer cannot tell another's message from none."""
    key = g.api_key
    return load_or_404(lambda found: operations.get_message(current_hub(), found), message_id,
                       visible=lambda message: owners.visible_to(message, key.name, admin=key.role == auth.ADMIN))


quota_row = ns.model("QuotaRow", {
    "key": fields.String(required=True, description="The API key's name"),
    "daily_quota": fields.Integer(required=True, description="Messages the key may enqueue per UTC day "
                                                             "(WAQ_DAILY_QUOTA, WAQ_KEY_LIMITS daily=); 0: no quota"),
    "used_today": NullableInteger(description="Messages the key enqueued this UTC day (replays not counted); null "
                                              "when it has no quota: keys are counted only while they have one"),
    "resets_at": fields.DateTime(required=True, description="The next UTC midnight, when the count starts again"),
})


@ns.route("/quota")
class Quota(Resource):
    @ns.doc(security=auth.SCHEME)
    @ns.response(200, "The caller's key's daily quota and today's use; an admin key: every key's", [quota_row])
    @responses(ns, 401, 403, (503, "The store is unavailable; retry later"))
    @auth.requires(auth.PRODUCER)
    def get(self) -> list[dict[str, Any]]:
        """Daily message quota and today's use (a producer key: only its own)."""
        key = g.api_key
        return operations.quota_rows(current_hub(), None if key.role == auth.ADMIN else key.name)

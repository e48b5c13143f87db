"""Monitoring and failed-message administration (admin role), and the key-less liveness probe /healthz."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import g, request
from flask_restx import Namespace, Resource, fields

from api import auth
from api.context import waq
from api.errors import bad_request, error_model, json_response, refuse_unknown_fields
from api.messages import (
    NFloat,
    NInteger,
    NNested,
    NString,
    load,
    message_out,
    message_view,
    quota_row,
    read_json_object,
)
from api.openapi import MESSAGE_ID_PATTERN, SessionFilter
from wa_queue import service
from wa_queue.models import Message, MessageStatus, SessionStatus
from wa_queue.store.common import MAX_OPERATOR_NOTE

log = logging.getLogger(__name__)

ns = Namespace("monitoring", path="/api/whatsapp", description="Health, statistics and failed messages (admin)")
ops = Namespace("ops", path="/", description="Liveness probe for load balancers (no key)")
for _ns in (ns, ops):
    _ns.add_model(error_model.name, error_model)

STUCK_AFTER = timedelta(minutes=15)  # a pending message due this long ago with nobody taking it is "stuck"
PROBE_TIMEOUT_S = 1.0  # /healthz must answer quickly even when the broker hangs
MAX_PER_PAGE = 200
_HEALTH_SESSION_KEYS = ("status", "number", "connected", "needs_operator", "last_error", "last_error_at", "hint",
                        "sends_today", "daily_cap", "warmup", "page_clock_offset_s", "clock_warning")
BANNED = SessionStatus.BANNED.value
DEFAULT_PER_PAGE = 50
STATUSES = [s.value for s in MessageStatus]


class MapOf(fields.Wildcard):
    """A JSON object whose keys are free (session names) and whose values share one model."""

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": self.container.__schema__}


warmup_model = ns.model("WarmupPosition", {
    "cap": fields.Integer(required=True, description="Today's daily cap"),
    "state": fields.String(required=True, enum=["off", "skipped", "new", "ramp", "done"],
                           description="off: WAQ_WARMUP_CAPS is empty; skipped: an operator skipped the ramp; new: "
                                       "never sent (or reset), the first step's cap; ramp: inside the ramp; done: "
                                       "past it (the normal cap)"),
    "step": NInteger(description="1-based step of the ramp (null outside it)"),
    "steps": fields.Integer(required=True),
    "day_in_step": NInteger(description="1-based day in the step (null outside it)"),
    "days_per_step": fields.Integer(required=True),
    "days_left": fields.Integer(required=True, description="Days of the ramp still to come, today included"),
    "first_send_day": NString(description="Local day (WAQ_TIMEZONE) of the session's first send, ISO date"),
})
session_health = ns.model("SessionHealth", {
    "status": fields.String(required=True, description="starting, qr, connected, phone_disconnected, logged_out, "
                                                        "closed, needs_operator, banned or unknown"),
    "number": NString(),
    "connected": fields.Boolean(required=True, description="Connected with a fresh worker heartbeat"),
    "needs_operator": fields.Boolean(required=True),
    "last_error": NString(description="Why the session is not connected, e.g. net::ERR_NAME_NOT_RESOLVED (null once "
                                      "it connects)"),
    "last_error_at": NString(description="ISO 8601 time the last error was seen"),
    "hint": NString(description="What to do about last_error"),
    "sends_today": NInteger(description="Sends since local midnight (WAQ_TIMEZONE); null when the store is down"),
    "daily_cap": NInteger(description="Today's cap: the warm-up's while the session ramps up"),
    "warmup": NNested(warmup_model, description="Where the session stands in the warm-up ramp"),
    "page_clock_offset_s": NFloat(description="The page's clock minus the worker's, in seconds, estimated from the "
                                              "times its sent rows show (null: no estimate yet); over 60 s either "
                                              "way makes the level warning"),
    "clock_warning": NString(description="Why the page's clock needs a look (null: it agrees with this machine's)"),
})
memory_session = ns.model("SessionMemory", {
    "name": fields.String(required=True),
    "pid": fields.Integer(required=True, description="The worker's main process"),
    "pss_kib": fields.Integer(required=True, description="Worker and browser processes, PSS"),
    "worker_pss_kib": fields.Integer(required=True),
    "browser_pss_kib": fields.Integer(required=True, description="chromedriver and every Chrome process"),
})
memory_model = ns.model("Memory", {
    "mem_total_kib": fields.Integer(required=True),
    "mem_available_kib": fields.Integer(required=True, description="MemAvailable of this machine"),
    "reserve_kib": fields.Integer(description="Kept free when counting more_sessions (detail=1 only)"),
    "sessions": fields.List(fields.Nested(memory_session),
                            description="Session workers running on this machine (detail=1 only)"),
    "mean_pss_kib": NInteger(description="detail=1 only"),
    "more_sessions": NInteger(description="Sessions that still fit at the mean footprint (detail=1 only)"),
    "stray_pids": fields.List(fields.Integer, description="Browser processes of a dead worker (detail=1 only)"),
    "stray_pss_kib": fields.Integer(description="detail=1 only"),
})
queue_counts = ns.model("QueueCounts", {name: NInteger(required=True) for name in STATUSES})
health_out = ns.model("Health", {
    "overall": fields.String(required=True, enum=["healthy", "degraded", "warning", "critical"]),
    "reasons": fields.List(fields.String, required=True,
                           description="Why overall is not healthy; also how many failed messages wait, at any level"),
    "sessions": MapOf(fields.Nested(session_health), required=True),
    "queue": fields.Nested(queue_counts, required=True, description="Counts are null when the store is down"),
    "oldest_due_pending_age_s": NFloat(description="Seconds the oldest pending message has been due"),
    "checks": fields.Nested(ns.model("Checks", {"store": fields.String(required=True, enum=["ok", "down"]),
                                                "broker": fields.String(required=True, enum=["ok", "down"])}),
                            required=True),
    "memory": NNested(memory_model, description="This machine's memory (the API's host; null where /proc cannot be "
                                                "read)"),
    "callback_circuits": fields.List(fields.Nested(ns.model("CallbackCircuit", {
        "host": fields.String(required=True),
        "state": fields.String(required=True, enum=["closed", "open", "half_open"],
                               description="open: deliveries to the host wait without a call; half_open: one trial "
                                           "delivery at a time goes through (the others wait), its failure re-opens, "
                                           "its success closes"),
        "failures": fields.Integer(required=True, description="Consecutive failed deliveries"),
        "open_until": NString(description="ISO 8601 time an open circuit closes again"),
    })), required=True, description="Status callback receivers that failed lately (circuit breaker, per host); an "
                                    "open one is named in reasons without raising the level: it is the receiver's "
                                    "fault, not the system's"),
})
session_stats = ns.model("SessionStats", {"sends_today": fields.Integer(required=True),
                                          "daily_cap": fields.Integer(required=True, description="Today's cap"),
                                          "warmup": fields.Nested(warmup_model, required=True)})
stats_out = ns.model("Stats", {
    "counts": fields.Nested(ns.model("Counts", {name: fields.Integer(required=True) for name in STATUSES}),
                            required=True),
    "sessions": MapOf(fields.Nested(session_stats), required=True),
    "sends_per_hour": fields.List(fields.Nested(ns.model("HourSends", {
        "hour": fields.DateTime(required=True), "sent": fields.Integer(required=True)})), required=True),
    "oldest_pending_age_s": NFloat(),
    "quotas": fields.List(fields.Nested(quota_row), required=True,
                          description="Every API key's daily quota and its use today (also GET /quota)"),
})
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
    "note": NString(max_length=MAX_OPERATOR_NOTE, description="Why, for the history (e.g. 'seen in the chat 14:02')"),
}, strict=True)
MARKED_SENT = "Message marked as sent"
marked_sent = ns.model("MarkedSent", {
    "message": fields.String(required=True, enum=[MARKED_SENT]),
    "data": fields.Nested(message_out, required=True, description="The message, now sent"),
})
probe_ok = ops.model("Probe", {"status": fields.String(required=True, enum=["ok"])})

STORE_DOWN = "The store is unavailable; nothing was changed, retry later"
_ADMIN_ERRORS = ((401, "No or unknown API key"), (403, "The key's role may not do this"))


def admin_only(namespace: Namespace):  # noqa: ANN201 - decorator factory
    """Enforce the admin role and document it (security scheme, 401, 403)."""
    def decorate(func):  # noqa: ANN001, ANN202
        func = auth.requires(auth.ADMIN)(func)
        for code, text in _ADMIN_ERRORS:
            func = namespace.response(code, text, error_model)(func)
        return namespace.doc(security=auth.SCHEME)(func)

    return decorate


# ---- health -------------------------------------------------------------------------------------------------------
def health(*, detail: bool = False) -> dict[str, Any]:
    """The system's health in one word, with the facts behind it.

    overall, from worst to best (the first rule that matches wins):
      critical - the store or the broker cannot be reached, or no session is connected: nothing can be sent.
      degraded - some sessions are connected and some are not (connected = status 'connected' with a worker
                 heartbeat from the last three health intervals, and not waiting for an operator).
      warning  - every session is connected, but a message failed within WAQ_HEALTH_FAILED_WINDOW_S (an hour by
                 default), or the oldest due pending message has been due for more than 15 minutes (work is stuck).
                 (A session that needs an operator is not connected, so it already makes the level degraded or worse.)
                 A banned session also makes it warning, with the page's words in reasons: it is not a fault to
                 reconnect (it stays banned until an operator's restart, its messages went to the others), so it
                 does not count as a session down; it still leaves the level critical when no session is connected.
      healthy  - every session is connected, no recent failure, nothing due for more than 15 minutes. Older failed
                 messages are still counted in `queue` and named in `reasons`, without raising the level: kept for
                 an operator up to 30 days, they would otherwise hold the level at warning for a month.
    """
    store_ok, broker_ok = _store_up(), _broker_up()
    sessions: dict[str, dict[str, Any]] = {}
    counts: dict[str, int | None] = dict.fromkeys(STATUSES)
    due_age: float | None = None
    recent_failed = 0
    if store_ok:
        try:
            overview = service.sessions_overview(waq())
            sessions = {name: {k: v[k] for k in _HEALTH_SESSION_KEYS} for name, v in overview.items()}
            counts = dict(service.queue_counts(waq()))
            due_age = _oldest_due_age_s()
            if counts.get("failed"):
                window = timedelta(seconds=waq().settings.health_failed_window_s)
                recent_failed = service.count_failed_since(waq(), waq().clock() - window)
        except Exception as exc:  # noqa: BLE001 - a store failing mid-way is the same as a store down
            log.warning("health: store failed: %s: %s", type(exc).__name__, exc)
            store_ok = False
    if not store_ok:
        sessions = {name: {"status": SessionStatus.UNKNOWN.value, "number": None, "connected": False,
                           "needs_operator": False, "last_error": None, "last_error_at": None, "hint": None,
                           "sends_today": None, "daily_cap": None, "warmup": None, "page_clock_offset_s": None,
                           "clock_warning": None}
                    for name in waq().settings.sessions}
        counts = dict.fromkeys(STATUSES)
    overall, reasons = _grade(store_ok, broker_ok, sessions, counts, due_age, recent_failed)
    circuits = _callback_circuits() if broker_ok else []
    reasons += [f"callbacks to {c['host']} wait: {c['failures']} failures in a row (circuit open)"
                for c in circuits if c["state"] == "open"]
    return {"overall": overall, "reasons": reasons, "sessions": sessions, "queue": counts,
            "oldest_due_pending_age_s": due_age,
            "checks": {"store": "ok" if store_ok else "down", "broker": "ok" if broker_ok else "down"},
            "memory": service.memory_headroom(detail=detail), "callback_circuits": circuits}


def _callback_circuits() -> list[dict[str, Any]]:
    if waq().settings.broker_url.startswith("memory://"):
        return []
    try:
        return service.callback_circuits(waq(), timeout_s=PROBE_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - the broker check above reports a broker down
        log.warning("health: callback circuits unreadable: %s: %s", type(exc).__name__, exc)
        return []


def _grade(store_ok: bool, broker_ok: bool, sessions: dict[str, dict[str, Any]], counts: dict[str, int | None],
           due_age: float | None, recent_failed: int = 0) -> tuple[str, list[str]]:
    banned = [f"session {name} is banned" + (f": {view['last_error']}" if view["last_error"] else "")
              for name, view in sessions.items() if view["status"] == BANNED]
    down = [name for name, view in sessions.items() if not view["connected"] and view["status"] != BANNED]
    none_connected = not any(view["connected"] for view in sessions.values())
    if not store_ok or not broker_ok or none_connected:
        reasons = [f"{part} unreachable" for part, ok in (("store", store_ok), ("broker", broker_ok)) if not ok]
        if store_ok and none_connected:
            reasons.append("no session connected")
        return "critical", reasons + banned
    if down:
        return "degraded", [f"session {name} not connected" for name in down] + banned
    clocks = [view["clock_warning"] for view in sessions.values() if view["clock_warning"]]
    reasons = list(banned) + clocks
    if counts.get("failed"):
        reasons.append(f"{counts['failed']} failed message(s) wait for an operator")
    warn = bool(banned) or bool(clocks)
    if recent_failed:
        window_min = int(waq().settings.health_failed_window_s // 60)
        reasons.append(f"{recent_failed} message(s) failed in the last {window_min} minutes")
        warn = True
    if due_age is not None and due_age > STUCK_AFTER.total_seconds():
        reasons.append(f"a pending message has been due for {int(due_age // 60)} minutes")
        warn = True
    return ("warning" if warn else "healthy"), reasons


def _oldest_due_age_s() -> float | None:
    # The longest overdue pending message: a message parked until a later retry (however old) is not late, and
    # must not hide a newer one that is.
    now = waq().clock()
    oldest = service.oldest_due(waq(), now)
    if oldest is None:
        return None
    return max(0.0, (now - oldest.next_attempt_at).total_seconds())


def _store_up() -> bool:
    try:
        service.ping_store(waq())
        return True
    except Exception as exc:  # noqa: BLE001 - any failure means down; the reason goes to the log, not the client
        log.warning("store ping failed: %s: %s", type(exc).__name__, exc)
        return False




def _broker_up() -> bool:
    """PING the broker with a short timeout (the App's broker client waits up to 10 s, too long for a probe)."""
    url = waq().settings.broker_url
    if url.startswith("memory://"):
        return True
    client = waq().broker_quick(PROBE_TIMEOUT_S)
    try:
        return bool(client.ping())
    except Exception as exc:  # noqa: BLE001
        log.warning("broker ping failed: %s: %s", type(exc).__name__, exc)
        return False


@ops.route("/healthz")
class Healthz(Resource):
    @ops.doc(security=[])
    @ops.response(200, "The store and the broker answer", probe_ok)
    @ops.response(503, "The store or the broker is down (named in the message and details)", error_model)
    def get(self) -> Any:
        """Liveness probe: 200 when the store and the broker answer. Needs no key."""
        checks = {"store": "ok" if _store_up() else "down", "broker": "ok" if _broker_up() else "down"}
        down = [name for name, state in checks.items() if state != "ok"]
        if down:
            return json_response({"error": f"The {' and the '.join(down)} {'is' if len(down) == 1 else 'are'} "
                                           "unreachable.", "details": checks}, 503, {"Retry-After": "5"})
        return {"status": "ok"}


@ns.route("/health")
class Health(Resource):
    @admin_only(ns)
    @ns.param("detail", "1: also the session workers running on the API's machine and each one's memory (PSS); "
                        "this reads every process's memory map, so it is left out of the polled answer",
              type=str, enum=["0", "1"])
    @ns.response(200, "The overall level and what it is based on (see the levels in the description)", health_out)
    @ns.response(400, "Invalid query", error_model)
    def get(self) -> dict[str, Any]:
        """Sessions, queue counts, memory and one overall level.

        critical: store or broker unreachable, or no session connected. degraded: some but not all sessions
        connected (a banned one aside). warning: all connected, but a session is banned, a message failed in the
        last WAQ_HEALTH_FAILED_WINDOW_S (an hour) or a pending message has been due for over 15 minutes. healthy:
        none of these (older failed messages are still counted and named in reasons). Each session shows today's
        sends, today's cap and its place in the warm-up ramp.
        """
        raw = request.args.get("detail", "0")
        if raw not in ("0", "1"):
            raise bad_request("detail must be 0 or 1.", field="detail")
        return health(detail=raw == "1")


@ns.route("/stats")
class Stats(Resource):
    @admin_only(ns)
    @ns.response(200, "Counts by status, sends per session today and per hour over 24 h", stats_out)
    @ns.response(503, "The store is unavailable", error_model)
    def get(self) -> dict[str, Any]:
        """Delivery statistics."""
        return service.stats(waq())


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
    sessions = waq().settings.sessions
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
    @ns.response(400, "Invalid query", error_model)
    def get(self) -> dict[str, Any]:
        """Failed messages, paged and filtered."""
        return failed_query_page(lambda **query: service.list_failed(waq(), **query))


@ns.route("/failed/retry-all")
class FailedRetryAll(Resource):
    @admin_only(ns)
    @ns.param("session", "Only failed messages of this session (empty: every session)", type=str,
              enum=SessionFilter())
    @ns.response(200, "How many failed messages went back to pending", requeued)
    @ns.response(400, "Unknown session", error_model)
    @ns.response(503, STORE_DOWN, error_model)
    def post(self) -> dict[str, int]:
        """Retry every failed message (optionally of one session)."""
        return {"requeued": service.retry_all_failed(waq(), _session_arg())}


@ns.route("/failed/<message_id:message_id>")
@ns.param("message_id", "A failed message's id", pattern=MESSAGE_ID_PATTERN)
class FailedItem(Resource):
    @admin_only(ns)
    @ns.response(204, "Deleted for good")
    @ns.response(404, "No such message", error_model)
    @ns.response(409, "The message is not failed", error_model)
    @ns.response(503, STORE_DOWN, error_model)
    def delete(self, message_id: str) -> tuple[str, int]:
        """Delete a failed message for good (only failed ones)."""
        load(message_id)  # 404 with a clear sentence before the store's own checks
        service.delete_failed(waq(), message_id)
        return "", 204


@ns.route("/failed/<message_id:message_id>/retry")
@ns.param("message_id", "A failed message's id", pattern=MESSAGE_ID_PATTERN)
class FailedRetry(Resource):
    @admin_only(ns)
    @ns.response(200, "Back to pending with its attempts reset; the message in data", retried)
    @ns.response(404, "No such message", error_model)
    @ns.response(409, "The message is not failed", error_model)
    @ns.response(503, STORE_DOWN, error_model)
    def post(self, message_id: str) -> dict[str, Any]:
        """Retry one failed message."""
        load(message_id)
        message = service.retry_failed(waq(), message_id)
        return {"message": QUEUED_FOR_RETRY, "data": message_view(message)}



@ns.route("/failed/<message_id:message_id>/mark-sent")
@ns.param("message_id", "A failed message's id", pattern=MESSAGE_ID_PATTERN)
class FailedMarkSent(Resource):
    @admin_only(ns)
    @ns.expect(mark_sent_in, validate=False)
    @ns.doc(params={"payload": {"required": False}})  # the body may be left out: a note is optional
    @ns.response(200, "Sent: it will never be sent again; the producer's callback hears 'sent'", marked_sent)
    @ns.response(400, "Invalid body (an unknown field, a note that is not a string of at most 500 characters)",
                 error_model)
    @ns.response(404, "No such message", error_model)
    @ns.response(409, "The message is not failed", error_model)
    @ns.response(413, "Body too large", error_model)
    @ns.response(415, "Body is not JSON", error_model)
    @ns.response(503, STORE_DOWN, error_model)
    def post(self, message_id: str) -> dict[str, Any]:
        """Mark one failed message as sent: the operator saw it in the phone's chat (see OutcomeUnverified)."""
        note = _note_arg()
        load(message_id)
        message = service.mark_sent(waq(), message_id, actor=f"api:{g.api_key.name}", note=note)
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

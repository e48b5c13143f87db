"""Health and statistics (admin), and the key-less liveness probe /healthz.

`ns` is the "monitoring" namespace (one tag in the OpenAPI document): api/failed.py adds the failed-message
administration to it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import request
from flask_restx import Namespace, Resource, fields

from api.auth import admin_only
from api.context import current_hub
from api.errors import bad_request, error_model, json_response, responses
from api.fields import NullableFloat, NullableInteger, NullableNested, NullableString
from api.messages import quota_row
from wa_queue import operations
from wa_queue.models import MessageStatus, SessionStatus

log = logging.getLogger(__name__)


ns = Namespace("monitoring", path="/api/whatsapp", description="Health, statistics and failed messages (admin)")
ops = Namespace("ops", path="/", description="Liveness probe for load balancers (no key)")
for _ns in (ns, ops):
    _ns.add_model(error_model.name, error_model)

STUCK_AFTER = timedelta(minutes=15)  # a pending message due this long ago with nobody taking it is "stuck"
PROBE_TIMEOUT_S = 1.0  # /healthz must answer quickly even when the broker hangs
_HEALTH_SESSION_KEYS = ("status", "number", "connected", "needs_operator", "last_error", "last_error_at", "hint",
                        "sends_today", "daily_cap", "warmup", "page_clock_offset_s", "clock_warning")
BANNED = SessionStatus.BANNED.value
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
    "step": NullableInteger(description="1-based step of the ramp (null outside it)"),
    "steps": fields.Integer(required=True),
    "day_in_step": NullableInteger(description="1-based day in the step (null outside it)"),
    "days_per_step": fields.Integer(required=True),
    "days_left": fields.Integer(required=True, description="Days of the ramp still to come, today included"),
    "first_send_day": NullableString(description="Local day (WAQ_TIMEZONE) of the session's first send, ISO date"),
})
session_health = ns.model("SessionHealth", {
    "status": fields.String(required=True, description="starting, qr, connected, phone_disconnected, logged_out, "
                                                        "closed, needs_operator, banned or unknown"),
    "number": NullableString(),
    "connected": fields.Boolean(required=True, description="Connected with a fresh worker heartbeat"),
    "needs_operator": fields.Boolean(required=True),
    "last_error": NullableString(description="Why the session is not connected, e.g. net::ERR_NAME_NOT_RESOLVED "
                                             "(null once it connects)"),
    "last_error_at": NullableString(description="ISO 8601 time the last error was seen"),
    "hint": NullableString(description="What to do about last_error"),
    "sends_today": NullableInteger(description="Sends since local midnight (WAQ_TIMEZONE); null when the store is "
                                               "down"),
    "daily_cap": NullableInteger(description="Today's cap: the warm-up's while the session ramps up"),
    "warmup": NullableNested(warmup_model, description="Where the session stands in the warm-up ramp"),
    "page_clock_offset_s": NullableFloat(description="The page's clock minus the worker's, in seconds, estimated from "
                                                     "the times its sent rows show (null: no estimate yet); over 60 s "
                                                     "either way makes the level warning"),
    "clock_warning": NullableString(description="Why the page's clock needs a look (null: it agrees with this "
                                                "machine's)"),
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
    "mean_pss_kib": NullableInteger(description="detail=1 only"),
    "more_sessions": NullableInteger(description="Sessions that still fit at the mean footprint (detail=1 only)"),
    "stray_pids": fields.List(fields.Integer, description="Browser processes of a dead worker (detail=1 only)"),
    "stray_pss_kib": fields.Integer(description="detail=1 only"),
})
queue_counts = ns.model("QueueCounts", {name: NullableInteger(required=True) for name in STATUSES})
health_out = ns.model("Health", {
    "overall": fields.String(required=True, enum=["healthy", "degraded", "warning", "critical"]),
    "reasons": fields.List(fields.String, required=True,
                           description="Why overall is not healthy; also how many failed messages wait, at any level"),
    "sessions": MapOf(fields.Nested(session_health), required=True),
    "queue": fields.Nested(queue_counts, required=True, description="Counts are null when the store is down"),
    "oldest_due_pending_age_s": NullableFloat(description="Seconds the oldest pending message has been due"),
    "checks": fields.Nested(ns.model("Checks", {"store": fields.String(required=True, enum=["ok", "down"]),
                                                "broker": fields.String(required=True, enum=["ok", "down"])}),
                            required=True),
    "memory": NullableNested(memory_model, description="This machine's memory (the API's host; null where /proc "
                                                       "cannot be read)"),
    "callback_circuits": fields.List(fields.Nested(ns.model("CallbackCircuit", {
        "host": fields.String(required=True),
        "state": fields.String(required=True, enum=["closed", "open", "half_open"],
                               description="open: deliveries to the host wait without a call; half_open: one trial "
                                           "delivery at a time goes through (the others wait), its failure re-opens, "
                                           "its success closes"),
        "failures": fields.Integer(required=True, description="Consecutive failed deliveries"),
        "open_until": NullableString(description="ISO 8601 time an open circuit closes again"),
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
    "oldest_pending_age_s": NullableFloat(),
    "quotas": fields.List(fields.Nested(quota_row), required=True,
                          description="Every API key's daily quota and its use today (also GET /quota)"),
})
probe_ok = ops.model("Probe", {"status": fields.String(required=True, enum=["ok"])})


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
            overview = operations.sessions_overview(current_hub())
            sessions = {name: {k: v[k] for k in _HEALTH_SESSION_KEYS} for name, v in overview.items()}
            counts = dict(operations.queue_counts(current_hub()))
            due_age = _oldest_due_age_s()
            if counts.get("failed"):
                window = timedelta(seconds=current_hub().settings.health_failed_window_s)
                recent_failed = operations.count_failed_since(current_hub(), current_hub().clock() - window)
        except Exception as exc:  # noqa: BLE001 - a store failing mid-way is the same as a store down
            log.warning("health: store failed: %s: %s", type(exc).__name__, exc)
            store_ok = False
    if not store_ok:
        sessions = {name: {"status": SessionStatus.UNKNOWN.value, "number": None, "connected": False,
                           "needs_operator": False, "last_error": None, "last_error_at": None, "hint": None,
                           "sends_today": None, "daily_cap": None, "warmup": None, "page_clock_offset_s": None,
                           "clock_warning": None}
                    for name in current_hub().settings.sessions}
        counts = dict.fromkeys(STATUSES)
    overall, reasons = _grade(store_ok, broker_ok, sessions, counts, due_age, recent_failed)
    circuits = _callback_circuits() if broker_ok else []
    reasons += [f"callbacks to {c['host']} wait: {c['failures']} failures in a row (circuit open)"
                for c in circuits if c["state"] == "open"]
    return {"overall": overall, "reasons": reasons, "sessions": sessions, "queue": counts,
            "oldest_due_pending_age_s": due_age,
            "checks": {"store": "ok" if store_ok else "down", "broker": "ok" if broker_ok else "down"},
            "memory": operations.memory_headroom(detail=detail), "callback_circuits": circuits}


def _callback_circuits() -> list[dict[str, Any]]:
    if current_hub().settings.broker_url.startswith("memory://"):
        return []
    try:
        return operations.callback_circuits(current_hub(), timeout_s=PROBE_TIMEOUT_S)
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
        window_min = int(current_hub().settings.health_failed_window_s // 60)
        reasons.append(f"{recent_failed} message(s) failed in the last {window_min} minutes")
        warn = True
    if due_age is not None and due_age > STUCK_AFTER.total_seconds():
        reasons.append(f"a pending message has been due for {int(due_age // 60)} minutes")
        warn = True
    return ("warning" if warn else "healthy"), reasons


def _oldest_due_age_s() -> float | None:
    # The longest overdue pending message: a message parked until a later retry (however old) is not late, and
    # must not hide a newer one that is.
    now = current_hub().clock()
    oldest = operations.oldest_due(current_hub(), now)
    if oldest is None:
        return None
    return max(0.0, (now - oldest.next_attempt_at).total_seconds())


def _store_up() -> bool:
    try:
        operations.ping_store(current_hub())
        return True
    except Exception as exc:  # noqa: BLE001 - any failure means down; the reason goes to the log, not the client
        log.warning("store ping failed: %s: %s", type(exc).__name__, exc)
        return False


def _broker_up() -> bool:
    """PING the broker with a short timeout (the Hub's broker client waits up to 10 s, too long for a probe)."""
    url = current_hub().settings.broker_url
    if url.startswith("memory://"):
        return True
    client = current_hub().broker_quick(PROBE_TIMEOUT_S)
    try:
        return bool(client.ping())
    except Exception as exc:  # noqa: BLE001
        log.warning("broker ping failed: %s: %s", type(exc).__name__, exc)
        return False


@ops.route("/healthz")
class Healthz(Resource):
    @ops.doc(security=[])
    @ops.response(200, "The store and the broker answer", probe_ok)
    @responses(ops, (503, "The store or the broker is down (named in the message and details)"))
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
    @responses(ns, (400, "Invalid query"))
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
    @responses(ns, (503, "The store is unavailable"))
    def get(self) -> dict[str, Any]:
        """Delivery statistics."""
        return operations.stats(current_hub())

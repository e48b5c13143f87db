"""Prometheus metrics at /metrics, computed at scrape time.

Access: an admin `X-API-Key`, or `Authorization: Bearer <WAQ_METRICS_TOKEN>` (for a Prometheus server that should
not hold an admin key). Both compared in constant time. 401 without credentials, 403 for a non-admin key.

Where the numbers come from:
  - the store (the system of record) at scrape time, through one custom Collector: messages by status, sends per
    session today and the daily cap, whether each session is connected, each session's status (1 for the status it
    is in, 0 for the others: alert on waq_session_status{status="banned"} == 1), the age of the oldest pending
    message.
    Every API process answers the same numbers, so any gunicorn worker may answer a scrape.
  - the broker Redis for what only workers see (send durations, retries): workers are other processes, so they
    add to Redis hashes through wa_queue.metrics_sink.record_send(), and the Collector reads those hashes here.
    See wa_queue/metrics_sink.py for the key layout. Counters restart at zero when the broker loses its data,
    which Prometheus treats as an ordinary counter reset.
  - waq_up{component} says whether the store and the broker could be read; a failing part yields 0 there and its
    metrics are left out of that scrape (never a 500: the scrape itself must keep working to report the outage).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from datetime import datetime

from flask import Flask, Response, request
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from api import auth
from api.errors import json_response
from wa_queue import metrics_sink, operations
from wa_queue.hub import Hub
from wa_queue.models import SessionStatus

log = logging.getLogger(__name__)

PATH = "/metrics"
REGISTRY_EXTENSION = "waq_metrics_registry"
SCRAPE_REDIS_TIMEOUT_S = 2.0  # a hung broker must not make the scrape outlive Prometheus' scrape timeout


class WaqCollector(Collector):
    """Reads the store and the broker Redis on every collect(); holds no state between scrapes."""

    def __init__(self, hub: Hub, now: Callable[[], datetime] | None = None) -> None:
        self._hub = hub
        self._now = now or hub.clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("waq_up", "1 when this component could be read during the scrape", labels=["component"])
        store_metrics, store_ok = self._from_store(self._now())
        broker_metrics, broker_ok = self._from_broker()
        up.add_metric(["store"], 1.0 if store_ok else 0.0)
        up.add_metric(["broker"], 1.0 if broker_ok else 0.0)
        yield up
        yield from store_metrics
        yield from broker_metrics

    def _from_store(self, now: datetime) -> tuple[list[Metric], bool]:
        try:
            counts = operations.queue_counts(self._hub)
            sessions = operations.sessions_overview(self._hub)
            oldest = operations.oldest_pending(self._hub)
        except Exception as exc:  # noqa: BLE001 - reported as waq_up{component="store"} 0
            log.warning("metrics: store unreadable: %s: %s", type(exc).__name__, exc)
            return [], False
        messages = GaugeMetricFamily("waq_messages", "Messages in the store by status", labels=["status"])
        for status, count in sorted(counts.items()):
            messages.add_metric([status], float(count))
        sends = GaugeMetricFamily("waq_session_sends_today", "Messages sent by the session since local midnight",
                                  labels=["session"])
        cap = GaugeMetricFamily("waq_session_daily_cap", "Most sends a session may make today (the warm-up's cap "
                                "while it ramps up)", labels=["session"])
        connected = GaugeMetricFamily("waq_session_connected",
                                      "1 when the session is connected with a fresh worker heartbeat",
                                      labels=["session"])
        status = GaugeMetricFamily("waq_session_status",
                                   "1 for the status the session's record is in, 0 for the others",
                                   labels=["session", "status"])
        for name, view in sessions.items():
            sends.add_metric([name], float(view["sends_today"]))
            cap.add_metric([name], float(view["daily_cap"]))
            connected.add_metric([name], 1.0 if view["connected"] else 0.0)
            # Every status, so one that ends reads 0 instead of vanishing (and one stored by newer code reads 1).
            for value in dict.fromkeys([*(known.value for known in SessionStatus), view["status"]]):
                status.add_metric([name, value], 1.0 if view["status"] == value else 0.0)
        age = GaugeMetricFamily("waq_oldest_pending_age_seconds",
                                "Age of the oldest pending message since it was created; 0 when none is pending")
        age.add_metric([], max(0.0, (now - oldest.created_at).total_seconds()) if oldest else 0.0)
        return [messages, sends, cap, connected, status, age], True

    def _from_broker(self) -> tuple[list[Metric], bool]:
        duration = HistogramMetricFamily("waq_send_duration_seconds",
                                         "Time a worker spent on one send attempt, by session and outcome",
                                         labels=["session", "outcome"])
        retries = CounterMetricFamily("waq_send_retries", "Send attempts that failed transiently and were retried",
                                      labels=["session"])
        outcomes = CounterMetricFamily("waq_callbacks", "Status callbacks by how they ended: delivered, rejected "
                                       "(a 4xx), retried, gave_up, refused (the outbound rule, or a redirect), "
                                       "deferred (the host's circuit was open)", labels=["outcome"])
        circuit_open = GaugeMetricFamily("waq_callback_circuit_open", "1 while the callback circuit of a host is "
                                         "open (its deliveries wait), 0 while closed or half-open", labels=["host"])
        circuit_failures = GaugeMetricFamily("waq_callback_host_failures",
                                             "Consecutive failed callback deliveries to a host", labels=["host"])
        kinds = CounterMetricFamily("waq_sent_by_kind", "Messages sent, by session and kind (text, image, document, "
                                    "audio, video)", labels=["session", "kind"])
        try:
            client = self._hub.broker_quick(SCRAPE_REDIS_TIMEOUT_S)
            for session, outcome, buckets, total in metrics_sink.read_send_histograms(client):
                duration.add_metric([session, outcome], buckets, total)
            for session, count in sorted(metrics_sink.read_retries(client).items()):
                retries.add_metric([session], count)
            for (session, kind), count in sorted(metrics_sink.read_sent_kinds(client).items()):
                kinds.add_metric([session, kind], count)
            counted = operations.callback_outcomes(self._hub, timeout_s=SCRAPE_REDIS_TIMEOUT_S)
            for outcome, count in sorted(counted.items()):
                outcomes.add_metric([outcome], float(count))
            for circuit in operations.callback_circuits(self._hub, timeout_s=SCRAPE_REDIS_TIMEOUT_S):
                circuit_open.add_metric([circuit["host"]], 1.0 if circuit["state"] == "open" else 0.0)
                circuit_failures.add_metric([circuit["host"]], float(circuit["failures"]))
        except Exception as exc:  # noqa: BLE001 - reported as waq_up{component="broker"} 0
            log.warning("metrics: broker unreadable: %s: %s", type(exc).__name__, exc)
            return [], False
        return [duration, retries, outcomes, circuit_open, circuit_failures, kinds], True


# ---- access ---------------------------------------------------------------------------------------------------
def _denied(hub: Hub) -> Response | None:
    """None when the caller may scrape; otherwise the JSON error response."""
    header = request.headers.get("Authorization", "")
    token = hub.settings.metrics_token
    if header[:7].lower() == "bearer ":
        if token and hmac.compare_digest(header[7:].strip().encode("utf-8", "surrogateescape"), token.encode()):
            return None
        return json_response({"error": "The bearer token is not the metrics token.", "details": {}}, 401,
                             {"WWW-Authenticate": 'Bearer realm="metrics"'})
    key = auth.identify(request.headers.get(auth.HEADER))
    if key is None:
        return json_response(
            {"error": f"Send an admin {auth.HEADER} header or Authorization: Bearer <metrics token>.",
             "details": {"header": auth.HEADER}}, 401, {"WWW-Authenticate": 'Bearer realm="metrics"'})
    if key.role != auth.ADMIN:
        return json_response({"error": f"The key {key.name!r} has role {key.role!r}; metrics need admin.",
                              "details": {"role": key.role}}, 403)
    return None


def make_registry(hub: Hub) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WaqCollector(hub))
    return registry


def register(app: Flask, hub: Hub) -> None:
    """Add GET /metrics to the app, with its own registry (nothing global, so many apps may coexist in tests)."""
    registry = make_registry(hub)
    app.extensions[REGISTRY_EXTENSION] = registry

    def metrics() -> Response:
        denied = _denied(hub)
        if denied is not None:
            return denied
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encoder(registry), 200, content_type=content_type, headers={"Cache-Control": "no-store"})

    app.add_url_rule(PATH, endpoint="waq_metrics", view_func=metrics, methods=["GET"])

"""Batches (producer; a producer key sees and acts on its own messages of a batch, an admin key on everyone's):
follow one, pause, resume or cancel its unsent messages. wa_queue/batches.py holds the rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import g
from flask_restx import Namespace, Resource, fields

from api import auth
from api.context import current_hub
from api.errors import error_model, responses
from api.fields import NullableDateTime
from api.messages import actor_name
from wa_queue import operations
from wa_queue.models import MessageStatus
from wa_queue.validation import BATCH_PATTERN

ns = Namespace("batches", path="/api/whatsapp", description="Follow and steer the batches of bulk enqueues")
ns.add_model(error_model.name, error_model)

counts = ns.model("BatchCounts", {status.value: fields.Integer(required=True) for status in MessageStatus})
batch_out = ns.model("Batch", {
    "name": fields.String(required=True),
    "counts": fields.Nested(counts, required=True, description="Its messages by status"),
    "total": fields.Integer(required=True),
    "started_at": fields.DateTime(required=True, description="When its first message was enqueued"),
    "first_sent_at": NullableDateTime(),
    "last_sent_at": NullableDateTime(),
    "expected_end_at": NullableDateTime(description="At the current pace: its unsent messages over the sessions "
                                                    "that can send now, one per mean pacing pause each, and not before "
                                                    "its last send_at; null when nothing is left or it is paused"),
    "paused": fields.Boolean(required=True),
})
action_out = ns.model("BatchAction", {
    "name": fields.String(required=True),
    "changed": fields.Integer(required=True, description="Messages paused, resumed or cancelled"),
    "left": fields.Raw(required=True, description="Unsent messages left as they were, by status (held by a worker, "
                                                   "in doubt, or not in a status the action takes)"),
})
F = TypeVar("F", bound=Callable[..., Any])
NOT_FOUND = (404, "No batch of this name has a message of the caller's key")


def _owner() -> str | None:
    return None if g.api_key.role == auth.ADMIN else g.api_key.name


listed = ns.model("BatchListed", {
    "name": fields.String(required=True),
    "counts": fields.Nested(counts, required=True, description="Its messages by status (a producer: its own)"),
    "total": fields.Integer(required=True),
    "started_at": fields.DateTime(required=True),
})


@ns.route("/batches")
class Batches(Resource):
    @ns.doc(security=auth.SCHEME)
    @ns.response(200, "The most recently started batches (a producer key: those with its messages)", [listed])
    @responses(ns, 401, 403, (503, "The store is unavailable; retry later"))
    @auth.requires(auth.PRODUCER)
    def get(self) -> list[dict[str, Any]]:
        """The last 50 batches with their counts."""
        return operations.list_batches(current_hub(), owner=_owner())


PARAM = ("batch", "The batch's name (as the bulk enqueue gave or answered it)")


@ns.route("/batches/<string:batch>")
@ns.param(*PARAM, pattern=BATCH_PATTERN)
class Batch(Resource):
    @ns.doc(security=auth.SCHEME)
    @ns.response(200, "Counts by status and the pace", batch_out)
    @responses(ns, 401, 403, NOT_FOUND, (503, "The store is unavailable; retry later"))
    @auth.requires(auth.PRODUCER)
    def get(self, batch: str) -> dict[str, Any]:
        """Where a batch stands."""
        return operations.batch_report(current_hub(), batch, owner=_owner()).to_dict()


def batch_action(done: str) -> Callable[[F], F]:
    """What the three actions on a batch share: the key, the answer's model and the errors."""
    def decorate(func: F) -> F:
        func = auth.requires(auth.PRODUCER)(func)
        func = responses(ns, 401, 403, NOT_FOUND, (503, "The store is unavailable; retry later"))(func)
        func = ns.response(200, f"{done}: what changed and what was left", action_out)(func)
        return ns.doc(security=auth.SCHEME)(func)

    return decorate


@ns.route("/batches/<string:batch>/pause")
@ns.param(*PARAM, pattern=BATCH_PATTERN)
class BatchPause(Resource):
    @batch_action("Paused")
    def post(self, batch: str) -> dict[str, Any]:
        """Pause its pending messages: none is sent until it resumes (one a worker holds finishes)."""
        return operations.pause_batch(current_hub(), batch, owner=_owner(), actor=actor_name()).to_dict()


@ns.route("/batches/<string:batch>/resume")
@ns.param(*PARAM, pattern=BATCH_PATTERN)
class BatchResume(Resource):
    @batch_action("Resumed")
    def post(self, batch: str) -> dict[str, Any]:
        """Resume its paused messages: each is published again when due."""
        return operations.resume_batch(current_hub(), batch, owner=_owner(), actor=actor_name()).to_dict()


@ns.route("/batches/<string:batch>/cancel")
@ns.param(*PARAM, pattern=BATCH_PATTERN)
class BatchCancel(Resource):
    @batch_action("Cancelled")
    def post(self, batch: str) -> dict[str, Any]:
        """Cancel its pending and paused messages, except those in doubt; each gets its callback."""
        return operations.cancel_batch(current_hub(), batch, owner=_owner(), actor=actor_name()).to_dict()

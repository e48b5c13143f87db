"""The mark's gates in the transition table (lifecycle.Gate) name real things: fields of a message, arguments of
MessageStore.mark_sending, error classes; and the adapters count with what the table says (SQLite's statements are
built from it; MongoDB's counters from the same fields)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from wa_queue import errors
from wa_queue.models import Message
from wa_queue.store import lifecycle
from wa_queue.store.base import MessageStore, SessionRecord

FIELDS = {field.name for field in dataclasses.fields(Message)}
SESSION_FIELDS = {field.name for field in dataclasses.fields(SessionRecord)}


@pytest.mark.parametrize("transition", [t for t in lifecycle.TRANSITIONS if t.gates or t.session_once],
                         ids=lambda t: t.method)
def test_gates_and_session_fields_name_real_things(transition: lifecycle.Transition) -> None:
    parameters = inspect.signature(getattr(MessageStore, transition.method)).parameters
    for gate in transition.gates:
        assert set(gate.key.columns) <= FIELDS and {gate.sent_key, gate.sending_key} <= FIELDS, gate
        assert gate.limit.name in parameters and gate.since.name in parameters, gate
        assert parameters[gate.limit.name].default is None, "a gate is off unless the caller gives its limit"
        refusal = getattr(errors, gate.refusal)
        assert issubclass(refusal, errors.SendError), gate
    for field, source in transition.session_once:
        assert field in SESSION_FIELDS and source.name in parameters, field
    assert len({gate.name for gate in transition.gates}) == len(transition.gates)


def test_the_mark_holds_the_daily_limits_and_defer_keeps_the_doubt() -> None:
    assert {gate.refusal for gate in lifecycle.MARK_SENDING.gates} == {"DailyCapReached", "RecipientLimitReached"}
    assert lifecycle.MARK_SENDING.session_once == (("first_send_day", lifecycle.Once("first_send_day")),)
    defer = lifecycle.DEFER
    assert not defer.uses_attempt and not set(lifecycle.DOUBT) & set(defer.clears)  # nothing was clicked
    assert defer.to in lifecycle.DUE  # waits as pending, due again at next_attempt_at

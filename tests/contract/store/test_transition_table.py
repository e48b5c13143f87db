"""The store contract against the lifecycle table: every transition and removal of lifecycle.py on each adapter."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from datetime import timedelta

import pytest

from tests.contract.store.helpers import at, insert
from wa_queue.errors import InvalidTransition, NotFound
from wa_queue.models import Message, MessageStatus
from wa_queue.store import lifecycle
from wa_queue.store.base import MessageStore
from wa_queue.store.common import picture_text

# Generated from wa_queue/store/lifecycle.py: every form of every transition is tried on a message in each status, so
# a new table entry (or a field added to one) is checked here without a new test.
TABLE_OWNER = "s1/h/1"
TABLE_AT = at(600)  # when the transition runs: after everything the set-up wrote
TABLE_ARGS: dict[str, object] = {
    "owner": TABLE_OWNER, "session": "s2", "wa_id": "wa-2", "lease_s": 90, "next_attempt_at": at(900),
    "error_class": "TransientSendError", "error_text": "try later", "reason": "moved", "actor": "op", "note": "seen",
    "delivered_at": at(700), "read_at": at(800), "older_than": at(601), "picture": ("row-a", "true_1@c.us_row-b"),
}
# Arguments the store keeps in another form than it takes them: the field holds this of the argument.
TABLE_STORED: dict[str, Callable[[object], object]] = {"picture": picture_text}  # type: ignore[dict-item]
TABLE_DERIVED: dict[str, Callable[[dict[str, object]], object]] = {
    "lease_expires_at": lambda kwargs: TABLE_AT + timedelta(seconds=kwargs["lease_s"]),  # type: ignore[arg-type]
}


def in_status(store: MessageStore, status: MessageStatus, i: int, write: lifecycle.Write | None = None) -> Message:
    """A message in `status` with every field a transition may clear filled where that status allows: dispatched,
    claimed and clicked (lease held by TABLE_OWNER), then sent or failed. For `write`, the row also holds the
    transition's conditions: not clicked when it needs no doubt, an expires_at it has reached when it needs one."""
    conditions = write.transition.conditions if write is not None else ()
    clicked = lifecycle.IsNull("sending_at") not in conditions
    expires_at = at(500) if lifecycle.Reached("expires_at") in conditions else None
    if status is MessageStatus.EXPIRED:
        expires_at = at(2)
    message = insert(store, i, session="s1", expires_at=expires_at)
    store.mark_dispatched([message.id], now=at(1), epoch="e1", queue="wa.s1")
    unleased = {MessageStatus.PENDING: None, MessageStatus.PAUSED: lambda: store.pause(message.id, now=at(2),
                                                                                        reason="held"),
                MessageStatus.CANCELLED: lambda: store.cancel(message.id, now=at(2), actor="op"),
                MessageStatus.EXPIRED: lambda: store.expire(message.id, owner=None, now=at(2))}
    if status in unleased:
        step = unleased[status]
        assert step is None or step() is not None
        found = store.get(message.id)
        assert found.status is status
        return found
    assert store.claim(message.id, owner=TABLE_OWNER, session="s1", now=at(2), lease_s=60) is not None
    if clicked:
        assert store.mark_sending(message.id, owner=TABLE_OWNER, now=at(3), picture=("row-0",))
    if status is MessageStatus.SENT:
        assert store.record_sent(message.id, owner=TABLE_OWNER, now=at(4), session="s1", wa_id="wa-1") is not None
    elif status is MessageStatus.FAILED:
        assert store.record_failed(message.id, owner=TABLE_OWNER, now=at(4), error_class="SendOutcomeUnknown",
                                   error_text="unread chat") is not None
    found = store.get(message.id)
    assert found.status is status
    return found


def breaking(store: MessageStore, condition: lifecycle.Condition, status: MessageStatus, i: int) -> Message:
    """A message in `status` (pending, paused or processing) that breaks `condition` and holds the others of the
    transitions that have them (an expires_at reached but no doubt, or a doubt but no expiry)."""
    reached = at(500)
    if condition == lifecycle.Reached("expires_at"):
        message = insert(store, i, session="s1")
    elif condition == lifecycle.Later("expires_at"):
        message = insert(store, i, session="s1", expires_at=reached)
    else:
        message = insert(store, i, session="s1", expires_at=reached)
        assert store.claim(message.id, owner=TABLE_OWNER, session="s1", now=at(2), lease_s=60) is not None
        if condition == lifecycle.IsNull("sending_at"):
            assert store.mark_sending(message.id, owner=TABLE_OWNER, now=at(3))
            if status is not MessageStatus.PROCESSING:
                assert store.recover(message.id, owner=TABLE_OWNER, now=at(4), reason="worker died") is not None
        else:
            assert store.record_retry(message.id, owner=TABLE_OWNER, now=at(3), next_attempt_at=at(3),
                                      error_class=condition.value, error_text="no ack") is not None  # type: ignore
            if status is MessageStatus.PROCESSING:
                assert store.claim(message.id, owner=TABLE_OWNER, session="s1", now=at(4), lease_s=60) is not None
    if status is MessageStatus.PROCESSING and store.get(message.id).status is MessageStatus.PENDING:
        assert store.claim(message.id, owner=TABLE_OWNER, session="s1", now=at(4), lease_s=60) is not None
    elif status is MessageStatus.PAUSED:
        assert store.pause(message.id, now=at(5), reason="held") is not None
    found = store.get(message.id)
    assert found.status is status
    return found


def table_call(store: MessageStore, method: str, message_id: str, kwargs: dict[str, object]) -> object:
    """The method's result, or None when it refused by raising InvalidTransition."""
    try:
        return getattr(store, method)(message_id, now=TABLE_AT, **kwargs)
    except InvalidTransition:
        return None


def table_kwargs(method: str, named: set[str], **options: object) -> dict[str, object]:
    """The method's required keyword arguments, those the table names as a source, and the variant's options."""
    parameters = inspect.signature(getattr(MessageStore, method)).parameters
    wanted = {name for name, p in parameters.items()
              if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty} | named
    return {name: TABLE_ARGS[name] for name in wanted & set(parameters) - {"now"}} | options


def table_value(source: lifecycle.Source, field: str, before: Message, kwargs: dict[str, object]) -> object:
    if source is lifecycle.NOW:
        return TABLE_AT
    if isinstance(source, lifecycle.Const):
        return source.value
    if isinstance(source, lifecycle.Row):
        return next((getattr(before, c) for c in source.columns if getattr(before, c) is not None), None)
    if isinstance(source, lifecycle.Once):
        return getattr(before, field) if getattr(before, field) is not None else kwargs[source.name]
    assert isinstance(source, lifecycle.Arg)
    if source.name in TABLE_STORED:
        return TABLE_STORED[source.name](kwargs[source.name])
    return kwargs[source.name] if source.name in kwargs else TABLE_DERIVED[source.name](kwargs)


TABLE_WRITES = [write for transition in lifecycle.TRANSITIONS for write in transition.writes.values()]


@pytest.mark.parametrize("write", TABLE_WRITES, ids=[write.key for write in TABLE_WRITES])
def test_every_transition_does_what_the_table_says(store: MessageStore, write: lifecycle.Write) -> None:
    transition = write.transition
    named = {source.name for _, source in write.sets if isinstance(source, lifecycle.Arg | lifecycle.Once)}
    options: dict[str, object] = {"keep_doubt": True} if write.key.count("+keep_doubt") else {}
    if not write.owner and transition.lease is not lifecycle.Lease.NONE:
        options["owner"] = None
    kwargs = table_kwargs(transition.method, named, **options)
    # A write that checks the lease's owner takes only what a lease can hold.
    allowed = [s for s in transition.from_statuses if not write.owner or s in lifecycle.LEASED]
    for i, status in enumerate(MessageStatus):
        before = in_status(store, status, i, write)
        result = table_call(store, transition.method, before.id, kwargs)
        after = store.get(before.id)
        if status not in allowed:
            assert result in (None, False), (status, result)
            assert after == before, status  # a refused transition writes nothing
            continue
        assert result not in (None, False), status
        if isinstance(result, Message):
            assert result == after
        expected = {field: table_value(source, field, before, kwargs) for field, source in write.sets}
        expected |= dict.fromkeys(write.clears)
        if transition.uses_attempt:
            expected["attempts"] = before.attempts + 1
        if transition.event is not None:
            expected["updated_at"] = TABLE_AT
            expected["history"] = after.history  # checked below
        for field in dataclasses.fields(Message):
            assert getattr(after, field.name) == expected.get(field.name, getattr(before, field.name)), (status, field)
        if transition.event is not None:
            assert after.history[:-1] == before.history
            entry = after.history[-1]
            assert (entry.at, entry.event) == (TABLE_AT, transition.event)
            assert entry.session == table_value(transition.history_session, "", before, kwargs)


CONDITIONED = [(write, condition) for write in TABLE_WRITES for condition in write.transition.conditions]


@pytest.mark.parametrize(("write", "condition"), CONDITIONED,
                         ids=[f"{write.key}-{condition}" for write, condition in CONDITIONED])
def test_a_transition_whose_condition_fails_writes_nothing(store: MessageStore, write: lifecycle.Write,
                                                           condition: lifecycle.Condition) -> None:
    transition = write.transition
    named = {source.name for _, source in write.sets if isinstance(source, lifecycle.Arg | lifecycle.Once)}
    options: dict[str, object] = {"owner": None} if not write.owner and transition.lease is not lifecycle.Lease.NONE \
        else {}
    kwargs = table_kwargs(transition.method, named, **options)
    allowed = [s for s in transition.from_statuses if not write.owner or s in lifecycle.LEASED]
    for i, status in enumerate(allowed):
        before = breaking(store, condition, status, i)
        assert table_call(store, transition.method, before.id, kwargs) in (None, False), status
        assert store.get(before.id) == before, status


@pytest.mark.parametrize("removal", lifecycle.REMOVALS, ids=[removal.method for removal in lifecycle.REMOVALS])
def test_every_removal_takes_what_the_table_says(store: MessageStore, removal: lifecycle.Removal) -> None:
    for i, status in enumerate(MessageStatus):
        before = in_status(store, status, i)
        if removal.archived:  # every message whose failed_at is before older_than, this one alone here
            moved = store.archive_failed(older_than=TABLE_ARGS["older_than"], now=TABLE_AT)  # type: ignore[arg-type]
            assert moved == (status in removal.from_statuses), status
        elif status in removal.from_statuses:
            store.delete(before.id)
        else:
            with pytest.raises(InvalidTransition):
                store.delete(before.id)
        if status not in removal.from_statuses:
            assert store.get(before.id) == before, status
            continue
        with pytest.raises(NotFound):
            store.get(before.id)
        if removal.archived:
            assert store.get_archived(before.id) == before
        else:
            with pytest.raises(NotFound):
                store.get_archived(before.id)

"""The transition table (wa_queue/store/lifecycle.py) is consistent in itself, with the MessageStore interface and
with the lifecycle table of docs/architecture.md. What each adapter does with it is checked in
tests/contract/store/test_transition_table.py (test_every_transition_does_what_the_table_says), on every adapter."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

from tests.helpers.constants import ROOT
from wa_queue.models import Message, MessageStatus
from wa_queue.store import lifecycle
from wa_queue.store.base import MessageStore

FIELDS = {field.name for field in dataclasses.fields(Message)}
COMPUTED_ARGS = {"lease_expires_at"}  # now + lease_s, computed by the adapter from the method's lease_s
WRITES = [write for transition in lifecycle.TRANSITIONS for write in transition.writes.values()]


def sources(write: lifecycle.Write) -> list[lifecycle.Source]:
    return [source for _, source in write.sets] + [write.transition.history_session]


@pytest.mark.parametrize("write", WRITES, ids=[write.key for write in WRITES])
def test_each_write_names_real_fields_and_arguments(write: lifecycle.Write) -> None:
    transition = write.transition
    method = getattr(MessageStore, transition.method)
    assert getattr(method, "__isabstractmethod__", False), "a transition is a MessageStore method every adapter has"
    parameters = set(inspect.signature(method).parameters)
    set_fields = [field for field, _ in write.sets]
    assert len(set(set_fields)) == len(set_fields) and len(set(write.clears)) == len(write.clears)
    assert not set(set_fields) & set(write.clears), "a field is either set or cleared"
    assert set(set_fields) | set(write.clears) <= FIELDS
    assert not {"id", "history", "updated_at"} & (set(set_fields) | set(write.clears)), "the adapters write these"
    assert not (transition.uses_attempt and "attempts" in set_fields)
    for source in sources(write):
        if isinstance(source, lifecycle.Arg | lifecycle.Once):
            assert source.name in parameters | COMPUTED_ARGS, source
        if isinstance(source, lifecycle.Row):
            assert source.columns and set(source.columns) <= FIELDS, source
    assert transition.from_statuses and len(set(transition.from_statuses)) == len(transition.from_statuses)
    assert (transition.to is None) == ("status" not in set_fields)
    if transition.event is None:  # not a change of the message: nothing for a history entry to explain
        assert transition.to is None and not transition.uses_attempt


def test_write_keys_are_unique_and_every_option_is_an_argument() -> None:
    assert len({write.key for write in WRITES}) == len(WRITES)
    for transition in lifecycle.TRANSITIONS:
        parameters = inspect.signature(getattr(MessageStore, transition.method)).parameters
        if transition.doubt:
            assert "keep_doubt" in parameters, transition.method
        if transition.lease is lifecycle.Lease.HELD_UNLESS_NO_OWNER:
            assert parameters["owner"].annotation in ("str | None", "Optional[str]"), transition.method
        if not transition.doubt:
            with pytest.raises(KeyError):
                transition.write(keep_doubt=True)  # an option the transition does not have


def test_a_lease_exists_only_while_processing() -> None:
    """Only a leased message has a lease owner to check, and a transition out of a leased status clears the lease
    (so list_leases and list_expired_leases never meet a message that is not being worked on)."""
    assert lifecycle.LEASED == (MessageStatus.PROCESSING,)
    for write in WRITES:
        transition = write.transition
        if transition.lease is lifecycle.Lease.HELD:
            assert set(transition.from_statuses) <= set(lifecycle.LEASED), write.key
        elif transition.lease is lifecycle.Lease.HELD_UNLESS_NO_OWNER:  # with an owner, it takes what a lease holds
            assert set(transition.from_statuses) & set(lifecycle.LEASED), write.key
        leaving = transition.to is not None and transition.to not in lifecycle.LEASED
        if leaving and set(transition.from_statuses) & set(lifecycle.LEASED):
            assert set(lifecycle.LEASE) <= set(write.clears), write.key
        if transition.to in lifecycle.LEASED:
            assert {field for field, _ in write.sets} >= set(lifecycle.LEASE), write.key


def test_every_status_is_reached_and_left() -> None:
    reached = {lifecycle.INSERT_STATUS} | {t.to for t in lifecycle.TRANSITIONS if t.to is not None}
    left = {status for t in lifecycle.TRANSITIONS if t.to is not None for status in t.from_statuses}
    left |= {status for removal in lifecycle.REMOVALS for status in removal.from_statuses}
    assert reached == set(MessageStatus)
    assert left == set(MessageStatus) - set(lifecycle.FINAL)


def test_the_architecture_doc_lists_every_transition_with_its_statuses_and_event() -> None:
    """docs/architecture.md's lifecycle table: one row per transition, with the table's from and to statuses and
    history event, so the prose cannot drift from the code."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = [line.split("|")[1:-1] for line in text.splitlines() if re.match(r"\| *\(?\w", line) and "`store." in line]
    by_method: dict[str, list[tuple[str, str, str]]] = {}
    for cells in rows:
        start, end, _, event, code = (cell.strip() for cell in cells[:5])
        for method in re.findall(r"`store\.(\w+)`", code):
            by_method.setdefault(method, []).append((start, end, event))
    for transition in lifecycle.TRANSITIONS:
        assert transition.method in by_method, f"docs/architecture.md has no row for store.{transition.method}"
        for start, end, event in by_method[transition.method]:
            assert start in {status.value for status in transition.from_statuses}, (transition.method, start)
            assert end == (transition.to or transition.from_statuses[0]).value, (transition.method, end)
            expected = f"`{transition.event.value}`" if transition.event is not None else "(none)"
            assert event.startswith(expected), (transition.method, event)
    for removal in lifecycle.REMOVALS:
        assert [start for start, _, _ in by_method[removal.method]] == [s.value for s in removal.from_statuses]

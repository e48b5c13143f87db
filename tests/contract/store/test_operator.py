"""The store contract, operator side: failed messages listed, retried, marked as sent, deleted and archived."""

from __future__ import annotations

import pytest

from tests.contract.store.helpers import at, claimed, events, failed, insert, run_threads
from tests.helpers.constants import NO_MESSAGES, NOW
from wa_queue.errors import InvalidTransition, NotFound, ValidationError
from wa_queue.models import Message, MessageStatus
from wa_queue.store.base import MessageStore


def test_count_by_status_follows_every_transition(store: MessageStore) -> None:
    assert store.count_by_status() == NO_MESSAGES
    for i in range(3):
        insert(store, i)
    c = claimed(store, 10, owner="w")
    f = failed(store, 11)
    s = claimed(store, 12, owner="x")
    store.record_sent(s.id, owner="x", now=at(1), session="s1", wa_id=None)
    assert store.count_by_status() == {**NO_MESSAGES, "pending": 3, "processing": 1, "sent": 1, "failed": 1}
    store.recover(c.id, owner="w", now=at(100), reason="r")
    store.retry_failed(f.id, now=at(2))
    assert store.count_by_status() == {**NO_MESSAGES, "pending": 5, "sent": 1}
    f2 = failed(store, 13)
    store.delete(f2.id)
    assert store.count_by_status() == {**NO_MESSAGES, "pending": 5, "sent": 1}


def test_list_failed_pages_and_filters(store: MessageStore) -> None:
    f1 = failed(store, 1, now=at(1), error="InvalidNumber", text="not on whatsapp", session="s1")
    f2 = failed(store, 2, now=at(2), error="TransientSendError", text="timeout x", session="s2")
    f3 = failed(store, 3, now=at(3), error="TransientSendError", text="element missing", session="s1")
    insert(store, 4)
    page, total = store.list_failed()
    assert [m.id for m in page] == [f3.id, f2.id, f1.id] and total == 3
    page, total = store.list_failed(offset=1, limit=1)
    assert [m.id for m in page] == [f2.id] and total == 3
    page, total = store.list_failed(session="s1")
    assert [m.id for m in page] == [f3.id, f1.id] and total == 2
    page, total = store.list_failed(error="TransientSendError")
    assert total == 2
    page, total = store.list_failed(error="timeout")
    assert [m.id for m in page] == [f2.id] and total == 1
    page, total = store.list_failed(session="s1", error="Invalid")
    assert [m.id for m in page] == [f1.id] and total == 1


def test_retry_failed_rules(store: MessageStore) -> None:
    f = failed(store, 1)
    store.mark_dispatched([f.id], now=at(1), epoch="e1", queue="q")
    again = store.retry_failed(f.id, now=at(5))
    assert again.status is MessageStatus.PENDING and again.attempts == 0 and again.next_attempt_at == at(5)
    assert again.last_error_class is None and again.last_error_text is None and again.failed_at is None
    assert again.dispatch_epoch is None and again.updated_at == at(5)
    assert again.history[-1].event == "requeued"
    with pytest.raises(InvalidTransition):
        store.retry_failed(f.id, now=at(6))
    with pytest.raises(NotFound):
        store.retry_failed("missing", now=at(6))


def test_retry_all_failed(store: MessageStore) -> None:
    f1 = failed(store, 1, session="s1")
    f2 = failed(store, 2, session="s2")
    f3 = failed(store, 3, session="s1")
    insert(store, 4)
    assert sorted(store.retry_all_failed(now=at(1), session="s1")) == sorted([f1.id, f3.id])
    assert store.get(f2.id).status is MessageStatus.FAILED
    assert store.retry_all_failed(now=at(2)) == [f2.id]
    assert store.count_by_status()["pending"] == 4 and store.retry_all_failed(now=at(3)) == []


def unverified(store: MessageStore, i: int = 0, clicked_by: str = "s2", failed_by: str = "s1") -> Message:
    """A send clicked by `clicked_by` whose worker died; `failed_by` could not read the chat and gave up."""
    message = insert(store, i)
    store.claim(message.id, owner="w2", session=clicked_by, now=at(1), lease_s=5)
    assert store.mark_sending(message.id, owner="w2", now=at(2))
    store.recover(message.id, owner="w2", now=at(10), reason="lease expired")  # keeps sending_at/sending_session
    store.claim(message.id, owner="w1", session=failed_by, now=at(11), lease_s=60)
    result = store.record_failed(message.id, owner="w1", now=at(12), error_class="OutcomeUnverified",
                                 error_text="chat could not be read", count_attempt=False)
    assert result is not None and result.claimed_by == failed_by and result.sending_session == clicked_by
    return result


def test_mark_sent_by_operator_credits_the_session_that_clicked(store: MessageStore) -> None:
    before = unverified(store, 1)
    sent = store.mark_sent_by_operator(before.id, now=at(20), actor="api:ops", note="  seen on the phone ")
    assert sent.status is MessageStatus.SENT and sent.sent_at == at(20) and sent.updated_at == at(20)
    assert sent.sent_by == "s2" and sent.wa_id is None and not sent.in_doubt
    # Kept for the record: why the operator had to decide, and when the click was.
    assert sent.failed_at == at(12) and sent.last_error_class == "OutcomeUnverified"
    assert sent.last_error_text == "chat could not be read" and sent.attempts == before.attempts
    assert sent.sending_at == at(2)
    last = sent.history[-1]
    assert (last.event, last.at, last.session, last.error_class) == ("sent", at(20), "s2", None)
    assert last.error_text == "marked as sent by operator api:ops: seen on the phone"
    assert sent.history[:-1] == before.history
    assert store.get(before.id) == sent


def test_mark_sent_by_operator_without_a_click_credits_the_claiming_session(store: MessageStore) -> None:
    f = failed(store, 1, session="s3")
    sent = store.mark_sent_by_operator(f.id, now=at(5), actor="cli:alice")
    assert sent.sent_by == "s3" and sent.history[-1].session == "s3"
    assert sent.history[-1].error_text == "marked as sent by operator cli:alice"
    assert store.mark_sent_by_operator(failed(store, 2).id, now=at(5), actor="x", note="").history[-1].error_text \
        == "marked as sent by operator x"


def test_mark_sent_by_operator_rules(store: MessageStore) -> None:
    pending = insert(store, 1)
    busy = claimed(store, 2, owner="w")
    done = claimed(store, 3, owner="x")
    store.record_sent(done.id, owner="x", now=at(1), session="s1", wa_id="wa-3")
    for message_id in (pending.id, busy.id, done.id):
        before = store.get(message_id)
        with pytest.raises(InvalidTransition):
            store.mark_sent_by_operator(message_id, now=at(2), actor="ops")
        assert store.get(message_id) == before
    with pytest.raises(NotFound):
        store.mark_sent_by_operator("missing", now=at(2), actor="ops")
    f = failed(store, 4)
    for kwargs in ({"actor": ""}, {"actor": "   "}, {"actor": "ops", "note": "n" * 501}):
        with pytest.raises(ValidationError):
            store.mark_sent_by_operator(f.id, now=at(2), **kwargs)  # type: ignore[arg-type]
    assert store.get(f.id) == f  # refused before anything was written
    store.mark_sent_by_operator(f.id, now=at(3), actor="ops", note="n" * 500)
    with pytest.raises(InvalidTransition):
        store.mark_sent_by_operator(f.id, now=at(4), actor="ops")  # once only
    with pytest.raises(InvalidTransition):
        store.retry_failed(f.id, now=at(4))
    with pytest.raises(InvalidTransition):
        store.delete(f.id)


def test_mark_sent_by_operator_moves_counts_and_counts_as_a_send(store: MessageStore) -> None:
    u = unverified(store, 1, clicked_by="s2", failed_by="s1")
    other = failed(store, 2)
    assert store.count_by_status() == {**NO_MESSAGES, "failed": 2}
    assert store.list_failed(error="OutcomeUnverified")[1] == 1
    store.mark_sent_by_operator(u.id, now=at(30), actor="ops")
    assert store.count_by_status() == {**NO_MESSAGES, "sent": 1, "failed": 1}
    assert store.list_failed() == ([other], 1) and store.list_failed(error="OutcomeUnverified")[1] == 0
    # sends_since counts by sent_by and sent_at: the daily cap of the session that clicked includes it.
    assert store.sends_since("s2", at(0)) == 1 and store.sends_since("s1", at(0)) == 0
    assert store.sends_since("s2", at(31)) == 0
    assert store.sends_per_hour(since=at(-3600)) == [(NOW, 1)]
    assert store.archive_failed(older_than=at(10**6), now=at(10**6)) == 1  # only the one still failed
    assert store.get(u.id).status is MessageStatus.SENT


def test_mark_sent_and_retry_race_has_one_winner(store: MessageStore) -> None:
    f = failed(store, 1)

    def decide(i: int) -> Message:
        if i % 2:
            return store.retry_failed(f.id, now=at(5))
        return store.mark_sent_by_operator(f.id, now=at(5), actor=f"ops{i}")

    results = run_threads(6, decide)
    winners = [r for r in results if isinstance(r, Message)]
    assert len(winners) == 1, results
    assert all(isinstance(r, InvalidTransition) for r in results if r is not winners[0])
    final = store.get(f.id)
    assert final.status is winners[0].status and events(final)[-1] in ("sent", "requeued")
    assert events(final).count("sent") + events(final).count("requeued") == 1


def test_delete_rules(store: MessageStore) -> None:
    f = failed(store, 1)
    pending = insert(store, 2)
    with pytest.raises(InvalidTransition):
        store.delete(pending.id)
    store.delete(f.id)
    with pytest.raises(NotFound):
        store.get(f.id)
    with pytest.raises(NotFound):
        store.delete(f.id)
    assert store.get(pending.id).status is MessageStatus.PENDING


def test_archive_moves_old_failed_messages(store: MessageStore) -> None:
    old = failed(store, 1, now=at(-40 * 86400))
    recent = failed(store, 2, now=at(-1 * 86400))
    pending = insert(store, 3, now=at(-50 * 86400))
    assert store.archive_failed(older_than=at(-30 * 86400), now=NOW) == 1
    with pytest.raises(NotFound):
        store.get(old.id)
    archived = store.get_archived(old.id)
    assert archived.id == old.id and archived.status is MessageStatus.FAILED and archived.history == old.history
    assert store.get(recent.id).status is MessageStatus.FAILED
    assert store.get(pending.id).status is MessageStatus.PENDING
    with pytest.raises(NotFound):
        store.get_archived(recent.id)
    assert store.count_by_status()["failed"] == 1
    assert store.list_failed()[1] == 1
    assert store.archive_failed(older_than=at(-30 * 86400), now=NOW) == 0
    with pytest.raises(NotFound):
        store.retry_failed(old.id, now=NOW)


def test_list_archived_pages_and_filters_like_list_failed(store: MessageStore) -> None:
    assert store.list_archived() == ([], 0)
    a1 = failed(store, 1, now=at(-40 * 86400), error="InvalidNumber", text="not on whatsapp", session="s1")
    a2 = failed(store, 2, now=at(-39 * 86400), error="TransientSendError", text="timeout x", session="s2")
    a3 = failed(store, 3, now=at(-38 * 86400), error="TransientSendError", text="element missing", session="s1")
    recent = failed(store, 4, now=at(-1 * 86400), error="TransientSendError", text="timeout y", session="s1")
    assert store.archive_failed(older_than=at(-30 * 86400), now=NOW) == 3
    page, total = store.list_archived()
    assert [m.id for m in page] == [a3.id, a2.id, a1.id] and total == 3  # the recent failure is not archived
    assert page[0].status is MessageStatus.FAILED and page[0].history == a3.history
    page, total = store.list_archived(offset=1, limit=1)
    assert [m.id for m in page] == [a2.id] and total == 3
    page, total = store.list_archived(offset=5)
    assert page == [] and total == 3
    page, total = store.list_archived(session="s1")
    assert [m.id for m in page] == [a3.id, a1.id] and total == 2
    page, total = store.list_archived(error="TransientSendError")
    assert [m.id for m in page] == [a3.id, a2.id] and total == 2
    page, total = store.list_archived(error="timeout")
    assert [m.id for m in page] == [a2.id] and total == 1
    page, total = store.list_archived(session="s1", error="Invalid")
    assert [m.id for m in page] == [a1.id] and total == 1
    assert store.list_archived(session="nobody") == ([], 0)
    assert [m.id for m in store.list_failed()[0]] == [recent.id]
    with pytest.raises(NotFound):
        store.get_archived("no-such-id")
    with pytest.raises(NotFound):
        store.get_archived(recent.id)

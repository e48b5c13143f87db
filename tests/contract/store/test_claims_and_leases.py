"""The store contract, worker side: the claim's compare-and-set, the lease, retry, release and recovery."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.contract.store.helpers import at, claimed, events, insert, new, run_threads
from tests.helpers.constants import NO_MESSAGES, NOW, ROOT
from wa_queue.models import Message, MessageStatus
from wa_queue.store.base import MessageStore


def test_claim_is_a_compare_and_set(store: MessageStore) -> None:
    message = insert(store)
    won = store.claim(message.id, owner="s1/h/1", session="s1", now=at(1), lease_s=30)
    assert won is not None and won.status is MessageStatus.PROCESSING
    assert won.lease_owner == "s1/h/1" and won.lease_expires_at == at(31) and won.claimed_by == "s1"
    assert won.updated_at == at(1)
    assert won.history[-1].event == "claimed" and won.history[-1].session == "s1"
    assert store.claim(message.id, owner="s2/h/2", session="s2", now=at(2), lease_s=30) is None
    assert store.get(message.id).lease_owner == "s1/h/1"


def test_claim_refuses_not_yet_due_and_wrong_attempts(store: MessageStore) -> None:
    message = insert(store, now=at(100))
    assert store.claim(message.id, owner="o", session="s1", now=at(99), lease_s=30) is None
    assert store.claim(message.id, owner="o", session="s1", now=at(100), lease_s=30, attempts=1) is None
    assert store.claim(message.id, owner="o", session="s1", now=at(100), lease_s=30, attempts=0) is not None


def test_claim_records_last_attempt_at(store: MessageStore) -> None:
    message = insert(store, 1)
    assert message.last_attempt_at is None and store.get(message.id).last_attempt_at is None
    first = store.claim(message.id, owner="w", session="s1", now=at(1), lease_s=60)
    assert first is not None and first.last_attempt_at == at(1) and store.get(message.id).last_attempt_at == at(1)
    store.record_retry(message.id, owner="w", now=at(2), next_attempt_at=at(10), error_class="TransientSendError",
                       error_text="later")
    assert store.get(message.id).last_attempt_at == at(1)  # waiting for its retry: still the last attempt's time
    assert store.claim(message.id, owner="w", session="s1", now=at(5), lease_s=60) is None  # not due: no attempt
    second = store.claim(message.id, owner="w", session="s1", now=at(11), lease_s=60)
    assert second is not None and second.last_attempt_at == at(11)
    sent = store.record_sent(message.id, owner="w", now=at(12), session="s1", wa_id=None)
    assert sent is not None and sent.last_attempt_at == at(11)


def test_claim_unknown_id_returns_none(store: MessageStore) -> None:
    assert store.claim("missing", owner="o", session="s1", now=NOW, lease_s=30) is None


def test_concurrent_claims_have_one_winner(store: MessageStore) -> None:
    message = insert(store)
    results = run_threads(8, lambda i: store.claim(message.id, owner=f"s{i}/h/{i}", session=f"s{i}", now=NOW,
                                                   lease_s=30))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and isinstance(winners[0], Message)
    assert store.get(message.id).lease_owner == winners[0].lease_owner


def test_extend_lease_only_by_owner(store: MessageStore) -> None:
    message = claimed(store, owner="w1")
    assert store.extend_lease(message.id, owner="w1", now=at(50), lease_s=60)
    assert store.get(message.id).lease_expires_at == at(110)
    assert not store.extend_lease(message.id, owner="w2", now=at(50), lease_s=600)
    assert store.get(message.id).lease_expires_at == at(110)


def test_mark_sending_only_by_owner(store: MessageStore) -> None:
    message = claimed(store, owner="w1", session="s1")
    assert not store.mark_sending(message.id, owner="w2", now=at(1))
    assert store.mark_sending(message.id, owner="w1", now=at(2))
    loaded = store.get(message.id)
    assert loaded.sending_at == at(2) and loaded.sending_session == "s1" and loaded.in_doubt
    assert loaded.history[-1].event == "sending" and loaded.history[-1].session == "s1"


def test_record_sent_only_by_owner(store: MessageStore) -> None:
    message = claimed(store, owner="w1", session="s1")
    assert store.record_sent(message.id, owner="w2", now=at(3), session="s1", wa_id="x") is None
    sent = store.record_sent(message.id, owner="w1", now=at(3), session="s1", wa_id="wa-1")
    assert sent is not None and sent.status is MessageStatus.SENT
    assert sent.sent_at == at(3) and sent.sent_by == "s1" and sent.wa_id == "wa-1"
    assert sent.lease_owner is None and sent.lease_expires_at is None and not sent.in_doubt
    assert events(sent) == ["enqueued", "claimed", "sent"] and sent.history[-1].session == "s1"
    assert store.record_sent(message.id, owner="w1", now=at(4), session="s1", wa_id="again") is None


def test_record_retry(store: MessageStore) -> None:
    message = claimed(store, owner="w1")
    store.mark_sending(message.id, owner="w1", now=at(1))
    assert store.record_retry(message.id, owner="w2", now=at(2), next_attempt_at=at(300), error_class="E",
                              error_text="t") is None
    retried = store.record_retry(message.id, owner="w1", now=at(2), next_attempt_at=at(300),
                                 error_class="TransientSendError", error_text="timeout")
    assert retried is not None and retried.status is MessageStatus.PENDING
    assert retried.attempts == 1 and retried.next_attempt_at == at(300)
    assert retried.last_error_class == "TransientSendError" and retried.last_error_text == "timeout"
    assert retried.lease_owner is None and retried.lease_expires_at is None and retried.sending_at is None
    last = retried.history[-1]
    assert (last.event, last.session, last.error_class, last.error_text) == ("retry", "s1", "TransientSendError",
                                                                             "timeout")
    assert store.claim(message.id, owner="w1", session="s1", now=at(299), lease_s=30) is None
    assert store.claim(message.id, owner="w1", session="s1", now=at(300), lease_s=30, attempts=0) is None
    assert store.claim(message.id, owner="w1", session="s1", now=at(300), lease_s=30, attempts=1) is not None


def test_record_retry_keeps_session_preference(store: MessageStore) -> None:
    message = insert(store, session="s1")
    store.claim(message.id, owner="w1", session="s2", now=NOW, lease_s=30)
    retried = store.record_retry(message.id, owner="w1", now=at(1), next_attempt_at=at(5), error_class="E",
                                 error_text="x")
    assert retried is not None and retried.session == "s1"


def test_record_failed(store: MessageStore) -> None:
    message = claimed(store, owner="w1")
    assert store.record_failed(message.id, owner="w2", now=at(1), error_class="E", error_text="x") is None
    done = store.record_failed(message.id, owner="w1", now=at(1), error_class="InvalidNumber", error_text="no wa")
    assert done is not None and done.status is MessageStatus.FAILED
    assert done.failed_at == at(1) and done.attempts == 1 and done.lease_owner is None
    last = done.history[-1]
    assert (last.event, last.session, last.error_class, last.error_text) == ("failed", "s1", "InvalidNumber", "no wa")
    assert store.record_failed(message.id, owner=None, now=at(2), error_class="E", error_text="x") is None


def test_record_failed_without_owner_and_without_attempt(store: MessageStore) -> None:
    message = claimed(store, owner="w1")
    done = store.record_failed(message.id, owner=None, now=at(1), error_class="E", error_text="x",
                               count_attempt=False)
    assert done is not None and done.status is MessageStatus.FAILED and done.attempts == 0
    pending = insert(store, 2)
    assert store.record_failed(pending.id, owner=None, now=at(1), error_class="E", error_text="x") is None


def test_release_without_session_change(store: MessageStore) -> None:
    message = insert(store, session="s1")
    store.claim(message.id, owner="w1", session="s1", now=NOW, lease_s=30)
    store.mark_sending(message.id, owner="w1", now=at(1))
    assert store.release(message.id, owner="w2", now=at(2), reason="x") is None
    released = store.release(message.id, owner="w1", now=at(2), reason="session unavailable",
                             error_class="SessionUnavailable")
    assert released is not None and released.status is MessageStatus.PENDING
    assert released.attempts == 0 and released.next_attempt_at == at(2) and released.session == "s1"
    assert released.lease_owner is None and released.sending_at is None
    last = released.history[-1]
    assert (last.event, last.session, last.error_class, last.error_text) == (
        "released", "s1", "SessionUnavailable", "session unavailable")


def test_release_keeping_the_doubt_of_an_earlier_click(store: MessageStore) -> None:
    message = insert(store, session="s1")
    store.claim(message.id, owner="w1", session="s1", now=NOW, lease_s=30)
    store.mark_sending(message.id, owner="w1", now=at(1))
    store.recover(message.id, owner="w1", now=at(2), reason="worker restarted")
    store.claim(message.id, owner="w2", session="s2", now=at(3), lease_s=30)
    released = store.release(message.id, owner="w2", now=at(4), reason="waiting", next_attempt_at=at(60),
                             keep_doubt=True)
    assert released is not None and released.status is MessageStatus.PENDING and released.lease_owner is None
    assert released.sending_at == at(1) and released.sending_session == "s1" and released.in_doubt
    assert released.next_attempt_at == at(60)


def test_release_with_session_change(store: MessageStore) -> None:
    message = insert(store, session="s1")
    store.claim(message.id, owner="w1", session="s1", now=NOW, lease_s=30)
    released = store.release(message.id, owner="w1", now=at(1), reason="cap", next_attempt_at=at(60), session="s2")
    assert released is not None and released.session == "s2" and released.next_attempt_at == at(60)
    store.claim(message.id, owner="w2", session="s2", now=at(60), lease_s=30)
    cleared = store.release(message.id, owner="w2", now=at(61), reason="any", session=None)
    assert cleared is not None and cleared.session is None


def test_expired_leases_and_recover_keeps_sending_at(store: MessageStore) -> None:
    message = claimed(store, owner="s1/hostA/10")  # lease: NOW .. NOW+60
    store.mark_sending(message.id, owner="s1/hostA/10", now=at(5))
    assert store.list_expired_leases(now=at(59)) == []
    assert [m.id for m in store.list_expired_leases(now=at(60))] == [message.id]
    assert store.recover(message.id, owner="someone-else", now=at(61), reason="x") is None
    back = store.recover(message.id, owner="s1/hostA/10", now=at(61), reason="lease expired")
    assert back is not None and back.status is MessageStatus.PENDING and back.attempts == 0
    assert back.sending_at == at(5) and back.sending_session == "s1" and back.in_doubt
    assert back.lease_owner is None
    assert back.history[-1].event == "recovered" and back.history[-1].session == "s1"
    assert store.list_expired_leases(now=at(1000)) == []
    assert store.recover(message.id, owner="s1/hostA/10", now=at(62), reason="again") is None


def test_list_expired_leases_limit(store: MessageStore) -> None:
    for i in range(5):
        claimed(store, i, owner=f"w{i}")
    assert len(store.list_expired_leases(now=at(60), limit=3)) == 3


def test_list_leases_by_owner_prefix(store: MessageStore) -> None:
    mine = claimed(store, 1, owner="s1/hostA/10")
    claimed(store, 2, owner="s1/hostA/11")
    claimed(store, 3, owner="s1/hostB/10")
    sent = claimed(store, 4, owner="s1/hostA/10")
    store.record_sent(sent.id, owner="s1/hostA/10", now=at(1), session="s1", wa_id=None)
    assert [m.id for m in store.list_leases(owner_prefix="s1/hostA/10")] == [mine.id]
    assert len(store.list_leases(owner_prefix="s1/hostA/")) == 2
    assert store.list_leases(owner_prefix="s2/") == []


# ---- SQLite across real processes --------------------------------------------------------------------------------
CLAIMER = """
import sys
from datetime import datetime, timezone
from wa_queue.store.sqlite import SQLiteStore
path, owner, ids_file = sys.argv[1:4]
store = SQLiteStore(path)
now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
sys.stdin.readline()  # both processes start claiming together
for mid in open(ids_file).read().split():
    if store.claim(mid, owner=owner, session=owner, now=now, lease_s=60) is not None:
        print(mid, flush=True)
"""


def test_sqlite_two_processes_claim_each_message_once(tmp_path: Path) -> None:
    from wa_queue.store.sqlite import SQLiteStore

    path = str(tmp_path / "waq.db")
    sqlite_store = SQLiteStore(path)
    ids = [m.id for m, _ in sqlite_store.insert_many([new(i) for i in range(200)], NOW)]
    (tmp_path / "ids").write_text("\n".join(ids))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, path, f"p{n}", str(tmp_path / "ids")], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for n in range(2)]
    for proc in procs:
        proc.stdin.write("go\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
    outputs = [proc.communicate(timeout=60)[0].split() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    claimed_ids = outputs[0] + outputs[1]
    assert sorted(claimed_ids) == sorted(ids)  # every message once, none twice
    for n, output in enumerate(outputs):
        assert all(sqlite_store.get(mid).lease_owner == f"p{n}" for mid in output)
    assert sqlite_store.count_by_status() == {**NO_MESSAGES, "processing": 200}
    sqlite_store.close()

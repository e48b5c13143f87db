"""The store's media records on every adapter: a message's file (MediaRef) kept with it, uploads, and the collector's
question (media_in_use): a file is needed while an upload of it is young, while a message naming it is pending,
processing, paused or failed (or archived), and for WAQ_MEDIA_KEEP_DAYS after one ended sent, expired or cancelled."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.contract.store.helpers import at, claimed, insert, new
from tests.helpers.constants import NOW
from wa_queue.errors import NotFound
from wa_queue.models import MediaKind, MediaRef, MediaUpload, MessageStatus, NewMessage
from wa_queue.store.base import MessageStore

SHA = "ab" * 32
OTHER = "cd" * 32
PDF = MediaRef(SHA, 1234, "application/pdf", "invoice 42.pdf", MediaKind.DOCUMENT)


def in_use(store: MessageStore, sha: str = SHA, *, done_before_s: float = 0, uploaded_since_s: float = 0) -> bool:
    return store.media_in_use(sha, done_before=at(done_before_s), uploaded_since=at(uploaded_since_s))


def test_a_media_message_keeps_its_file_reference(store: MessageStore) -> None:
    message = store.insert(NewMessage(phone="+15550000001", text="Your invoice", media=PDF), NOW)[0]
    again = store.get(message.id)
    assert again.media == PDF and again.media.kind is MediaKind.DOCUMENT and again.text == "Your invoice"
    assert insert(store, 2).media is None and store.get(insert(store, 3).id).media is None


def test_an_upload_round_trips_and_unknown_ids_are_not_found(store: MessageStore) -> None:
    upload = MediaUpload("0" * 31 + "1", PDF, NOW, "shop")
    store.add_upload(upload)
    got = store.get_upload(upload.id)
    assert (got.id, got.media, got.enqueued_by) == (upload.id, PDF, "shop")
    assert abs(got.created_at - NOW) < timedelta(milliseconds=1)
    with pytest.raises(NotFound):
        store.get_upload("f" * 32)
    assert store.delete_uploads_before(NOW) == 0 and store.delete_uploads_before(at(1)) == 1
    with pytest.raises(NotFound):
        store.get_upload(upload.id)


def test_a_young_upload_keeps_its_file(store: MessageStore) -> None:
    store.add_upload(MediaUpload("0" * 31 + "2", PDF, NOW, None))
    assert in_use(store, uploaded_since_s=0) and not in_use(store, uploaded_since_s=1)
    assert not in_use(store, OTHER, uploaded_since_s=-10)


@pytest.mark.parametrize("status", ["pending", "processing", "failed"])
def test_an_unsent_message_keeps_its_file_however_old(store: MessageStore, status: str) -> None:
    message = claimed(store, 1, media=PDF) if status != "pending" else insert(store, 1, media=PDF)
    if status == "failed":
        store.record_failed(message.id, owner="s1/host/1", now=NOW, error_class="InvalidNumber", error_text="no")
    assert store.get(message.id).status == MessageStatus(status)
    assert in_use(store, done_before_s=10**6, uploaded_since_s=10**6)


def test_a_sent_message_keeps_its_file_only_for_the_keep_period(store: MessageStore) -> None:
    message = claimed(store, 1, media=PDF)
    assert store.record_sent(message.id, owner="s1/host/1", now=NOW, session="s1", wa_id="w1") is not None
    assert in_use(store, done_before_s=0, uploaded_since_s=10**6)  # ended at NOW: not before NOW
    assert not in_use(store, done_before_s=60, uploaded_since_s=10**6)
    insert(store, 2, media=PDF)  # another message naming the same file, pending: kept again
    assert in_use(store, done_before_s=60, uploaded_since_s=10**6)


def test_an_archived_message_keeps_its_file(store: MessageStore) -> None:
    message = claimed(store, 1, media=PDF)
    store.record_failed(message.id, owner="s1/host/1", now=NOW, error_class="InvalidNumber", error_text="no")
    assert store.archive_failed(older_than=at(1), now=at(2)) == 1
    assert store.get_archived(message.id).media == PDF
    assert in_use(store, done_before_s=10**6, uploaded_since_s=10**6)


def test_a_replay_with_another_file_is_a_conflict(store: MessageStore) -> None:
    from wa_queue.errors import IdempotencyConflict

    store.insert(new(1, media=PDF, idempotency_key="k"), NOW)
    with pytest.raises(IdempotencyConflict):
        store.insert(new(1, media=MediaRef(OTHER, 1234, "application/pdf", "invoice 42.pdf", "document"),
                         idempotency_key="k"), NOW)
    assert store.insert(new(1, media=PDF, idempotency_key="k"), NOW)[1] is False

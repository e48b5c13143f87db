"""Every lifecycle transition of the pipeline, with the time passed in and a recording publisher."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.helpers.constants import PHONE
from tests.helpers.delivery import delivery_world
from wa_queue import errors, recovery
from wa_queue.broker.recording import RecordingPublisher
from wa_queue.models import HistoryEvent, MessageStatus, NewMessage
from wa_queue.store.sqlite import SQLiteStore
from wa_queue.transport.fake import FakeControl, read_log

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)


class Published:
    """What the recording publisher took, as (ids, queue, countdown) tuples: indexable and comparable like a list."""

    def __init__(self, recording: RecordingPublisher) -> None:
        self._recording = recording

    def _items(self) -> list[tuple[list[str], str, float | None]]:
        return [(p.ids, p.queue, p.countdown) for p in self._recording.published]

    def __getitem__(self, index: int) -> tuple[list[str], str, float | None]:
        return self._items()[index]

    def __eq__(self, other: object) -> bool:
        return self._items() == other

    def __len__(self) -> int:
        return len(self._items())


@pytest.fixture
def env(tmp_path: Path):  # noqa: ANN201
    with delivery_world(tmp_path, T0, {
        "WAQ_MIN_DELAY_S": "25", "WAQ_MAX_DELAY_S": "40", "WAQ_MAX_DAILY_PER_SESSION": "3",
        "WAQ_SESSIONS": "primary,secondary",
    }) as (settings, store, clock, recording, make):
        yield settings, store, clock, Published(recording), make, FakeControl(settings.fake_control)


def _new(store: SQLiteStore, text: str = "hello", phone: str = PHONE, session: str | None = None) -> str:
    return store.insert(NewMessage(phone=phone, text=text, session=session), T0)[0].id


def test_sent_records_time_session_and_history(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make, _ = env
    mid = _new(store)
    outcome = make().process(mid, 0)
    assert outcome.kind == "sent"
    message = store.get(mid)
    assert message.status is MessageStatus.SENT and message.sent_by == "primary" and message.sent_at == T0
    assert [h.event for h in message.history] == ["enqueued", "claimed", "sending", "sent"]
    assert [e["ref"] for e in read_log(settings.fake_log)] == [mid]


def test_duplicate_delivery_does_nothing(env) -> None:  # noqa: ANN001
    settings, store, _, _, make, _ = env
    mid = _new(store)
    assert make().process(mid, 0).kind == "sent"
    assert make("secondary").process(mid, 0).kind == "skipped"
    assert len(read_log(settings.fake_log)) == 1


def test_transient_errors_follow_the_schedule_then_fail_and_notify(env, caplog) -> None:  # noqa: ANN001
    """The retries wait in the store, not as countdowns in the broker (DESIGN's invariant 2): no task until the
    sweeper finds the message due, then one, without a countdown."""
    settings, store, clock, published, make, control = env
    control.set_number_fault(PHONE, "transient")
    mid = _new(store)
    delivery = make()
    for attempt, delay in enumerate(settings.retry_delays):
        outcome = delivery.process(mid, attempt)
        assert outcome.kind == "retry" and "waits in the store" in outcome.detail
        message = store.get(mid)
        assert message.status is MessageStatus.PENDING and message.attempts == attempt + 1
        assert message.next_attempt_at == clock.now + timedelta(seconds=delay) and message.dispatch_epoch is None
        before = len(published)
        recovery.dispatch_due(store, settings, clock.now + timedelta(seconds=delay - 1), publisher=delivery.publisher)
        assert len(published) == before  # not due yet: nothing in the broker
        clock.now = message.next_attempt_at
        recovery.dispatch_due(store, settings, clock.now, publisher=delivery.publisher)
        assert published[before:] == [([mid], "wa.default", None)]
    outcome = delivery.process(mid, len(settings.retry_delays))
    assert outcome.kind == "failed"
    message = store.get(mid)
    assert message.status is MessageStatus.FAILED and message.attempts == 6
    assert message.last_error_class == "TransientSendError" and message.failed_at is not None
    assert "message_failed" in caplog.text
    assert [h.event for h in message.history].count("retry") == 5


def test_invalid_number_fails_at_once(env) -> None:  # noqa: ANN001
    settings, store, _, published, make, control = env
    control.set_number_fault(PHONE, "unregistered")
    mid = _new(store)
    assert make().process(mid, 0).kind == "failed"
    message = store.get(mid)
    assert message.status is MessageStatus.FAILED and message.last_error_class == "InvalidNumber"
    assert store.get_number_check(PHONE) is False and published == []
    assert read_log(settings.fake_log) == []


def test_disconnected_session_releases_without_using_an_attempt(env) -> None:  # noqa: ANN001
    _, store, _, published, make, control = env
    control.set_session_state("primary", "phone_disconnected")
    mid = _new(store)
    outcome = make().process(mid, 0)
    assert outcome.kind == "released"
    message = store.get(mid)
    assert message.status is MessageStatus.PENDING and message.attempts == 0
    assert published[-1][1] == "wa.session.secondary"
    assert make("secondary").process(mid, 0).kind == "sent"


def test_daily_cap_hands_over_then_parks_until_local_midnight(env) -> None:  # noqa: ANN001
    settings, store, clock, published, make, _ = env
    ids = [_new(store, f"m{i}") for i in range(7)]
    primary, secondary = make(), make("secondary")
    assert [primary.process(i, 0).kind for i in ids[:3]] == ["sent"] * 3
    assert primary.process(ids[3], 0).kind == "released" and published[-1][1] == "wa.session.secondary"
    assert [secondary.process(i, 0).kind for i in ids[3:6]] == ["sent"] * 3
    outcome = secondary.process(ids[6], 0)
    assert outcome.kind == "parked"
    parked = store.get(ids[6])
    assert parked.next_attempt_at == datetime(2026, 11, 29, tzinfo=timezone.utc) and parked.dispatch_epoch is None
    last = parked.history[-1]  # the stored class name is the string it always was
    assert last.event is HistoryEvent.RELEASED
    assert last.error_class == "DailyCapReached" == errors.DailyCapReached.__name__


def test_pacing_spaces_sends_by_the_random_pause(env) -> None:  # noqa: ANN001
    _, store, clock, _, make, _ = env
    delivery = make()
    first, second = _new(store, "a"), _new(store, "b")
    delivery.process(first, 0)
    delivery.process(second, 0)
    gap = (store.get(second).sent_at - store.get(first).sent_at).total_seconds()
    assert 25 <= gap <= 40 and len(clock.slept) == 1


def test_unknown_outcome_is_checked_before_sending_again(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make, control = env
    control.set_number_fault(PHONE, "unknown", count=1)
    mid = _new(store)
    assert make().process(mid, 0).kind == "retry"
    clock.now = store.get(mid).next_attempt_at
    assert make().process(mid, 1).kind == "sent"
    assert len(read_log(settings.fake_log)) == 1  # found in the chat, not sent twice


def test_crash_after_click_is_settled_by_reading_the_chat(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make, _ = env
    mid = _new(store)
    delivery = make()
    claimed = store.claim(mid, owner=delivery.owner, session="primary", now=T0, lease_s=60)
    assert claimed is not None and store.mark_sending(mid, owner=delivery.owner, now=T0)
    delivery.sender.send(PHONE, "hello", ref=mid)  # the click happened, then the worker "died"
    recovered = store.recover(mid, owner=delivery.owner, now=T0, reason="worker restarted")
    assert recovered is not None and recovered.in_doubt
    assert make().process(mid, 0).kind == "sent"
    assert len(read_log(settings.fake_log)) == 1


def test_delivery_ticks_are_followed_and_recorded(env, tmp_path) -> None:  # noqa: ANN001
    settings, store, clock, _, make, control = env
    import dataclasses

    delivery = make()
    delivery.settings = dataclasses.replace(settings, receipt_follow_s=5.0)
    control.write({"receipt": "delivered"})
    first = _new(store, "a")
    delivery.process(first, 0)
    second = _new(store, "b")
    control.write({"receipt": "read"})
    delivery.process(second, 0)  # the pacing pause before it is spent reading the first one's ticks
    message = store.get(first)
    assert message.delivered_at is not None and message.read_at is not None
    assert [h.event for h in message.history][-1] == "receipt"


def test_unknown_outcome_is_settled_by_the_session_that_clicked(env) -> None:  # noqa: ANN001
    settings, store, clock, published, make, control = env
    control.set_number_fault(PHONE, "unknown", count=1)
    mid = _new(store)
    delivery = make()
    assert delivery.process(mid, 0).kind == "retry"
    clock.now = store.get(mid).next_attempt_at
    store.update_session("primary", heartbeat_at=clock.now)  # primary is alive and connected
    recovery.dispatch_due(store, settings, clock.now, publisher=delivery.publisher)  # due: the sweeper publishes it
    assert published[-1][1] == "wa.session.primary"  # retried where its chat can be read
    # Another session takes it anyway (e.g. a republish to wa.default): it hands it back, sending nothing.
    assert make("secondary").process(mid, 1).kind == "released"
    assert published[-1][1] == "wa.session.primary"
    assert make().process(mid, 1).kind == "sent"
    assert len(read_log(settings.fake_log)) == 1


def test_a_click_in_doubt_waits_for_its_session_while_it_restarts(env) -> None:  # noqa: ANN001
    """Chaos run: primary's worker was killed after its click; secondary took the message while primary restarted
    and sent it a second time. Now it waits for primary, which finds it in its chat."""
    settings, store, clock, published, make, _ = env
    mid = _new(store)
    delivery = make()
    assert store.claim(mid, owner=delivery.owner, session="primary", now=T0, lease_s=60) is not None
    assert store.mark_sending(mid, owner=delivery.owner, now=T0)
    delivery.sender.send(PHONE, "hello", ref=mid)  # the click happened, then the worker died
    assert store.recover(mid, owner=delivery.owner, now=T0, reason="worker restarted") is not None
    store.update_session("primary", status="closed")  # restarting
    outcome = make("secondary").process(mid, 0)
    assert outcome.kind == "released" and "waiting for the session that clicked" in outcome.detail
    assert published[-1][1:] == ("wa.session.primary", settings.reconnect_unit_s)
    waiting = store.get(mid)
    assert waiting.in_doubt and waiting.doubt_session == "primary"  # the release kept the doubt
    assert len(read_log(settings.fake_log)) == 1  # secondary sent nothing
    clock.now = waiting.next_attempt_at
    store.update_session("primary", status="connected", heartbeat_at=clock.now)  # back
    assert make().process(mid, 0).kind == "sent"  # read in primary's chat
    assert len(read_log(settings.fake_log)) == 1


def test_a_click_in_doubt_goes_to_an_operator_once_its_session_is_gone_for_good(env) -> None:  # noqa: ANN001
    """Another session never sends a message in doubt: once the session that clicked is gone for good, the message
    fails as unverified (the chaos run saw the old rule, "after the window another session sends", send twice)."""
    settings, store, clock, published, make, _ = env
    mid = _new(store)
    delivery = make()
    store.claim(mid, owner=delivery.owner, session="primary", now=T0, lease_s=60)
    store.mark_sending(mid, owner=delivery.owner, now=T0)
    delivery.sender.send(PHONE, "hello", ref=mid)  # the click landed
    store.recover(mid, owner=delivery.owner, now=T0, reason="worker restarted")
    store.update_session("primary", status="closed", needs_operator=True)  # its reconnections ran out
    outcome = make("secondary").process(mid, 0)
    assert outcome.kind == "failed" and outcome.detail == "OutcomeUnverified"
    failed = store.get(mid)
    assert failed.last_error_class == "OutcomeUnverified" and "primary" in failed.last_error_text
    assert failed.in_doubt and failed.doubt_session == "primary"  # kept for the operator to read
    assert len(read_log(settings.fake_log)) == 1
    other = _new(store, "second")
    store.claim(other, owner=delivery.owner, session="primary", now=clock.now, lease_s=60)
    store.mark_sending(other, owner=delivery.owner, now=clock.now)
    store.recover(other, owner=delivery.owner, now=clock.now, reason="worker restarted")
    store.update_session("primary", status="closed", needs_operator=False)  # a worker that never came back
    assert make("secondary").process(other, 0).kind == "released"
    clock.now += timedelta(seconds=settings.reconnect_unit_s * 15 + settings.health_interval_s + 1)
    assert make("secondary").process(other, 0).kind == "failed"  # the reconnection window has passed
    assert len(read_log(settings.fake_log)) == 1  # nothing sent on a guess
    store.retry_failed(other, now=clock.now)  # the operator looked at the phone: not there, send it
    assert not store.get(other).in_doubt
    assert make("secondary").process(other, 0).kind == "sent"
    assert len(read_log(settings.fake_log)) == 2


def test_doubt_survives_a_failed_attempt_of_another_session(env) -> None:  # noqa: ANN001
    """Chaos seed 674697: primary's click stayed Pending; secondary's attempt failed (its browser died) and the doubt
    was forgotten, so primary sent again without reading its chat. The doubt stays until primary settles it."""
    settings, store, clock, published, make, control = env
    control.set_number_fault(PHONE, "unknown", count=1)
    mid = _new(store)
    assert make().process(mid, 0).kind == "retry"
    clock.now = store.get(mid).next_attempt_at
    secondary = make("secondary")
    secondary.sender.find_sent = lambda *a, **k: (_ for _ in ()).throw(AssertionError("read the wrong chat"))
    store.update_session("primary", status="closed", heartbeat_at=clock.now)  # restarting
    assert secondary.process(mid, 1).kind == "released"
    message = store.get(mid)
    assert message.in_doubt and message.doubt_session == "primary"
    # primary's own attempt fails before it can read its chat: the doubt stays, and so does the queue.
    clock.now = message.next_attempt_at
    store.update_session("primary", status="connected", heartbeat_at=clock.now)
    primary = make()
    primary.sender.find_sent = lambda *a, **k: (_ for _ in ()).throw(errors.TransientSendError("browser died"))
    assert primary.process(mid, 1).kind == "retry"
    message = store.get(mid)
    assert message.in_doubt and message.doubt_session == "primary" and published[-1][1] == "wa.session.primary"
    clock.now = message.next_attempt_at
    store.update_session("primary", heartbeat_at=clock.now)
    assert make().process(mid, 2).kind == "sent"  # read in primary's chat, not sent again
    assert len(read_log(settings.fake_log)) == 1


def test_a_chat_that_cannot_be_read_fails_as_unverified_without_a_second_click(env) -> None:  # noqa: ANN001
    settings, store, clock, published, make, control = env
    control.set_number_fault(PHONE, "unknown", count=1)
    mid = _new(store)
    assert make().process(mid, 0).kind == "retry"
    control.set_number_fault(PHONE, "unreadable")
    clock.now = store.get(mid).next_attempt_at
    outcome = make().process(mid, 1)
    assert outcome.kind == "failed" and store.get(mid).last_error_class == "OutcomeUnverified"
    assert len(read_log(settings.fake_log)) == 1


def test_an_unknown_outcome_that_never_settles_ends_unverified(env) -> None:  # noqa: ANN001
    settings, store, clock, published, make, control = env
    control.set_number_fault(PHONE, "unknown", count=1)
    mid = _new(store)
    assert make().process(mid, 0).kind == "retry"
    primary = make()
    primary.sender.find_sent = lambda *a, **k: (_ for _ in ()).throw(errors.SendOutcomeUnknown("still Pending"))
    for attempt in range(1, 6):
        clock.now = store.get(mid).next_attempt_at
        store.update_session("primary", heartbeat_at=clock.now)
        outcome = primary.process(mid, attempt)
    assert outcome.kind == "failed" and store.get(mid).last_error_class == "OutcomeUnverified"
    assert len(read_log(settings.fake_log)) == 1


# ---- the mark before the click (issue 22): the picture, and a mark refused inside the send ----------------------
def test_the_mark_records_the_chats_picture_and_a_doubt_keeps_it(env) -> None:  # noqa: ANN001
    settings, store, clock, _, make, control = env
    first = _new(store, "same text")
    assert make().process(first, 0).kind == "sent"
    earlier = store.get(first).wa_id
    control.set_number_fault(PHONE, "unknown", count=1)  # clicked; the acknowledgement never came
    second = _new(store, "same text")
    assert make().process(second, 0).kind == "retry"
    doubt = store.get(second)
    assert doubt.in_doubt and doubt.doubt_picture == (earlier,)  # what the chat showed just before the click
    clock.now = doubt.next_attempt_at
    settled = make().process(second, 1)
    assert settled.kind == "sent" and store.get(second).wa_id not in (None, earlier)
    assert [e["text"] for e in read_log(settings.fake_log)] == ["same text", "same text"]  # once each


def test_a_row_another_message_owns_does_not_settle_a_doubt(env) -> None:  # noqa: ANN001
    """A message whose click never happened (the worker died between the mark and the click) and a later one with
    the same text, sent and recorded: the later one's row is not the first one's."""
    settings, store, clock, _, make, _ = env
    first = _new(store, "reminder")
    delivery = make()
    assert store.claim(first, owner=delivery.owner, session="primary", now=T0, lease_s=60) is not None
    assert store.mark_sending(first, owner=delivery.owner, now=T0, picture=())  # then died: no click
    assert store.recover(first, owner=delivery.owner, now=T0, reason="worker restarted") is not None
    clock.now = T0 + timedelta(seconds=1)
    second = _new(store, "reminder")
    assert make().process(second, 0).kind == "sent"
    clock.now += timedelta(seconds=60)
    settling = make()
    asked: list[dict] = []
    real = settling.sender.find_sent
    settling.sender.find_sent = lambda *a, **k: asked.append(k) or real(*a, **k)  # type: ignore[method-assign]
    assert settling.process(first, 0).kind == "sent"
    # The reading was told which row the later message owns, and what the chat showed before the mark.
    assert asked and asked[0]["taken"] == {store.get(second).wa_id} and asked[0]["picture"] == ()
    log = read_log(settings.fake_log)
    assert len(log) == 2 and store.get(first).wa_id != store.get(second).wa_id  # sent once, not taken as sent


def test_a_mark_refused_at_the_click_sends_nothing(env, monkeypatch) -> None:  # noqa: ANN001
    settings, store, _, _, make, _ = env
    mid = _new(store)
    delivery = make()
    monkeypatch.setattr(delivery.store, "mark_sending", lambda *a, **k: False)  # the lease moved on
    assert delivery.process(mid, 0).kind == "skipped"
    assert read_log(settings.fake_log) == []

    def capped(*args: object, **kwargs: object) -> bool:
        raise errors.DailyCapReached("session daily cap reached: 20 of 20")

    other = _new(store, "capped")
    monkeypatch.setattr(delivery.store, "mark_sending", capped)
    outcome = delivery.process(other, 0)
    assert outcome.kind in ("released", "parked") and store.get(other).attempts == 0
    assert read_log(settings.fake_log) == []


def _media_message(store: SQLiteStore, tmp_path: Path, data: bytes, *, put: bool = True) -> tuple[str, str]:
    import hashlib

    from wa_queue.media.files import DirectoryMediaFiles
    from wa_queue.models import MediaKind, MediaRef

    digest = hashlib.sha256(data).hexdigest()
    if put:
        DirectoryMediaFiles(tmp_path / "media").put(digest, data)
    ref = MediaRef(digest, len(data), "application/pdf", "invoice 42.pdf", MediaKind.DOCUMENT)
    return store.insert(NewMessage(phone=PHONE, text="Your invoice", media=ref), T0)[0].id, digest


def test_a_media_message_is_sent_with_its_stored_bytes_and_its_copy_removed(env, tmp_path: Path) -> None:  # noqa: ANN001
    settings, store, _, _, make, _ = env
    mid, digest = _media_message(store, tmp_path, b"%PDF-1.7 an invoice")
    assert make().process(mid, 0).kind == "sent"
    [entry] = read_log(settings.fake_log)
    assert entry["media"] == {"kind": "document", "filename": "invoice 42.pdf", "size": 19, "sha256": digest}
    assert entry["text"] == "Your invoice"
    assert not any((Path(settings.data_dir) / "outbox" / "primary").iterdir())  # the worker's copy is gone


def test_a_media_message_whose_file_is_gone_fails_for_an_operator(env, tmp_path: Path) -> None:  # noqa: ANN001
    settings, store, _, _, make, _ = env
    mid, _ = _media_message(store, tmp_path, b"%PDF-1.7 never stored", put=False)
    assert make().process(mid, 0).kind == "failed"
    message = store.get(mid)
    assert message.status is MessageStatus.FAILED and message.last_error_class == "MediaMissing"
    assert message.sending_at is None  # nothing was marked: no click, no doubt
    assert read_log(settings.fake_log) == []


def test_a_corrupted_file_is_never_sent(env, tmp_path: Path) -> None:  # noqa: ANN001
    settings, store, _, _, make, _ = env
    mid, digest = _media_message(store, tmp_path, b"%PDF-1.7 the original")
    (tmp_path / "media" / digest[:2] / digest).write_bytes(b"%PDF-1.7 changed on disk")
    assert make().process(mid, 0).kind == "failed"
    assert store.get(mid).last_error_class == "MediaMissing" and read_log(settings.fake_log) == []

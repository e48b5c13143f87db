"""What a reply does (wa_queue/inbound.py), on the default Hub with a real redis-server: recorded once with a pointer
to the last message sent to the number, an opt-out word puts the number on the list (and enqueue refuses it), an
opt-in word takes it off, the signed `message.received` event is queued for WAQ_INBOUND_WEBHOOK_URL, an old STOP read
again does not undo an operator's removal, a crash before the record loses nothing, and a contact without a number
changes no list."""

from __future__ import annotations

import base64
import json

import pytest

from tests.helpers.constants import PHONE
from wa_queue import errors, inbound, names, operations
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import NewMessage, OptChange, blocked_by_opt_out

HOOK = "https://crm.example/replies"


def read(text: str, wa_id: str, phone: str | None = PHONE, chat: str = PHONE):  # noqa: ANN201
    return inbound.receive(default_hub(), session="primary", chat=chat, wa_id=wa_id, text=text, phone=phone,
                           shown_at=None)


def events(redis_server) -> list[dict]:  # noqa: ANN001
    broker = redis_server.client()
    out = []
    for raw in broker.lrange(names.CALLBACK_QUEUE, 0, -1):
        args, _, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
        out.append({"url": args[0], **args[1]})
    return sorted(out, key=lambda e: e["wa_id"])


@pytest.fixture
def hub_env(waq_env, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("WAQ_INBOUND_WEBHOOK_URL", HOOK)
    close_default_hub()
    yield default_hub()
    close_default_hub()


def test_a_reply_is_recorded_once_with_its_event_and_pointer(hub_env, redis_server) -> None:  # noqa: ANN001
    store = hub_env.store
    sent, _ = store.insert(NewMessage(phone=PHONE, text="your code"), hub_env.clock())
    store.claim(sent.id, owner="o", session="primary", now=hub_env.clock(), lease_s=60)
    store.record_sent(sent.id, owner="o", now=hub_env.clock(), session="primary", wa_id=None)
    first = read("Thanks!", "false_1@c.us_3A01")
    assert first is not None and first.reply_to == sent.id and first.opt is None
    assert read("Thanks!", "false_1@c.us_3A01") is None  # read again: nothing more
    [event] = events(redis_server)
    assert event["url"] == HOOK and event["event"] == "message.received" and event["id"] == first.id
    assert (event["text"], event["phone"], event["reply_to"], event["key"]) == ("Thanks!", PHONE, sent.id, None)


def test_stop_and_start_move_the_number_on_and_off_the_list(hub_env) -> None:  # noqa: ANN001
    assert read("  Stop ", "w1").opt is OptChange.OUT
    entry = hub_env.store.get_suppression(PHONE)
    assert entry is not None and (entry.session, entry.word, entry.by) == ("primary", "Stop", "primary")
    with pytest.raises(errors.OptedOut):
        operations.build_message(hub_env, PHONE, "hello")
    assert read("START", "w2").opt is OptChange.IN and hub_env.store.get_suppression(PHONE) is None
    assert operations.build_message(hub_env, PHONE, "hello").phone == PHONE
    assert read("stopping by later", "w3").opt is None and hub_env.store.get_suppression(PHONE) is None
    assert read("PARAR", "w4").opt is OptChange.OUT  # Portuguese, in the default list


def test_an_old_stop_read_again_does_not_undo_a_removal(hub_env) -> None:  # noqa: ANN001
    read("STOP", "w1")
    operations.remove_suppression(hub_env, PHONE, by="test")
    assert read("STOP", "w1") is None and hub_env.store.get_suppression(PHONE) is None


def test_a_crash_before_the_record_loses_nothing_and_records_once(hub_env, monkeypatch, redis_server) -> None:  # noqa: ANN001
    store = hub_env.store
    real = store.record_inbound
    monkeypatch.setattr(store, "record_inbound", lambda _inbound: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        read("stop", "w1")
    assert store.get_suppression(PHONE) is not None and store.list_inbound()[1] == 0  # applied, not yet recorded
    monkeypatch.setattr(store, "record_inbound", real)
    again = read("stop", "w1")
    assert again is not None and store.list_inbound()[1] == 1
    first, second = (e for e in events(redis_server))
    assert first["id"] == second["id"] == again.id  # the repeat carries the same id: the receiver dedupes it


def test_a_contact_without_a_number_is_recorded_and_changes_no_list(hub_env) -> None:  # noqa: ANN001
    got = read("STOP", "false_123456789@lid_3A01", phone=None, chat="Ana Lima")
    assert got is not None and got.phone is None and got.opt is None and got.to_dict()["has_number"] is False
    assert hub_env.store.list_suppressions()[1] == 0


def test_the_opt_out_reply_is_queued_once_past_the_list(hub_env, monkeypatch) -> None:  # noqa: ANN001
    """WAQ_OPT_OUT_REPLY: a confirmation queued from the session that read the STOP, of the one category the list
    lets through; the same STOP read again after a crash before its record queues it once."""
    monkeypatch.setenv("WAQ_OPT_OUT_REPLY", "You will get no more messages from us. Reply START to undo.")
    close_default_hub()
    hub = default_hub()
    store = hub.store
    real = store.record_inbound
    monkeypatch.setattr(store, "record_inbound", lambda _inbound: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        read("STOP", "w1")
    monkeypatch.setattr(store, "record_inbound", real)
    read("STOP", "w1")
    assert store.count_by_status().get("pending", 0) == 1  # queued once, though the STOP was handled twice
    reply = inbound.confirm_opt_out(hub, session="primary", phone=PHONE,
                                    inbound_id=inbound.inbound_id("primary", PHONE, "w1"))  # the same key: a replay
    assert store.count_by_status().get("pending", 0) == 1 and reply.category == "opt_out_reply"
    assert reply.session == "primary" and reply.text.startswith("You will get no more")
    assert blocked_by_opt_out(reply.category, hub.settings.opt_out_scope) is False
    with pytest.raises(errors.OptedOut):  # everything else is still refused
        operations.build_message(hub, PHONE, "hello")

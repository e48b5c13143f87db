"""WAQ_OPT_OUT_SCOPE and the message's category: with `all` (the default) a number on the suppression list gets
nothing; with `marketing` it still gets transactional messages and no marketing ones, refused at enqueue and
cancelled unclicked when queued before the STOP (the early look and the mark alike). WAQ_OPT_OUT_REPLY's
confirmation is the one message the list lets through; a producer cannot give its category."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.helpers.constants import PHONE
from tests.helpers.delivery import delivery_world
from wa_queue import errors, operations
from wa_queue.hub import Hub
from wa_queue.models import Category, MessageStatus, NewMessage, Suppression
from wa_queue.transport.fake import read_log

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)


def world(tmp_path: Path, scope: str):  # noqa: ANN201
    return delivery_world(tmp_path, T0, {"WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0", "WAQ_OPT_OUT_SCOPE": scope})


def stop(store, clock) -> None:  # noqa: ANN001
    assert store.add_suppression(Suppression(phone=PHONE, since=clock(), by="primary", session="primary", word="stop"))


@pytest.mark.parametrize("scope", ["all", "marketing"])
def test_what_the_list_stops_under_each_scope(tmp_path: Path, scope: str) -> None:
    with world(tmp_path, scope) as (settings, store, clock, _, make):
        ids = {c: store.insert(NewMessage(phone=PHONE, text=f"a {c.value} message", category=c), T0)[0].id
               for c in Category}
        stop(store, clock)
        delivery = make()
        kinds = {c: delivery.process(mid, 0).kind for c, mid in ids.items()}
        assert kinds[Category.MARKETING] == "cancelled" and kinds[Category.OPT_OUT_REPLY] == "sent"
        assert kinds[Category.TRANSACTIONAL] == ("cancelled" if scope == "all" else "sent")
        sent = {e["ref"] for e in read_log(settings.fake_log)}
        assert sent == {mid for c, mid in ids.items() if kinds[c] == "sent"}
        assert store.get(ids[Category.MARKETING]).last_error_class == "OptedOut"


@pytest.mark.parametrize("scope", ["all", "marketing"])
def test_enqueue_refuses_by_category_under_each_scope(tmp_path: Path, scope: str) -> None:
    with world(tmp_path, scope) as (settings, store, clock, _, _make):
        stop(store, clock)
        hub = Hub(settings=settings, store=store, clock=clock)
        with pytest.raises(errors.OptedOut) as refused:
            operations.build_message(hub, PHONE, "sale!", category="marketing")
        assert refused.value.field == "phone"
        if scope == "all":
            with pytest.raises(errors.OptedOut):
                operations.build_message(hub, PHONE, "your receipt")
        else:
            assert operations.build_message(hub, PHONE, "your receipt").category is Category.TRANSACTIONAL


def test_the_mark_judges_the_category_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A STOP recorded between the early look and the mark: the mark stops a marketing message and, under the
    marketing scope, lets a transactional one through."""
    with world(tmp_path, "marketing") as (settings, store, clock, _, make):
        ads = store.insert(NewMessage(phone=PHONE, text="sale", category=Category.MARKETING), T0)[0].id
        code = store.insert(NewMessage(phone=PHONE, text="code 1234"), T0)[0].id
        real_mark = store.mark_sending

        def stop_then_mark(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if store.get_suppression(PHONE) is None:
                stop(store, clock)
            return real_mark(*args, **kwargs)

        monkeypatch.setattr(store, "mark_sending", stop_then_mark)
        delivery = make()
        assert delivery.process(ads, 0).kind == "cancelled"
        assert store.get(ads).status is MessageStatus.CANCELLED and not read_log(settings.fake_log)
        assert delivery.process(code, 0).kind == "sent"


def test_a_producer_cannot_give_the_confirmations_category(tmp_path: Path) -> None:
    with world(tmp_path, "all") as (settings, store, clock, _, _make):
        hub = Hub(settings=settings, store=store, clock=clock)
        for bad in ("opt_out_reply", "promo", 3):
            with pytest.raises(errors.ValidationError) as refused:
                operations.build_message(hub, PHONE, "hi", category=bad)
            assert refused.value.field == "category"
        with pytest.raises(errors.ConfigError):
            type(settings).from_env({"WAQ_OPT_OUT_SCOPE": "some"})

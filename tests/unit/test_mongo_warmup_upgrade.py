"""MongoDB on upgrade: a session record written before the warm-up ramp (no first_send_day field at all) gets the UTC
date of its earliest sent message at its first read, so a number in use does not fall back to the ramp's first cap;
one that never sent gets none, and a null written since (an operator's reset) is never backfilled."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from tests.helpers.constants import NOW
from wa_queue import warmup
from wa_queue.models import NewMessage
from wa_queue.store.mongo import MongoStore


def test_a_record_from_before_the_ramp_starts_it_on_its_earliest_send() -> None:
    store = MongoStore.from_url(f"mongomock://localhost/waq_upgrade_{uuid.uuid4().hex[:8]}")
    for i, days_ago in enumerate((9, 3)):
        message, _ = store.insert(NewMessage(phone=f"+1415555012{i}", text="hi"), NOW)
        store.claim(message.id, owner="w", session="primary", now=NOW, lease_s=60)
        store.record_sent(message.id, owner="w", now=NOW - timedelta(days=days_ago), session="primary", wa_id=None)
    for name in ("primary", "idle"):  # what an earlier version wrote: no warm-up fields
        store.sessions.insert_one({"_id": name, "status": "connected"})
    assert store.get_session("primary").first_send_day == date(2024, 4, 22)
    assert store.sessions.find_one({"_id": "primary"})["first_send_day"] == "2024-04-22"  # once, then stored
    assert store.get_session("idle").first_send_day is None
    store.update_session("primary", **warmup.RESET)
    assert store.get_session("primary").first_send_day is None  # a reset stays a reset

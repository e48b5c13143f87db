"""The REST door of the suppression list: a message to a number that opted out is refused with 409 naming phone, in
a bulk a per-item error (the whole request refused, nothing stored), and it goes through again once removed."""

from __future__ import annotations

from tests.api.helpers import assert_error, post
from tests.helpers.constants import PHONE
from wa_queue import operations
from wa_queue.hub import default_hub

OTHER = "+14155550199"


def test_a_suppressed_number_is_refused_alone_and_in_a_bulk(client) -> None:  # noqa: ANN001
    hub = default_hub()
    operations.add_suppression(hub, PHONE, by="primary", session="primary", word="stop")
    body = assert_error(post(client, "/messages", {"phone": PHONE, "text": "hi"}), 409)
    assert body["details"]["field"] == "phone" and "suppression list" in body["error"] and "'stop'" in body["error"]
    bulk = assert_error(post(client, "/messages/bulk", {"messages": [{"phone": OTHER, "text": "a"},
                                                                     {"phone": PHONE, "text": "b"}]}), 409)
    assert [(i["index"], i["field"]) for i in bulk["details"]["items"]] == [(1, "phone")]
    assert sum(hub.store.count_by_status().values()) == 0
    operations.remove_suppression(hub, PHONE, by="test")
    assert post(client, "/messages", {"phone": PHONE, "text": "hi"}).status_code == 202

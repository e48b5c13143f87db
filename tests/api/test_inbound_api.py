"""GET /api/whatsapp/inbound (admin, read-only): the replies the sessions read, newest first, paged like /failed and
filtered by number, session and read time, through Flask's test client against a SQLite file (tests/api/conftest.py's
app: an admin key `ops` and two producers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.helpers import assert_error
from tests.helpers.constants import ADMIN, BASE, PHONE, PRODUCER
from wa_queue.hub import default_hub
from wa_queue.models import InboundMessage, OptChange

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
OTHER = "+4915112345678"


def reply(minute: int, *, phone: str | None = PHONE, session: str = "primary", text: str = "thanks",
          opt: OptChange | None = None) -> str:
    """A reply recorded as read at T0 + `minute` minutes; its id."""
    chat = phone or "Ana (username)"
    inbound = InboundMessage(session=session, chat=chat, wa_id=f"wa-{session}-{minute}", text=text, phone=phone,
                             received_at=T0 + timedelta(minutes=minute), shown_at=T0, opt=opt)
    assert default_hub().store.record_inbound(inbound)
    return inbound.id


def listed(client, query: str = "") -> dict:  # noqa: ANN001
    response = client.get(f"{BASE}/inbound{query}", headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_empty(client) -> None:  # noqa: ANN001
    assert listed(client) == {"items": [], "page": 1, "per_page": 50, "total": 0, "pages": 0}


def test_newest_first_in_pages_of_the_failed_lists_envelope(client) -> None:  # noqa: ANN001
    ids = [reply(i) for i in range(5)]
    first = listed(client, "?per_page=2")
    assert (first["page"], first["per_page"], first["total"], first["pages"]) == (1, 2, 5, 3)
    assert [r["id"] for r in first["items"]] == [ids[4], ids[3]]
    assert [r["id"] for r in listed(client, "?per_page=2&page=3")["items"]] == [ids[0]]
    assert listed(client, "?per_page=2&page=4")["items"] == []  # past the end: an empty page, not an error
    for query in ("page=0", "page=x", "page=", "per_page=0", "per_page=201", "per_page=1.5"):
        body = assert_error(client.get(f"{BASE}/inbound?{query}", headers=ADMIN), 400)
        assert body["details"]["field"] == query.split("=")[0]


def test_a_reply_as_the_api_shows_it(client) -> None:  # noqa: ANN001
    stop = reply(1, text="STOP", opt=OptChange.OUT)
    hidden = reply(2, phone=None, session="secondary", text="<img src=x onerror=alert(1)>")
    first, second = listed(client)["items"]
    assert first["id"] == hidden and first["phone"] is None and first["has_number"] is False
    assert first["text"] == "<img src=x onerror=alert(1)>" and first["chat"] == "Ana (username)"  # as written
    assert first["opt"] is None and first["session"] == "secondary"
    assert second == {"id": stop, "session": "primary", "chat": PHONE, "wa_id": "wa-primary-1", "text": "STOP",
                      "phone": PHONE, "has_number": True, "received_at": (T0 + timedelta(minutes=1)).isoformat(),
                      "shown_at": T0.isoformat(), "reply_to": None, "opt": "out"}


def test_filters(client) -> None:  # noqa: ANN001
    mine = [reply(0), reply(10)]
    other = reply(20, phone=OTHER, session="secondary")
    hidden = reply(30, phone=None)

    def ids(query: str) -> list[str]:
        return [r["id"] for r in listed(client, query)["items"]]

    assert ids("?phone=%2B14155550123") == mine[::-1]
    assert ids("?phone=(415)%20555-0123") == mine[::-1]  # written as an enqueue takes it, found as E.164
    assert ids("?session=secondary") == [other]
    assert len(ids("?session=")) == 4  # empty: every session, as /failed reads it
    since, until = (T0 + timedelta(minutes=10)).isoformat(), (T0 + timedelta(minutes=20)).isoformat()
    assert ids(f"?since={since.replace('+', '%2B')}") == [hidden, other, mine[1]]  # since: from that time on
    assert ids(f"?since={since.replace('+', '%2B')}&until={until.replace('+', '%2B')}") == [mine[1]]  # until: before
    assert ids("?until=2026-12-05T11:05:00%2B01:00") == [mine[0]]  # 10:05 UTC, read from its offset
    assert ids("?phone=%2B14155550123&session=secondary") == []


@pytest.mark.parametrize(("query", "field"), [
    ("phone=abc", "phone"), ("phone=", "phone"), ("phone=%2B0123456", "phone"), ("phone=" + "1" * 40, "phone"),
    ("session=nope", "session"), ("since=yesterday", "since"), ("since=2026-12-05T10:00:00", "since"),
    ("since=2026-02-30T10:00:00Z", "since"), ("until=2026-12-05", "until"), ("since=", "since"),
])
def test_a_bad_filter_is_a_json_400_naming_it(client, query, field) -> None:  # noqa: ANN001
    assert assert_error(client.get(f"{BASE}/inbound?{query}", headers=ADMIN), 400)["details"] == {"field": field}


def test_a_time_past_the_last_year_is_409(client) -> None:  # noqa: ANN001
    body = assert_error(client.get(f"{BASE}/inbound?until=9999-12-31T23:00:00-05:00", headers=ADMIN), 409)
    assert body["details"] == {"field": "until"}


def test_admin_only(client) -> None:  # noqa: ANN001
    reply(0)
    assert_error(client.get(f"{BASE}/inbound"), 401)
    assert_error(client.get(f"{BASE}/inbound", headers={"X-API-Key": "wrong-key-0123456789abc"}), 401)
    body = assert_error(client.get(f"{BASE}/inbound?phone=abc", headers=PRODUCER), 403)  # the role before the query
    assert body["details"] == {"role": "producer"}


def test_documented(client) -> None:  # noqa: ANN001
    spec = client.get("/api/swagger.json", headers=ADMIN).get_json()
    operation = spec["paths"]["/api/whatsapp/inbound"]["get"]
    assert set(operation["responses"]) == {"200", "400", "401", "403", "409", "503"}
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {"phone", "session", "since", "until", "page", "per_page"}
    assert params["session"]["enum"] == ["", "primary", "secondary"]
    assert params["since"]["format"] == "date-time" and params["phone"]["pattern"].startswith("^")
    failed = {p["name"]: p for p in spec["paths"]["/api/whatsapp/failed"]["get"]["parameters"]}
    assert params["page"] == failed["page"] and params["per_page"] == failed["per_page"]
    assert spec["definitions"]["InboundPage"]["required"] == spec["definitions"]["FailedPage"]["required"]
    assert spec["definitions"]["Inbound"]["properties"]["opt"]["enum"] == ["out", "in", None]

"""GET/POST /api/whatsapp/suppressions and DELETE /suppressions/<phone> (admin): the list, an entry added (201) or
found (200) with the key's name as `by`, a number taken off (204, 404 when it is not on the list), and the list's
effect on an enqueue (409 naming phone while on it, 202 once off). Flask's test client against a SQLite file
(tests/api/conftest.py's app: an admin key `ops` and two producers)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.api.helpers import assert_error, post
from tests.helpers.constants import ADMIN, BASE, PHONE, PRODUCER
from wa_queue import operations
from wa_queue.hub import default_hub
from wa_queue.models import OptChange

OTHER = "+4915112345678"


def add(client, phone: str = PHONE):  # noqa: ANN001, ANN201
    return post(client, "/suppressions", {"phone": phone}, headers=ADMIN)


def delete(client, phone: str, headers: dict = ADMIN):  # noqa: ANN001, ANN201
    return client.delete(f"{BASE}/suppressions/{quote(phone, safe='')}", headers=headers)


def test_added_then_found_with_the_keys_name_as_by(client) -> None:  # noqa: ANN001
    response = add(client, "+1 (415) 555-0123")  # written as an enqueue takes it, kept as E.164
    assert response.status_code == 201, response.get_data(as_text=True)
    entry = response.get_json()
    assert set(entry) == {"phone", "since", "by", "session", "word"}
    assert (entry["phone"], entry["by"], entry["session"], entry["word"]) == (PHONE, "ops", None, None)
    stored = default_hub().store.get_suppression(PHONE)
    assert stored is not None and stored.to_dict() == entry
    again = add(client, "4155550123")  # the same number in another form: already there, the entry as it stands
    assert again.status_code == 200 and again.get_json() == entry


def test_an_opt_out_replys_entry_is_answered_as_it_stands(client) -> None:  # noqa: ANN001
    operations.add_suppression(default_hub(), PHONE, by="primary", session="primary", word="stop")
    response = add(client)
    assert response.status_code == 200
    assert {k: response.get_json()[k] for k in ("by", "session", "word")} == {"by": "primary", "session": "primary",
                                                                             "word": "stop"}


def test_the_list_blocks_an_enqueue_until_it_is_removed(client) -> None:  # noqa: ANN001
    assert add(client).status_code == 201
    body = assert_error(post(client, "/messages", {"phone": PHONE, "text": "hi"}), 409)
    assert body["details"]["field"] == "phone" and "suppression list" in body["error"]
    assert post(client, "/messages", {"phone": OTHER, "text": "hi"}).status_code == 202  # only that number
    response = delete(client, PHONE)
    assert response.status_code == 204 and response.get_data() == b""
    assert default_hub().store.get_suppression(PHONE) is None
    assert post(client, "/messages", {"phone": PHONE, "text": "hi"}).status_code == 202
    changes, _ = operations.suppression_log(default_hub(), phone=PHONE)
    assert [(c.change, c.by) for c in changes] == [(OptChange.IN, "ops"), (OptChange.OUT, "ops")]


@pytest.mark.parametrize("written", ["(415) 555-0123", "415/555-0123", "+1.415.555.0123"])
def test_delete_takes_the_number_as_an_enqueue_does(client, written) -> None:  # noqa: ANN001
    add(client)
    assert delete(client, written).status_code == 204
    assert default_hub().store.get_suppression(PHONE) is None


def test_delete_of_a_number_not_on_the_list_is_404(client) -> None:  # noqa: ANN001
    add(client, OTHER)
    body = assert_error(delete(client, PHONE), 404)
    assert body["details"] == {"field": "phone"} and "not on the suppression list" in body["error"]
    assert add(client).status_code == 201 and delete(client, PHONE).status_code == 204
    assert_error(delete(client, PHONE), 404)  # once off, off


@pytest.mark.parametrize("phone", ["abc", "+0123456", "12345", "1" * 40, "+1 415 555 0123 ext 9"])
def test_a_bad_number_is_a_json_400_naming_phone(client, phone) -> None:  # noqa: ANN001
    assert assert_error(add(client, phone), 400)["details"] == {"field": "phone"}
    assert assert_error(delete(client, phone), 400)["details"] == {"field": "phone"}
    assert operations.list_suppressions(default_hub())[1] == 0


@pytest.mark.parametrize(("body", "status", "field"), [
    ({}, 400, "phone"), ({"phone": 4155550123}, 400, "phone"), ({"phone": None}, 400, "phone"),
    ({"phone": PHONE, "word": "stop"}, 400, "word"), ([PHONE], 400, None), ("+14155550123", 400, None),
])
def test_a_bad_body_is_a_json_400(client, body, status, field) -> None:  # noqa: ANN001
    error = assert_error(post(client, "/suppressions", body, headers=ADMIN), status)
    assert error["details"].get("field") == field
    assert operations.list_suppressions(default_hub())[1] == 0


def test_a_body_that_is_not_json_is_415(client) -> None:  # noqa: ANN001
    response = client.post(f"{BASE}/suppressions", data="phone=+14155550123", headers={**ADMIN, "Content-Type":
                                                                                      "application/x-www-form-urlencoded"})
    assert_error(response, 415)


def test_the_list_newest_first_in_pages(client) -> None:  # noqa: ANN001
    assert client.get(f"{BASE}/suppressions", headers=ADMIN).get_json() == {"items": [], "page": 1, "per_page": 50,
                                                                             "total": 0, "pages": 0}
    phones = [f"+1415555010{i}" for i in range(5)]
    for phone in phones:
        assert add(client, phone).status_code == 201
    first = client.get(f"{BASE}/suppressions?per_page=2", headers=ADMIN).get_json()
    assert (first["total"], first["pages"], first["page"], first["per_page"]) == (5, 3, 1, 2)
    assert [e["phone"] for e in first["items"]] == phones[:-3:-1]  # newest first
    last = client.get(f"{BASE}/suppressions?per_page=2&page=3", headers=ADMIN).get_json()
    assert [e["phone"] for e in last["items"]] == [phones[0]] and last["items"][0]["by"] == "ops"
    for query in ("page=0", "page=x", "per_page=201", "per_page="):
        assert_error(client.get(f"{BASE}/suppressions?{query}", headers=ADMIN), 400)


@pytest.mark.parametrize(("method", "path"), [("get", "/suppressions"), ("post", "/suppressions"),
                                              ("delete", f"/suppressions/{quote(PHONE)}")])
def test_admin_only(client, method, path) -> None:  # noqa: ANN001
    operations.add_suppression(default_hub(), PHONE, by="test")
    call = getattr(client, method)
    assert_error(call(BASE + path), 401)
    assert_error(call(BASE + path, headers={"X-API-Key": "wrong-key-0123456789abc"}), 401)
    kwargs = {"json": {"phone": OTHER}} if method == "post" else {}
    assert assert_error(call(BASE + path, headers=PRODUCER, **kwargs), 403)["details"] == {"role": "producer"}
    assert [e.phone for e in operations.list_suppressions(default_hub())[0]] == [PHONE]  # nothing changed


def test_documented(client) -> None:  # noqa: ANN001
    spec = client.get("/api/swagger.json", headers=ADMIN).get_json()
    listing = spec["paths"]["/api/whatsapp/suppressions"]
    item = spec["paths"]["/api/whatsapp/suppressions/{phone}"]
    assert set(listing["get"]["responses"]) == {"200", "400", "401", "403", "503"}
    assert set(listing["post"]["responses"]) == {"200", "201", "400", "401", "403", "409", "413", "415", "503"}
    assert set(item["delete"]["responses"]) == {"204", "400", "401", "403", "404", "503"}
    assert set(item) == {"parameters", "delete"}
    assert spec["definitions"]["NewSuppression"]["additionalProperties"] is False
    assert spec["definitions"]["NewSuppression"]["required"] == ["phone"]
    assert item["parameters"][0]["pattern"] == spec["definitions"]["NewSuppression"]["properties"]["phone"]["pattern"]

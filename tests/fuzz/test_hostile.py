"""Hostile input against the REST API, on a real SQLite store and a real redis-server.

Hand-written cases beyond tests/api/test_api.py: bodies at and over the size cap (also chunked, to a real gunicorn),
deep nesting, NUL bytes, non-ASCII digits, odd content types and encodings, idempotency keys raced by 8 threads over
real connections, all-or-nothing bulks; then schemathesis on every operation with the PRODUCER key. After each case:
no 500, the answer is the JSON error shape, and a rejected request left the store exactly as it was (status counters
and real row counts).
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.app import create_app
from tests.helpers.api import api_client
from tests.helpers.constants import BASE, PHONE, ROOT
from tests.helpers.waiting import wait_for
from wa_queue.devstack.ports import free_port
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.names import ARCHIVE, MESSAGES

PRODUCER_KEY = "fuzz-producer-key-0123456789"
ADMIN_KEY = "fuzz-admin-key-0123456789ab"
PRODUCER = {"X-API-Key": PRODUCER_KEY}
KEYS = f"shop:producer:{PRODUCER_KEY},ops:admin:{ADMIN_KEY}"
CAP = 64 * 1024
JSON_CT = {"Content-Type": "application/json"}


# ---- helpers ----------------------------------------------------------------------------------------------------
def db_path(env: dict[str, str]) -> str:
    return env["WAQ_STORE_URL"].removeprefix("sqlite:///")


def store_state(path: str) -> tuple[dict[str, int], int]:
    """(status counters, real row count of messages + archive); the counters must agree with the rows."""
    conn = sqlite3.connect(path)
    try:
        counters = dict(conn.execute("SELECT status, n FROM status_counts").fetchall())
        rows = dict(conn.execute(f"SELECT status, count(*) FROM {MESSAGES} GROUP BY status").fetchall())
        archived = conn.execute(f"SELECT count(*) FROM {ARCHIVE}").fetchone()[0]
    finally:
        conn.close()
    assert {k: v for k, v in counters.items() if v} == rows, "status counters drifted from the rows"
    return counters, sum(rows.values()) + archived


def assert_error(status: int, content_type: str, body: bytes, expected: int | tuple[int, ...]) -> dict:
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert status in expected, (status, body[:300])
    assert content_type.split(";")[0].strip() == "application/json", content_type
    data = json.loads(body)
    assert set(data) == {"error", "details"} and data["error"] and isinstance(data["details"], dict), data
    return data


def message(text: str = "hi", phone: str = PHONE, **extra: object) -> dict:
    return {"phone": phone, "text": text, **extra}


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


# ---- in-process: Flask test client ------------------------------------------------------------------------------
@pytest.fixture
def client(waq_env, monkeypatch):  # noqa: ANN001, ANN201
    return api_client(monkeypatch, WAQ_API_KEYS=KEYS, WAQ_MAX_REQUEST_BYTES=str(CAP))


@pytest.fixture
def rejects(client, waq_env):  # noqa: ANN001, ANN201
    """rejects(status, data=..., headers=...): POST /messages (or path=...), expect a JSON error, store untouched."""
    path = db_path(waq_env)
    default_hub().store  # create the schema before the first snapshot

    def check(expected: int | tuple[int, ...], data: bytes | str | None = None, headers: dict | None = None,
              path_: str = "/messages") -> dict:
        before = store_state(path)
        response = client.post(BASE + path_, data=data, headers={**PRODUCER, **(headers or {})})
        error = assert_error(response.status_code, response.content_type or "", response.get_data(), expected)
        assert store_state(path) == before, "a rejected request changed the store"
        return error

    return check


def accept(client, body: bytes | str, headers: dict | None = None, path: str = "/messages") -> dict:  # noqa: ANN001
    response = client.post(BASE + path, data=body, headers={**PRODUCER, **JSON_CT, **(headers or {})})
    assert response.status_code in (200, 202), response.get_data(as_text=True)[:300]
    return response.get_json()


def test_body_sizes_around_the_cap(client, rejects, waq_env) -> None:  # noqa: ANN001
    small = json.dumps(message("at the cap"))
    exact = small[:-1] + " " * (CAP - len(small)) + "}"  # JSON whitespace pads it to exactly the cap
    assert len(exact.encode()) == CAP
    stored = accept(client, exact)["id"]
    assert default_hub().store.get(stored).text == "at the cap"
    error = rejects(413, exact[:-1] + " }", JSON_CT)  # one byte over
    assert error["details"]["limit_bytes"] == CAP
    rejects(413, "x" * (10 * CAP), JSON_CT)  # far over, and not even JSON: the size is checked first
    rejects((413, 415), b"{" + b" " * (10 * CAP) + b"}", {"Content-Type": "text/plain"})  # never a 500
    # ...and a bulk that fills the cap with real messages stores every one of them.
    item = json.dumps(message("b" * 200))
    count = (CAP - 20) // (len(item) + 2)
    bulk = json.dumps({"messages": [message("b" * 200)] * count})
    assert CAP - 300 < len(bulk) <= CAP
    before = store_state(db_path(waq_env))[1]
    assert accept(client, bulk, path="/messages/bulk")["count"] == count
    assert store_state(db_path(waq_env))[1] == before + count


@pytest.mark.parametrize("body", [
    '{"phone": "+14155550123", "text": "x", "metadata": ' + nested(10_000) + "}",
    '{"phone": ' + nested(10_000) + ', "text": "x"}',
    "[" * 10_000 + "]" * 10_000,
    '{"messages": [' + nested(10_000) + "]}",
    "[" * 30_000 + "]" * 30_000,
], ids=["metadata", "phone", "array", "bulk-item", "30k-levels"])
def test_deep_nesting_is_400(rejects, body) -> None:  # noqa: ANN001
    rejects(400, body, JSON_CT)
    rejects(400, body, JSON_CT, path_="/messages/bulk")


def _deepest_accepted(client) -> tuple[int, str]:  # noqa: ANN001
    low, high, found = 1, 2_000, ""
    while low < high:  # bisect the deepest metadata the API stores
        mid = (low + high + 1) // 2
        response = client.post(f"{BASE}/messages", data=json.dumps(message("deep"))[:-1] + ', "metadata": '
                               + nested(mid) + "}", headers={**PRODUCER, **JSON_CT})
        assert response.status_code in (202, 400), response.get_data(as_text=True)
        low, high = (mid, high) if response.status_code == 202 else (low, mid - 1)
        found = response.get_json()["id"] if response.status_code == 202 else found
    return low, found


def test_every_accepted_message_is_readable_from_a_deep_stack(client) -> None:  # noqa: ANN001
    """What the API commits must be readable by any process: a Celery task runs ~100 frames deeper than a test."""
    depth, message_id = _deepest_accepted(client)  # today ~950 levels are accepted and committed

    def at_depth(frames: int) -> object:
        return at_depth(frames - 1) if frames else default_hub().store.get(message_id)

    at_depth(150)


@pytest.mark.parametrize(("item", "field"), [
    (message("a\x00b"), "text"),
    (message("\x00"), "text"),
    (message(phone="+1415555\x000123"), "phone"),
    (message(session="primary\x00"), "session"),
    pytest.param(message(callback_url="http://example.com/\x00"), "callback_url"),
], ids=["text", "text-only-nul", "phone", "session", "callback"])
def test_nul_bytes_are_400(rejects, item, field) -> None:  # noqa: ANN001
    assert rejects(400, json.dumps(item), JSON_CT)["details"]["field"] == field


def test_nul_bytes_where_allowed_round_trip(client) -> None:  # noqa: ANN001
    metadata = {"key": "v\x00alue", "nested": ["\x00"]}
    stored = default_hub().store.get(accept(client, json.dumps(message(metadata=metadata)))["id"])
    assert stored.metadata == metadata
    # ...in a key too: both stores keep metadata as JSON text (a MongoDB sub-document could not hold it).
    keyed = {"k\x00ey": 1, "$where": {"a.b": "\x00"}}
    assert default_hub().store.get(accept(client, json.dumps(message(metadata=keyed)))["id"]).metadata == keyed
    # A NUL before the number is dropped by the parser; whatever is stored must be strict E.164.
    response = client.post(f"{BASE}/messages", json=message(phone="\x00+14155550123"), headers=PRODUCER)
    if response.status_code == 202:
        assert default_hub().store.get(response.get_json()["id"]).phone == PHONE
    else:
        assert response.status_code == 400


@pytest.mark.parametrize("phone", [
    "+١٤١٥٥٥٥٠١٢٣",  # Arabic-Indic
    "+۱۴۱۵۵۵۵۰۱۲۳",  # Extended Arabic-Indic (Persian)
    "＋１４１５５５５０１２３",  # full-width
    "+1415555０123",  # one full-width digit among ASCII ones
    "+१४१५५५५०१२३",  # Devanagari
    "+1415555²123",  # superscript two
    "+1415555𝟎123",  # mathematical bold zero
    "+1415555\u06600123",  # one Arabic-Indic zero
], ids=["arabic-indic", "persian", "full-width", "one-full-width", "devanagari", "superscript", "math-bold",
        "one-arabic"])
def test_non_ascii_digits_are_400(rejects, phone) -> None:  # noqa: ANN001
    assert rejects(400, json.dumps(message(phone=phone), ensure_ascii=False).encode(), JSON_CT)["details"] == {
        "field": "phone"}


@pytest.mark.parametrize(("data", "content_type", "status"), [
    ('{"phone": "+14155550123", "text": "x"}', "multipart/form-data; boundary=x", 415),
    ('{"phone": "+14155550123", "text": "x"}', "application/xml", 415),
    ('{"phone": "+14155550123", "text": "x"}', "application/jsonx", 415),
    ('"a string"', "application/json", 400),
    ("42", "application/json", 400),
    ("null", "application/json", 400),
    ("true", "application/json", 400),
    ("", "application/json", 400),
    ('{"phone": "+14155550123", "text": "x"} trailing', "application/json", 400),
    ('{"phone": "+14155550123", "text": "x"}{}', "application/json", 400),
    ('{"phone": "+14155550123", "text": "x", "metadata": {"n": Infinity}}', "application/json", 400),
    (b'\xef\xbb\xbf{"phone": "+14155550123", "text": "x"}', "application/json", 400),  # UTF-8 BOM
    ('{"phone": "+14155550123", "text": "x"}'.encode("utf-16"), "application/json", 400),
    (b'{"phone": "+14155550123", "text": "\xc0\xaf"}', "application/json", 400),  # overlong UTF-8
    (b'{"phone": "+14155550123", "text": "\xed\xa0\x80"}', "application/json", 400),  # encoded surrogate
    (b'{"phone": "+14155550123", "text": "caf\xe9"}', "application/json; charset=latin-1", 400),
    (gzip.compress(b'{"phone": "+14155550123", "text": "' + b"x" * 1_000_000 + b'"}'), "application/json", 400),
], ids=["multipart", "xml", "jsonx", "string", "number", "null", "bool", "empty", "trailing", "two-objects", "inf",
        "bom", "utf16", "overlong", "surrogate-bytes", "latin1", "gzip-bomb"])
def test_odd_bodies_and_content_types(rejects, data, content_type, status) -> None:  # noqa: ANN001
    headers = {"Content-Type": content_type}
    if content_type == "application/json" and isinstance(data, bytes) and data[:2] == b"\x1f\x8b":
        headers["Content-Encoding"] = "gzip"  # never inflated: a zip bomb stays 1 KB of invalid JSON
    rejects(status, data, headers)
    rejects(status, data, headers, path_="/messages/bulk")


def test_json_suffix_media_type_is_accepted(client) -> None:  # noqa: ANN001
    body = json.dumps(message("vendor json"))
    assert accept(client, body, {"Content-Type": "application/vnd.acme+json; charset=utf-8"})["status"] == "pending"


@pytest.mark.parametrize("bad", [
    message("\x00"), message(phone="+١٤١٥٥٥٥٠١٢٣"), message(metadata={"x": "y" * 20_000}), message(text="t" * 4097),
    {"phone": PHONE, "text": "x", "metadata": json.loads(nested(50))["a"], "extra": None}, "not an object", None,
], ids=["nul", "arabic-digits", "metadata-size", "text-size", "unknown-field", "string", "null"])
def test_bulk_with_one_bad_last_item_stores_nothing(rejects, bad) -> None:  # noqa: ANN001
    items = [message(f"ok {i}") for i in range(999)] + [bad]
    error = rejects(400, json.dumps({"messages": items}), JSON_CT, path_="/messages/bulk")
    assert [item["index"] for item in error["details"]["items"]] == [999]


def test_bulk_conflicting_with_a_stored_key_stores_nothing(client, rejects, waq_env) -> None:  # noqa: ANN001
    """The conflict is found inside the store's transaction, after item 2 was planned: it must roll back too."""
    key = {"Idempotency-Key": "bulk-conflict"}
    first = accept(client, json.dumps({"messages": [message("one"), message("two")]}), key, path="/messages/bulk")
    rejects(409, json.dumps({"messages": [message("one"), message("CHANGED"), message("new")]}), {**JSON_CT, **key},
            path_="/messages/bulk")
    replay = accept(client, json.dumps({"messages": [message("one"), message("two")]}), key, path="/messages/bulk")
    assert replay["messages"] == first["messages"] and replay["created"] == 0


def test_hostile_idempotency_keys(rejects) -> None:  # noqa: ANN001
    for raw in ("a" * 201, "tab\tkey", "ключ", " ", "nul\x00key", "del\x7fkey"):
        rejects(400, json.dumps(message()), {**JSON_CT, "Idempotency-Key": raw})


# ---- a real server: gunicorn, 2 worker processes x 4 threads ----------------------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory, redis_server):  # noqa: ANN001, ANN201
    """gunicorn serving create_app(default_hub()) on its own SQLite file; yields (port, database path)."""
    tmp = tmp_path_factory.mktemp("fuzz-live")
    db = tmp / "data" / "waq.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAQ_")}
    env.update({"WAQ_DATA_DIR": str(tmp / "data"), "WAQ_STORE_URL": f"sqlite:///{db}",
                "WAQ_BROKER_URL": redis_server.url.replace("/0", "/5"), "WAQ_API_KEYS": KEYS,
                "WAQ_MAX_REQUEST_BYTES": str(CAP), "WAQ_SESSIONS": "primary,secondary",
                "PYTHONPATH": str(ROOT)})
    port = free_port()
    with open(tmp / "gunicorn.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "4", "-b",
             f"127.0.0.1:{port}", "api.app:create_app()"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is None and _healthy(port), 60, what="gunicorn to answer /healthz")
        yield port, str(db)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    assert "Traceback" not in (tmp / "gunicorn.log").read_text(errors="replace"), "the server logged a traceback"


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


def race(port: int, path: str, bodies: list[bytes], headers: dict[str, str]) -> list[tuple[int, dict]]:
    """Send every body at once, one connected thread each, released by a barrier; returns (status, json)."""
    barrier = threading.Barrier(len(bodies))
    answers: list[tuple[int, dict] | None] = [None] * len(bodies)

    def send(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.connect()
        barrier.wait()
        conn.request("POST", BASE + path, body=bodies[i], headers={**PRODUCER, **JSON_CT, **headers})
        response = conn.getresponse()
        answers[i] = (response.status, json.loads(response.read()))
        conn.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(a is not None for a in answers), "a racing request did not finish"
    return answers  # type: ignore[return-value]


def stored_with_key(db: str, key: str) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT id, text FROM {MESSAGES} WHERE idempotency_key LIKE ?", (f"shop {key}%",)
                            ).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("round_", range(4))
def test_same_key_same_body_racing_stores_one(live, round_) -> None:  # noqa: ANN001
    port, db = live
    key = f"race-same-{round_}-{os.getpid()}"
    answers = race(port, "/messages", [json.dumps(message("same")).encode()] * 8, {"Idempotency-Key": key})
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 202} and statuses[202] == 1, answers
    assert len({body["id"] for _, body in answers}) == 1, answers
    assert stored_with_key(db, key) == [(answers[0][1]["id"], "same")]


@pytest.mark.parametrize("round_", range(4))
def test_same_key_other_bodies_racing_one_wins(live, round_) -> None:  # noqa: ANN001
    port, db = live
    key = f"race-diff-{round_}-{os.getpid()}"
    bodies = [json.dumps(message(f"body {i}")).encode() for i in range(8)]
    answers = race(port, "/messages", bodies, {"Idempotency-Key": key})
    winners = [i for i, (status, _) in enumerate(answers) if status == 202]
    assert len(winners) == 1, answers
    for i, (status, body) in enumerate(answers):
        if i != winners[0]:
            assert status == 409 and set(body) == {"error", "details"}, answers
    assert stored_with_key(db, key) == [(answers[winners[0]][1]["id"], f"body {winners[0]}")]


def test_same_key_bulk_racing_stores_each_item_once(live) -> None:  # noqa: ANN001
    port, db = live
    key = f"race-bulk-{os.getpid()}"
    body = json.dumps({"messages": [message(f"item {i}") for i in range(20)]}).encode()
    answers = race(port, "/messages/bulk", [body] * 8, {"Idempotency-Key": key})
    assert Counter(status for status, _ in answers) == {202: 1, 200: 7}, [s for s, _ in answers]
    assert len({json.dumps(b["messages"]) for _, b in answers}) == 1
    assert len(stored_with_key(db, key)) == 20


def test_chunked_body_over_the_cap_is_413(live) -> None:  # noqa: ANN001
    """No Content-Length to trust: the cap must hold while the server reads the stream."""
    port, db = live
    before = store_state(db)

    def chunks():  # noqa: ANN202
        yield b'{"phone": "+14155550123", "text": "'
        for _ in range(40):
            yield b"x" * 4096
        yield b'"}'

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", f"{BASE}/messages", body=chunks(), headers={**PRODUCER, **JSON_CT}, encode_chunked=True)
    response = conn.getresponse()
    assert_error(response.status, response.getheader("Content-Type") or "", response.read(), 413)
    assert store_state(db) == before


# ---- schemathesis with the producer key -------------------------------------------------------------------------
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
# The operations a producer key may call (a batch: its own messages of it); every other one must answer 403.
PRODUCER_PATHS = ("/api/whatsapp/messages", "/api/whatsapp/quota", "/api/whatsapp/batches", "/api/whatsapp/media",
                  "/healthz")
# The admin-only ones, listed so that a new endpoint is placed on purpose (test_every_path_has_its_roles_listed).
ADMIN_PATHS = ("/api/whatsapp/health", "/api/whatsapp/stats", "/api/whatsapp/failed", "/api/whatsapp/archive",
               "/api/whatsapp/sessions", "/api/whatsapp/inbound", "/api/whatsapp/suppressions")


@pytest.fixture
def producer_schema(waq_env, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("WAQ_API_KEYS", KEYS)
    close_default_hub()
    return schemathesis.openapi.from_wsgi("/api/swagger.json", create_app(default_hub()), headers=PRODUCER)


producer_api = schemathesis.pytest.from_fixture("producer_schema")


@producer_api.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_with_the_producer_key(case) -> None:  # noqa: ANN001
    response = case.call_and_validate(headers=PRODUCER, checks=CHECKS)
    # Only the documented call (schemathesis also tries other methods and a missing key) must be refused with 403.
    documented = case.method.upper() == case.operation.method.upper()
    if documented and not case.path.startswith(PRODUCER_PATHS) and response.request.headers.get("X-API-Key") == \
            PRODUCER_KEY:
        assert response.status_code == 403, (case.method, case.path, response.status_code, response.text)
        body = response.json()
        assert set(body) == {"error", "details"} and body["details"] == {"role": "producer"}


def test_every_path_has_its_roles_listed(client) -> None:  # noqa: ANN001
    """Each documented path is a producer's or an admin's one above, and none is both."""
    paths = client.get("/api/swagger.json", headers=PRODUCER).get_json()["paths"]
    unplaced = [path for path in paths if not path.startswith(PRODUCER_PATHS + ADMIN_PATHS)]
    assert unplaced == [], "add each to PRODUCER_PATHS or ADMIN_PATHS"
    assert not [path for path in ADMIN_PATHS if path.startswith(PRODUCER_PATHS)]

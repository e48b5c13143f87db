"""One set of input rules (wa_queue/validation.py) behind the three front doors: the same table of good and bad
messages goes to the REST API (Flask's test client), to wa_queue.enqueue in-process and to `waq enqueue` (click's
CliRunner), each against a real SQLite store and a real redis-server (fixture `waq_env`). Every door must give the
same verdict, name the same field with the same message, and store the same message; the OpenAPI document's
patterns and limits must be validation.py's constants."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner

import wa_queue
from tests.helpers.api import api_client
from tests.helpers.constants import BASE
from wa_queue import validation
from wa_queue.cli import main
from wa_queue.errors import ValidationError
from wa_queue.hub import default_hub

ADMIN_KEY = "rules-admin-key-0123456789abc"
PRODUCER_KEY = "rules-producer-key-0123456789"
GOOD = {"phone": "+14155550123", "text": "hello"}
# The REST API reads the idempotency key from a header; the Python API and the CLI call it idempotency_key.
REST_FIELD = {"idempotency_key": "Idempotency-Key"}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@dataclass(frozen=True)
class Case:
    name: str
    fields: dict[str, Any]  # what differs from GOOD
    field: str | None  # the field the rules must name, None when the message is accepted


CASES = [
    Case("plain", {}, None),
    Case("phone with spaces and brackets", {"phone": "+1 (415) 555-0123"}, None),
    Case("phone in the default region", {"phone": "415.555.0123"}, None),
    Case("phone with slashes", {"phone": "+44 20/7946 0958"}, None),
    Case("phone tel: prefix", {"phone": "tel:+14155550123"}, "phone"),
    Case("phone letters", {"phone": "1-800-FLOWERS"}, "phone"),
    Case("phone letters with country code", {"phone": "+1 800 FLOWERS"}, "phone"),
    Case("phone fullwidth digit", {"phone": "+1415555012\uff13"}, "phone"),
    Case("phone extension", {"phone": "+14155550123 ext. 7"}, "phone"),
    Case("phone too long", {"phone": "+1 415 555 0123" + " " * 20}, "phone"),
    Case("phone empty", {"phone": ""}, "phone"),
    Case("phone not a number", {"phone": "12345"}, "phone"),
    Case("phone with a trunk 0 first", {"phone": "07911 123456"}, "phone"),
    Case("phone of zeros", {"phone": "+000000000000000000000000000000"}, "phone"),
    Case("phone zero", {"phone": "0"}, "phone"),
    Case("phone of 16 digits", {"phone": "+1234567890123456"}, "phone"),
    Case("phone unknown to phonenumbers, of E.164's shape", {"phone": "+1 000 000 0000"}, None),
    Case("phone international without its +", {"phone": "44 7911 123456"}, None),
    Case("phone trailing newline", {"phone": "+14155550123\n"}, "phone"),
    Case("text with spaces around", {"text": "  hi  "}, None),
    Case("text of the limit", {"text": "x" * validation.MAX_TEXT_CHARS}, None),
    Case("text only whitespace", {"text": " \t\u3000"}, "text"),
    Case("text empty", {"text": ""}, "text"),
    Case("text with NUL", {"text": "a\x00b"}, "text"),
    Case("text too long", {"text": "x" * (validation.MAX_TEXT_CHARS + 1)}, "text"),
    Case("session known", {"session": "secondary"}, None),
    Case("session unknown", {"session": "nosuch"}, "session"),
    Case("session empty", {"session": ""}, "session"),
    Case("idempotency key", {"idempotency_key": "order-42/#x"}, None),
    Case("idempotency key of the limit", {"idempotency_key": "k" * validation.MAX_IDEMPOTENCY_KEY}, None),
    Case("idempotency key with a space", {"idempotency_key": "a b"}, "idempotency_key"),
    Case("idempotency key empty", {"idempotency_key": ""}, "idempotency_key"),
    Case("idempotency key too long", {"idempotency_key": "k" * (validation.MAX_IDEMPOTENCY_KEY + 1)},
         "idempotency_key"),
    Case("idempotency key not ASCII", {"idempotency_key": "cl\u00e9"}, "idempotency_key"),
    Case("callback https", {"callback_url": "https://shop.example/hooks/whatsapp?x=1#y"}, None),
    Case("callback http with IPv4 and port", {"callback_url": "http://93.184.215.14:8080/cb"}, None),
    # An IP literal the outbound rule refuses is refused at once; a name is judged by where it resolves, at delivery.
    Case("callback loopback IPv4", {"callback_url": "http://127.0.0.1:8080/cb"}, "callback_url"),
    Case("callback private IPv4", {"callback_url": "http://10.0.0.1/"}, "callback_url"),
    Case("callback cloud metadata", {"callback_url": "http://169.254.169.254/latest/meta-data"}, "callback_url"),
    Case("callback CGNAT IPv4", {"callback_url": "https://100.64.0.1/cb"}, "callback_url"),
    Case("callback unspecified IPv4", {"callback_url": "http://0.0.0.0/"}, "callback_url"),
    Case("callback IPv6 literal", {"callback_url": "http://[::1]/cb"}, "callback_url"),
    Case("callback name resolving to loopback", {"callback_url": "http://localhost:8080/cb"}, None),
    Case("callback ftp", {"callback_url": "ftp://shop.example/hook"}, "callback_url"),
    Case("callback javascript", {"callback_url": "javascript:alert(1)"}, "callback_url"),
    Case("callback no host", {"callback_url": "https:///path"}, "callback_url"),
    Case("callback with a space", {"callback_url": "https://shop.example/a b"}, "callback_url"),
    Case("callback with DEL", {"callback_url": "https://shop.example/a\x7f"}, "callback_url"),
    Case("callback empty", {"callback_url": ""}, "callback_url"),
    Case("callback too long", {"callback_url": "https://shop.example/" + "a" * validation.MAX_CALLBACK_URL},
         "callback_url"),
    Case("metadata object", {"metadata": {"order": 42, "tags": ["a", None, True, 1.5], "deep": nested(31)}}, None),
    Case("metadata empty object", {"metadata": {}}, None),
    Case("metadata array", {"metadata": [1, 2]}, "metadata"),
    Case("metadata string", {"metadata": "order 42"}, "metadata"),
    Case("metadata keys of any text", {"metadata": {"a": {"$where": "1", "b\u0000c": [], "d.e": 1}}}, None),
    Case("metadata too deep", {"metadata": nested(validation.MAX_METADATA_DEPTH + 1)}, "metadata"),
    Case("metadata too large", {"metadata": {"blob": "x" * validation.MAX_METADATA_BYTES}}, "metadata"),
    Case("send window", {"send_window": {"start": "08:00", "end": "21:00"}}, None),
    Case("send window past midnight", {"send_window": {"start": "22:00", "end": "06:00"}}, None),
    Case("send window of one minute", {"send_window": {"start": "23:59", "end": "00:00"}}, None),
    Case("send window start equals end: the whole day", {"send_window": {"start": "08:00", "end": "08:00"}}, None),
    Case("send window hour 24", {"send_window": {"start": "08:00", "end": "24:00"}}, "send_window"),
    Case("send window one-digit hour", {"send_window": {"start": "8:00", "end": "21:00"}}, "send_window"),
    Case("send window seconds", {"send_window": {"start": "08:00:00", "end": "21:00"}}, "send_window"),
    Case("send window empty start", {"send_window": {"start": "", "end": "21:00"}}, "send_window"),
    # A Russian mobile spans UTC+2 to UTC+12: nine hours of Moscow's day are never open in Kamchatka too.
    Case("send window never open for the number", {"phone": "+79161234567",
                                                   "send_window": {"start": "09:00", "end": "18:00"}}, "send_window"),
    Case("send window open for the number", {"phone": "+79161234567",
                                             "send_window": {"start": "09:00", "end": "08:00"}}, None),
    Case("send window on a bad phone", {"phone": "12345", "send_window": {"start": "8", "end": "9"}}, "phone"),
]


@pytest.fixture
def client(waq_env, monkeypatch):  # noqa: ANN001, ANN201
    return api_client(monkeypatch, WAQ_API_KEYS=f"ops:admin:{ADMIN_KEY},shop:producer:{PRODUCER_KEY}",
                      WAQ_MAX_REQUEST_BYTES=str(64 * 1024))


@dataclass
class Verdict:
    field: str | None  # None: accepted
    message: str | None  # the refusal's message, or the stored message's id when accepted


def via_rest(client, fields: dict[str, Any]) -> Verdict:  # noqa: ANN001
    body = {k: v for k, v in fields.items() if k != "idempotency_key"}
    headers = {"X-API-Key": PRODUCER_KEY, "Content-Type": "application/json"}
    if "idempotency_key" in fields:
        headers["Idempotency-Key"] = fields["idempotency_key"]
    response = client.post(f"{BASE}/messages", data=json.dumps(body), headers=headers)
    answer = response.get_json()
    if response.status_code in (200, 202):
        return Verdict(None, answer["id"])
    # 409: well-formed fields that cannot hold together now (a window never open for the number, times)
    assert response.status_code in (400, 409), response.get_data(as_text=True)
    field = answer["details"]["field"]
    rest_names = {rest: name for name, rest in REST_FIELD.items()}
    return Verdict(rest_names.get(field, field), answer["error"].replace(field, rest_names.get(field, field), 1))


def via_python(fields: dict[str, Any]) -> Verdict:
    try:
        return Verdict(None, wa_queue.enqueue(**fields))
    except ValidationError as exc:
        return Verdict(exc.field, str(exc))


def via_cli(fields: dict[str, Any]) -> Verdict:
    args = ["enqueue", fields["phone"], fields["text"], "--json"]
    for name, value in fields.items():
        if name == "send_window":  # the CLI's form of the window
            value = f"{value['start']}-{value['end']}"
        elif name == "metadata":
            value = json.dumps(value)
        if name not in ("phone", "text"):
            args += [f"--{name.replace('_', '-')}", value]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    if result.exit_code == 0:
        return Verdict(None, json.loads(result.stdout)["id"])
    assert result.exit_code == 2, (result.exit_code, result.output)
    # cli/output.handled: "Error: <message>", the field put first when the message does not start with it
    match = re.fullmatch(r"Error: (?:(\w+): )?(.*)\n", result.stderr, re.DOTALL)
    assert match, result.stderr
    message = match.group(2)
    return Verdict(match.group(1) or message.split(" ", 1)[0], message)


def stored(message_id: str) -> dict[str, Any]:
    message = default_hub().store.get(message_id)
    return {"phone": message.phone, "text": message.text, "session": message.session,
            "callback_url": message.callback_url, "metadata": message.metadata, "send_window": message.send_window}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_front_door_gives_the_same_verdict(client, case: Case) -> None:  # noqa: ANN001
    fields = {**GOOD, **case.fields}
    rest, python, cli = via_rest(client, fields), via_python(fields), via_cli(fields)
    assert rest.field == python.field == cli.field == case.field, (rest, python, cli)
    if case.field is None:
        # The same message stored, whichever door it came in by (the REST API scopes its idempotency key).
        assert stored(rest.message) == stored(python.message) == stored(cli.message)
        if "send_window" in case.fields:
            assert stored(rest.message)["send_window"].to_dict() == case.fields["send_window"]
        assert default_hub().store.get(python.message).idempotency_key == fields.get("idempotency_key")
    else:
        assert rest.message == python.message == cli.message
        assert default_hub().store.count_by_status()["pending"] == 0  # refused means nothing stored


@pytest.mark.parametrize("metadata", [
    {"when": __import__("datetime").date(2026, 1, 1)}, {"tags": {"a", "b"}}, {"ratio": float("nan")},
    {"n": float("inf")}, {1: "int key"}, {"t": (1, 2)}, {"s": "\ud800"},
], ids=["date", "set", "nan", "inf", "int-key", "tuple", "lone-surrogate"])
def test_the_python_api_refuses_metadata_json_cannot_carry(waq_env, metadata: dict[str, Any]) -> None:  # noqa: ANN001
    """What only Python can pass (the REST API's JSON and the CLI's --metadata cannot) is refused, not stored as
    something else."""
    with pytest.raises(ValidationError) as caught:
        wa_queue.enqueue("+14155550123", "hello", metadata=metadata)
    assert caught.value.field == "metadata"
    assert default_hub().store.count_by_status()["pending"] == 0


def test_the_python_api_refuses_metadata_that_contains_itself(waq_env) -> None:  # noqa: ANN001
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(ValidationError, match="metadata"):
        wa_queue.enqueue("+14155550123", "hello", metadata=loop)


@pytest.mark.parametrize(("fields", "field"), [
    ({"phone": 14155550123}, "phone"), ({"text": 42}, "text"), ({"session": 1}, "session"),
    ({"callback_url": 7}, "callback_url"), ({"metadata": 7}, "metadata"),
])
def test_python_and_rest_refuse_the_same_wrong_types(client, fields: dict[str, Any], field: str) -> None:  # noqa: ANN001
    both = {**GOOD, **fields}
    rest, python = via_rest(client, both), via_python(both)
    assert rest.field == python.field == field
    assert rest.message == python.message


def test_the_cli_csv_holds_rows_to_the_same_rules(waq_env, tmp_path) -> None:  # noqa: ANN001
    """`waq enqueue --file`: callback_url and metadata columns, each row refused with the rule's message."""
    import csv

    rows = [
        ["+14155550101", "good", "https://shop.example/hook", json.dumps({"order": 1})],
        ["tel:+14155550102", "tel prefix", "", ""],
        ["+14155550103", "bad url", "ftp://shop.example/", ""],
        ["+14155550104", "bad metadata", "", "[1]"],
        ["+14155550105", "not JSON", "", "{order: 1}"],
    ]
    path = tmp_path / "messages.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([["phone", "text", "callback_url", "metadata"], *rows])
    result = CliRunner().invoke(main, ["enqueue", "--file", str(path), "--json"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert [(r["row"], r["field"]) for r in summary["rejected"]] == [(3, "phone"), (4, "callback_url"),
                                                                     (5, "metadata"), (6, "metadata")]
    expected = [via_python({**GOOD, "phone": "tel:+1"}).message, via_python({**GOOD, "callback_url": "ftp://x/"}).message,
                via_python({**GOOD, "metadata": [1]}).message]
    assert [r["reason"] for r in summary["rejected"][:3]] == expected
    assert summary["rejected"][3]["reason"].startswith("metadata is not valid JSON")
    [message_id] = summary["ids"]
    assert stored(message_id) == {"phone": "+14155550101", "text": "good", "session": None,
                                  "callback_url": "https://shop.example/hook", "metadata": {"order": 1},
                                  "send_window": None}


def test_the_openapi_document_publishes_validation_constants(client) -> None:  # noqa: ANN001
    """No second copy of a rule: the document's patterns and limits are validation.py's, and api/messages.py
    imports the very objects."""
    import api.messages

    for name in ("PHONE_PATTERN", "TEXT_PATTERN", "CALLBACK_URL_PATTERN", "IDEMPOTENCY_KEY_PATTERN",
                 "MAX_PHONE_CHARS", "MAX_TEXT_CHARS", "MAX_CALLBACK_URL", "MAX_IDEMPOTENCY_KEY"):
        assert getattr(api.messages, name) is getattr(validation, name), name
    document = client.get("/api/swagger.json", headers={"X-API-Key": ADMIN_KEY}).get_json()
    props = document["definitions"]["NewMessage"]["properties"]
    assert (props["phone"]["pattern"], props["phone"]["maxLength"]) == (validation.PHONE_PATTERN,
                                                                        validation.MAX_PHONE_CHARS)
    assert (props["text"]["pattern"], props["text"]["maxLength"]) == (validation.TEXT_PATTERN,
                                                                      validation.MAX_TEXT_CHARS)
    assert (props["callback_url"]["pattern"], props["callback_url"]["maxLength"]) == (
        validation.CALLBACK_URL_PATTERN, validation.MAX_CALLBACK_URL)
    assert props["session"]["enum"] == ["primary", "secondary", None]  # validate_session's known names (waq_env)
    assert f"at most {validation.MAX_METADATA_BYTES} bytes" in props["metadata"]["description"]
    assert f"at most {validation.MAX_METADATA_DEPTH} levels" in props["metadata"]["description"]
    window = document["definitions"]["SendWindow"]
    assert props["send_window"]["allOf"] == [{"$ref": "#/definitions/SendWindow"}]
    assert props["send_window"]["x-nullable"]
    assert sorted(window["required"]) == ["end", "start"]
    assert window["properties"]["start"]["pattern"] == window["properties"]["end"]["pattern"] == \
        validation.HH_MM_PATTERN
    assert window["additionalProperties"] is False
    for path in ("/api/whatsapp/messages", "/api/whatsapp/messages/bulk"):
        [header] = [p for p in document["paths"][path]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
        assert (header["pattern"], header["maxLength"]) == (validation.IDEMPOTENCY_KEY_PATTERN,
                                                            validation.MAX_IDEMPOTENCY_KEY)


@pytest.mark.parametrize("case", [c for c in CASES if {"phone", "callback_url", "idempotency_key"} & set(c.fields)
                                  and "send_window" not in c.fields], ids=lambda c: c.name)
def test_the_published_patterns_agree_with_the_functions(case: Case) -> None:
    """A pattern a client checks accepts exactly what the function takes: the phone's, the callback URL's (bar the
    outbound rule's address ranges) and the key's patterns are the whole rule."""
    (name, value), = [(n, v) for n, v in case.fields.items() if n != "metadata"]
    pattern, limit, check = {
        "phone": (validation.PHONE_PATTERN, validation.MAX_PHONE_CHARS, validation.validate_phone),
        "callback_url": (validation.CALLBACK_URL_PATTERN, validation.MAX_CALLBACK_URL,
                         validation.validate_callback_url),
        "idempotency_key": (validation.IDEMPOTENCY_KEY_PATTERN, validation.MAX_IDEMPOTENCY_KEY,
                            validation.validate_idempotency_key),
    }[name]
    matches = len(value) <= limit and validation.whole(pattern).match(value) is not None
    try:
        check(value)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == (case.field is None)
    if name == "callback_url" and _internal_literal(value):
        assert matches or not accepted  # the outbound rule's address ranges: no pattern says them
    else:
        assert matches == accepted


def _internal_literal(url: str) -> bool:
    from urllib.parse import urlsplit

    from wa_queue.outbound import literal_problem

    return literal_problem(urlsplit(url).hostname or "") is not None


def test_the_hh_mm_pattern_is_parse_hh_mm_s_rule() -> None:
    """The pattern the document publishes for a window's start and end accepts exactly what send_window takes."""
    from wa_queue.send_window import parse_hh_mm

    pattern = validation.whole(validation.HH_MM_PATTERN)
    texts = [f"{h:02d}:{m:02d}" for h in range(0, 30) for m in range(0, 100, 7)]
    texts += ["8:00", "08:0", "08-00", "0800", " 08:00", "08:00 ", "08:00\n", "\uff10\uff18:00", "", "24:00", "23:60"]
    for text in texts:
        try:
            parse_hh_mm(text, "start")
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == (pattern.match(text) is not None), text


def test_the_cli_csv_takes_a_send_window_column(waq_env, tmp_path) -> None:  # noqa: ANN001
    """`waq enqueue --file` with a send_window column: HH:MM-HH:MM, an empty cell is no window, a bad one is refused
    with the rule's message."""
    import csv

    rows = [["+14155550101", "day", "08:00-21:00"], ["+14155550102", "none", ""],
            ["+14155550103", "equal", "08:00-8:00"], ["+79161234567", "never open", "09:00-18:00"]]
    path = tmp_path / "windows.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([["phone", "text", "send_window"], *rows])
    result = CliRunner().invoke(main, ["enqueue", "--file", str(path), "--json"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert [(r["row"], r["field"]) for r in summary["rejected"]] == [(4, "send_window"), (5, "send_window")]
    assert [r["reason"] for r in summary["rejected"]] == [
        via_python({**GOOD, "send_window": {"start": "08:00", "end": "8:00"}}).message,
        via_python({"phone": "+79161234567", "text": "x", "send_window": "09:00-18:00"}).message]
    day, none = (stored(message_id) for message_id in summary["ids"])
    assert day["send_window"].to_dict() == {"start": "08:00", "end": "21:00"} and none["send_window"] is None

"""Property-based tests from the OpenAPI spec (schemathesis 4): every documented operation, called in-process through
the WSGI app with the admin key, checked with ALL of schemathesis's default checks (server errors, status codes,
content types, headers and bodies against the document, schema-valid data accepted and schema-invalid data refused,
undocumented methods answered 405 with Allow, missing auth refused, ...). tests/api/test_openapi_gunicorn.py runs
the same against a real gunicorn; tests/helpers/openapi.py says which refusals the schema cannot express."""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.app import create_app
from tests.helpers.openapi import (
    ADMIN,
    ADMIN_KEY,
    CHECKS,
    MAX_REQUEST_BYTES,
    Tally,
    config,
    counting,
)
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import NewMessage, utcnow

EXTRA = CHECKS


@pytest.fixture(scope="module")
def tally() -> Tally:
    tally = Tally()
    yield tally
    tally.report("schemathesis in-process (WSGI), every default check", "schemathesis-wsgi")


@pytest.fixture
def api_schema(waq_env, monkeypatch, tally):  # noqa: ANN001, ANN201
    monkeypatch.setenv("WAQ_API_KEYS", f"ops:admin:{ADMIN_KEY}")
    monkeypatch.setenv("WAQ_MAX_REQUEST_BYTES", str(MAX_REQUEST_BYTES))
    close_default_hub()
    counting(tally)
    return schemathesis.openapi.from_wsgi("/api/swagger.json", create_app(default_hub()), headers=ADMIN,
                                          config=config())


schema = schemathesis.pytest.from_fixture("api_schema")


# 12 examples an operation keeps this run near 15 s on a 2-core machine; the gunicorn runs add more (the long one
# >= 10,000 cases).
@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation(case) -> None:  # noqa: ANN001
    case.call_and_validate(additional_checks=EXTRA)


def test_success_bodies_match_the_spec(api_schema) -> None:  # noqa: ANN001
    """Random ids rarely hit a stored message; check the 200 shapes against real data once."""
    store = default_hub().store
    message, _ = store.insert(NewMessage(phone="+14155550123", text="hi", metadata={"a": [1]}), utcnow())
    failed, _ = store.insert(NewMessage(phone="+14155550124", text="no"), utcnow())
    store.claim(failed.id, owner="t", session="primary", now=utcnow(), lease_s=60)
    store.record_failed(failed.id, owner="t", now=utcnow(), error_class="InvalidNumber", error_text="x")
    unverified, _ = store.insert(NewMessage(phone="+14155550125", text="sent?"), utcnow())
    store.claim(unverified.id, owner="t", session="primary", now=utcnow(), lease_s=60)
    store.record_failed(unverified.id, owner="t", now=utcnow(), error_class="OutcomeUnverified", error_text="x")
    archived, _ = store.insert(NewMessage(phone="+14155550126", text="old"), utcnow() - timedelta(days=40))
    store.claim(archived.id, owner="t", session="primary", now=utcnow() - timedelta(days=40), lease_s=60)
    store.record_failed(archived.id, owner="t", now=utcnow() - timedelta(days=40), error_class="InvalidNumber",
                        error_text="x")
    assert store.archive_failed(older_than=utcnow() - timedelta(days=30), now=utcnow()) == 1
    store.update_session("primary", status="connected", heartbeat_at=utcnow(), number="+4915112345678")
    calls = [
        ("/api/whatsapp/messages/{message_id}", "GET", {"path_parameters": {"message_id": message.id}}),
        ("/api/whatsapp/failed", "GET", {}),
        ("/api/whatsapp/archive", "GET", {}),
        ("/api/whatsapp/archive/{message_id}", "GET", {"path_parameters": {"message_id": archived.id}}),
        ("/api/whatsapp/health", "GET", {}),
        ("/api/whatsapp/stats", "GET", {}),
        ("/api/whatsapp/sessions", "GET", {}),
        ("/api/whatsapp/failed/{message_id}/retry", "POST", {"path_parameters": {"message_id": failed.id}}),
        ("/api/whatsapp/failed/{message_id}/mark-sent", "POST", {"path_parameters": {"message_id": unverified.id},
                                                                 "body": {"note": "seen"},
                                                                 "media_type": "application/json"}),
        ("/api/whatsapp/sessions/{name}/restart", "POST", {"path_parameters": {"name": "primary"}}),
        ("/api/whatsapp/messages", "POST", {"body": {"phone": "+14155550123", "text": "hi"},
                                            "media_type": "application/json"}),
        ("/api/whatsapp/messages/bulk", "POST", {"body": {"messages": [{"phone": "+14155550123", "text": "hi"}]},
                                                 "media_type": "application/json"}),
        ("/healthz", "GET", {}),
    ]
    for path, method, kwargs in calls:
        response = api_schema[path][method].Case(**kwargs).call_and_validate(headers=ADMIN, additional_checks=EXTRA)
        assert response.status_code < 300, (path, response.status_code, response.text)


def test_each_app_documents_its_own_sessions(waq_env, monkeypatch) -> None:  # noqa: ANN001
    """The enums come from WAQ_SESSIONS when an app builds its document; the shared models keep no names."""
    monkeypatch.setenv("WAQ_API_KEYS", f"ops:admin:{ADMIN_KEY}")
    documents = []
    for sessions in ("alpha,beta", "gamma"):
        monkeypatch.setenv("WAQ_SESSIONS", sessions)
        close_default_hub()
        documents.append(create_app(default_hub()).test_client().get("/api/swagger.json", headers=ADMIN).get_json())
    first, second = documents
    assert first["definitions"]["NewMessage"]["properties"]["session"]["enum"] == ["alpha", "beta", None]
    assert second["definitions"]["NewMessage"]["properties"]["session"]["enum"] == ["gamma", None]
    failed = {p["name"]: p for p in second["paths"]["/api/whatsapp/failed"]["get"]["parameters"]}
    assert failed["session"]["enum"] == ["", "gamma"]
    assert second["paths"]["/api/whatsapp/sessions/{name}/restart"]["parameters"][0]["enum"] == ["gamma"]


def test_the_text_pattern_is_what_validate_text_accepts() -> None:
    """TEXT_PATTERN spells out Python's whitespace (OpenAPI tools read ECMA-262's \\s, which differs)."""
    import re

    from api.messages import TEXT_PATTERN
    from wa_queue.errors import ValidationError
    from wa_queue.validation import validate_text

    pattern = re.compile(TEXT_PATTERN[:-1] + r"\Z")
    samples = [chr(c) for c in range(0x3100)] + ["\ufeff", "a\x00", " \u3000 ", "\u2028x", "x\n", "\x1c\x1f"]
    for text in samples:
        try:
            validate_text(text)
            accepted = True
        except ValidationError:
            accepted = False
        assert bool(pattern.match(text)) == accepted, repr(text)

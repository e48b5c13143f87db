"""The OpenAPI document against the running API: a real gunicorn process (SQLite store, real redis-server), the schema
loaded from its /api/swagger.json with schemathesis.openapi.from_url, every operation called over HTTP and checked
with ALL of schemathesis's default checks (no reduced `checks=` list). tests/helpers/openapi.py holds the documented
allowances (refusals the schema cannot express on the enqueue operations; gunicorn's own 414 for an over-long
request line, which only schema-invalid data reaches) and the tally.

The short run is part of `make test`; the long run (`--long`, `make test-long`) makes at least 10,000 cases and
prints its totals (cases, checks, failures), also kept in tests/artifacts/schemathesis-gunicorn-long.json.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from tests.helpers.openapi import ADMIN, Tally, call_and_check, config, counting, start_api
from wa_queue.devstack.redis_server import RedisServer

# Every test reads the one gunicorn's run (the last checks the tally of the others): all need the services.
pytestmark = pytest.mark.services

LONG_CASES = 10_000
LONG_EXAMPLES = 800  # per operation; operations with few distinct inputs run out sooner, hence the count below


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[str]:
    redis_server.client().flushall()
    proc, url = start_api(tmp_path_factory.mktemp("openapi-gunicorn"), redis_server)
    yield url
    proc.stop()


@pytest.fixture(scope="module")
def short_tally() -> Iterator[Tally]:
    tally = Tally()
    yield tally
    tally.report("schemathesis against gunicorn, every default check", "schemathesis-gunicorn")


@pytest.fixture(scope="module")
def long_tally() -> Tally:
    return Tally()


@pytest.fixture
def short_schema(api_url: str, short_tally: Tally):  # noqa: ANN201
    counting(short_tally)
    return schemathesis.openapi.from_url(f"{api_url}/api/swagger.json", headers=ADMIN, config=config())


@pytest.fixture
def long_schema(api_url: str, long_tally: Tally):  # noqa: ANN201
    counting(long_tally)
    return schemathesis.openapi.from_url(f"{api_url}/api/swagger.json", headers=ADMIN, config=config())


short = schemathesis.pytest.from_fixture("short_schema")
long = schemathesis.pytest.from_fixture("long_schema")


def test_the_document_is_served_with_a_key_only(api_url: str) -> None:
    assert requests.get(f"{api_url}/api/swagger.json", timeout=5).status_code == 401
    spec = requests.get(f"{api_url}/api/swagger.json", headers=ADMIN, timeout=5).json()
    # The session enum is this server's WAQ_SESSIONS, filled in when the document is built.
    assert spec["definitions"]["NewMessage"]["properties"]["session"]["enum"] == ["primary", "secondary", None]
    qr = spec["paths"]["/api/whatsapp/sessions/{name}/qr"]["get"]
    assert qr["produces"] == ["image/png", "application/json"] and qr["responses"]["200"]["schema"] == {"type": "file"}


def test_gunicorns_own_refusals_are_the_documented_json_400(api_url: str) -> None:
    """A request line or headers over gunicorn's limits never reach the app: api/gunicorn_worker.py answers them in
    the Error shape, with the 400 every operation lists and the setting to raise."""
    spec = requests.get(f"{api_url}/api/swagger.json", headers=ADMIN, timeout=5).json()
    assert all("400" in operation["responses"] for path in spec["paths"].values()
               for method, operation in path.items() if method != "parameters")
    long_line = requests.get(f"{api_url}/api/whatsapp/failed?error={'x' * 5000}", headers=ADMIN, timeout=5)
    big_header = requests.get(f"{api_url}/api/whatsapp/failed", headers={**ADMIN, "X-Big": "y" * 9000}, timeout=5)
    for response, limit in ((long_line, "limit_request_line"), (big_header, "limit_request_fields")):
        assert response.status_code == 400 and response.headers["Content-Type"] == "application/json"
        body = response.json()
        assert set(body) == {"error", "details"} and body["details"]["limit"].startswith(limit), body
    assert requests.get(f"{api_url}/healthz", timeout=5).status_code == 200  # the worker serves on


@short.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation(case) -> None:  # noqa: ANN001
    call_and_check(case)


def test_the_short_run_checked_something(short_tally: Tally) -> None:
    # Every operation above ran (they come first in this file): the tally proves checks really ran and passed.
    assert short_tally.cases >= 100 and short_tally.failures == 0, short_tally.line("short run")
    assert {"positive_data_acceptance", "negative_data_rejection", "unsupported_method", "ignored_auth",
            "content_type_conformance", "response_schema_conformance"} <= set(short_tally.by_check)


@pytest.mark.long
@pytest.mark.timeout(3600)  # one test item runs every operation
@long.parametrize()
@settings(max_examples=LONG_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_long(case) -> None:  # noqa: ANN001
    call_and_check(case)


@pytest.mark.long
def test_the_long_run_made_enough_cases(long_tally: Tally) -> None:
    line = long_tally.report("schemathesis long run against gunicorn, every default check",
                             "schemathesis-gunicorn-long")
    assert long_tally.cases >= LONG_CASES and long_tally.failures == 0, line

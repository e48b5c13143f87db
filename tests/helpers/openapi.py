"""Schemathesis against the API with every default check: its configuration, the one rule the schema cannot carry,
a tally of cases, checks and failures, and a real gunicorn serving the API.

Why positive data may be refused on the two enqueue operations, and only there: JSON Schema cannot say which phone
numbers exist (phonenumbers decides), nor the metadata rules the document states in words (16 KiB as JSON, 32
levels, no '$' or NUL in keys), nor the send window's (a start equal to its end, a window never open in all the
number's time zones), nor the callback URL's host forms (IPv4 only as dotted quads, IDNA), nor the request size cap
(WAQ_MAX_REQUEST_BYTES, 413). So positive_data_acceptance also expects 400 and 413 there, and
`refused_only_for_what_the_schema_cannot_say` (run with the defaults) fails unless each such refusal names those
fields and the value really breaks the rule. And a body over that cap is refused with 413, which
negative_data_rejection also accepts where a body is read (see CONFIG).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import schemathesis
from schemathesis.core.failures import Failure

from tests.helpers import procfile
from tests.helpers.constants import ARTIFACTS
from tests.helpers.processes import Proc
from tests.helpers.waiting import wait_for
from wa_queue.devstack.ports import free_port
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.errors import ValidationError
from wa_queue.validation import normalize_phone

ADMIN_KEY = "openapi-admin-key-0123456789ab"
ADMIN = {"X-API-Key": ADMIN_KEY}
ENQUEUE = ("POST /api/whatsapp/messages", "POST /api/whatsapp/messages/bulk")
MARK_SENT = "POST /api/whatsapp/failed/{message_id}/mark-sent"
MAX_REQUEST_BYTES = 64 * 1024  # WAQ_MAX_REQUEST_BYTES of the API under test: a full bulk can pass it

CONFIG = f"""
# The key as schemathesis's own auth (not a fixed header), so its negative cases can leave it out.
[auth.openapi.apiKey]
api_key = "{ADMIN_KEY}"

# gunicorn refuses a request line over 4,094 bytes with 414 before the API sees it (see call_and_check): a refusal,
# which schemathesis's default list for invalid data leaves out.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429", "5xx"]

[[operations]]
include-name = {json.dumps(list(ENQUEUE))}
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "413", "429",
                                                     "5xx"]

# A body over WAQ_MAX_REQUEST_BYTES is refused with 413 before it is read: a refusal, which schemathesis's default
# list for invalid data (400, 401, 403, 404, 405, 406, 409, 415, 422, 428, 429, 5xx) leaves out. Only where a body
# is read and 413 is documented.
[[operations]]
include-name = {json.dumps([*ENQUEUE, MARK_SENT])}
checks.negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "414",
                                                    "415", "422", "428", "429", "5xx"]
"""


def config() -> schemathesis.Config:
    """Schemathesis's defaults (every check on), with the enqueue operations' documented extra refusals."""
    return schemathesis.Config.from_str(CONFIG)


class RefusedForAnotherReason(Failure):
    """Schema-valid data was refused, and not for a rule the schema cannot express."""

    kind_title = "Schema-valid request refused for a rule the schema could say"

    @property
    def _unique_key(self) -> str:
        return self.message


def _breaks_an_unwritable_rule(field_name: str | None, item: Any) -> bool:
    from wa_queue.validation import (  # re-running the API's rules is the point
        validate_callback_url,
        validate_metadata,
        validate_send_window,
    )

    if not isinstance(item, dict):
        return False
    try:
        if field_name == "phone":
            normalize_phone(item.get("phone"))
        elif field_name == "metadata":
            validate_metadata(item.get("metadata"))
        elif field_name == "send_window":
            validate_send_window(item.get("send_window"), phone=normalize_phone(item.get("phone")))
        elif field_name == "callback_url":  # the host's form: IPv4 only as dotted quads, a name that encodes to IDNA
            validate_callback_url(item.get("callback_url"))
        else:
            return False
    except ValidationError:
        return True
    return False


def refused_only_for_what_the_schema_cannot_say(ctx: Any, response: Any, case: Any) -> bool | None:  # noqa: ARG001
    """A positive case answered 400 or 413 by an enqueue operation: the refusal must be one the schema cannot say."""
    label = f"{case.method.upper()} {case.operation.path}"
    meta = case.meta
    if label not in ENQUEUE or meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code == 413:
        size = len(response.request.body or b"")
        if size <= MAX_REQUEST_BYTES:
            raise RefusedForAnotherReason(operation=label,
                                          message=f"413 for a body of {size} bytes (the cap is {MAX_REQUEST_BYTES})")
    elif response.status_code == 400:
        details = json.loads(response.content)["details"]
        body = case.body if isinstance(case.body, dict) else {}
        if "items" in details:  # a bulk's per-item problems
            items = body.get("messages") or []
            bad = [(p.get("field"), items[p["index"]]) for p in details["items"]]
        else:
            bad = [(details.get("field"), body)]
        for field_name, item in bad:
            if not _breaks_an_unwritable_rule(field_name, item):
                raise RefusedForAnotherReason(operation=label,
                                              message=f"400 naming {field_name!r}: {response.content[:300]!r}")
    return None


GUNICORN_REQUEST_LINE = 4094  # gunicorn's limit_request_line (its default, which deployments keep)


def call_and_check(case: Any) -> None:
    """case.call_and_validate() with every default check and the allowance above, and one exception, for gunicorn.

    gunicorn answers a request line over 4,094 bytes itself: 414, as text/html, before the API runs. Only data the
    document forbids gets there (the longest valid query, `error` of 200 characters of 4-byte UTF-8, percent-encoded,
    is about 2,500 bytes), and the document cannot list that 414 (tests/api/test_archive_endpoints.py pins /failed's and
    /archive's statuses). So for such a 414 only, and only when the request line really is that long and the case is
    a negative one, status_code_conformance and content_type_conformance are skipped; every other check still runs.
    """
    from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

    response = case.call()
    excluded = []
    if response.status_code == 414:
        parts = urlsplit(response.request.url)
        line = len(f"{case.method.upper()} {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1")
        assert line > GUNICORN_REQUEST_LINE, f"414 for a request line of {line} bytes"
        assert case.meta is not None and case.meta.generation.mode.is_negative, "414 for schema-valid data"
        excluded = [status_code_conformance, content_type_conformance]
    case.validate_response(response, additional_checks=[refused_only_for_what_the_schema_cannot_say],
                           excluded_checks=excluded)


@dataclass
class Tally:
    """Cases, checks run and failures, counted by the after_validate hook while this tally is active."""

    cases: int = 0
    checks: int = 0
    failures: int = 0
    by_check: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)

    def line(self, label: str) -> str:
        return (f"{label}: {self.cases} cases, {self.checks} checks ({len(self.by_check)} kinds), "
                f"{self.failures} failures")

    def report(self, label: str, artifact: str) -> str:
        """Print the totals and keep them in tests/artifacts/<artifact>.json."""
        text = self.line(label)
        print(f"\n{text}\n  checks: {dict(sorted(self.by_check.items()))}\n  statuses: "
              f"{dict(sorted(self.statuses.items()))}\n  failed: {dict(self.failed)}", file=sys.stderr)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{artifact}.json").write_text(json.dumps({
            "label": label, "cases": self.cases, "checks": self.checks, "failures": self.failures,
            "by_check": dict(self.by_check), "failed": dict(self.failed),
            "statuses": {str(k): v for k, v in self.statuses.items()}}, indent=1))
        return text


_active: list[Tally] = []


def counting(tally: Tally) -> Tally:
    """Make `tally` the one the hook counts into (until the next call)."""
    _active[:] = [tally]
    return tally


@schemathesis.hook
def after_validate(context: Any, case: Any, response: Any, results: list[Any]) -> None:  # noqa: ARG001
    if not _active:
        return
    tally = _active[0]
    tally.cases += 1
    tally.statuses[response.status_code] += 1
    for result in results:
        tally.checks += 1
        tally.by_check[result.name] += 1
        if result.failure is not None:
            tally.failures += 1
            tally.failed[result.name] += 1


def start_api(tmp: Path, redis: RedisServer, keys: str = f"openapi:admin:{ADMIN_KEY}", *, workers: int = 1,
              env: dict[str, str] | None = None) -> tuple[Proc, str]:
    """The API under a real gunicorn as the Procfile runs it (by default with one worker, as tests/helpers/stack.py
    starts it) on a SQLite store and a real redis-server, with these WAQ_* variables besides; returns the process
    and its base URL once /healthz answers."""
    port = free_port()
    env = {"WAQ_DATA_DIR": str(tmp / "data"), "WAQ_STORE_URL": f"sqlite:///{tmp / 'data' / 'waq.db'}",
           "WAQ_BROKER_URL": redis.url, "WAQ_SESSIONS": "primary,secondary", "WAQ_TRANSPORT": "fake",
           "WAQ_API_KEYS": keys, "WAQ_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES), **(env or {})}
    proc = Proc(procfile.api_command(port, workers), env, tmp / "api.log")
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.alive(), (tmp / "api.log").read_text()[-2000:]
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(up, 30, 0.2, "gunicorn to serve the API")
    return proc, url

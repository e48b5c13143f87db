"""Schemathesis against the API with every default check: its configuration, the one rule the schema cannot carry,
a tally of cases, checks and failures, and a real gunicorn serving the API.

Why positive data may be refused on the two enqueue operations, and only there: these runs cap requests at 64 KiB
(WAQ_MAX_REQUEST_BYTES, 413), which a full bulk passes, and JSON Schema cannot say metadata's two limits the
document states in words (16 KiB as JSON, 32 levels). So positive_data_acceptance also expects 400 and 413 there,
and `refused_only_for_what_the_schema_cannot_say` (run with the defaults) fails unless each such refusal is a body
over the cap or names metadata that really breaks its rule. And a body over that cap is refused with 413, which
negative_data_rejection also accepts where a body is read (see CONFIG). The upload (POST /media) may refuse a
schema-valid file with 400 or 413 naming media: its bytes decide its type, which no schema can say. And the upload's
invalid cases are judged as sent, not as generated (`upload_accepted_only_when_the_form_is_valid` replaces
negative_data_rejection there): every multipart part is text, so "filename became an integer" is the string "7" on
the wire, and a case meant to drop the file part may still carry one. Every other rule is in the document (a
message's text-or-media shape in its anyOf): tests/api/test_schemathesis_cli.py runs the stock `schemathesis run`
against the default settings with only the upload's allowances.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import schemathesis
from schemathesis.core.failures import Failure
from werkzeug.formparser import parse_form_data

from tests.helpers import procfile
from tests.helpers.constants import ARTIFACTS
from tests.helpers.processes import Proc
from tests.helpers.waiting import wait_for
from wa_queue.devstack.ports import free_port
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.errors import ValidationError
from wa_queue.models import MediaKind

ADMIN_KEY = "openapi-admin-key-0123456789ab"
ADMIN = {"X-API-Key": ADMIN_KEY}
ENQUEUE = ("POST /api/whatsapp/messages", "POST /api/whatsapp/messages/bulk")
# A file's type is read from its bytes and must suit its kind: no schema can say which bytes are a JPEG.
UPLOAD = "POST /api/whatsapp/media"
MARK_SENT = "POST /api/whatsapp/failed/{message_id}/mark-sent"
MAX_REQUEST_BYTES = 64 * 1024  # WAQ_MAX_REQUEST_BYTES of the API under test: a full bulk can pass it

CONFIG = f"""
# The key as schemathesis's own auth (not a fixed header), so its negative cases can leave it out.
[auth.openapi.apiKey]
api_key = "{ADMIN_KEY}"

[[operations]]
include-name = {json.dumps([*ENQUEUE, UPLOAD])}
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "413", "429",
                                                     "5xx"]

# A body over WAQ_MAX_REQUEST_BYTES is refused with 413 before it is read: a refusal, which schemathesis's default
# list for invalid data (400, 401, 403, 404, 405, 406, 409, 415, 422, 428, 429, 5xx) leaves out. Only where a body
# is read and 413 is documented.
[[operations]]
include-name = {json.dumps([*ENQUEUE, MARK_SENT])}
checks.negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415",
                                                    "422", "428", "429", "5xx"]

# The upload's invalid cases are judged by the form as sent: upload_accepted_only_when_the_form_is_valid.
[[operations]]
include-name = {json.dumps([UPLOAD])}
checks.negative_data_rejection.enabled = false
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
    from wa_queue.validation import validate_metadata  # re-running the API's rule is the point

    if not isinstance(item, dict) or field_name != "metadata":
        return False
    try:
        validate_metadata(item.get("metadata"))
    except ValidationError:
        return True
    return False


def refused_only_for_what_the_schema_cannot_say(ctx: Any, response: Any, case: Any) -> bool | None:  # noqa: ARG001
    """A positive case answered 400 or 413 by an enqueue operation: the refusal must be one the schema cannot say."""
    label = f"{case.method.upper()} {case.operation.path}"
    meta = case.meta
    if label not in (*ENQUEUE, UPLOAD) or meta is None or not meta.generation.mode.is_positive:
        return None
    if label == UPLOAD:
        details = json.loads(response.content).get("details", {}) if response.status_code in (400, 413) else {}
        if response.status_code in (400, 413) and details.get("field") != "media":
            raise RefusedForAnotherReason(operation=label, message=f"{response.status_code} naming "
                                          f"{details.get('field')!r}: {response.content[:300]!r}")
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


class AcceptedAnInvalidUpload(Failure):
    """An upload was stored although the form as sent breaks the documented rules."""

    kind_title = "Invalid upload accepted"

    @property
    def _unique_key(self) -> str:
        return self.message


def _sent_form_problem(request: Any) -> str | None:
    """What breaks the documented rules in the multipart form as it went over the wire, or None."""
    body = request.body or b""
    body = body.encode() if isinstance(body, str) else body
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": request.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": BytesIO(body)}
    _, form, files = parse_form_data(environ)
    upload = files.get("file")
    if upload is None or not upload.read(1):
        return "no file part (or an empty one)"
    if form.get("kind") not in (None, *(k.value for k in MediaKind)):
        return f"kind {form.get('kind')!r}"
    if form.get("as_document") not in (None, "true", "false"):
        return f"as_document {form.get('as_document')!r}"
    return None


def upload_accepted_only_when_the_form_is_valid(ctx: Any, response: Any, case: Any) -> bool | None:  # noqa: ARG001
    """negative_data_rejection for the upload, on the form as sent: a negative case may be stored only when what
    reached the server is a valid form (its parts are text, so a type mutation of a text part is not one)."""
    label = f"{case.method.upper()} {case.operation.path}"
    meta = case.meta
    if label != UPLOAD or meta is None or not meta.generation.mode.is_negative or response.status_code >= 300:
        return None
    problem = _sent_form_problem(response.request)
    if problem is not None:
        raise AcceptedAnInvalidUpload(operation=label, message=f"{response.status_code} for a form with {problem}")
    return None


CHECKS = [refused_only_for_what_the_schema_cannot_say, upload_accepted_only_when_the_form_is_valid]

GUNICORN_REQUEST_LINE = 4094  # gunicorn's limit_request_line (its default, which deployments keep)


def call_and_check(case: Any) -> None:
    """case.call_and_validate() with every default check and the allowance above. A request line over gunicorn's
    limit is answered by api/gunicorn_worker.py in the Error shape with the 400 the document lists, so no check is
    left out; such an answer must come for a line that long, and for schema-invalid data only (the longest valid
    query, `error` of 200 characters of 4-byte UTF-8, percent-encoded, is about 2,500 bytes)."""
    response = case.call()
    parts = urlsplit(response.request.url)
    line = len(f"{case.method.upper()} {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1")
    if response.status_code == 400 and line > GUNICORN_REQUEST_LINE:
        assert json.loads(response.content)["details"] == {"limit": "limit_request_line"}, response.content[:300]
        assert case.meta is not None and case.meta.generation.mode.is_negative, "over the limit with valid data"
    case.validate_response(response, additional_checks=CHECKS)


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


def start_api(tmp: Path, redis: RedisServer, keys: str = f"openapi:admin:{ADMIN_KEY}", *, workers: int | None = 1,
              env: dict[str, str] | None = None) -> tuple[Proc, str]:
    """The API under a real gunicorn as the Procfile runs it (by default with one worker, as tests/helpers/stack.py
    starts it; None: the Procfile's count) on a SQLite store and a real redis-server, with these WAQ_* variables
    besides; returns the process and its base URL once /healthz answers."""
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

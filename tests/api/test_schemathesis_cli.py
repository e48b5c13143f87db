"""The API document as a stock tool sees it: `schemathesis run` from the command line, with its default checks
(every one: schema-valid data must be accepted, schema-invalid data refused, statuses, content types and bodies as
documented, ...) and the upload's allowances (schemathesis-stock.toml: an uploaded file's bytes decide its type,
which no schema can say, and its negative multipart cases still carry the file), against the served document and
gunicorn as the Procfile runs it (its worker class and worker count), on the default settings.

What this holds the document to: every rule of an enqueue is in it (the phone's pattern is the whole phone rule,
the callback URL's pattern the whole rule of its form, times that cannot hold together are 409), and gunicorn's own
refusals are JSON 400s it lists. tests/api/test_openapi_gunicorn.py adds the long run and the tally.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.constants import ARTIFACTS
from tests.helpers.openapi import ADMIN_KEY, start_api
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.settings import Settings

pytestmark = pytest.mark.services


def test_a_stock_schemathesis_run_passes(tmp_path: Path, redis_server: RedisServer) -> None:
    redis_server.client().flushall()
    default_cap = str(Settings.from_env({}).max_request_bytes)  # the helper's smaller cap is for its own runs
    proc, url = start_api(tmp_path, redis_server, workers=None, env={"WAQ_MAX_REQUEST_BYTES": default_cap})
    try:
        allowance = str(Path(__file__).with_name("schemathesis-stock.toml"))
        done = subprocess.run([sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", allowance,
                               "run", f"{url}/api/swagger.json", "-H", f"X-API-Key: {ADMIN_KEY}"],
                              capture_output=True, text=True, timeout=900, cwd=tmp_path, check=False)
    finally:
        proc.stop()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "schemathesis-cli.txt").write_text(done.stdout + done.stderr)
    summary = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    print("\n" + "\n".join(line for line in done.stdout.splitlines() if re.search(r"generated|Seed:", line)),
          file=sys.stderr)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert summary and int(summary.group(1)) >= 1000 and summary.group(1) == summary.group(2), done.stdout[-3000:]

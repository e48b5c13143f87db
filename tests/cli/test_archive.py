"""`waq archive list|show` against a real SQLite store: in-process through CliRunner, and one subprocess each for
what a script sees (exit codes, stdout, stderr)."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.cli.helpers import assert_lists_filter_and_page, make_failed, waq, waq_proc
from wa_queue.hub import default_hub
from wa_queue.models import utcnow


def archive_all() -> None:
    """beat's archive job, run as if 31 days had passed."""
    now = utcnow() + timedelta(days=31)
    default_hub().store.archive_failed(older_than=now - timedelta(days=30), now=now)


def test_archive_list_filters_and_pages(waq_env: dict[str, str]) -> None:
    first = make_failed("primary", "InvalidNumber")
    second = make_failed("secondary", "TransientSendError", phone="+14155550124")
    assert json.loads(waq("archive", "list", "--json").stdout)["total"] == 0
    archive_all()
    assert_lists_filter_and_page("archive", first, second)
    assert json.loads(waq("failed", "list", "--json").stdout)["total"] == 0
    done = waq_proc(waq_env, "archive", "list")
    assert done.returncode == 0 and first in done.stdout and "2 archived" in done.stdout
    assert waq("archive", "list", "--page", "0").exit_code == 2


def test_archive_show_and_unknown_id(waq_env: dict[str, str]) -> None:
    message_id = make_failed()
    archive_all()
    shown = waq("archive", "show", message_id)
    assert shown.exit_code == 0 and f"id                {message_id}" in shown.stdout
    assert "InvalidNumber" in shown.stdout and "history:" in shown.stdout
    as_json = json.loads(waq("archive", "show", message_id, "--json").stdout)
    assert as_json["id"] == message_id and as_json["status"] == "failed" and as_json["history"][-1]["event"] == "failed"
    missing = waq_proc(waq_env, "archive", "show", "0" * 32)
    assert missing.returncode == 1 and "no message with id" in missing.stderr
    assert waq("archive", "show").exit_code == 2  # the id is required
    assert "show" in waq("archive", "--help").stdout

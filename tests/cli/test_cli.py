"""The `waq` message commands (enqueue, status, failed) against a real SQLite store and a real redis-server: click's
CliRunner in-process, and `python -m wa_queue.cli` subprocesses for what a script sees (exit codes, stdout, stderr)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.cli.helpers import ID, assert_lists_filter_and_page, make_failed, waq, waq_proc
from tests.helpers.constants import NO_MESSAGES, PHONE
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus, utcnow


# ---- enqueue ---------------------------------------------------------------------------------------------------
def test_enqueue_prints_the_id_of_the_committed_message(waq_env: dict[str, str]) -> None:
    done = waq_proc(waq_env, "enqueue", "+1 (415) 555-0123", "hello", "--session", "primary")
    assert done.returncode == 0, done.stderr
    message_id = done.stdout.strip()
    assert ID.match(message_id)
    message = default_hub().store.get(message_id)
    assert (message.phone, message.text, message.session, message.status) == (PHONE, "hello", "primary",
                                                                                MessageStatus.PENDING)


def test_enqueue_invalid_phone_is_exit_2_with_the_reason(waq_env: dict[str, str]) -> None:
    done = waq_proc(waq_env, "enqueue", "12345", "hello")
    assert done.returncode == 2
    assert "phone must be 6-15 digits" in done.stderr
    assert done.stdout == ""
    assert default_hub().store.count_by_status()["pending"] == 0


def test_enqueue_json_and_idempotency(waq_env: dict[str, str]) -> None:
    first = json.loads(waq("enqueue", PHONE, "hi", "--idempotency-key", "k1", "--json").stdout)
    again = json.loads(waq("enqueue", PHONE, "hi", "--idempotency-key", "k1", "--json").stdout)
    assert first["created"] is True and again["created"] is False and again["id"] == first["id"]
    assert first["status"] == "pending"
    conflict = waq("enqueue", PHONE, "other text", "--idempotency-key", "k1")
    assert conflict.exit_code == 1 and "k1" in conflict.stderr


@pytest.mark.parametrize("args", [[], [PHONE], ["--csv", __file__, PHONE, "x"], ["+14155550123", "x", "--session",
                                                                                    "nosuch"]])
def test_enqueue_bad_usage_is_exit_2(waq_env: dict[str, str], args: list[str]) -> None:
    result = waq("enqueue", *args)
    assert result.exit_code == 2, result.output
    assert default_hub().store.count_by_status()["pending"] == 0


def test_enqueue_csv_reports_rejected_rows_and_queues_the_good_ones(waq_env: dict[str, str], tmp_path: Path) -> None:
    csv_file = tmp_path / "messages.csv"
    csv_file.write_text("phone,text,session\n"
                        "+14155550101,first,\n"
                        "12,bad number,\n"
                        "+14155550102,\"second, with a comma\",secondary\n"
                        "+14155550103,,\n"
                        "+14155550104,wrong session,nosuch\n")
    done = waq_proc(waq_env, "enqueue", "--file", str(csv_file))
    assert done.returncode == 1, done.stderr
    assert "queued 2 message(s)" in done.stdout and "rejected 3 row(s)" in done.stdout
    assert re.search(r"row 3: phone must be 6-15 digits", done.stdout)
    assert "row 5: text must not be empty" in done.stdout
    assert "row 6: session must be one of" in done.stdout
    stored = {(m.phone, m.text, m.session) for m in _pending()}
    assert stored == {("+14155550101", "first", None), ("+14155550102", "second, with a comma", "secondary")}


def test_enqueue_csv_all_good_is_exit_0_in_batches_of_500(waq_env: dict[str, str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from wa_queue import operations

    csv_file = tmp_path / "many.csv"
    csv_file.write_text("phone,text\n" + "".join(f"+1415555{i:04d},message {i}\n" for i in range(1201)))
    batches: list[int] = []
    real = operations.submit
    monkeypatch.setattr(operations, "submit", lambda app, news: batches.append(len(news)) or real(app, news))
    result = waq("enqueue", "--file", str(csv_file), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["enqueued"] == 1201 and summary["rejected"] == [] and len(set(summary["ids"])) == 1201
    assert batches == [500, 500, 201]
    assert default_hub().store.count_by_status()["pending"] == 1201


@pytest.mark.parametrize("header", ["phone,body\n", "phone,text,sesion\n", ""])
def test_enqueue_csv_needs_its_header(waq_env: dict[str, str], tmp_path: Path, header: str) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(header + "+14155550101,hello\n" if header else "")
    result = waq("enqueue", "--file", str(csv_file))
    assert result.exit_code == 2 and "header" in result.stderr


# ---- status ----------------------------------------------------------------------------------------------------
def test_status_counts_sessions_and_one_message(waq_env: dict[str, str]) -> None:
    message_id = waq("enqueue", PHONE, "hello").stdout.strip()
    overview = json.loads(waq("status", "--json").stdout)
    assert overview["counts"] == {**NO_MESSAGES, "pending": 1}
    assert set(overview["sessions"]) == {"primary", "secondary"}
    text = waq("status").stdout
    assert "pending" in text and "primary" in text and "secondary" in text

    done = waq_proc(waq_env, "status", message_id, "--json")
    assert done.returncode == 0, done.stderr
    message = json.loads(done.stdout)
    assert message["id"] == message_id and message["status"] == "pending" and message["attempts"] == 0
    assert [entry["event"] for entry in message["history"]] == ["enqueued"]
    human = waq("status", message_id).stdout
    assert "status" in human and "history:" in human and "enqueued" in human


def test_status_of_an_unknown_id_is_exit_1(waq_env: dict[str, str]) -> None:
    done = waq_proc(waq_env, "status", "0" * 32)
    assert done.returncode == 1 and "no message with id" in done.stderr


# ---- failed ----------------------------------------------------------------------------------------------------
def test_failed_list_filters_and_pages(waq_env: dict[str, str]) -> None:
    first = make_failed("primary", "InvalidNumber")
    second = make_failed("secondary", "TransientSendError", phone="+14155550124")
    assert_lists_filter_and_page("failed", first, second)
    done = waq_proc(waq_env, "failed", "list")
    assert done.returncode == 0 and first in done.stdout and "2 failed" in done.stdout
    assert waq("failed", "list", "--page", "0").exit_code == 2


def test_failed_retry_puts_it_back_to_pending(waq_env: dict[str, str]) -> None:
    message_id = make_failed()
    done = waq_proc(waq_env, "failed", "retry", message_id)
    assert done.returncode == 0, done.stderr
    assert f"requeued {message_id}" in done.stdout
    message = default_hub().store.get(message_id)
    assert message.status is MessageStatus.PENDING and message.attempts == 0
    again = waq_proc(waq_env, "failed", "retry", message_id)  # not failed any more
    assert again.returncode == 1 and "not failed" in again.stderr
    assert waq_proc(waq_env, "failed", "retry", "0" * 32).returncode == 1


def test_failed_mark_sent_records_the_os_user(waq_env: dict[str, str]) -> None:
    message_id = make_failed(error_class="OutcomeUnverified")
    done = waq_proc({**waq_env, "LOGNAME": "alice", "USER": "alice"}, "failed", "mark-sent", message_id,
                    "--note", "seen in the chat")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"marked {message_id} as sent (sent_by primary)"
    message = default_hub().store.get(message_id)
    assert message.status is MessageStatus.SENT and message.sent_by == "primary" and message.wa_id is None
    assert message.history[-1].event == "sent"
    assert message.history[-1].error_text == "marked as sent by operator cli:alice: seen in the chat"
    again = waq_proc(waq_env, "failed", "mark-sent", message_id)  # not failed any more
    assert again.returncode == 1 and "not failed" in again.stderr
    missing = waq_proc(waq_env, "failed", "mark-sent", "0" * 32)
    assert missing.returncode == 1 and "no message with id" in missing.stderr


def test_failed_mark_sent_without_a_note_and_with_a_bad_one(waq_env: dict[str, str]) -> None:
    message_id = make_failed()
    too_long = waq("failed", "mark-sent", message_id, "--note", "x" * 501)
    assert too_long.exit_code == 2 and "note" in too_long.stderr
    assert default_hub().store.get(message_id).status is MessageStatus.FAILED
    assert waq("failed", "mark-sent").exit_code == 2  # the id is required
    result = waq("failed", "mark-sent", message_id)
    assert result.exit_code == 0 and f"marked {message_id} as sent" in result.stdout
    assert default_hub().store.get(message_id).history[-1].error_text.startswith("marked as sent by operator cli:")
    assert "mark-sent" in waq("failed", "--help").stdout


def test_failed_retry_all_by_session(waq_env: dict[str, str]) -> None:
    primary = make_failed("primary")
    secondary = make_failed("secondary", phone="+14155550124")
    assert "requeued 1 message(s)" in waq("failed", "retry-all", "--session", "primary").stdout
    assert default_hub().store.get(primary).status is MessageStatus.PENDING
    assert default_hub().store.get(secondary).status is MessageStatus.FAILED
    assert waq("failed", "retry-all", "--session", "nosuch").exit_code == 2
    done = waq_proc(waq_env, "failed", "retry-all")
    assert done.returncode == 0 and "requeued 1 message(s)" in done.stdout
    assert default_hub().store.count_by_status()["failed"] == 0


def test_failed_delete_asks_first(waq_env: dict[str, str]) -> None:
    from wa_queue.errors import NotFound

    message_id = make_failed()
    declined = waq("failed", "delete", message_id, input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert default_hub().store.get(message_id).status is MessageStatus.FAILED
    accepted = waq("failed", "delete", message_id, input="y\n")
    assert accepted.exit_code == 0 and f"deleted {message_id}" in accepted.stdout
    with pytest.raises(NotFound):
        default_hub().store.get(message_id)

    other = make_failed()
    done = waq_proc(waq_env, "failed", "delete", other, "--yes")
    assert done.returncode == 0, done.stderr
    with pytest.raises(NotFound):
        default_hub().store.get(other)
    assert waq_proc(waq_env, "failed", "delete", other, "--yes").returncode == 1


def test_failed_delete_refuses_a_message_that_is_not_failed(waq_env: dict[str, str]) -> None:
    message_id = waq("enqueue", PHONE, "hello").stdout.strip()
    result = waq("failed", "delete", message_id, "--yes")
    assert result.exit_code == 1 and "only failed messages" in result.stderr
    assert default_hub().store.get(message_id).status is MessageStatus.PENDING


def _pending() -> list:
    store = default_hub().store
    messages = store.list_undispatched(now=utcnow() + timedelta(days=1), epoch="none", limit=10_000)
    return [m for m in messages if m.status is MessageStatus.PENDING]

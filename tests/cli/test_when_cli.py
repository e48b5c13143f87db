"""`waq enqueue`'s time, priority and batch options and CSV columns, `waq cancel` and `waq batches`, against a real
SQLite store and redis-server (click's CliRunner, and a subprocess where the exit code matters)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from tests.cli.helpers import waq, waq_proc
from tests.helpers.constants import PHONE
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus, Priority, utcnow


def _later(seconds: int) -> str:
    return (utcnow() + timedelta(seconds=seconds)).replace(microsecond=0).isoformat()


def test_enqueue_with_a_time_an_expiry_a_priority_and_a_batch(waq_env: dict[str, str]) -> None:
    send_at = _later(3600)
    result = waq("enqueue", PHONE, "at nine", "--send-at", send_at, "--ttl", "2h", "--priority", "high",
                 "--batch", "morning", "--json")
    assert result.exit_code == 0, result.output
    message = default_hub().store.get(json.loads(result.stdout)["id"])
    assert message.send_at is not None and message.send_at.isoformat() == send_at
    assert (message.priority, message.batch) == (Priority.HIGH, "morning")
    assert message.expires_at is not None and message.dispatched_at is None  # waits in the store, not the broker
    shown = waq("status", message.id)
    assert "priority          high" in shown.stdout and "batch             morning" in shown.stdout


def test_bad_times_and_priorities_are_exit_2_naming_the_field(waq_env: dict[str, str]) -> None:
    for args, field in ((["--send-at", "tomorrow"], "send_at"), (["--priority", "urgent"], "priority"),
                        (["--ttl", "soon"], "ttl_s"), (["--send-at", _later(40 * 86400)], "send_at"),
                        (["--expires-at", "2020-01-01T00:00:00Z"], "expires_at")):
        done = waq_proc(waq_env, "enqueue", PHONE, "x", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert field in done.stderr, (args, done.stderr)
    assert default_hub().store.count_by_status()["pending"] == 0


def test_a_csv_is_one_batch_and_takes_the_new_columns(waq_env: dict[str, str], tmp_path: Path) -> None:
    csv_file = tmp_path / "messages.csv"
    csv_file.write_text("phone,text,send_at,ttl_s,priority,batch\n"
                        f"+14155550101,first,{_later(600)},3600,low,\n"
                        "+14155550102,second,,,high,own\n"
                        "+14155550103,bad,,,urgent,\n")
    result = waq("enqueue", "--file", str(csv_file), "--json")
    assert result.exit_code == 1  # one row rejected, the others queued
    out = json.loads(result.stdout)
    assert out["enqueued"] == 2 and out["rejected"][0]["field"] == "priority" and out["rejected"][0]["row"] == 4
    first, second = (default_hub().store.get(i) for i in out["ids"])
    assert first.batch == out["batch"] and second.batch == "own"
    assert (first.priority, second.priority) == (Priority.LOW, Priority.HIGH)
    assert first.send_at is not None and first.expires_at is not None


def test_cancel_a_pending_message_and_refuse_a_sent_one(waq_env: dict[str, str]) -> None:
    store = default_hub().store
    pending = waq("enqueue", PHONE, "stop me").stdout.strip()
    result = waq("cancel", pending)
    assert result.exit_code == 0 and result.stdout.strip() == f"{pending} cancelled"
    entry = store.get(pending).history[-1]
    assert entry.event == "cancelled" and entry.error_text.startswith("cancelled by ")
    sent = waq("enqueue", PHONE, "too late").stdout.strip()
    store.claim(sent, owner="w", session="primary", now=utcnow(), lease_s=60)
    store.record_sent(sent, owner="w", now=utcnow(), session="primary", wa_id="x")
    done = waq_proc(waq_env, "cancel", sent)
    assert done.returncode == 1 and "already sent" in done.stderr
    assert store.get(sent).status is MessageStatus.SENT


def test_batches_list_show_pause_resume_cancel(waq_env: dict[str, str], tmp_path: Path) -> None:
    csv_file = tmp_path / "batch.csv"
    csv_file.write_text("phone,text\n" + "".join(f"+1415555010{i},reminder {i}\n" for i in range(3)))
    name = json.loads(waq("enqueue", "--file", str(csv_file), "--batch", "dec24", "--json").stdout)["batch"]
    assert name == "dec24"
    listed = json.loads(waq("batches", "list", "--json").stdout)
    assert [(b["name"], b["total"], b["counts"]["pending"]) for b in listed] == [("dec24", 3, 3)]
    assert "expected_end_at" in waq("batches", "show", "dec24").stdout
    paused = json.loads(waq("batches", "pause", "dec24", "--json").stdout)
    assert paused == {"name": "dec24", "changed": 3, "left": {}}
    assert json.loads(waq("batches", "show", "dec24", "--json").stdout)["counts"]["paused"] == 3
    assert "changed 3" in waq("batches", "resume", "dec24").stdout
    assert json.loads(waq("batches", "cancel", "dec24", "--json").stdout)["changed"] == 3
    missing = waq_proc(waq_env, "batches", "show", "nope")
    assert missing.returncode == 1 and "no batch 'nope'" in missing.stderr

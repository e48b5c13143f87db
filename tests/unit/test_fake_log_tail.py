"""The fake sender's view of its send log (transport/fake.LogTail): what another process appends is seen, a line
still being written is not, and a log replaced or cut short is read again from its start."""

from __future__ import annotations

import json
from pathlib import Path

from wa_queue.transport.fake import LogTail


def _line(ref: str, session: str = "primary", phone: str = "+14155550123") -> str:
    return json.dumps({"ref": ref, "session": session, "phone": phone, "wa_id": f"wa-{ref}"}) + "\n"


def test_it_sees_what_is_appended_and_only_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "fake-sent.jsonl"
    tail = LogTail(log)
    assert tail.chat("primary", "+14155550123") == [] and not tail.has("wa-1")  # no log yet
    log.write_text(_line("1") + _line("2", session="secondary") + _line("3", phone="+14155550124"))
    assert [e["ref"] for e in tail.chat("primary", "+14155550123")] == ["1"]
    half = _line("4")
    with log.open("a") as handle:
        handle.write(half[:10])  # another process in the middle of its line
    assert [e["ref"] for e in tail.chat("primary", "+14155550123")] == ["1"]
    with log.open("a") as handle:
        handle.write(half[10:])
    assert [e["ref"] for e in tail.chat("primary", "+14155550123")] == ["1", "4"]
    assert tail.has("wa-2") and tail.has("wa-4") and not tail.has("wa-9")


def test_a_replaced_or_shorter_log_is_read_again(tmp_path: Path) -> None:
    log = tmp_path / "fake-sent.jsonl"
    log.write_text(_line("1") + _line("2"))
    tail = LogTail(log)
    assert len(tail.chat("primary", "+14155550123")) == 2
    log.write_text(_line("3"))  # cut short
    assert [e["ref"] for e in tail.chat("primary", "+14155550123")] == ["3"]
    other = tmp_path / "other.jsonl"
    other.write_text(_line("5") + _line("6") + _line("7"))
    other.replace(log)  # a new file under the same name
    assert [e["ref"] for e in tail.chat("primary", "+14155550123")] == ["5", "6", "7"]
    log.unlink()
    assert tail.chat("primary", "+14155550123") == []

"""How a read chat's rows become replies (wa_queue/transport/replies.py): the sender from a packed id or the
pre-plain text, no number for `@lid` ids and names, only the rows after this session's last one in an open chat, and
a whole chat skipped (never guessed at) when one row cannot be read for sure."""

from __future__ import annotations

from wa_queue.transport.replies import e164, new_rows, replies_in, sender_of


def row(rid: str | None = "false_4915112345678@c.us_3A01", text: str | None = "STOP", direction: str = "in",
        pre: str | None = "[10:02, 12/5/2026] +49 151 12345678: ", **extra: object) -> dict:
    return {"id": rid, "text": text, "dir": direction, "pre": pre, "more": False, "times": [], **extra}


def test_the_sender_comes_from_the_packed_id_or_the_printed_number() -> None:
    assert sender_of(row()) == (True, "+4915112345678")
    assert sender_of(row(rid="3A0123")) == (True, "+4915112345678")  # a bare id: the printed number
    assert sender_of(row(rid="false_123456789012@lid_3A01", pre="[10:02, 12/5/2026] Ana Lima: ")) == (True, None)
    assert sender_of(row(rid="3A0123", pre="[10:02, 12/5/2026] Ana Lima: ")) == (True, None)  # a name: no number
    assert sender_of(row(rid="3A0123", pre=None)) == (False, None)
    assert e164("+1 415 555 0101") == "+14155550101" and e164("Ana") is None and e164("+12") is None


def test_a_chat_with_one_unreadable_row_is_skipped_whole(caplog) -> None:  # noqa: ANN001
    good = replies_in("+49 151 12345678", [row(), row(rid="false_4915112345678@c.us_3A02", text="thanks")], 0)
    assert [(r.wa_id, r.text, r.phone) for r in good] == [
        ("false_4915112345678@c.us_3A01", "STOP", "+4915112345678"),
        ("false_4915112345678@c.us_3A02", "thanks", "+4915112345678")]
    for bad in (row(rid=None), row(text=None), row(more=True), row(rid="3A01", pre=None)):
        assert replies_in("chat", [row(), bad], 0) is None
    assert replies_in("chat", [row()], unknown=1) is None
    assert "not read" in caplog.text


def test_new_rows_are_the_badges_count_and_those_after_the_last_outgoing_one() -> None:
    msgs = [row(rid="a"), row(rid="b", direction="out"), row(rid="c"), row(rid="d")]
    assert [m["id"] for m in new_rows(msgs, 0)] == ["c", "d"]
    assert new_rows([row(rid="a")], 0) == []  # nothing of ours: the unread badge says what is new
    assert [m["id"] for m in new_rows([row(rid="a"), row(rid="z")], 1)] == ["z"]
    assert [m["id"] for m in new_rows(msgs, 3)] == ["a", "c", "d"]  # the badge counts past our row


def test_a_reply_during_our_own_send_is_before_its_row_and_still_new() -> None:
    msgs = [row(rid="a"), row(rid="b", direction="out"), row(rid="c"), row(rid="ours", direction="out"),
            row(rid="d")]
    assert [m["id"] for m in new_rows(msgs, 0)] == ["d"]
    assert [m["id"] for m in new_rows(msgs, 0, {"ours"})] == ["c", "d"]
    # Our first words in the chat: x came during the send (a STOP then must count), or was read from its badge
    # before it (recorded: the record skips it), or was read elsewhere (recorded now: careful, never lost).
    first_contact = [row(rid="x"), row(rid="ours", direction="out"), row(rid="d")]
    assert [m["id"] for m in new_rows(first_contact, 0, {"ours"})] == ["x", "d"]

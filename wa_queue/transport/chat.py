"""What a chat's rows say: the rows the page script JS_CHAT reads (selectors.py) compared with a message's text.

Browser-free, so every rule of the fail-closed reading is tested without Chromium: a row matches only by its compared
text and its time; a chat with rows of no known form, or a text that cannot be compared, is never read as "not
there".
"""

from __future__ import annotations

import re
from typing import Any

from wa_queue import errors
from wa_queue.transport.base import Receipt
from wa_queue.transport.selectors import Selectors

STATUS = {"pending": "pending", "sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed",
          "msg-time": "pending", "msg-check": "sent", "msg-dblcheck": "delivered"}  # pre-2026-06 icons
ROW_TIME_SLACK_MS = 120_000  # a row's time has minute resolution, and the phone's clock may differ a little


def normalise(text: str) -> str:
    """A text as it can be compared with a rendered row: WhatsApp's formatting markers are rendered away and
    whitespace folds, so both sides drop the markers and fold whitespace."""
    return re.sub(r"\s+", " ", re.sub(r"[*_~`\u200e\u200f]", "", text)).strip()


def row_matches(row: dict[str, Any], text: str, since_ms: float | None) -> bool | None:
    """Whether an outgoing row read by JS_CHAT is this text, sent at or after since_ms: True, False, or None when it
    cannot be told (no text element, a cut text with no time). A row cut behind "Read more" matches by its prefix
    together with its time."""
    if row.get("text") is None:
        return None
    got, want = normalise(row["text"]).rstrip("…").rstrip(), normalise(text)
    if row.get("more"):
        same = bool(got) and want.startswith(got)
    else:
        same = got == want
    if not same:
        return False
    times = row.get("times") or []
    if since_ms is None:
        return True if not row.get("more") or times else None
    if not times:
        return None
    return any(t >= since_ms - ROW_TIME_SLACK_MS for t in times)  # else an older message with the same text


def verdict(snapshot: dict[str, Any], text: str, since_ms: float | None, phone: str,
            selectors: Selectors) -> Receipt | None:
    """What a settled chat (JS_CHAT) says of this text: the matching row's receipt, None when it positively is not
    there, SendOutcomeUnknown while the match is still Pending, OutcomeUnverified when it cannot tell."""
    if snapshot["unknown"]:
        raise errors.OutcomeUnverified(
            f"sent? could not be verified in the chat with {phone}: {snapshot['unknown']} of "
            f"{snapshot['messages']} message rows match no known form (their direction is unknown); check "
            "out_id, out_class, in_id, in_class and status_icon in WAQ_SELECTORS_FILE")
    unsure = False
    for row in reversed(snapshot["out"]):
        match = row_matches(row, text, since_ms)
        if match is None:
            unsure = True
        if not match:
            continue
        status = STATUS.get(row["status"] or "", row["status"])
        if status == "failed":
            continue  # refused by the server: it never left
        if status == "pending":
            raise errors.SendOutcomeUnknown(f"a message to {phone} with this text is still Pending ({row['id']})")
        return Receipt(wa_id=row["id"], status=status or "sent")
    if unsure:
        raise errors.OutcomeUnverified(
            f"sent? could not be verified in the chat with {phone}: an outgoing row's text could not be "
            f"compared (check message_text, {selectors['message_text']}, in WAQ_SELECTORS_FILE)")
    return None

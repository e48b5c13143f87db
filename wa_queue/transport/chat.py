"""What a chat's rows say about one click: the rows the page script JS_CHAT reads (selectors.py), compared with the
message's text and with the picture of the chat taken just before the click.

Browser-free, so every rule of the fail-closed reading is tested without Chromium (tests/unit/test_chat.py, and a
property test in tests/unit/test_chat_properties.py). Identity comes before time (DESIGN.md, invariant 5): a row
whose id was not in the chat before the click and which carries the text is the message, whatever time it shows; a
row's time can make a row "ours" or a result unverified, and never proves that a row with the text is another message.

The cases, each with a test named after it (Case.*), for an outgoing row whose text is the message's ("a match"):

- UNKNOWN_FORM: some message rows have no known direction: unverified (whose rows are they?).
- NO_ID: a match without an id cannot be placed: unverified.
- IN_PICTURE: a match whose id is in the picture was there before the click: an older message, skipped.
- ABOVE_PICTURE: a match above the oldest pictured row still shown: older (the chat's own order proves it), skipped.
- INSERTED: a match not in the picture but between pictured rows: the page inserted it; cannot tell: unverified.
- NEW: a match below every pictured row and not in the picture: it appeared after the click. The oldest such row
  that no other message of this session owns (`taken`) is the message: one click is settled before the next, so a
  later row with the same text is a later message's.
- TAKEN: a new match already recorded as another message's WhatsApp id is that message's, skipped.
- REFUSED: a match the servers refused (failed icon) never left, skipped.
- PENDING: the message's row still shows the clock: SendOutcomeUnknown (WhatsApp will send it when it can).
- NO_ANCHOR: none of the pictured rows is shown any more (a virtualised list scrolled, ids of a form that changed):
  the page shows too little to tell: unverified, whether or not a match is shown. Without a picture (or with an
  empty one), the chat's start (its system row) must be in view: else the click's row may be out of it.
- NO_PICTURE: no picture was recorded (a doubt from before pictures, a chat that showed no row at all): a match
  whose time, corrected by the page clock's estimated offset, is after the click is the message (row_after); any
  other match (no estimate yet, a time not understood, an earlier time) is unverified.

The picture holds the ids of the chat's message rows (those with a data-pre-plain-text bubble), not of its system
rows, whose ids a reload may change: an empty picture of a loaded chat (one that showed its system row) is a chat
without messages, where every match is new.
- UNCOMPARABLE: a new row whose text cannot be compared (no text element): unverified. The first new row that may
  be the click's decides (this, NO_PICTURE and NEW alike): a later row taken instead could be a later message's.
- ABSENT: no match in a positively read chat anchored to its picture (or with no picture): the message is not there.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Sequence
from typing import Any

from wa_queue import errors
from wa_queue.models import MediaRef, plain
from wa_queue.transport.base import Receipt
from wa_queue.transport.rowtime import row_instants
from wa_queue.transport.selectors import Selectors

STATUS = {"pending": "pending", "sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed",
          "msg-time": "pending", "msg-check": "sent", "msg-dblcheck": "delivered",  # pre-2026-06 icons
          # the ticks' SVG <title> names (2026-06 on), where no aria-label is left
          "wds-ic-pending": "pending", "wds-ic-msg-time": "pending", "wds-ic-clock": "pending",
          "wds-ic-sent": "sent", "wds-ic-check": "sent", "wds-ic-delivered": "delivered",
          "wds-ic-dblcheck": "delivered", "wds-ic-read": "read", "wds-ic-error": "failed"}
PICTURE_MAX = 60  # rows of the picture kept in the store: the last ones shown, where a new row appears
# A row shows the minute it was sent (up to 60 s early) and the offset estimate is within 30 s of the truth (the middle
# of each sample's minute): a row sent at or after the click shows, corrected, a time later than the click minus this.
ROW_TIME_SLACK_MS = 90_000
PAGE_CLOCK_WARN_S = 60.0  # an estimated page clock further off than this is a warning in health and doctor


class Case(enum.Enum):
    UNKNOWN_FORM = "unknown_form"
    NO_ID = "no_id"
    IN_PICTURE = "in_picture"
    ABOVE_PICTURE = "above_picture"
    INSERTED = "inserted"
    NEW = "new"
    TAKEN = "taken"
    REFUSED = "refused"
    PENDING = "pending"
    NO_ANCHOR = "no_anchor"
    NO_PICTURE = "no_picture"
    UNCOMPARABLE = "uncomparable"
    ABSENT = "absent"


@dataclasses.dataclass(frozen=True)
class Click:
    """What is known of the click a chat is read for: when it happened by the worker's clock (ms), the picture of the
    chat's row ids just before it (None: none recorded), the WhatsApp ids other messages of this session own, and the
    estimated offset of the page's clock from the worker's (ms; None: no estimate yet). Click() knows nothing of a
    click: any row with the text is taken (a question about the chat, not about a click in doubt)."""

    since_ms: float | None = None
    picture: tuple[str, ...] | None = None
    taken: frozenset[str] = frozenset()
    offset_ms: float | None = None


@dataclasses.dataclass(frozen=True)
class Reading:
    """The rule's answer: the case that decided, and the matching row when it is the message."""

    case: Case
    row: dict[str, Any] | None = None
    detail: str = ""


def normalise(text: str) -> str:
    """A text as it can be compared with a rendered row: WhatsApp's formatting markers are rendered away and
    whitespace folds, so both sides drop the markers and fold whitespace."""
    return re.sub(r"\s+", " ", re.sub(r"[*_~`\u200e\u200f]", "", text)).strip()


def id_key(wa_id: str | None) -> str:
    """One message's id in every form the page used: packed `true_<chat>@c.us_<id>` and bare `<id>` compare equal."""
    return (wa_id or "").rsplit("_", 1)[-1]


def picture_of(ids: Sequence[str | None]) -> tuple[str, ...]:
    """The bounded picture of a chat: the ids of its last PICTURE_MAX message rows that have one."""
    return tuple(i for i in ids if i)[-PICTURE_MAX:]


def snapshot_picture(snapshot: dict[str, Any]) -> tuple[str, ...] | None:
    """The picture of a settled chat read by JS_CHAT: its message rows' ids, or None when it showed no row at all
    (an empty list says nothing of what is yet to render)."""
    if not snapshot.get("rows"):
        return None
    return picture_of(snapshot.get("msg_ids") or [])


def _starts_at_top(snapshot: dict[str, Any]) -> bool:
    """Whether the rows shown begin with the chat's start: a row that is no message (its system row) comes first. A
    chat scrolled or virtualised past its start would show only its latest rows, all messages."""
    ids, messages = snapshot.get("ids") or [], {id_key(i) for i in snapshot.get("msg_ids") or []}
    return bool(ids) and id_key(ids[0]) not in messages


def _same_text(row: dict[str, Any], text: str) -> bool | None:
    """Whether a row's text is this text: True, False, or None when it cannot be told (no text element). A row cut
    behind "Read more" matches by its prefix."""
    if row.get("text") is None:
        return None
    got, want = normalise(row["text"]).rstrip("…").rstrip(), normalise(text)
    if row.get("more"):
        return bool(got) and want.startswith(got)
    return got == want


MEDIA_KINDS = ("image", "video", "audio", "document")


def text_matches(row: dict[str, Any], text: str, media: MediaRef | None = None) -> bool | None:
    """Whether a row may be this message: True, False, or None when it cannot be told. A text message is a row with
    its text and no file. A media message (`text` its caption) is a row showing a file of its kind (a document's
    name its file name) and its caption. A row is another message only when it shows so; what the row does not show
    is never taken as a difference:
    - a file shown with this very text, for a text message: None (a link preview read as a photo? cannot tell); a
      file without it: False;
    - no file recognised, for a media message: None when the row's text could be the caption, or it has none (a
      file of a form no selector knows), False when it shows another text;
    - a document whose name cannot be read, or a caption expected where no text element is: None."""
    shown = row.get("media")
    if media is None:
        same = _same_text(row, text)
        if shown:  # a file without this text is another message; a file with it, who knows (a link's preview?)
            return None if same else False
        return same
    if not shown:
        if row.get("text") is None:
            return None
        return None if text and _same_text(row, text) is not False else False
    kind = shown.get("kind")
    if kind != plain(media.kind):
        return False if kind in MEDIA_KINDS else None
    if kind == "document":
        name = shown.get("name")
        if name is None:
            return None
        if normalise(name) != normalise(media.filename):
            return False
    if row.get("text") is None:
        return True if not text else None
    if not text:
        return not normalise(row["text"])
    return _same_text(row, text)


def row_after(row: dict[str, Any], click: Click, zone: str | None) -> bool:
    """Whether the row's time shows it was sent at or after the click, once the page clock's estimated offset is
    removed (ROW_TIME_SLACK_MS allows for the minute's resolution and the estimate's error). False when the time
    cannot be read, or no offset is known yet (a clock of unknown skew proves nothing): a time can make a row ours,
    never another message's."""
    if click.since_ms is None or click.offset_ms is None:
        return False
    shown = shown_ms(row, zone, click.since_ms)
    return shown is not None and shown - click.offset_ms > click.since_ms - ROW_TIME_SLACK_MS


def shown_ms(row: dict[str, Any], zone: str | None, near_ms: float) -> float | None:
    """The instant (ms) a row's time shows, read near `near_ms`: of the readings of an ambiguous date (day and month
    both possible), the only one within 12 hours of it; None when none is, or the time cannot be read. A day-month
    swap moves a date by a day or more, so at most one reading is that near; a skewed clock, or a page that writes
    its times in another zone, is hours off at most."""
    near = [t.timestamp() * 1000 for t in row_instants(row.get("pre"), zone)
            if abs(t.timestamp() * 1000 - near_ms) < 43_200_000]
    return near[0] if len(near) == 1 else None


def read(snapshot: dict[str, Any], text: str, click: Click, *, same_page: bool = False,
         media: MediaRef | None = None) -> Reading:
    """Apply the cases (module docstring) to a settled chat read by JS_CHAT. `same_page`: read in the document that
    took the picture, right after its click (new_row): nothing was reloaded or scrolled away in between, so a chat
    that showed no row at all is a picture of an empty chat, and its start need not be in view."""
    if same_page and click.picture is None:
        click = dataclasses.replace(click, picture=())
    if snapshot.get("unknown"):
        return Reading(Case.UNKNOWN_FORM, detail=f"{snapshot['unknown']} of {snapshot['messages']} message rows")
    zone = snapshot.get("zone")
    order = {id_key(i): n for n, i in enumerate(snapshot.get("ids") or []) if i}
    picture = {id_key(i) for i in click.picture or ()}
    anchors = sorted(order[k] for k in picture if k in order)
    taken = {id_key(i) for i in click.taken}
    if click.picture and not anchors:
        return Reading(Case.NO_ANCHOR, detail=f"none of the {len(picture)} rows seen before the click is shown")
    if not anchors and click.since_ms is not None and not same_page and not _starts_at_top(snapshot):
        # Nothing seen before the click is shown, nor the chat's start: the click's row may be out of view, and a
        # later row with the text taken for it.
        return Reading(Case.NO_ANCHOR, detail="the rows shown reach back neither to a row seen before the click nor "
                                              "to the chat's start")
    refused: dict[str, Any] | None = None
    for row in snapshot["out"]:  # oldest first: the first new match is the click's
        match = text_matches(row, text, media)
        if match is False:
            continue
        key = id_key(row.get("id"))
        if not key:
            return Reading(Case.NO_ID)
        if key in picture:
            continue  # IN_PICTURE
        place = order.get(key)
        if anchors and place is not None and place < anchors[0]:
            continue  # ABOVE_PICTURE
        if anchors and (place is None or place < anchors[-1]):
            return Reading(Case.INSERTED, detail=str(row.get("id")))
        if key in taken:
            continue  # TAKEN
        # The first new row that may be the click's decides: a later one taken instead could be a later message's,
        # whose own reading would then find nothing of its own and send it again.
        if click.picture is None and click.since_ms is not None and not row_after(row, click, zone):
            return Reading(Case.NO_PICTURE)  # no picture, and its time does not show it came after the click
        if match is None:
            return Reading(Case.UNCOMPARABLE)
        status = STATUS.get(row.get("status") or "", row.get("status"))
        if status == "failed":
            refused = refused or row  # REFUSED: it never left
            continue
        if status == "pending":
            return Reading(Case.PENDING, row)
        return Reading(Case.NEW, row)
    if refused is not None:
        return Reading(Case.REFUSED, refused)
    return Reading(Case.ABSENT)


def verdict(snapshot: dict[str, Any], text: str, click: Click, phone: str, selectors: Selectors,
            media: MediaRef | None = None) -> Receipt | None:
    """What a settled chat says of this click: the message's receipt, None when it positively is not there,
    SendOutcomeUnknown while its row is still Pending, OutcomeUnverified when the chat cannot tell."""
    reading = read(snapshot, text, click, media=media)
    where = f"sent? could not be verified in the chat with {phone}"
    if reading.case is Case.NEW:
        row = reading.row or {}
        status = STATUS.get(row.get("status") or "", row.get("status"))
        return Receipt(wa_id=row["id"], status=status or "sent")
    if reading.case in (Case.ABSENT, Case.REFUSED):
        return None
    if reading.case is Case.PENDING:
        raise errors.SendOutcomeUnknown(f"a message to {phone} with this text is still Pending "
                                        f"({(reading.row or {}).get('id')})")
    why = {
        Case.UNKNOWN_FORM: f"{reading.detail} match no known form (their direction is unknown); check out_id, "
                           "out_class, in_id, in_class, out_tail, in_tail, status_icon and status_title in "
                           "WAQ_SELECTORS_FILE",
        Case.NO_ID: "a row with this text has no id (check message_id in WAQ_SELECTORS_FILE)",
        Case.INSERTED: f"a row with this text ({reading.detail}) stands between rows seen before the click",
        Case.NO_ANCHOR: f"{reading.detail} (a scrolled list, or ids of another form)",
        Case.NO_PICTURE: "a row with this text is there, no picture of the chat before the click was recorded, and "
                         "its time does not show that it came after the click",
        Case.UNCOMPARABLE: f"an outgoing row's text{' or file' if media else ''} could not be compared (check "
                           f"message_text, {selectors['message_text']}"
                           f"{', media_image, media_video, media_audio, media_document' if media else ''}, in "
                           "WAQ_SELECTORS_FILE)",
    }[reading.case]
    raise errors.OutcomeUnverified(f"{where}: {why}")


def new_row(snapshot: dict[str, Any], text: str, click: Click, media: MediaRef | None = None) -> dict[str, Any] | None:
    """Right after the click, in the same page: the row the click made (the first new match), or None while none is
    shown (a refused row too: its failed status says so). Every fail-closed case is None here: the caller waits,
    then leaves the outcome unknown."""
    reading = read(snapshot, text, click, same_page=True, media=media)
    return reading.row if reading.case in (Case.NEW, Case.PENDING, Case.REFUSED) else None


def clock_offset_ms(row: dict[str, Any], zone: str | None, clicked_ms: float, acked_ms: float) -> float | None:
    """One sample of the page clock's offset from the worker's: the new row's shown time against the click. The row
    shows the minute it was sent, so the offset lies within a minute above the difference; the middle of the
    interval is the sample. None when the time cannot be read as one instant."""
    shown = shown_ms(row, zone, clicked_ms)
    if shown is None:
        return None
    middle = (clicked_ms + acked_ms) / 2
    return shown + 30_000 - middle

"""Reading media rows fail-closed (transport/chat.py's text_matches with a file): a row is another message only when
it shows so; what it does not show (an unknown file form, an unreadable document name, no caption element) leaves
the click unverified, never sent again on a guess."""

from __future__ import annotations

import pytest

from tests.unit.test_chat import chat, click, row
from wa_queue import errors
from wa_queue.models import MediaKind, MediaRef
from wa_queue.transport.chat import Case, new_row, read, text_matches, verdict
from wa_queue.transport.selectors import Selectors

PDF = MediaRef("ab" * 32, 2000, "application/pdf", "invoice 42.pdf", MediaKind.DOCUMENT)
PHOTO = MediaRef("cd" * 32, 9000, "image/jpeg", "photo.jpg", MediaKind.IMAGE)
SCAN = MediaRef("ef" * 32, 9000, "image/jpeg", "scan.jpg", MediaKind.DOCUMENT)  # a photo sent as a file


def media_row(wa_id: str, kind: str | None, name: str | None = None, text: str | None = None, **kw: object) -> dict:
    shown = None if kind is None else {"kind": kind, "name": name}
    return {**row(wa_id, text, **kw), "media": shown}  # type: ignore[arg-type]


@pytest.mark.parametrize(("shown", "caption", "media", "expected"), [
    (media_row("a", "document", "invoice 42.pdf", "Your invoice"), "Your invoice", PDF, True),
    (media_row("a", "document", "invoice 42.pdf"), "", PDF, True),
    (media_row("a", "document", "other.pdf", "Your invoice"), "Your invoice", PDF, False),  # another file
    (media_row("a", "document", None, "Your invoice"), "Your invoice", PDF, None),  # its name unreadable
    (media_row("a", "image", None, "Your invoice"), "Your invoice", PDF, False),  # another kind
    (media_row("a", "document", "invoice 42.pdf", "Other"), "Your invoice", PDF, False),  # another caption
    (media_row("a", "document", "invoice 42.pdf", None), "Your invoice", PDF, None),  # caption not readable
    (media_row("a", "document", "invoice 42.pdf", "Some caption"), "", PDF, False),  # ours has none
    (media_row("a", "image", None, "A photo"), "A photo", PHOTO, True),
    (media_row("a", "image", None, None), "", PHOTO, True),
    (media_row("a", "document", "scan.jpg"), "", SCAN, True),  # as a document: a document row
    (media_row("a", "image", None), "", SCAN, False),
    (media_row("a", None, None, None), "", PHOTO, None),  # a row of no known form: cannot tell
    (media_row("a", None, None, "A photo"), "A photo", PHOTO, None),  # a file no selector knows, our caption
    (media_row("a", None, None, "hello"), "A photo", PHOTO, False),  # a text row with another text
    (media_row("a", None, None, "hello"), "", PHOTO, False),  # a text, and ours has no caption
])
def test_a_media_message_matches_only_what_can_be_it(shown: dict, caption: str, media: MediaRef,
                                                     expected: bool | None) -> None:
    assert text_matches(shown, caption, media) is expected


def test_a_text_message_never_takes_a_file_row_for_itself() -> None:
    assert text_matches(media_row("a", "image", None, None), "hello") is False  # a file and no text
    assert text_matches(media_row("a", "image", None, "bye"), "hello") is False
    assert text_matches(media_row("a", "image", None, "hello"), "hello") is None  # a link's preview? cannot tell
    assert text_matches(media_row("a", None, None, "hello"), "hello") is True


def test_a_new_media_row_after_the_picture_is_the_message() -> None:
    snapshot = chat(row("old"), media_row("new", "document", "invoice 42.pdf", "Your invoice"))
    reading = read(snapshot, "Your invoice", click("old"), media=PDF)
    assert reading.case is Case.NEW and reading.row is not None and reading.row["id"] == "new"
    assert verdict(snapshot, "Your invoice", click("old"), "+1555", Selectors(), PDF).wa_id == "new"
    # The same file sent before the click is in the picture: an older message, not this one.
    older = chat(media_row("old", "document", "invoice 42.pdf", "Your invoice"))
    assert verdict(older, "Your invoice", click("old"), "+1555", Selectors(), PDF) is None


def test_a_new_row_of_no_known_form_leaves_a_media_click_unverified() -> None:
    snapshot = chat(row("old"), media_row("new", None, None, None))
    with pytest.raises(errors.OutcomeUnverified, match="file could not be compared"):
        verdict(snapshot, "", click("old"), "+1555", Selectors(), PHOTO)


def test_a_pending_upload_is_not_yet_sent() -> None:
    snapshot = chat(row("old"), media_row("new", "image", None, "A photo", status="pending"))
    assert new_row(snapshot, "A photo", click("old"), PHOTO)["id"] == "new"
    with pytest.raises(errors.SendOutcomeUnknown):
        verdict(snapshot, "A photo", click("old"), "+1555", Selectors(), PHOTO)

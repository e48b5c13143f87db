"""What a file is and whether it may be sent (wa_queue/media/sniff.py, rules.py): the type comes from the bytes, the
name may not claim another, each kind has its allow-list and cap, captions follow the text rules with 1,024
characters, and none on audio."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.helpers import media_samples as samples
from wa_queue.errors import MediaTooLarge, ValidationError
from wa_queue.media import rules, sniff
from wa_queue.models import MediaKind
from wa_queue.settings import Settings

SETTINGS = Settings.from_env({})


def docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


@pytest.mark.parametrize(("data", "name", "expected"), [
    (samples.pdf(), "", sniff.PDF), (samples.jpeg(), "", sniff.JPEG), (samples.png(), "", sniff.PNG),
    (samples.mp4(), "", sniff.MP4), (samples.mp3(), "", sniff.MP3), (b"OggS\x00\x02" + b"\0" * 30, "", sniff.OGG),
    (b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00", "", sniff.M4A), (b"\x00\x00\x00\x14ftyp3gp4", "", sniff.THREE_GP),
    (b"#!AMR\n" + b"\0" * 10, "", sniff.AMR), (b"\xff\xf1\x50\x80" + b"\0" * 10, "", sniff.AAC),
    (docx(), "", sniff.DOCX), (b"name,total\nann,3\n", "orders.csv", sniff.CSV), ("héllo\n".encode(), "", sniff.TEXT),
    (b"\x00\x01\x02binary", "", None), (b"MZ\x90\x00", "setup.exe", None),
], ids=lambda value: None if isinstance(value, str | type(None)) else "bytes")
def test_the_type_comes_from_the_bytes(data: bytes, name: str, expected: str | None) -> None:
    assert sniff.sniff(data, name) == expected


def test_a_kind_follows_from_the_type_when_not_given() -> None:
    kinds = {n: rules.check_file(d, n, None, SETTINGS).kind for n, d in
             (("a.pdf", samples.pdf()), ("a.jpg", samples.jpeg()), ("a.mp4", samples.mp4()), ("a.mp3", samples.mp3()))}
    assert kinds == {"a.pdf": MediaKind.DOCUMENT, "a.jpg": MediaKind.IMAGE, "a.mp4": MediaKind.VIDEO,
                     "a.mp3": MediaKind.AUDIO}


def test_the_ref_holds_the_hash_size_type_and_a_name() -> None:
    data = samples.jpeg(30_000)
    ref = rules.check_file(data, None, None, SETTINGS)
    assert (ref.size, ref.mimetype, ref.filename) == (30_000, sniff.JPEG, "image.jpg")
    import hashlib

    assert ref.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("data", "name", "kind", "words"), [
    (b"", "a.pdf", None, "empty file"),
    (samples.png(), "invoice.pdf", None, "says application/pdf, the bytes are image/png"),
    (samples.pdf(), "photo.jpg", None, "says image/jpeg"),
    (samples.pdf(), "a.pdf", MediaKind.IMAGE, "cannot be sent as image"),
    (samples.mp3(), "a.mp3", MediaKind.VIDEO, "cannot be sent as video"),
    (b"\x00\x01\x02", "a.bin", None, "no type accepted"),
    (samples.pdf(), "../etc/passwd", None, "plain file name"),
    (samples.pdf(), "a\x00.pdf", None, "plain file name"),
], ids=["empty", "png-named-pdf", "pdf-named-jpg", "pdf-as-image", "mp3-as-video", "no-type", "folder", "nul"])
def test_files_that_cannot_be_sent_are_refused_naming_media(data: bytes, name: str, kind: MediaKind | None,
                                                            words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rules.check_file(data, name, kind, SETTINGS)
    assert caught.value.field == "media" and words in str(caught.value)
    assert not isinstance(caught.value, MediaTooLarge)


def test_each_kind_has_its_size_cap() -> None:
    small = Settings.from_env({"WAQ_MEDIA_MAX_IMAGE_MB": "0.01", "WAQ_MEDIA_MAX_DOCUMENT_MB": "0.05"})
    with pytest.raises(MediaTooLarge) as caught:
        rules.check_file(samples.jpeg(20_000), "a.jpg", None, small)
    assert caught.value.limit_bytes == 10_000 and "WAQ_MEDIA_MAX_IMAGE_MB" in str(caught.value)
    # The same photo fits as a document, whose cap is larger.
    assert rules.check_file(samples.jpeg(20_000), "a.jpg", MediaKind.DOCUMENT, small).kind is MediaKind.DOCUMENT
    with pytest.raises(MediaTooLarge):
        rules.check_file(samples.pdf(100_000), "a.pdf", None, small)  # over every cap: refused by size first


def test_as_document_is_for_photos_videos_and_documents() -> None:
    assert rules.parse_kind("image", True) is MediaKind.DOCUMENT and rules.parse_kind(None, True) is MediaKind.DOCUMENT
    assert rules.parse_kind(None, False) is None
    with pytest.raises(ValidationError):
        rules.parse_kind("audio", True)
    with pytest.raises(ValidationError):
        rules.parse_kind("sticker")


def test_captions_follow_the_text_rules_with_their_own_cap() -> None:
    assert rules.validate_caption(None, MediaKind.IMAGE) == "" and rules.validate_caption("", MediaKind.IMAGE) == ""
    assert rules.validate_caption("x" * 1024, MediaKind.DOCUMENT) == "x" * 1024
    for bad, kind in (("x" * 1025, MediaKind.IMAGE), ("   ", MediaKind.IMAGE), ("a\x00", MediaKind.VIDEO),
                      ("hello", MediaKind.AUDIO)):
        with pytest.raises(ValidationError) as caught:
            rules.validate_caption(bad, kind)
        assert caught.value.field == "caption"

"""Whether a file may be sent, and as what: the one place every front door (REST, the Python API, the CLI) asks.

The type comes from the bytes (sniff.py), never from the name or a client's word; it must be on its kind's
allow-list, the size under its kind's cap (settings, WhatsApp's Cloud API limits by default), and a name whose
extension claims another type is refused. The kind is the producer's (`image`, `document`, `audio`, `video`, or
`as_document` for a photo or video sent uncompressed) or follows from the type.
"""

from __future__ import annotations

import hashlib
import unicodedata

from wa_queue.errors import MediaTooLarge, ValidationError
from wa_queue.media import sniff as types
from wa_queue.models import MediaKind, MediaRef
from wa_queue.settings import Settings

MAX_CAPTION_CHARS = 1024  # WhatsApp's (the Cloud API's) caption limit
MAX_FILENAME_CHARS = 200
UPLOAD_ID_PATTERN = "^[0-9a-f]{32}$"  # what POST /api/whatsapp/media answers (operations.store_upload: a UUIDv7)
KINDS = tuple(k.value for k in MediaKind)
# What each kind may carry. A document takes the office and text types, and, sent as a file, photos and videos.
ALLOWED: dict[MediaKind, tuple[str, ...]] = {
    MediaKind.IMAGE: (types.JPEG, types.PNG),
    MediaKind.VIDEO: (types.MP4, types.THREE_GP),
    MediaKind.AUDIO: (types.AAC, types.AMR, types.MP3, types.M4A, types.OGG),
    MediaKind.DOCUMENT: (types.PDF, types.DOCX, types.XLSX, types.PPTX, types.DOC, types.XLS, types.PPT, types.TEXT,
                         types.CSV, types.ZIP, types.JPEG, types.PNG, types.WEBP, types.GIF, types.MP4,
                         types.THREE_GP, types.QUICKTIME),
}
_BY_FAMILY = {"image": MediaKind.IMAGE, "video": MediaKind.VIDEO, "audio": MediaKind.AUDIO}
_NAME_FORBIDDEN = set('/\\:*?"<>|')


def max_bytes(kind: MediaKind, settings: Settings) -> int:
    """The size cap of a kind, in bytes (the settings give MB of 10^6 bytes)."""
    return int(getattr(settings, f"media_max_{kind.value}_mb") * 1_000_000)


def parse_kind(raw: object, as_document: object = False) -> MediaKind | None:
    """The kind a producer asked for (None: from the type). `as_document` makes it a document."""
    if as_document not in (True, False, None):
        raise ValidationError("media.as_document must be true or false", "media")
    if raw is None:
        return MediaKind.DOCUMENT if as_document else None
    if not isinstance(raw, str) or raw not in KINDS:
        raise ValidationError(f"media.kind must be one of {', '.join(KINDS)}", "media")
    kind = MediaKind(raw)
    if as_document and kind not in (MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.DOCUMENT):
        raise ValidationError("media.as_document is for an image or a video", "media")
    return MediaKind.DOCUMENT if as_document else kind


def validate_filename(raw: object) -> str | None:
    """The name the recipient sees: a plain file name (no folders), printable, at most MAX_FILENAME_CHARS."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ValidationError("media.filename must be a string", "media")
    name = unicodedata.normalize("NFC", raw.strip())
    if not name or name in (".", ".."):
        raise ValidationError("media.filename must not be empty", "media")
    if len(name) > MAX_FILENAME_CHARS:
        raise ValidationError(f"media.filename is {len(name)} characters; the limit is {MAX_FILENAME_CHARS}", "media")
    bad = sorted({c for c in name if c in _NAME_FORBIDDEN or unicodedata.category(c)[0] == "C"})
    if bad:
        raise ValidationError(f"media.filename must be a plain file name without {' '.join(map(repr, bad))}",
                              "media")
    return name


def check_size(size: int, settings: Settings) -> None:
    """MediaTooLarge when `size` is over every kind's cap."""
    limit = max(max_bytes(k, settings) for k in MediaKind)
    if size > limit:
        raise MediaTooLarge(f"media is {size:,} bytes; the largest file accepted is {limit:,} bytes", limit)


def check_file(data: bytes, filename: object, kind: MediaKind | None, settings: Settings) -> MediaRef:
    """The MediaRef of `data` sent as `kind` under `filename`, or ValidationError (MediaTooLarge: 413) naming media."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationError("media must be a file's bytes", "media")
    data = bytes(data)
    name = validate_filename(filename)
    if not data:
        raise ValidationError("media is an empty file", "media")
    check_size(len(data), settings)  # the largest cap first: before the bytes are read for a type
    mimetype = types.sniff(data, name or "")
    if mimetype is None:
        raise ValidationError("media: the file's bytes are of no type accepted (PDF, Office, text, JPEG, PNG, MP4, "
                              "3GP, MP3, AAC, M4A, OGG, AMR)", "media")
    claimed = types.EXTENSIONS.get(types.extension(name)) if name else None
    if claimed is not None and claimed != mimetype:
        raise ValidationError(f"media: the name {name!r} says {claimed}, the bytes are {mimetype}", "media")
    if kind is None:
        kind = _BY_FAMILY.get(mimetype.split("/")[0], MediaKind.DOCUMENT)
        if mimetype not in ALLOWED[kind]:
            kind = MediaKind.DOCUMENT  # a GIF, a WebP, a QuickTime video: sent as a file
    if mimetype not in ALLOWED[kind]:
        raise ValidationError(f"media: {mimetype} cannot be sent as {kind.value} (it takes "
                              f"{', '.join(ALLOWED[kind])})", "media")
    limit = max_bytes(kind, settings)
    if len(data) > limit:
        raise MediaTooLarge(f"media is {len(data):,} bytes; the limit for {kind.value} is {limit:,} bytes "
                            f"(WAQ_MEDIA_MAX_{kind.value.upper()}_MB)", limit)
    if name is None:
        name = f"{kind.value}.{types.DEFAULT_EXTENSION[mimetype]}"
    return MediaRef(sha256=hashlib.sha256(data).hexdigest(), size=len(data), mimetype=mimetype, filename=name,
                    kind=kind)


def check_stored(ref: MediaRef, kind: MediaKind | None, settings: Settings) -> MediaRef:
    """An uploaded file (already checked as its upload's kind) sent as `kind`: the same rules on its known type."""
    if kind is None or kind == ref.kind:
        kind = MediaKind(ref.kind)
    if ref.mimetype not in ALLOWED[kind]:
        raise ValidationError(f"media: {ref.mimetype} cannot be sent as {kind.value} (it takes "
                              f"{', '.join(ALLOWED[kind])})", "media")
    limit = max_bytes(kind, settings)
    if ref.size > limit:
        raise MediaTooLarge(f"media is {ref.size:,} bytes; the limit for {kind.value} is {limit:,} bytes "
                            f"(WAQ_MEDIA_MAX_{kind.value.upper()}_MB)", limit)
    return MediaRef(ref.sha256, ref.size, ref.mimetype, ref.filename, kind)


def validate_caption(raw: object, kind: MediaKind) -> str:
    """A media message's caption: the text rules (validation.validate_text) with MAX_CAPTION_CHARS, and none on an
    audio file (WhatsApp shows none). Empty is no caption."""
    from wa_queue.validation import validate_text

    if raw is None or raw == "":
        return ""
    if kind is MediaKind.AUDIO:
        raise ValidationError("caption: an audio message carries no caption", "caption")
    try:
        text = validate_text(raw)
    except ValidationError as exc:
        raise ValidationError(str(exc).replace("text", "caption", 1), "caption") from None
    if len(text) > MAX_CAPTION_CHARS:
        raise ValidationError(f"caption is {len(text)} characters; the limit is {MAX_CAPTION_CHARS}", "caption")
    return text

"""A file's type from its bytes, never from its name: the magic numbers of the types WhatsApp sends.

Browser-free and dependency-free (libmagic is not on every machine, and its answers vary by version): each rule
reads the first bytes, and an OOXML document is told from any other zip by its parts. None: not a type known here.
"""

from __future__ import annotations

import io
import zipfile

PDF = "application/pdf"
JPEG, PNG, WEBP, GIF = "image/jpeg", "image/png", "image/webp", "image/gif"
MP4, THREE_GP, QUICKTIME = "video/mp4", "video/3gpp", "video/quicktime"
MP3, AAC, M4A, OGG, AMR = "audio/mpeg", "audio/aac", "audio/mp4", "audio/ogg", "audio/amr"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DOC, XLS, PPT = "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"
ZIP, TEXT, CSV = "application/zip", "text/plain", "text/csv"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_BY_EXTENSION = {"doc": DOC, "xls": XLS, "ppt": PPT}
_OOXML_PARTS = (("word/", DOCX), ("xl/", XLSX), ("ppt/", PPTX))
# ISO base media (MP4 family): the major brand of the ftyp box says which.
_AUDIO_BRANDS = (b"M4A ", b"M4B ")
_3GP_BRANDS = (b"3gp", b"3g2")
_TEXT_SAMPLE = 64 * 1024

# What a name's extension claims, for the types above (a mismatch with the bytes is refused).
EXTENSIONS: dict[str, str] = {
    "pdf": PDF, "jpg": JPEG, "jpeg": JPEG, "jpe": JPEG, "png": PNG, "webp": WEBP, "gif": GIF,
    "mp4": MP4, "m4v": MP4, "3gp": THREE_GP, "3gpp": THREE_GP, "mov": QUICKTIME,
    "mp3": MP3, "aac": AAC, "m4a": M4A, "ogg": OGG, "oga": OGG, "opus": OGG, "amr": AMR,
    "docx": DOCX, "xlsx": XLSX, "pptx": PPTX, "doc": DOC, "xls": XLS, "ppt": PPT,
    "zip": ZIP, "txt": TEXT, "csv": CSV,
}
# The extension a file of a type is given when it comes without a name.
DEFAULT_EXTENSION = {PDF: "pdf", JPEG: "jpg", PNG: "png", WEBP: "webp", GIF: "gif", MP4: "mp4", THREE_GP: "3gp",
                     QUICKTIME: "mov", MP3: "mp3", AAC: "aac", M4A: "m4a", OGG: "ogg", AMR: "amr", DOCX: "docx",
                     XLSX: "xlsx", PPTX: "pptx", DOC: "doc", XLS: "xls", PPT: "ppt", ZIP: "zip", TEXT: "txt",
                     CSV: "csv"}


def extension(filename: str) -> str:
    """The lower-case extension of a name, '' when it has none."""
    base = filename.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base.strip(".") else ""


def sniff(data: bytes, filename: str = "") -> str | None:
    """The type `data` holds, or None. The name only tells apart what the bytes cannot: an OLE file's Office kind,
    and plain text from CSV."""
    head = data[:16]
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AUDIO_BRANDS:
            return M4A
        if brand[:3] in _3GP_BRANDS:
            return THREE_GP
        return QUICKTIME if brand == b"qt  " else MP4
    if head.startswith(b"OggS"):
        return OGG
    if head.startswith(b"#!AMR"):
        return AMR
    if head.startswith(b"ID3"):
        return MP3
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] in (0xF1, 0xF9):  # ADTS: MPEG-4 / MPEG-2 AAC, no CRC
            return AAC
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06:  # an MPEG audio frame's sync, layer I-III
            return MP3
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(data)
    if head.startswith(_OLE):
        return _OLE_BY_EXTENSION.get(extension(filename))
    if _is_text(data):
        return CSV if extension(filename) == "csv" else TEXT
    return None


def _zip_kind(data: bytes) -> str | None:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return None  # a broken archive is no document
    for prefix, kind in _OOXML_PARTS:
        if "[Content_Types].xml" in names and any(n.startswith(prefix) for n in names):
            return kind
    return ZIP


def _is_text(data: bytes) -> bool:
    """UTF-8 text without NUL or other control characters but tab, line breaks and form feed."""
    sample = data[:_TEXT_SAMPLE]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(data) <= _TEXT_SAMPLE or exc.start < len(sample) - 3:
            return False  # a sample cut inside a character is still text
        text = sample[:exc.start].decode("utf-8")
    return bool(text) and all(c >= " " or c in "\t\n\r\f" for c in text) and "\x7f" not in text

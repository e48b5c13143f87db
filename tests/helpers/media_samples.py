"""Files of each kind for the media tests, of a chosen size: real headers (what wa_queue/media/sniff.py reads) and
random bytes after them, so every file's SHA-256 differs and a copy that lost or changed a byte shows."""

from __future__ import annotations

import io
import os

from PIL import Image


def _padded(head: bytes, size: int) -> bytes:
    return head + os.urandom(max(0, size - len(head)))


def pdf(size: int = 2_000) -> bytes:
    return _padded(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n", size)


def jpeg(size: int = 20_000) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    # A JPEG ends at its EOI marker; bytes after it are ignored by decoders (and make the size and the hash).
    return data + os.urandom(max(0, size - len(data)))


def mp4(size: int = 50_000) -> bytes:
    return _padded(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", size)


def mp3(size: int = 30_000) -> bytes:
    return _padded(b"ID3\x04\x00\x00\x00\x00\x00\x00", size)


def png(size: int = 5_000) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="PNG")
    data = buf.getvalue()
    return data + os.urandom(max(0, size - len(data)))

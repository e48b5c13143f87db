"""A media message's file as each front door hands it over, made into the checked MediaRef (rules.py) and, when the
request brought them, its bytes: the one reading of `media` for the REST API, the Python API and the CLI.

- `{"id": ...}`: a file stored before by POST /api/whatsapp/media, by the same API key, not yet past
  WAQ_MEDIA_UPLOAD_TTL_H (less the collector's grace, so it cannot go while the message is being committed);
- `{"url": ..., "filename": ...}`: fetched now (fetch.py), so the answer means the bytes are in the store;
- bytes, or a path to a local file (only the Python API and the CLI: `local_files=True`; the REST API never reads
  the server's files).

Each form may add `kind` (image, document, audio, video) and `as_document` (a photo or video sent as a file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from wa_queue.errors import MediaNotFound, MediaTooLarge, MediaUnavailable, NotFound, ValidationError
from wa_queue.media import rules
from wa_queue.media.collect import GRACE_S
from wa_queue.media.fetch import fetch
from wa_queue.models import MediaKind, MediaRef
from wa_queue.settings import Settings
from wa_queue.store.base import MessageStore

_KEYS = {"id", "url", "filename", "kind", "as_document"}


def read_media(raw: Any, *, settings: Settings, store: MessageStore, now: datetime, owner: str | None,
               filename: object = None, kind: object = None, as_document: object = False,
               local_files: bool = False) -> tuple[MediaRef, bytes | None]:
    """The MediaRef of the file `raw` gives, and its bytes unless it names an upload already stored."""
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise ValidationError(f"media has unknown fields: {', '.join(map(str, unknown))} (it takes id, or url "
                                  "and filename, with kind and as_document)", "media")
        if ("id" in raw) == ("url" in raw):
            raise ValidationError("media needs exactly one of id (an upload's) and url", "media")
        filename = raw.get("filename", filename)
        kind, as_document = raw.get("kind", kind), raw.get("as_document", as_document)
    wanted = rules.parse_kind(kind, as_document)
    if isinstance(raw, Mapping) and "id" in raw:
        if raw.get("filename") is not None:
            raise ValidationError("media.filename goes with url; an upload keeps the name it was stored with",
                                  "media")
        return _upload(raw["id"], store, settings, now, owner, wanted), None
    if isinstance(raw, Mapping):
        _check_url_form(raw["url"], settings)
        limit = max(rules.max_bytes(k, settings) for k in MediaKind)
        data, url_name = fetch(raw["url"], allow=settings.outbound_allow, limit_bytes=limit,
                               timeout_s=settings.media_fetch_timeout_s)
        name = validate_url_name(filename if filename is not None else url_name)
        try:
            return rules.check_file(data, name, wanted, settings), data
        except MediaTooLarge:
            raise
        except ValidationError as exc:  # what the URL answered cannot be sent: its content decides, not the request
            raise MediaUnavailable(f"media.url: {exc}".replace("media.url: media: ", "media.url: "), "media") from None
    if isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
        return rules.check_file(data, filename, wanted, settings), data
    if isinstance(raw, str | Path) and local_files:
        path = Path(raw)
        try:
            rules.check_size(path.stat().st_size, settings)  # a file over every cap is never read
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise ValidationError(f"media: cannot read {str(raw)!r}: {exc.strerror or exc}", "media") from None
        return rules.check_file(data, filename if filename is not None else path.name, wanted, settings), data
    raise ValidationError("media must be an object with id (an upload's) or url" if not local_files else
                          "media must be a file's path, its bytes, or {id} / {url}", "media")


def _check_url_form(url: object, settings: Settings) -> None:
    """A media URL has the callback URL's form (validation.validate_callback_url), one rule for both."""
    from wa_queue.validation import validate_callback_url

    try:
        if validate_callback_url(url, settings.outbound_allow) is None:
            raise ValidationError("media.url must be an http or https URL", "media")
    except ValidationError as exc:
        raise ValidationError(str(exc).replace("callback_url", "media.url"), "media") from None


def validate_url_name(name: object) -> str | None:
    """The name of a fetched file: the producer's (checked), else the URL's last segment when it is a plain name."""
    try:
        return rules.validate_filename(name)
    except ValidationError:
        return None  # a URL's own segment that is no plain file name: the file gets a name from its type


def _upload(upload_id: object, store: MessageStore, settings: Settings, now: datetime, owner: str | None,
            kind: MediaKind | None) -> MediaRef:
    if not isinstance(upload_id, str) or not re.fullmatch(rules.UPLOAD_ID_PATTERN[1:-1], upload_id):
        raise ValidationError("media.id must be the id POST /api/whatsapp/media answered (32 hex digits)", "media")
    try:
        upload = store.get_upload(upload_id)
    except NotFound:
        upload = None
    # Another key's upload reads as unknown: ids are not shared between producers.
    if upload is None or (upload.enqueued_by is not None and upload.enqueued_by != owner):
        raise MediaNotFound(f"media.id {upload_id!r} is not a file this key uploaded (or it was collected)", "media")
    # Refused a little before the collector may take it (by its grace, or half the time to live if that is shorter):
    # a message committed with it is then named before the file can go.
    ttl = timedelta(hours=settings.media_upload_ttl_h)
    if upload.created_at < now - ttl + min(timedelta(seconds=GRACE_S), ttl / 2):
        raise MediaNotFound(f"media.id {upload_id!r} is older than WAQ_MEDIA_UPLOAD_TTL_H "
                              f"({settings.media_upload_ttl_h:g} h): upload the file again", "media")
    return rules.check_stored(upload.media, kind, settings)

"""Beat's media collector (`wa.collect_media`): files no message needs any more, uploads past their time, and what
an interrupted put() left.

A file goes when the collector finds it untouched for GRACE_S (every put() and every enqueue naming it touches it)
and the store says nothing needs it (MessageStore.media_in_use: no upload of it younger than
WAQ_MEDIA_UPLOAD_TTL_H, no message naming it that is pending, processing, paused or failed, none archived, and none
that ended sent, expired or cancelled less than WAQ_MEDIA_KEEP_DAYS ago). The delete is conditional on the file
still being untouched (files.py), so a file put again while the collector decided stays. A SIGKILL between a file's
put() and its row's commit leaves a file that nothing names: collected here after the grace period.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

from wa_queue.media.files import MediaFiles
from wa_queue.settings import Settings
from wa_queue.store.base import MessageStore

log = logging.getLogger(__name__)
GRACE_S = 3600.0  # far longer than any enqueue between its put() and its commit


@dataclasses.dataclass(frozen=True)
class Collected:
    files: int = 0
    kept: int = 0
    uploads: int = 0
    partial: int = 0


def collect(store: MessageStore, files: MediaFiles, settings: Settings, now: datetime,
            grace_s: float = GRACE_S) -> Collected:
    """One pass; what it removed and kept."""
    uploads = store.delete_uploads_before(now - timedelta(hours=settings.media_upload_ttl_h))
    cutoff = now - timedelta(seconds=grace_s)
    done_before = now - timedelta(days=settings.media_keep_days)
    uploaded_since = now - timedelta(hours=settings.media_upload_ttl_h)
    removed = kept = 0
    for sha256 in list(files.untouched_since(cutoff)):
        if store.media_in_use(sha256, done_before=done_before, uploaded_since=uploaded_since):
            kept += 1
        elif files.delete_if_untouched(sha256, cutoff):
            removed += 1
    partial = files.collect_partial(cutoff)
    if removed or uploads or partial:
        log.info("media collector: %d files deleted, %d kept, %d uploads forgotten, %d partial writes removed",
                 removed, kept, uploads, partial)
    return Collected(removed, kept, uploads, partial)

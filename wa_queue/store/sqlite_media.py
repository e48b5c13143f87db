"""The SQLite store's media records: the uploads table, and whether any message still names a file. A part of
SQLiteStore (wa_queue/store/sqlite.py), which gives it `db`."""

from __future__ import annotations

from datetime import datetime

from wa_queue.errors import NotFound
from wa_queue.models import MediaRef, MediaUpload
from wa_queue.names import ARCHIVE, MEDIA_UPLOADS, MESSAGES
from wa_queue.store.lifecycle import MEDIA_DONE
from wa_queue.store.sqlite_connection import SQLiteConnections
from wa_queue.store.sqlite_schema import from_us, to_us

_DONE = ", ".join(f"'{s.value}'" for s in MEDIA_DONE)


class SQLiteMedia:
    db: SQLiteConnections

    def add_upload(self, upload: MediaUpload) -> None:
        ref = upload.media
        with self.db.transaction_synced_after(one_statement=True) as conn:
            conn.execute(f"INSERT INTO {MEDIA_UPLOADS} (id, sha256, size, mimetype, filename, kind, created_at, "
                         "enqueued_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (upload.id, ref.sha256, ref.size, ref.mimetype, ref.filename, str(ref.kind.value
                          if hasattr(ref.kind, "value") else ref.kind), to_us(upload.created_at), upload.enqueued_by))

    def get_upload(self, upload_id: str) -> MediaUpload:
        row = self.db.get().execute(
            f"SELECT id, sha256, size, mimetype, filename, kind, created_at, enqueued_by FROM {MEDIA_UPLOADS} "
            "WHERE id = ?", (upload_id,)).fetchone()
        if row is None:
            raise NotFound(f"media {upload_id} not found")
        return MediaUpload(row[0], MediaRef(row[1], row[2], row[3], row[4], row[5]), from_us(row[6]),  # type: ignore
                           row[7])

    def delete_uploads_before(self, cutoff: datetime) -> int:
        with self.db.transaction(one_statement=True) as conn:
            return conn.execute(f"DELETE FROM {MEDIA_UPLOADS} WHERE created_at < ?", (to_us(cutoff),)).rowcount

    def media_in_use(self, sha256: str, *, done_before: datetime, uploaded_since: datetime) -> bool:
        conn = self.db.get()
        if conn.execute(f"SELECT 1 FROM {MEDIA_UPLOADS} INDEXED BY ix_upload_sha WHERE sha256 = ? AND created_at >= ? "
                        "LIMIT 1", (sha256, to_us(uploaded_since))).fetchone():
            return True
        if conn.execute(f"SELECT 1 FROM {MESSAGES} INDEXED BY ix_msg_media WHERE media IS NOT NULL AND "
                        f"json_extract(media, '$.sha256') = ? AND (status NOT IN ({_DONE}) OR updated_at >= ?) "
                        "LIMIT 1", (sha256, to_us(done_before))).fetchone():
            return True
        # The archive holds failed messages an operator may still retry: a file they name is kept.
        return conn.execute(f"SELECT 1 FROM {ARCHIVE} WHERE media IS NOT NULL AND json_extract(media, '$.sha256') = ? "
                            "LIMIT 1", (sha256,)).fetchone() is not None

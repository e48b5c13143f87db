"""The MongoDB store's media records: the uploads collection, and whether any message still names a file. A part of
MongoStore (wa_queue/store/mongo.py), which gives it `db`."""

from __future__ import annotations

from datetime import datetime

from pymongo.database import Database

from wa_queue.errors import NotFound
from wa_queue.models import MediaRef, MediaUpload, plain
from wa_queue.names import ARCHIVE, MEDIA_UPLOADS, MESSAGES
from wa_queue.store.lifecycle import MEDIA_DONE
from wa_queue.store.mongo_codec import from_db, to_db

_DONE = [s.value for s in MEDIA_DONE]


class MongoMedia:
    db: Database

    def add_upload(self, upload: MediaUpload) -> None:
        ref = upload.media
        self.db[MEDIA_UPLOADS].insert_one({"_id": upload.id, "sha256": ref.sha256, "size": ref.size,
                                           "mimetype": ref.mimetype, "filename": ref.filename,
                                           "kind": plain(ref.kind), "created_at": to_db(upload.created_at),
                                           "enqueued_by": upload.enqueued_by})

    def get_upload(self, upload_id: str) -> MediaUpload:
        doc = self.db[MEDIA_UPLOADS].find_one({"_id": upload_id})
        if doc is None:
            raise NotFound(f"media {upload_id} not found")
        ref = MediaRef(doc["sha256"], doc["size"], doc["mimetype"], doc["filename"], doc["kind"])
        return MediaUpload(doc["_id"], ref, from_db(doc["created_at"]), doc.get("enqueued_by"))  # type: ignore

    def delete_uploads_before(self, cutoff: datetime) -> int:
        return self.db[MEDIA_UPLOADS].delete_many({"created_at": {"$lt": to_db(cutoff)}}).deleted_count

    def media_in_use(self, sha256: str, *, done_before: datetime, uploaded_since: datetime) -> bool:
        if self.db[MEDIA_UPLOADS].count_documents({"sha256": sha256, "created_at": {"$gte": to_db(uploaded_since)}},
                                                  limit=1):
            return True
        live = {"media.sha256": sha256,
                "$or": [{"status": {"$nin": _DONE}}, {"updated_at": {"$gte": to_db(done_before)}}]}
        if self.db[MESSAGES].count_documents(live, limit=1):
            return True
        return bool(self.db[ARCHIVE].count_documents({"media.sha256": sha256}, limit=1))

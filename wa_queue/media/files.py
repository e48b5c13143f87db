"""Where a media message's bytes are kept: content-addressed by SHA-256, one copy shared by every message naming it.

The port (MediaFiles) has two adapters: a directory (`WAQ_DATA_DIR/media/`, with the SQLite store) and GridFS (with
MongoDB, in the store's own database). Both keep the rule the store's commit relies on: put() returns once the bytes
are on disk (fsynced, or acknowledged by a majority with the store's write concern), so a message row naming the file
is committed only after its file is durable; a crash in between leaves a file no row names, which collect.py takes
away later, never a row without its file.

Every put() of a file already there touches it (its `touched_at`): the collector deletes only files untouched for
its grace period, and checks that again at the moment of deletion, so a file put for an enqueue under way is never
taken before that enqueue's row names it. tests/contract/test_media_files.py runs both through the same tests.
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wa_queue.errors import MediaMissing, StoreError
from wa_queue.private import FILE_MODE, private_dir

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK_BYTES = 255 * 1024  # GridFS' default chunk


def check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise StoreError(f"not a SHA-256 in hex: {sha256!r}")
    return sha256


class MediaFiles(abc.ABC):
    """The bytes of media files by their SHA-256 (lower-case hex)."""

    @abc.abstractmethod
    def put(self, sha256: str, data: bytes) -> None:
        """Keep `data` under `sha256` (the caller computed it from `data`), durably, before returning; a file already
        there is only touched."""

    @abc.abstractmethod
    def touch(self, sha256: str) -> bool:
        """Mark the file as just put (the collector then leaves it for its grace period); False when it is not
        kept."""

    @abc.abstractmethod
    def get(self, sha256: str) -> bytes:
        """The file's bytes; MediaMissing when it is not kept."""

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abc.abstractmethod
    def untouched_since(self, cutoff: datetime) -> Iterator[str]:
        """The files last put before `cutoff` (candidates for the collector)."""

    @abc.abstractmethod
    def delete_if_untouched(self, sha256: str, cutoff: datetime) -> bool:
        """Delete the file when it was not put again since `cutoff`; True when deleted."""

    @abc.abstractmethod
    def collect_partial(self, cutoff: datetime) -> int:
        """Remove what an interrupted put() left (a half-written file, chunks without their file) older than cutoff;
        how many pieces were removed."""

    def close(self) -> None:  # noqa: B027 - most adapters hold nothing of their own
        """Release what the adapter holds."""


class DirectoryMediaFiles(MediaFiles):
    """Files under `root/<first two hex digits>/<sha256>`, written to `root/tmp/` first, fsynced, renamed into place
    and their folder fsynced: a file is whole under its name or not there."""

    def __init__(self, root: Path | str) -> None:
        self.root = private_dir(Path(root))
        self.tmp = private_dir(self.root / "tmp")

    def path(self, sha256: str) -> Path:
        check_sha(sha256)
        return self.root / sha256[:2] / sha256

    def put(self, sha256: str, data: bytes) -> None:
        target = self.path(sha256)
        if self.touch(sha256):
            return  # there already: touched (a collector deciding now sees it put again)
        folder = private_dir(target.parent)
        tmp = self.tmp / f"{sha256}.{os.getpid()}.{time.monotonic_ns()}"
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)  # the same bytes if another process won the race: either copy is the file
        _fsync_dir(folder)

    def touch(self, sha256: str) -> bool:
        try:
            os.utime(self.path(sha256))
        except FileNotFoundError:
            return False
        return True

    def get(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise MediaMissing(f"media file {sha256} is not in {self.root}") from None

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def untouched_since(self, cutoff: datetime) -> Iterator[str]:
        limit = cutoff.timestamp()
        for folder in sorted(self.root.iterdir()):
            if folder.name == "tmp" or not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if _SHA256.match(entry.name) and entry.stat().st_mtime < limit:
                    yield entry.name

    def delete_if_untouched(self, sha256: str, cutoff: datetime) -> bool:
        path = self.path(sha256)
        # Moved aside first, then its time read again: a put() that touched it before the move shows in the time
        # (it is moved back), one after the move finds no file and writes it anew.
        aside = self.tmp / f"{sha256}.collect.{os.getpid()}.{time.monotonic_ns()}"
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        if aside.stat().st_mtime >= cutoff.timestamp():
            with contextlib.suppress(FileNotFoundError):
                if path.exists():
                    aside.unlink()  # written anew meanwhile: the same bytes are in place
                else:
                    os.rename(aside, path)
            return False
        aside.unlink()
        _fsync_dir(path.parent)
        return True

    def collect_partial(self, cutoff: datetime) -> int:
        removed = 0
        for entry in os.scandir(self.tmp):
            if entry.stat().st_mtime < cutoff.timestamp():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
        return removed


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class GridFSMediaFiles(MediaFiles):
    """GridFS in the store's database (bucket `media`): the files document's `_id` is the SHA-256, written after its
    chunks (pymongo's GridIn), with the store's write concern; `metadata.touched_at` is what put() touches."""

    def __init__(self, db: Any, bucket: str = "media") -> None:
        import gridfs

        self.db = db
        self.bucket = bucket
        self.fs = gridfs.GridFS(db, collection=bucket)
        self.files = db[f"{bucket}.files"]
        self.chunks = db[f"{bucket}.chunks"]

    def put(self, sha256: str, data: bytes) -> None:
        import gridfs

        check_sha(sha256)
        if self.touch(sha256):
            return
        now = datetime.now(UTC).replace(tzinfo=None)
        try:
            self.fs.put(data, _id=sha256, chunk_size=CHUNK_BYTES, metadata={"touched_at": now})
        except gridfs.errors.FileExists:
            self.files.update_one({"_id": sha256}, {"$set": {"metadata.touched_at": now}})

    def touch(self, sha256: str) -> bool:
        now = datetime.now(UTC).replace(tzinfo=None)
        return bool(self.files.update_one({"_id": check_sha(sha256)},
                                          {"$set": {"metadata.touched_at": now}}).matched_count)

    def get(self, sha256: str) -> bytes:
        import gridfs

        check_sha(sha256)
        try:
            return self.fs.get(sha256).read()
        except gridfs.errors.NoFile:
            raise MediaMissing(f"media file {sha256} is not in GridFS bucket {self.bucket!r}") from None

    def exists(self, sha256: str) -> bool:
        return self.files.count_documents({"_id": check_sha(sha256)}, limit=1) > 0

    def untouched_since(self, cutoff: datetime) -> Iterator[str]:
        limit = cutoff.astimezone(UTC).replace(tzinfo=None)
        for doc in self.files.find({"metadata.touched_at": {"$lt": limit}}, {"_id": 1}):
            yield doc["_id"]

    def delete_if_untouched(self, sha256: str, cutoff: datetime) -> bool:
        limit = cutoff.astimezone(UTC).replace(tzinfo=None)
        # One conditional delete of the files document decides (a put() touching it first wins); its chunks follow.
        gone = self.files.delete_one({"_id": check_sha(sha256), "metadata.touched_at": {"$lt": limit}}).deleted_count
        if gone:
            self.chunks.delete_many({"files_id": sha256})
        return bool(gone)

    def collect_partial(self, cutoff: datetime) -> int:
        """Chunks of a put() that died before its files document: their files_id names no file. A put() under way
        writes its chunks before its files document, so only ids older than the cutoff are taken: a chunk's
        `_id` is an ObjectId, whose time is when it was made."""
        from bson import ObjectId

        older = {"_id": {"$lt": ObjectId.from_datetime(cutoff)}}
        orphans = [i for i in self.chunks.distinct("files_id", older)
                   if not self.files.count_documents({"_id": i}, limit=1)]
        removed = 0
        for files_id in orphans:
            removed += self.chunks.delete_many({"files_id": files_id, **older}).deleted_count
        return removed


def open_media_files(store_url: str, data_dir: Path, store: Any = None) -> MediaFiles:
    """The media files beside the store: GridFS in a MongoDB store's database, else the data folder's media/."""
    if store_url.startswith(("mongodb://", "mongodb+srv://", "mongomock://")):
        if store is None or not hasattr(store, "db"):
            raise StoreError("GridFS needs the MongoDB store's database")
        return GridFSMediaFiles(store.db)
    return DirectoryMediaFiles(Path(data_dir) / "media")

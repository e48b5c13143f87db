"""The media files port (wa_queue/media/files.py) on both adapters: the data folder's directory and GridFS on a real
MongoDB-wire server (FerretDB). Content-addressed and shared, durable before put() returns, touched by every put,
deleted only when untouched since the collector's cutoff, and what an interrupted put left is removed."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wa_queue.errors import MediaMissing, StoreError
from wa_queue.media.files import DirectoryMediaFiles, GridFSMediaFiles, MediaFiles


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["directory", "gridfs"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MediaFiles]:
    if request.param == "directory":
        yield DirectoryMediaFiles(tmp_path / "media")
        return
    from wa_queue.store import open_store

    store = open_store(request.getfixturevalue("mongo_store_url"))
    yield GridFSMediaFiles(store.db)  # type: ignore[attr-defined]
    store.close()


def later(seconds: float = 1.0) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_put_then_get_gives_the_same_bytes(files: MediaFiles) -> None:
    data = os.urandom(600_000)  # more than two GridFS chunks
    files.put(sha(data), data)
    assert files.exists(sha(data)) and files.get(sha(data)) == data
    files.put(sha(data), data)  # the same file again: one copy, still whole
    assert files.get(sha(data)) == data


def test_an_absent_file_is_missing(files: MediaFiles) -> None:
    assert not files.exists("0" * 64) and not files.touch("0" * 64)
    with pytest.raises(MediaMissing):
        files.get("0" * 64)


def test_a_name_that_is_no_sha256_is_refused(files: MediaFiles) -> None:
    for bad in ("../etc/passwd", "AB" * 32, "a" * 63):
        with pytest.raises(StoreError):
            files.put(bad, b"x")


def test_only_files_untouched_since_the_cutoff_are_candidates_and_deleted(files: MediaFiles) -> None:
    old, new = b"old file", b"new file"
    files.put(sha(old), old)
    time.sleep(0.05)
    cutoff = datetime.now(UTC)
    time.sleep(0.05)
    files.put(sha(new), new)
    assert set(files.untouched_since(cutoff)) == {sha(old)}
    assert not files.delete_if_untouched(sha(new), cutoff)  # put after the cutoff: kept
    assert files.delete_if_untouched(sha(old), cutoff)
    assert not files.exists(sha(old)) and files.get(sha(new)) == new
    assert not files.delete_if_untouched(sha(old), cutoff)  # already gone


def test_a_put_after_the_collectors_look_keeps_the_file(files: MediaFiles) -> None:
    """The collector lists a file as untouched, then an enqueue puts it again before the delete: the delete's own
    condition (touched since the cutoff) keeps it."""
    data = b"shared invoice"
    files.put(sha(data), data)
    time.sleep(0.05)
    cutoff = datetime.now(UTC)
    assert sha(data) in set(files.untouched_since(cutoff))
    time.sleep(0.05)
    files.put(sha(data), data)  # the enqueue under way
    assert not files.delete_if_untouched(sha(data), cutoff)
    assert files.get(sha(data)) == data


def test_collect_partial_removes_what_an_interrupted_put_left(files: MediaFiles, tmp_path: Path) -> None:
    if isinstance(files, DirectoryMediaFiles):
        (files.tmp / f"{'e' * 64}.123.456").write_bytes(b"half a file")
    else:
        from bson import ObjectId

        files.chunks.insert_one({"_id": ObjectId(), "files_id": "e" * 64, "n": 0, "data": b"half a file"})
    whole = b"a whole file"
    files.put(sha(whole), whole)
    assert files.collect_partial(datetime.now(UTC) - timedelta(hours=1)) == 0  # too young to be taken
    assert files.collect_partial(later()) == 1
    assert files.get(sha(whole)) == whole  # a whole file is not a partial one

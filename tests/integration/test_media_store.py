"""Media stored as safely as the message, through the Python API and a real worker process: the bytes are durable
before the row that names them, a SIGKILL between the two leaves an orphan file the collector takes (never a row
without its file), a file is shared and kept while any message needs it, and a worker sends the very bytes that were
enqueued (SHA-256 in the fake sender's log). On SQLite and on FerretDB (GridFS)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import media_samples as samples
from tests.helpers.waiting import wait_for
from wa_queue import operations
from wa_queue.hub import default_hub
from wa_queue.media.collect import collect
from wa_queue.models import MessageStatus
from wa_queue.transport.fake import read_log

pytestmark = pytest.mark.services
BACKENDS = pytest.mark.parametrize("store_backend", ["sqlite", "ferretdb"], indirect=True)

# Enqueue one media message, but die between the file's put and the row's commit (the insert never returns).
KILLED_ENQUEUE = textwrap.dedent("""
    import os, signal, sys
    from wa_queue.hub import default_hub
    from wa_queue import operations
    hub = default_hub()
    store = hub.store
    def die(*args, **kwargs):
        print("put", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    store.insert_groups = die
    operations.enqueue(hub, "+14155550123", media=sys.argv[1], caption="never committed")
""")


@BACKENDS
def test_a_kill_between_the_file_and_the_row_leaves_an_orphan_that_is_collected(waq_env: dict, tmp_path: Path,
                                                                                store_backend: str) -> None:
    path = tmp_path / "invoice.pdf"
    data = samples.pdf(300_000)
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    done = subprocess.run([sys.executable, "-c", KILLED_ENQUEUE, str(path)], env={**os.environ, **waq_env},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL and "put" in done.stdout, done.stderr[-2000:]
    hub = default_hub()
    assert hub.store.count_by_status().get("pending", 0) == 0  # no row
    assert hub.media_files.get(digest) == data  # the file was durable first
    # Within the grace period the collector keeps it (an enqueue may be about to commit); after it, it goes.
    assert collect(hub.store, hub.media_files, hub.settings, hub.clock()).files == 0
    later = hub.clock() + timedelta(hours=2)
    assert collect(hub.store, hub.media_files, hub.settings, later).files == 1
    assert not hub.media_files.exists(digest)


@BACKENDS
def test_a_shared_file_is_kept_while_a_message_needs_it(waq_env: dict, tmp_path: Path, store_backend: str) -> None:
    hub = default_hub()
    data = samples.jpeg(50_000)
    first = operations.enqueue(hub, "+14155550123", media=data, filename="photo.jpg", caption="one")
    second = operations.enqueue(hub, "+14155550124", media=data, filename="photo.jpg", caption="two")
    digest = hashlib.sha256(data).hexdigest()
    assert hub.store.get(first).media.sha256 == hub.store.get(second).media.sha256 == digest
    now = hub.clock()
    for message_id in (first, second):
        claimed = hub.store.claim(message_id, owner="w/h/1", session="primary", now=now, lease_s=60)
        hub.store.record_sent(claimed.id, owner="w/h/1", now=now, session="primary", wa_id=f"w-{message_id}")
    keep = timedelta(days=hub.settings.media_keep_days)
    assert collect(hub.store, hub.media_files, hub.settings, now + keep - timedelta(hours=2)).files == 0
    third = operations.enqueue(hub, "+14155550125", media=data, filename="photo.jpg")  # pending: kept for it
    assert collect(hub.store, hub.media_files, hub.settings, now + keep + timedelta(hours=2)).files == 0
    operations.cancel(hub, third, actor="test")
    assert hub.store.get(third).status is MessageStatus.CANCELLED
    # Every message naming it ended over WAQ_MEDIA_KEEP_DAYS ago: the file goes, the rows stay.
    assert collect(hub.store, hub.media_files, hub.settings, hub.clock() + keep + timedelta(hours=2)).files == 1
    assert not hub.media_files.exists(digest) and hub.store.get(first).media.sha256 == digest


@BACKENDS
def test_a_worker_sends_the_bytes_that_were_enqueued(waq_env: dict, tmp_path: Path, store_backend: str,
                                                      procs) -> None:  # noqa: ANN001
    hub = default_hub()
    files = {"invoice.pdf": samples.pdf(80_000), "clip.mp4": samples.mp4(90_000)}
    ids = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        ids[name] = operations.enqueue(hub, "+14155550123", media=tmp_path / name, caption=f"about {name}")
    ids["text"] = operations.enqueue(hub, "+14155550123", "a plain text between them")
    procs(["worker", "--session", "primary"], waq_env, "worker-primary")
    wait_for(lambda: all(hub.store.get(i).status is MessageStatus.SENT for i in ids.values()), 90, 0.2,
             "the media messages to be sent")
    log = read_log(hub.settings.fake_log)
    assert len(log) == 3  # once each
    for name, data in files.items():
        entry = next(e for e in log if e["ref"] == ids[name])
        assert entry["media"]["sha256"] == hashlib.sha256(data).hexdigest() and entry["media"]["filename"] == name
        assert entry["text"] == f"about {name}"
    assert "media" not in next(e for e in log if e["ref"] == ids["text"])
    outbox = Path(hub.settings.data_dir) / "outbox" / "primary"
    assert not outbox.exists() or not any(outbox.iterdir())  # the worker's copies are gone after the send

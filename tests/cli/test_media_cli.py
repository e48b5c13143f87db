"""Media from the command line: `waq enqueue PHONE --file F [--caption]` stores the file with the message before the id
is printed, a CSV's media column names files beside it (or URLs), `waq status ID` shows the file, and a file that
cannot be sent is exit 2 naming media, nothing stored."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.cli.helpers import ID, waq
from tests.helpers import media_samples as samples
from tests.helpers.constants import PHONE
from wa_queue.hub import default_hub


def test_a_file_is_queued_with_its_caption_and_shown_by_status(waq_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "invoice 42.pdf"
    path.write_bytes(samples.pdf(20_000))
    done = waq("enqueue", PHONE, "--file", str(path), "--caption", "Your invoice", "--json")
    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout)
    assert ID.match(body["id"]) and body["media"]["filename"] == "invoice 42.pdf"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert body["media"]["sha256"] == digest and default_hub().media_files.get(digest) == path.read_bytes()
    shown = waq("status", body["id"])
    assert "document invoice 42.pdf (20,000 bytes, application/pdf" in shown.stdout and "Your invoice" in shown.stdout


def test_a_photo_may_go_as_a_document_under_another_name(waq_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "IMG_0042.jpg"
    path.write_bytes(samples.jpeg(30_000))
    done = waq("enqueue", PHONE, "A scan", "--file", str(path), "--as-document", "--filename", "scan.jpg")
    assert done.exit_code == 0, done.output
    message = default_hub().store.get(done.stdout.strip())
    assert (message.media.kind, message.media.filename, message.text) == ("document", "scan.jpg", "A scan")


def test_a_file_that_cannot_be_sent_is_exit_2_naming_media(waq_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(samples.png())
    done = waq("enqueue", PHONE, "--file", str(path))
    assert done.exit_code == 2 and "media" in done.stderr and "image/png" in done.stderr
    voice = tmp_path / "note.mp3"
    voice.write_bytes(samples.mp3())
    captioned = waq("enqueue", PHONE, "--file", str(voice), "--caption", "listen")
    assert captioned.exit_code == 2 and "caption" in captioned.stderr
    assert default_hub().store.count_by_status()["pending"] == 0


def test_a_csvs_media_column_names_files_beside_it(waq_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.pdf").write_bytes(samples.pdf(5_000))
    (tmp_path / "files" / "b.pdf").write_bytes(samples.png())  # a PNG named .pdf: the row is rejected
    csv_file = tmp_path / "messages.csv"
    csv_file.write_text("phone,text,media\n"
                        f"{PHONE},Your invoice,files/a.pdf\n"
                        f"{PHONE},,files/a.pdf\n"  # the same file again, no caption: stored once
                        f"{PHONE},broken,files/b.pdf\n"
                        f"{PHONE},a text,\n")
    done = waq("enqueue", "--csv", str(csv_file), "--json")
    assert done.exit_code == 1, done.output  # one row rejected, the rest queued
    body = json.loads(done.stdout)
    assert body["enqueued"] == 3 and [(r["row"], r["field"]) for r in body["rejected"]] == [(4, "media")]
    messages = [default_hub().store.get(i) for i in body["ids"]]
    assert [(m.text, m.media and m.media.filename) for m in messages] == [
        ("Your invoice", "a.pdf"), ("", "a.pdf"), ("a text", None)]
    assert default_hub().media_files.exists(messages[0].media.sha256)

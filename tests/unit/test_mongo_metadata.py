"""MongoDB keeps a message's metadata as JSON text (what SQLite keeps); documents written before, with metadata as a
sub-document, still read as they are."""

from __future__ import annotations

from tests.helpers.constants import NOW
from wa_queue.models import NewMessage
from wa_queue.store.common import build_message
from wa_queue.store.mongo_codec import from_doc, to_doc


def test_metadata_is_written_as_json_text_and_an_older_sub_document_still_reads() -> None:
    message = build_message(NewMessage(phone="+14155550123", text="hi", metadata={"$k": {"a\u0000": [1]}}), NOW)
    doc = to_doc(message)
    assert doc["metadata"] == '{"$k": {"a\\u0000": [1]}}'
    assert from_doc(doc) == message
    older = {**doc, "metadata": {"order": 42}}
    assert from_doc(older).metadata == {"order": 42}
    assert from_doc({**doc, "metadata": None}).metadata is None

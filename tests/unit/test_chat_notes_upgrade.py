"""A store made before chat_notes kept one note per session (open_chats). On upgrade the note moves into chat_notes,
so replies a killed worker left unrecorded are still read again, and the old table or collection goes."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from tests.helpers.constants import NOW
from wa_queue.names import OPEN_CHATS
from wa_queue.store.mongo import MongoStore
from wa_queue.store.mongo_codec import to_db
from wa_queue.store.sqlite import SQLiteStore
from wa_queue.store.sqlite_schema import to_us


def test_a_sqlite_file_with_the_old_note_table_keeps_its_notes(tmp_path: Path) -> None:
    path = tmp_path / "waq.db"
    SQLiteStore(str(path)).close()
    with sqlite3.connect(path) as conn:  # what the earlier version's schema held
        conn.execute(f"CREATE TABLE {OPEN_CHATS} (session TEXT PRIMARY KEY, chat TEXT, phone TEXT, "
                     "unread INTEGER NOT NULL, at INTEGER NOT NULL)")
        conn.execute(f"INSERT INTO {OPEN_CHATS} VALUES ('primary', NULL, '+15550000001', 0, ?)", (to_us(NOW),))
        conn.execute(f"INSERT INTO {OPEN_CHATS} VALUES ('second', 'Ana', NULL, 2, ?)", (to_us(NOW),))
    store = SQLiteStore(str(path))
    try:
        assert [(n.chat, n.phone, n.unread, n.at) for n in store.chat_notes("primary")] == [
            (None, "+15550000001", 0, NOW)]
        assert [(n.chat, n.key) for n in store.chat_notes("second")] == [("Ana", "chat:Ana")]
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (OPEN_CHATS,)).fetchone() is None


def test_a_mongo_database_with_the_old_note_collection_keeps_its_notes() -> None:
    url = f"mongomock://localhost/waq_notes_{uuid.uuid4().hex[:8]}"
    old = MongoStore.from_url(url)
    old.db[OPEN_CHATS].insert_one({"_id": "primary", "chat": None, "phone": "+15550000001", "unread": 0,
                                   "at": to_db(NOW)})
    old.db[OPEN_CHATS].insert_one({"_id": "second", "chat": "Ana", "phone": None, "unread": 2, "at": to_db(NOW)})
    store = MongoStore.from_url(url)  # the upgraded version opening the same database
    assert [(n.chat, n.phone, n.unread) for n in store.chat_notes("primary")] == [(None, "+15550000001", 0)]
    assert [(n.chat, n.unread) for n in store.chat_notes("second")] == [("Ana", 2)]
    assert store.db[OPEN_CHATS].count_documents({}) == 0
    MongoStore.from_url(url)  # a second opening moves nothing twice
    assert len(store.chat_notes("second")) == 1

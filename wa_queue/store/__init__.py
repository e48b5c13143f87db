"""Message stores. open_store() picks the adapter from the URL."""

from __future__ import annotations

from wa_queue.store.base import MessageStore, SessionRecord


def open_store(url: str) -> MessageStore:
    """sqlite:///path -> SQLiteStore; mongodb://... -> MongoStore; mongomock://... -> MongoStore over mongomock."""
    if url.startswith("sqlite:///"):
        from wa_queue.store.sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite:///") :])
    if url.startswith(("mongodb://", "mongodb+srv://", "mongomock://")):
        from wa_queue.store.mongo import MongoStore

        return MongoStore.from_url(url)
    raise ValueError(f"unknown store URL {url!r}")


__all__ = ["MessageStore", "SessionRecord", "open_store"]

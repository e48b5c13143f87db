"""The stores tests run on: the multi-process tests' choice (STORES), and the adapters of the store fixture."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from wa_queue.store.base import MessageStore

STORES = ("sqlite", "ferretdb")  # the stores a multi-process test runs on: parametrize("store_backend", ..., indirect)
# The same, its MongoDB form only with --long (what issue 23 does not ask `make test` to run twice).
STORES_MONGO_LONG = ("sqlite", pytest.param("ferretdb", marks=pytest.mark.long))

SERVER = "mongo" if os.environ.get("WAQ_TEST_MONGO_URL") else "ferretdb"  # a MongoDB server reached over TCP
ADAPTERS = ("sqlite", "mongomock", SERVER)  # the `store` fixture's kinds: every adapter, a real server included


def open_adapter(kind: str, tmp_path: Path, server_url: Callable[[], str]) -> MessageStore:
    """A fresh store of that kind: a SQLite file under tmp_path, a mongomock database, or a database on the session's
    server (server_url() gives its URL and drops it after the test)."""
    if kind == "sqlite":
        from wa_queue.store.sqlite import SQLiteStore

        return SQLiteStore(str(tmp_path / "data" / "waq.db"))
    from wa_queue.store.mongo import MongoStore

    if kind == "mongomock":
        return MongoStore.from_url(f"mongomock://localhost/waq_test_{uuid.uuid4().hex[:12]}")
    return MongoStore.from_url(server_url())

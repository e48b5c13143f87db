"""The MongoDB client that WAQ_STORE_URL builds is durable by default (w=majority, journal) and waits long enough for
an election, while options written in the URL win. Built through the store's own factory (mongo_client), without a
server (pymongo connects lazily); the write concern read back is the client's and the collections' effective one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymongo import MongoClient
from pymongo.write_concern import WriteConcern

from wa_queue.errors import StoreError
from wa_queue.names import MESSAGES, SESSIONS
from wa_queue.settings import Settings
from wa_queue.store import mongo, mongo_client

CLOSED = "mongodb://127.0.0.1:9"  # nothing is ever contacted


@pytest.fixture
def clients() -> Iterator[list[MongoClient]]:
    made: list[MongoClient] = []
    yield made
    for client in made:
        client.close()


def build(url: str, made: list[MongoClient], **kwargs: int) -> MongoClient:
    client = mongo_client.make_client(url, **kwargs)
    made.append(client)
    return client


def test_the_settings_url_builds_a_majority_journaled_client(clients: list[MongoClient]) -> None:
    url = Settings.from_env({"WAQ_STORE_URL": f"{CLOSED}/waq"}).store_url
    client = build(url, clients)
    assert client.write_concern == WriteConcern(w="majority", j=True, wtimeout=mongo_client.WRITE_TIMEOUT_MS)
    for collection in (MESSAGES, SESSIONS):
        assert client["waq"][collection].write_concern.document == {"w": "majority", "j": True,
                                                                     "wtimeout": mongo_client.WRITE_TIMEOUT_MS}
    assert client.write_concern.acknowledged
    assert 15 <= client.options.server_selection_timeout <= 30


def test_url_options_override_the_defaults(clients: list[MongoClient]) -> None:
    client = build(f"{CLOSED}/waq?w=1&journal=false&wtimeoutMS=0&serverSelectionTimeoutMS=1500", clients)
    assert client.write_concern.document == {"w": 1, "j": False, "wtimeout": 0}
    assert client.options.server_selection_timeout == 1.5


def test_one_url_option_keeps_the_other_defaults(clients: list[MongoClient]) -> None:
    client = build(f"{CLOSED}/waq?replicaSet=rs0&W=2&wtimeoutMS=5000", clients)  # option names are case-insensitive
    assert client.write_concern.document == {"w": 2, "j": True, "wtimeout": 5000}
    assert client.options.server_selection_timeout == mongo_client.SERVER_TIMEOUT_MS / 1000


def test_a_silent_server_ends_a_call_after_the_socket_timeout_unless_the_url_says(clients: list[MongoClient]) -> None:
    assert build(f"{CLOSED}/waq", clients).options.pool_options.socket_timeout == mongo_client.SOCKET_TIMEOUT_MS / 1000
    assert build(f"{CLOSED}/waq?socketTimeoutMS=5000", clients).options.pool_options.socket_timeout == 5.0


def test_the_start_probe_bounds_server_selection_whatever_the_url_says(clients: list[MongoClient]) -> None:
    client = build(f"{CLOSED}/waq?serverSelectionTimeoutMS=60000&w=1", clients, server_timeout_ms=700)
    assert client.options.server_selection_timeout == 0.7
    assert client.write_concern.document == {"w": 1, "j": True, "wtimeout": mongo_client.WRITE_TIMEOUT_MS}


def test_unacknowledged_writes_are_refused() -> None:
    with pytest.raises(StoreError, match="WAQ_STORE_URL.*w=0"):
        mongo_client.make_client(f"{CLOSED}/waq?w=0")


def test_srv_urls_are_read_without_a_dns_lookup() -> None:
    # split_options only: a full parse of mongodb+srv:// would resolve the (here non-existent) host.
    options = mongo_client.client_options("mongodb+srv://cluster.invalid/waq?w=1")
    assert options["journal"] is True and "w" not in options


def test_a_majority_not_reached_in_time_is_a_store_error_with_nothing_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """pymongo reports a write-concern timeout of insert_many as a BulkWriteError, as it does a duplicate key: only
    the key conflict may be replayed; the timeout undoes the insert and answers StoreError (the API's 503)."""
    from pymongo.errors import BulkWriteError

    from wa_queue.models import NewMessage, utcnow

    store = mongo.MongoStore.from_url("mongomock://localhost/wtimeout")
    real_insert = store.messages.insert_many

    def applied_but_not_replicated(docs: list[dict], **kwargs: object) -> None:
        real_insert(docs, **kwargs)
        raise BulkWriteError({"writeErrors": [], "nInserted": len(docs), "writeConcernErrors": [
            {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out"}]})

    monkeypatch.setattr(store.messages, "insert_many", applied_but_not_replicated)
    with pytest.raises(StoreError, match="replication timed out"):
        store.insert(NewMessage(phone="+14155550123", text="hi", idempotency_key="k-1"), utcnow())
    assert store.messages.count_documents({}) == 0


def test_only_a_pure_duplicate_key_is_a_key_conflict() -> None:
    from pymongo.errors import BulkWriteError, DuplicateKeyError

    assert mongo._key_taken(DuplicateKeyError("E11000", 11000))
    assert mongo._key_taken(BulkWriteError({"writeErrors": [{"code": 11000}], "writeConcernErrors": []}))
    assert not mongo._key_taken(BulkWriteError({"writeErrors": [], "writeConcernErrors": [{"code": 64}]}))
    both = {"writeErrors": [{"code": 11000}], "writeConcernErrors": [{"code": 64}]}
    assert not mongo._key_taken(BulkWriteError(both))

"""The MongoDB store's client: WAQ_STORE_URL with the durable options it leaves unset, and the URL's parts.

Durability is the client's write concern: w=majority and journal=true unless the URL sets w or journal itself, so a
write acknowledged to the API is in the journal (of a majority, on a replica set). Every time-out is bounded, so a
lost server or a silent partition fails a call instead of hanging it; the URL may set its own.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

import pymongo
from pymongo import uri_parser
from pymongo.database import Database
from pymongo.errors import PyMongoError

from wa_queue.errors import StoreError

SERVER_TIMEOUT_MS = 20_000  # covers a replica set's election before a call fails (BENCHMARKS.md, the store's choices)
# A majority write waits this long for the secondaries, then fails (the caller answers 5xx and the producer's retry
# with its idempotency key finds the row if the primary kept it) instead of hanging while the majority is lost.
WRITE_TIMEOUT_MS = 10_000
# A call on an open connection that hears nothing for this long fails (the caller fails closed: a mark or a record
# left undone is a doubt the chat settles) instead of waiting, through a silent partition, until TCP gives up
# (tests/integration/test_netns_hosts.py cuts hosts off so).
SOCKET_TIMEOUT_MS = 30_000
PING_TIMEOUT_S = 2.0  # a health probe answers "down" quickly instead of waiting out a whole server selection
# The durable defaults, each passed only when WAQ_STORE_URL does not set the option (pymongo lets keyword arguments
# win over the URL's options, and the URL must win here).
DURABLE_DEFAULTS: dict[str, Any] = {"w": "majority", "journal": True, "wTimeoutMS": WRITE_TIMEOUT_MS,
                                    "serverSelectionTimeoutMS": SERVER_TIMEOUT_MS, "socketTimeoutMS": SOCKET_TIMEOUT_MS}


def url_options(url: str) -> dict[str, Any]:
    """The options a mongodb:// URL sets itself (normalised names, case-insensitive keys), read without the DNS
    look-up that parsing a mongodb+srv:// URL in full would do."""
    query = url.partition("?")[2]
    return uri_parser.split_options(query) if query else {}


def client_options(url: str) -> dict[str, Any]:
    """The keyword arguments make_client() passes: the durable defaults the URL leaves unset, and tz_aware."""
    given = url_options(url)
    options: dict[str, Any] = {"tz_aware": True}
    for key, value in DURABLE_DEFAULTS.items():
        if key not in given:
            options[key] = value
    if given.get("w") == 0:
        # An unacknowledged write can never be durable, and the API answers 202 only after a durable commit.
        raise StoreError("WAQ_STORE_URL: w=0 (unacknowledged writes) cannot make a message durable; use w=1 or more")
    return options


def make_client(url: str, *, server_timeout_ms: int | None = None) -> pymongo.MongoClient:
    """The client behind every MongoStore: WAQ_STORE_URL with client_options() (durable unless the URL says
    otherwise). It connects lazily, so building it needs no server. server_timeout_ms overrides both the default and
    the URL's serverSelectionTimeoutMS (for a bounded start-up probe)."""
    options = client_options(url)
    if server_timeout_ms is not None:
        options["serverSelectionTimeoutMS"] = server_timeout_ms
        url = _without_option(url, "serverSelectionTimeoutMS")
    return pymongo.MongoClient(url, **options)


def _without_option(url: str, option: str) -> str:
    base, sep, query = url.partition("?")
    kept = [part for part in re.split("[&;]", query) if part and part.split("=", 1)[0].lower() != option.lower()]
    return base + (sep + "&".join(kept) if kept else "")


def db_name(url: str) -> str:
    """The database a store URL names (its path), `waq` when it names none."""
    return urlparse(url).path.lstrip("/").split("?")[0] or "waq"


def probe(url: str, timeout_s: float) -> None:
    """Raise StoreError unless the server of `url` answers a ping within about timeout_s (a start-up check)."""
    if url.startswith("mongomock://"):
        return
    client = make_client(url, server_timeout_ms=max(100, int(timeout_s * 1000)))
    try:
        client[db_name(url)].command("ping")
    except PyMongoError as exc:
        # Server selection appends the whole topology description: the first part says what went wrong.
        raise StoreError(f"MongoDB store unreachable: {str(exc).split(', Timeout:')[0]}") from exc
    finally:
        client.close()


def ping(db: Database) -> None:
    """A store's health check: the server answers within PING_TIMEOUT_S, or StoreError."""
    try:
        with pymongo.timeout(PING_TIMEOUT_S):
            db.command("ping")
    except PyMongoError as exc:
        raise StoreError(f"MongoDB store unreachable: {exc}") from exc

"""Rate limits per key (issue 24, part 4) against a real gunicorn with two worker processes over one redis-server:
16 threads of one producer get no more than its bucket and its rate, the rest 429 with Retry-After and nothing
stored, while another producer is served as usual."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers.constants import BASE, CRM, CRM_KEY, MESSAGE, SHOP, SHOP_KEY
from tests.helpers.flood import flood
from tests.helpers.openapi import start_api
from wa_queue.devstack.redis_server import RedisServer

BULK_KEY = "bulk-key-0123456789abcdefgh"
KEYS = f"shop:producer:{SHOP_KEY},crm:producer:{CRM_KEY},bulk:producer:{BULK_KEY}"
BULK = {"X-API-Key": BULK_KEY}
# shop: a request every 10 s, 10 in its bucket: the rate adds hardly anything while the flood runs, so the bound
# below tells one shared bucket (10) from one per process (20). bulk: 10 messages a second, 1,000 in its bucket.
RATE, BURST_S, BULK_RATE = 0.1, 100.0, 10.0
THREADS, EACH = 16, 10


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[tuple[str, Path]]:
    tmp = Path(tmp_path_factory.mktemp("rate-gunicorn"))
    proc, url = start_api(tmp, redis_server, keys=KEYS, workers=2,
                          env={"WAQ_KEY_LIMITS": f"shop:requests={RATE:g},bulk:messages={BULK_RATE:g}",
                               "WAQ_RATE_BURST_S": f"{BURST_S:g}"})
    yield url, tmp / "data" / "waq.db"
    proc.stop()


def stored_texts(db: Path) -> Counter:
    with sqlite3.connect(db) as conn:
        return Counter(text for (text,) in conn.execute("SELECT text FROM messages"))


def test_sixteen_threads_of_one_key_get_its_rate_and_no_more(api: tuple[str, Path]) -> None:
    url, db = api

    def enqueue(http: requests.Session, thread: int, i: int) -> requests.Response:
        return http.post(f"{url}{BASE}/messages", json={**MESSAGE, "text": f"flood {thread}-{i}"}, headers=SHOP,
                         timeout=30)

    began = time.monotonic()
    answers = flood(THREADS, EACH, enqueue)
    elapsed = time.monotonic() - began
    # Meanwhile-or-after: another producer is not held back by shop's flood.
    other = requests.post(f"{url}{BASE}/messages", json={**MESSAGE, "text": "crm's"}, headers=CRM, timeout=30)
    assert other.status_code == 202, other.text

    codes = Counter(answer.status_code for answer in answers)
    assert set(codes) <= {202, 429}, codes
    accepted = codes[202]
    # What two processes sharing one bucket may admit: the bucket, plus what the rate refilled while the flood ran
    # (+1 for a token that was nearly whole at the start). Two buckets (one per process) would admit twice that.
    ceiling = RATE * BURST_S + RATE * elapsed + 1
    assert RATE * BURST_S <= accepted <= ceiling, (accepted, elapsed, codes)
    for refused in (answer for answer in answers if answer.status_code == 429):
        assert int(refused.headers["Retry-After"]) >= 1
        body = refused.json()
        assert body["details"]["limit"] == "rate" and "shop" in body["error"]
    stored = stored_texts(db)
    flooded = sum(count for text, count in stored.items() if text.startswith("flood "))
    assert flooded == accepted  # a 429 stored nothing
    assert stored["crm's"] == 1


def test_a_bulk_request_takes_a_token_per_message(api: tuple[str, Path]) -> None:
    url, db = api
    bulk = {"messages": [{**MESSAGE, "text": f"bulk {i}"} for i in range(1000)]}
    first = requests.post(f"{url}{BASE}/messages/bulk", json=bulk, headers=BULK, timeout=60)
    assert first.status_code == 202, first.text
    more = {"messages": [{**MESSAGE, "text": f"more {i}"} for i in range(100)]}
    second = requests.post(f"{url}{BASE}/messages/bulk", json=more, headers=BULK, timeout=60)
    assert second.status_code == 429, second.text  # the 1,000 message tokens are spent; 100 take 10 s to come back
    assert int(second.headers["Retry-After"]) >= 5, second.headers
    assert not any(text.startswith("more ") for text in stored_texts(db))

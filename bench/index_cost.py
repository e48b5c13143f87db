"""What one SQLite index costs the delivery path: mark_dispatched (in tens, as the relay and the sweeper record
them) and the claim, with the index and without it, alternated in the same run.

    python bench/index_cost.py [--index ix_msg_queue] [--messages 100000] [--work 3000] [--repeat 4]

Prints the median microseconds a message of each variant and their difference.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime

from wa_queue.models import NewMessage
from wa_queue.store.sqlite import SQLiteStore
from wa_queue.store.sqlite_schema import INDEXES

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def one_run(index: str | None, messages: int, work: int) -> float:
    """Microseconds a message for mark_dispatched + claim of the newest `work` of `messages` pending ones."""
    store = SQLiteStore(tempfile.mkdtemp() + "/waq.db")
    if index:
        store.db.get().execute(f"DROP INDEX {index}")
    news = [NewMessage(phone=f"+1415555{i % 10_000:04d}", text=f"message {i}") for i in range(messages)]
    ids = [m.id for m, _ in store.insert_many(news, NOW)][-work:]
    began = time.perf_counter()
    for start in range(0, len(ids), 10):
        store.mark_dispatched(ids[start:start + 10], now=NOW, epoch="e", queue="wa.session.s1")
    for message_id in ids:
        store.claim(message_id, owner="w", session="s1", now=NOW, lease_s=60)
    elapsed = time.perf_counter() - began
    store.close()
    return elapsed / len(ids) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default="ix_msg_queue", choices=sorted(INDEXES))
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--work", type=int, default=3_000)
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    with_index, without = [], []
    for _ in range(args.repeat):
        with_index.append(one_run(None, args.messages, args.work))
        without.append(one_run(args.index, args.messages, args.work))
    a, b = statistics.median(with_index), statistics.median(without)
    print(f"mark_dispatched (by 10) + claim, {args.work} of {args.messages:,} pending, median of {args.repeat}:")
    print(f"  with {args.index}:    {a:7.1f} us a message")
    print(f"  without {args.index}: {b:7.1f} us a message")
    print(f"  the index costs {a - b:+.1f} us a message ({(a - b) / b:+.0%})")


if __name__ == "__main__":
    main()

"""The daily message quota per API key: how many messages a key may enqueue per UTC day (WAQ_DAILY_QUOTA, `daily=`
in WAQ_KEY_LIMITS; 0: no quota), and what the store counts.

Why in the store: several API processes, on several hosts, enqueue for one key; a check before the insert would let
two of them pass the same last units. Each adapter takes the key's units in the write that stores the messages
(SQLite: a counter row in the insert's transaction; MongoDB, which has no transaction there: a conditional `$inc` on a
counter document before the insert, given back when the insert fails, so that a crash between the two can only leave
the count too high, never too low). What is counted is a message stored: an idempotent replay takes nothing, and a
request over the quota stores nothing at all.

A key is counted only while it has a quota: the counters cost every insert one write more, which keys without a quota
do not pay. A quota set during a day therefore counts from then on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta

from wa_queue.errors import QuotaExceeded
from wa_queue.models import Message


def day_of(now: datetime) -> date:
    """The UTC day a quota counts in."""
    return now.astimezone(UTC).date()


def next_day_start(now: datetime) -> datetime:
    """The UTC midnight after `now`, when the count starts again."""
    return datetime.combine(day_of(now) + timedelta(days=1), time(), UTC)


def needs(made: Iterable[Message], quotas: Mapping[str, int] | None) -> dict[str, int]:
    """Units each key with a quota takes for the messages `made` (new ones only, replays are not among them)."""
    if not quotas:
        return {}
    counted = Counter(m.enqueued_by for m in made if m.enqueued_by is not None and quotas.get(m.enqueued_by, 0) > 0)
    return dict(counted)


def check(key_name: str, used: int, requested: int, quota: int, now: datetime) -> None:
    """QuotaExceeded when `requested` more messages would take the key past its quota today."""
    if used + requested > quota:
        raise QuotaExceeded(key_name, quota, used, requested, (next_day_start(now) - now).total_seconds())

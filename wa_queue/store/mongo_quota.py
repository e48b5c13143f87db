"""The MongoDB store's daily quota counters (wa_queue/quota.py): a document per API key and UTC day, taken by a
conditional `$inc` (the count stays within the quota) before the insert and given back when the insert is known not
to have happened. Without a transaction the two writes cannot be one: taking first means that a process that dies
between them leaves the count too high (fewer messages allowed that day), never too low."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from wa_queue import quota

RETRIES = 8  # $inc attempts while give-backs of other requests make room between the $inc and the read
KEEP = timedelta(days=2)  # a counter outlives its day, then the TTL index (or the sweep) removes it


class QuotaCounters:
    """The counters in one collection (names.ENQUEUE_COUNTS). `sweep`: the server has no TTL index (FerretDB 1.x), so
    each new counter removes the expired ones."""

    def __init__(self, collection: Collection, *, sweep: bool) -> None:
        self._counts = collection
        self._sweep = sweep

    def take(self, needs: Mapping[str, int], quotas: Mapping[str, int], now: datetime) -> list[tuple[str, int]]:
        """Take `needs` (key -> new messages) within today's quotas; QuotaExceeded (with everything given back)
        otherwise. Returns what was taken, for give_back()."""
        day = quota.day_of(now).isoformat()
        taken: list[tuple[str, int]] = []
        try:
            for name, count in needs.items():
                counter = f"{name}|{day}"
                self._ensure(counter, name, day)
                limit = quotas[name]
                for _ in range(RETRIES):
                    if self._counts.find_one_and_update({"_id": counter, "n": {"$lte": limit - count}},
                                                        {"$inc": {"n": count}}) is not None:
                        taken.append((counter, count))
                        break
                    held = self._counts.find_one({"_id": counter}) or {}
                    quota.check(name, int(held.get("n", limit)), count, limit, now)  # raises when over
                    # Not over when read: another request gave units back between the $inc and the read.
                else:
                    quota.check(name, limit, count, limit, now)
        except BaseException:
            self.give_back(taken)
            raise
        return taken

    def give_back(self, taken: list[tuple[str, int]]) -> None:
        """Undo take() for messages known not stored. A give-back that fails leaves the count too high: refused
        sooner, never more allowed."""
        for counter, count in taken:
            with contextlib.suppress(PyMongoError):
                self._counts.update_one({"_id": counter}, {"$inc": {"n": -count}})

    def used_on(self, now: datetime) -> dict[str, int]:
        day = quota.day_of(now).isoformat()
        return {doc["key"]: int(doc["n"]) for doc in self._counts.find({"day": day})}

    def _ensure(self, counter: str, name: str, day: str) -> None:
        if self._counts.find_one({"_id": counter}, {"_id": 1}) is not None:
            return
        wall = datetime.now(UTC)  # the TTL monitor reads the server's clock, not the store's `now`
        with contextlib.suppress(DuplicateKeyError):  # another process made it first
            self._counts.insert_one({"_id": counter, "key": name, "day": day, "n": 0, "expires": wall + KEEP})
        if self._sweep:
            self._counts.delete_many({"expires": {"$lt": wall}})

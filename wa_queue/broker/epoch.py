"""The broker epoch: noticing when the broker lost its tasks.

The broker may forget everything (invariant 2). Each publish records the broker's current *epoch*, a random id kept
in a key of the broker's own Redis. When Redis is flushed or restarts empty the key goes with the queued tasks, the
sweeper sees it missing, starts a new epoch, and republishes every due pending message recorded under another one.
Backlogged messages still queued in a live broker keep their epoch and are not published twice.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from wa_queue import names

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

EPOCH_CACHE_S = 5.0


class BrokerEpoch:
    """The epoch of one broker, read through `client` and cached a few seconds (a stale value only causes a harmless
    extra publish). Anyone may create it: what matters is that tasks recorded under an older epoch are
    republished."""

    def __init__(self, client: redis.Redis, *, cache_s: float = EPOCH_CACHE_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._cache_s = cache_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._value: str | None = None
        self._at = 0.0

    def current(self, *, fresh: bool = False) -> str:
        """The epoch, created when missing; `fresh` reads the broker whatever the cache holds (the sweeper)."""
        value, at = self._value, self._at
        if value and not fresh and self._monotonic() - at < self._cache_s:
            return value
        raw = self._client.get(names.BROKER_EPOCH_KEY)
        if raw is None:
            self._client.set(names.BROKER_EPOCH_KEY, uuid.uuid4().hex, nx=True)
            raw = self._client.get(names.BROKER_EPOCH_KEY)
            log.warning("new broker epoch: the broker is new or lost its data; older tasks will be republished")
        epoch = raw.decode() if isinstance(raw, bytes) else str(raw)
        with self._lock:
            self._value, self._at = epoch, self._monotonic()
        return epoch

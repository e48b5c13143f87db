"""The broker epoch: noticing when the broker lost its tasks.

The broker may forget everything (invariant 2). Each publish records the broker's current *epoch*, a random id kept
in a key of the broker's own Redis. When Redis is flushed or restarts empty the key goes with the queued tasks, the
sweeper sees it missing, starts a new epoch, and republishes every due pending message recorded under another one.
Backlogged messages still queued in a live broker keep their epoch and are not published twice.
"""

from __future__ import annotations

import logging
import time
import uuid

from wa_queue import names, runtime

log = logging.getLogger(__name__)

_EPOCH_CACHE_S = 5.0
_epoch_cache: list[object] = [None, 0.0]


def current_epoch(*, fresh: bool = False) -> str:
    """The broker epoch, created when missing, cached a few seconds (a stale value only causes a harmless extra
    publish). Anyone may create it: what matters is that tasks recorded under an older epoch are republished."""
    cached, at = _epoch_cache
    if cached and not fresh and time.monotonic() - float(at) < _EPOCH_CACHE_S:  # type: ignore[arg-type]
        return str(cached)
    client = runtime.broker_redis()
    value = client.get(names.BROKER_EPOCH_KEY)
    if value is None:
        client.set(names.BROKER_EPOCH_KEY, uuid.uuid4().hex, nx=True)
        value = client.get(names.BROKER_EPOCH_KEY)
        log.warning("new broker epoch: the broker is new or lost its data; older tasks will be republished")
    epoch = value.decode() if isinstance(value, bytes) else str(value)
    _epoch_cache[0], _epoch_cache[1] = epoch, time.monotonic()
    return epoch

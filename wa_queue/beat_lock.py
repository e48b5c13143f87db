"""One beat, however it is deployed: the lock in the broker's Redis that lets only one `waq beat` run the jobs.

`waq beat` gives Celery's embedded beat `LockedScheduler`. Every beat process ticks, but only the holder of
`names.BEAT_LOCK_KEY` sends jobs; the others are standby and try to take the lock every third of its expiry
(`WAQ_BEAT_LOCK_TTL_S`). The holder renews it as often, with a compare-and-set on its token, so a beat that finds
another token there stops sending at once and goes back to waiting; a beat stopped cleanly deletes its token, one that
died leaves it to expire, unless a beat on the same host and pid namespace sees that the holder's pid is gone (a restart
under systemd or a supervisor): that one takes the lock over at once. A standby beat does not even open its schedule
file (two beats may share a data folder), and the holder shares each job's last run under `names.BEAT_LAST_RUN_KEY`, so
the beat that takes over keeps the old holder's cadence: a job runs at takeover only if it was due anyway, and then once
(Celery never replays missed runs). The jobs are idempotent (dispatch, recovery, health, archive), so the one overlap
the lock allows (the broker's Redis flushed while a holder sleeps, up to one renewal period) costs a duplicate run,
never a wrong one.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from datetime import datetime
from typing import Any

import redis
from celery.beat import PersistentScheduler
from celery.utils.time import maybe_make_aware

from wa_queue import names, procs, redact
from wa_queue.settings import Settings, read_settings

log = logging.getLogger(__name__)

# Take the lock if it is free, already ours (then this renews it) or still held by the token ARGV[3], which the caller
# proved dead, in one step; otherwise say who holds it.
_TAKE = """
local holder = redis.call('get', KEYS[1])
if (not holder) or holder == ARGV[1] or holder == ARGV[3] then
  redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
  return 1
end
return holder
"""
# Delete the lock only if it is still ours: a beat that lost it must not free another beat's lock.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class BeatLock:
    """A lock with an expiry in Redis, held by one owner token at a time."""

    def __init__(self, client: redis.Redis, owner: str, ttl_s: float, key: str = names.BEAT_LOCK_KEY) -> None:
        self.client = client
        self.owner = owner
        self.ttl_s = ttl_s
        self.key = key
        self._take = client.register_script(_TAKE)
        self._release = client.register_script(_RELEASE)

    def take(self, dead: str | None = None) -> tuple[bool, str | None]:
        """(True, owner) if this owner now holds the lock for ttl_s more; (False, holder) if another does. `dead`: a
        holder known to be dead, whose lock is taken over too. Raises redis.RedisError when Redis cannot say."""
        result = self._take(keys=[self.key], args=[self.owner, max(1, int(self.ttl_s * 1000)), dead or self.owner])
        if result == 1:
            return True, self.owner
        return False, result.decode() if isinstance(result, bytes) else str(result)

    def release(self) -> bool:
        """Delete the lock if this owner still holds it; True if it did."""
        return bool(self._release(keys=[self.key], args=[self.owner]))

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if value is not None else None


class LockedScheduler(PersistentScheduler):
    """Celery's PersistentScheduler that sends jobs only while it holds the beat lock (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = _settings_of(kwargs.get("app"))
        self.lock_ttl_s = settings.beat_lock_ttl_s
        self.lock_period_s = settings.beat_lock_ttl_s / 3  # renew (or try to take) this often
        self._hostname, self._pid_namespace = socket.gethostname(), procs.pid_namespace()
        owner = names.beat_lock_owner(self._hostname, os.getpid(), self._pid_namespace, secrets.token_hex(4))
        timeout = min(5.0, self.lock_period_s / 2)  # a hung Redis must not hold a tick past the next renewal
        try:
            client = redis.Redis.from_url(settings.broker_url, socket_timeout=timeout,
                                          socket_connect_timeout=timeout)
            self.lock: BeatLock | None = BeatLock(client, owner, self.lock_ttl_s)
        except ValueError as exc:  # not a Redis broker (memory://): no lock can be shared, so no jobs run
            log.error("beat lock: cannot use the broker %s for the beat lock (%s); this beat runs no jobs",
                      redact.without_password(settings.broker_url), exc)
            self.lock = None
        self.holding = False
        self._next_check = 0.0  # monotonic time of the next take/renew
        self._valid_until = 0.0  # monotonic time our lock surely lasts until, counted from before the last renewal
        self._reported: object = None  # the last standby state logged (a holder, or an error), to log it once
        super().__init__(*args, **kwargs)

    # ---- the schedule file: open only while holding the lock --------------------------------------------------
    def setup_schedule(self) -> None:
        # Called by Celery at start, when this beat does not hold the lock yet; see _become_holder.
        if self.holding:
            super().setup_schedule()

    def get_schedule(self) -> dict[str, Any]:
        return self._store["entries"] if self._store is not None else {}

    def set_schedule(self, schedule: dict[str, Any]) -> None:
        if self._store is not None:
            self._store["entries"] = schedule

    schedule = property(get_schedule, set_schedule)

    def _close_store(self) -> None:
        store, self._store = self._store, None
        self._heap = None
        self.old_schedulers = None
        if store is not None:
            try:
                store.sync()
                store.close()
            except Exception as exc:  # noqa: BLE001 - the schedule file is a cache of last runs, not the truth
                log.warning("beat lock: closing the schedule file failed: %s", exc)

    # ---- the lock ----------------------------------------------------------------------------------------------
    def tick(self, *args: Any, **kwargs: Any) -> float:
        if time.monotonic() >= self._next_check:
            self._check_lock()
        if self.holding and time.monotonic() >= self._valid_until:
            self._step_down("its expiry passed without a renewal")
        until_check = max(self._next_check - time.monotonic(), 0.0)
        if not self.holding:
            return until_check
        return min(super().tick(*args, **kwargs), until_check)

    def _check_lock(self) -> None:
        started = time.monotonic()
        self._next_check = started + self.lock_period_s
        if self.lock is None:
            return
        try:
            taken, holder = self.lock.take()
            if not taken and holder and self._died_here(holder):
                log.info("beat lock: its holder %s is dead (same host, no such process); taking it over now", holder)
                taken, holder = self.lock.take(dead=holder)
        except redis.RedisError as exc:
            # Holding on until our last renewal's expiry: no other beat can take the lock before then.
            if self._reported is not type(exc):
                log.warning("beat lock: the broker's Redis did not answer (%s); %s", exc,
                            "still holding until the lock's expiry" if self.holding else "standby")
                self._reported = type(exc)
            return
        if taken:
            self._valid_until = started + self.lock_ttl_s
            self._reported = None
            if not self.holding:
                self._become_holder()
            return
        if self.holding:
            self._step_down(f"held by {holder} now")
        if self._reported != holder:
            log.info("beat lock: held by %s; this beat is standby and sends no jobs until the lock is free", holder)
            self._reported = holder

    def _died_here(self, holder: str) -> bool:
        """The holder ran on this host, in this pid namespace (so its pid means the same here), and that pid is gone or
        a zombie. A pid reused since by another process counts as alive: then the lock expires by itself."""
        parts = holder.rsplit("/", 3)
        if len(parts) != 4 or not self._pid_namespace or not parts[1].isdigit():
            return False
        host, pid, namespace, _ = parts
        if host != self._hostname or namespace != self._pid_namespace or int(pid) == os.getpid():
            return False
        return not procs.alive(int(pid))

    def _become_holder(self) -> None:
        self.holding = True
        self._reported = None
        try:
            super().setup_schedule()  # opened only now: a standby beat may share this data folder
            self._adopt_shared_last_runs()
        except Exception:
            log.exception("beat lock: could not open the schedule; giving the lock back")
            self._step_down("the schedule could not be opened")
            self._release()
            return
        self._heap = None
        log.info("beat lock: taken by %s (expires %gs after each renewal, renewed every %gs); this beat sends the "
                 "jobs", self.lock.owner if self.lock else "?", self.lock_ttl_s, self.lock_period_s)

    def _step_down(self, why: str) -> None:
        self.holding = False
        self._close_store()
        log.warning("beat lock: lost (%s); this beat stopped sending jobs and is standby", why)

    def _release(self) -> None:
        if self.lock is None:
            return
        try:
            if self.lock.release():
                log.info("beat lock: released by %s", self.lock.owner)
        except redis.RedisError as exc:
            log.warning("beat lock: could not release (%s); it expires by itself in %gs", exc, self.lock_ttl_s)

    def close(self) -> None:
        """Celery's stop (SIGTERM included): save the schedule, then free the lock so a standby beat takes over at its
        next try instead of after the expiry."""
        try:
            self._close_store()  # and forget it, so that a second close does nothing
            super().close()
        finally:
            if self.holding:
                self.holding = False
                self._release()

    # ---- shared last runs --------------------------------------------------------------------------------------
    def reserve(self, entry: Any) -> Any:
        new_entry = super().reserve(entry)
        if self.lock is not None:
            try:
                self.lock.client.hset(names.BEAT_LAST_RUN_KEY, entry.name, new_entry.last_run_at.isoformat())
            except redis.RedisError as exc:  # the job still runs; a takeover then falls back to the local file
                log.debug("beat lock: could not share the last run of %s: %s", entry.name, exc)
        return new_entry

    def _adopt_shared_last_runs(self) -> None:
        """Each job's last run is the one shared by the holders when there is one: this beat's own file may be
        older, or hold no run at all (Celery dates a new entry's last run to its creation)."""
        if self.lock is None:
            return
        try:
            shared = self.lock.client.hgetall(names.BEAT_LAST_RUN_KEY)
        except redis.RedisError as exc:
            log.warning("beat lock: could not read the shared last runs (%s); using this beat's own", exc)
            return
        now = self.app.now()
        for name, entry in self.schedule.items():
            raw = shared.get(name.encode())
            if raw is None:
                continue
            try:
                when = maybe_make_aware(datetime.fromisoformat(raw.decode()))
            except ValueError:
                continue
            entry.last_run_at = min(when, now)  # another host's clock ahead of ours must not delay the job


def _settings_of(celery: object) -> Settings:
    """The settings the beat's Celery app was made from (a Hub's, wa_queue/celery_app.py), else the environment's."""
    settings = getattr(celery, "settings", None)
    return settings if isinstance(settings, Settings) else read_settings()

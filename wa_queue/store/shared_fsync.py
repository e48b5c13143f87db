"""Group fsync: the threads of a process that need their commits on disk share one fsync (sqlite_connection.py)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable


class SharedFsync:
    """Group fsync: threads of a process that need their commits on disk share one fsync.

    Commits are counted as they complete. A thread that needs durability waits for an fsync that began after its
    commits; if none is running it runs one, for every commit completed so far. Under load one fsync covers the
    commits of several batches, and the next batch commits while it runs instead of waiting for it (an fsync can take
    longer than a commit)."""

    def __init__(self, fsync: Callable[[], None]) -> None:
        self._fsync = fsync
        self._cond = threading.Condition(threading.Lock())
        self._done = 0  # commits completed
        self._synced = 0  # commits known to be on disk
        self._running = False
        self._pid = os.getpid()

    def committed(self) -> None:
        self._after_fork()
        with self._cond:
            self._done += 1

    def wait(self) -> None:
        self._after_fork()
        with self._cond:
            mine = self._done
            while self._synced < mine:
                if not self._running:
                    self._running, target = True, self._done
                    break
                self._cond.wait()
            else:
                return
        try:
            self._fsync()
        except BaseException:
            with self._cond:
                self._running = False
                self._cond.notify_all()
            raise
        with self._cond:
            self._running, self._synced = False, max(self._synced, target)
            self._cond.notify_all()

    def _after_fork(self) -> None:
        if self._pid != os.getpid():  # a fork copies the lock as it was; this process has committed nothing yet
            self.__init__(self._fsync)  # type: ignore[misc]

"""The machine's memory headroom: which session workers run here, what each costs (its Python processes, its
chromedriver and its Chrome tree, as PSS), the memory still available, and how many more sessions would fit at
the mean footprint. Plain data read from /proc (Linux); no Flask, no store.

A session worker is found by the WAQ_WORKER_SESSION variable `waq worker` puts in its environment (its pool
children, chromedriver and Chrome inherit it), or, when the environment cannot be read (another user's process),
by its command line: `waq worker --session NAME` before it execs Celery, `-Q wa.session.NAME,...` after. Its
processes are its descendants, plus the inherited-environment processes Chrome detaches from the tree (the crash
handler is re-parented to init) that carry the same session and WAQ_DATA_DIR: together they name one profile
folder, which only one worker can hold. A browser process of that kind with no running worker is a stray (a dead
worker's Chrome): it is reported apart, as memory no session accounts for.
"""

from __future__ import annotations

import dataclasses
import re

from wa_queue import procs
from wa_queue.names import SESSION_QUEUE_PREFIX

SESSION_ENV = "WAQ_WORKER_SESSION"
DATA_DIR_ENV = "WAQ_DATA_DIR"
# Kept free when counting the sessions that still fit: MemAvailable at zero means the OOM killer picks a Chrome,
# and a Chrome grows for a while at every page load.
DEFAULT_RESERVE_KIB = 512 * 1024

_WAQ_WORKER = re.compile(r"\bworker\b(?!.*--check).*?--session[= ]([a-z0-9][a-z0-9_-]*)")
_CELERY_QUEUE = re.compile(r"\bcelery\b.*\s-Q\s+(?:\S*,)?" + re.escape(SESSION_QUEUE_PREFIX) + r"([a-z0-9][a-z0-9_-]*)")


@dataclasses.dataclass(frozen=True)
class SessionFootprint:
    """One running session worker and what it costs."""

    name: str
    pid: int  # the worker's main process
    data_dir: str | None  # its WAQ_DATA_DIR (None: not readable or not set)
    worker_pids: tuple[int, ...]  # its own processes (the Celery main process, a pool child)
    browser_pids: tuple[int, ...]  # chromedriver and every Chrome process
    worker_pss_kib: int
    browser_pss_kib: int

    @property
    def pss_kib(self) -> int:
        return self.worker_pss_kib + self.browser_pss_kib


@dataclasses.dataclass(frozen=True)
class Headroom:
    """The sessions running on this machine and the room left for more."""

    sessions: tuple[SessionFootprint, ...]
    stray_pids: tuple[int, ...]  # browser processes of a session whose worker is gone
    stray_pss_kib: int
    mem_total_kib: int
    mem_available_kib: int
    reserve_kib: int

    @property
    def total_pss_kib(self) -> int:
        return sum(s.pss_kib for s in self.sessions)

    @property
    def mean_pss_kib(self) -> int | None:
        return self.total_pss_kib // len(self.sessions) if self.sessions else None

    @property
    def more_sessions(self) -> int | None:
        """Sessions that still fit at the mean footprint of those running; None with none running (no footprint to
        go by). A young session is lighter than one after hundreds of sends, so this is an upper bound early on."""
        mean = self.mean_pss_kib
        return None if mean is None else sessions_that_fit(self.mem_available_kib, mean, self.reserve_kib)


def sessions_that_fit(available_kib: int, per_session_kib: int, reserve_kib: int = 0) -> int:
    """How many sessions of per_session_kib fit in available_kib once reserve_kib is set aside (never negative)."""
    if per_session_kib <= 0:
        raise ValueError("per_session_kib must be positive")
    return max(0, (available_kib - reserve_kib) // per_session_kib)


def session_of(environ: dict[str, str] | None, cmdline: str) -> str | None:
    """The session a process belongs to: WAQ_WORKER_SESSION in its environment, else the worker's command line."""
    if environ and environ.get(SESSION_ENV):
        return environ[SESSION_ENV]
    match = _WAQ_WORKER.search(cmdline) or _CELERY_QUEUE.search(cmdline)
    return match.group(1) if match else None


@dataclasses.dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    comm: str
    key: tuple[str, str | None] | None  # (session, WAQ_DATA_DIR) for a process of a session worker


@dataclasses.dataclass(frozen=True)
class WorkerTree:
    """A session worker's processes, before measuring them."""

    name: str
    data_dir: str | None
    pid: int  # the worker's main process
    worker_pids: tuple[int, ...]
    browser_pids: tuple[int, ...]


def is_browser(comm: str) -> bool:
    """chromedriver, chromium, chrome, chrome_crashpad_handler (comm is cut at 15 characters)."""
    return comm.startswith("chrom") or "chrome" in comm or comm == "headless_shell"


def _scan() -> dict[int, _Proc]:
    found: dict[int, _Proc] = {}
    for pid, comm, fields in procs.stats():
        if len(fields) < 2 or not procs.is_alive(fields):
            continue
        try:
            environ: dict[str, str] | None = procs.environ_of(pid)
        except OSError:
            environ = None  # another user's process (or gone): its command line still names a worker
        name = session_of(environ, procs.cmdline(pid))
        key = (name, environ.get(DATA_DIR_ENV) if environ else None) if name else None
        found[pid] = _Proc(pid, int(fields[1]), comm, key)
    return found


def find_sessions() -> tuple[list[WorkerTree], list[int]]:
    """The session workers running now with their processes, and the stray browser pids (see the module's note)."""
    table = _scan()
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    roots = [p for p in table.values() if p.key and not is_browser(p.comm)
             and (p.ppid not in table or table[p.ppid].key != p.key)]
    taken: set[int] = set()
    trees: list[tuple[_Proc, list[int]]] = []
    for root in sorted(roots, key=lambda p: p.pid):
        if root.pid in taken:
            continue  # inside another worker's tree (a worker started by a worker)
        pids, stack = [root.pid], [root.pid]
        while stack:
            for child in children.get(stack.pop(), ()):
                pids.append(child)
                stack.append(child)
        taken.update(pids)
        trees.append((root, pids))
    # Detached processes join the worker of their profile; without WAQ_DATA_DIR the profile is unknown.
    by_profile = {root.key: pids for root, pids in reversed(trees) if root.key and root.key[1] is not None}
    strays: list[int] = []
    for proc in table.values():
        if proc.key and proc.pid not in taken:
            owner = by_profile.get(proc.key)
            (owner if owner is not None else strays).append(proc.pid)
    found = []
    for root, pids in trees:
        name, data_dir = root.key or ("", None)
        browser = tuple(p for p in pids if is_browser(table[p].comm))
        found.append(WorkerTree(name, data_dir, root.pid, tuple(p for p in pids if p not in browser), browser))
    return found, strays


def measure(reserve_kib: int = DEFAULT_RESERVE_KIB) -> Headroom:
    """The sessions running now, each one's PSS, MemAvailable, and how many more fit (keeping reserve_kib free)."""
    trees, strays = find_sessions()
    sessions = tuple(
        SessionFootprint(name=t.name, pid=t.pid, data_dir=t.data_dir, worker_pids=t.worker_pids,
                         browser_pids=t.browser_pids, worker_pss_kib=procs.pss_kib(list(t.worker_pids)),
                         browser_pss_kib=procs.pss_kib(list(t.browser_pids)))
        for t in trees)
    info = procs.meminfo()
    return Headroom(sessions=sessions, stray_pids=tuple(strays), stray_pss_kib=procs.pss_kib(strays),
                    mem_total_kib=info.get("MemTotal", 0), mem_available_kib=info.get("MemAvailable", 0),
                    reserve_kib=reserve_kib)

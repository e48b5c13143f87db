"""Everything read from /proc (Linux): process trees, their memory and environment, the machine's memory and this
process's pid namespace. The one reader of /proc, so recovery, headroom and the beat lock need no psutil."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

_PROC = Path("/proc")
# A zombie (Z) or dead (X) process has exited and only waits to be reaped: it is not alive, and holds nothing.
_EXITED = ("Z", "X")


def stats() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, command name, the stat fields after it: state, ppid, pgrp, ...) for every process still listed."""
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name sits in parentheses and may hold spaces or ')': split after the last ')'.
        yield int(entry.name), stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 2:].split()


def is_alive(fields: list[str]) -> bool:
    """Whether the stat fields after the command name (stats()'s third item) are a live process's: the one rule of
    what alive means, for this module, recovery and headroom."""
    return bool(fields) and fields[0] not in _EXITED


def with_environment(key: str, value: str) -> list[int]:
    """Every live process (not a zombie, not this one) with key=value in its environment: what a worker started,
    Chrome and chromedriver included (they inherit its environment), whatever group or parent they moved to."""
    marker = f"{key}={value}".encode()
    found = []
    for pid, _comm, fields in stats():
        if pid == os.getpid() or not is_alive(fields):
            continue
        try:
            if marker in (_PROC / str(pid) / "environ").read_bytes().split(b"\0"):
                found.append(pid)
        except OSError:
            continue  # gone meanwhile, or another user's
    return found


def parent_map() -> dict[int, int]:
    """pid -> ppid for every process listed, zombies included (a zombie's children are its own until it is reaped)."""
    return {pid: int(fields[1]) for pid, _comm, fields in stats() if len(fields) > 1}


def group_members(pgid: int) -> list[int]:
    """Live processes in process group pgid: unlike descendants, this still finds children whose parent died
    (they are re-parented to init but keep their group)."""
    return [pid for pid, _comm, fields in stats()
            if len(fields) > 2 and fields[2] == str(pgid) and is_alive(fields)]


def pgid_of(pid: int) -> int | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2:].split()[2])


def cmdline(pid: int) -> str:
    try:
        return (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    """All live descendants of pid (children, grandchildren, ...), not pid itself."""
    children: dict[int, list[int]] = {}
    for child, parent in parent_map().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie (another user's process counts: its stat is readable)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return is_alive(stat[stat.rfind(")") + 2:].split())


def pids_with_arg(fragment: str) -> list[int]:
    """Live processes whose command line contains fragment (e.g. one profile's --user-data-dir)."""
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def kill_pids(pids: list[int], timeout: float = 5.0) -> None:
    """SIGKILL every pid and wait (briefly) until none is left; reap our own children so none stays a zombie."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + timeout
    pending = list(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                os.waitpid(pid, os.WNOHANG)  # only succeeds for our own children
            except ChildProcessError:
                pass
            if not alive(pid):
                pending.remove(pid)
        if pending:
            time.sleep(0.02)


def kill_tree(pid: int, timeout: float = 5.0) -> list[int]:
    """SIGKILL pid, all its descendants (read before killing: orphans get re-parented) and, when pid leads a
    process group, every member of that group (orphans included); returns the pids."""
    pids = [pid, *descendants(pid)]
    pids += [p for p in group_members(pid) if p not in pids]
    kill_pids(pids, timeout)
    return pids


def pss_kib(pids: list[int]) -> int:
    """Proportional set size summed over pids, in KiB (shared pages split fairly between the processes)."""
    total = 0
    for pid in pids:
        try:
            text = (_PROC / str(pid) / "smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                break
    return total


def meminfo(path: Path = _PROC / "meminfo") -> dict[str, int]:
    """/proc/meminfo as {field: KiB} (the few fields counted in pages, like HugePages_Total, as they are)."""
    found: dict[str, int] = {}
    for line in path.read_text().splitlines():
        name, _, rest = line.partition(":")
        value = rest.split()
        if value and value[0].isdigit():
            found[name.strip()] = int(value[0])
    return found


def parse_environ(raw: bytes) -> dict[str, str]:
    """/proc/<pid>/environ (NUL-separated NAME=value) as a dict."""
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


def environ_of(pid: int) -> dict[str, str]:
    """A process's environment; OSError when it cannot be read (another user's process, or gone)."""
    return parse_environ((_PROC / str(pid) / "environ").read_bytes())


def pid_namespace() -> str:
    """This process's pid namespace ("pid:[4026531836]" -> "4026531836"), or "" where /proc cannot say."""
    try:
        return os.readlink(_PROC / "self" / "ns" / "pid").partition("[")[2].rstrip("]")
    except OSError:
        return ""

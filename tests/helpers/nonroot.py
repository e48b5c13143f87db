"""Running a test's process as an unprivileged user (the image's uid-10001 case): the user, and the command prefix.

The tests run as root. `as_user` drops to the user with setpriv. When this interpreter lives under a folder other
users cannot enter (pyenv under /root, mode 0700), the command first enters a private mount namespace in which that
folder is an empty tmpfs holding only the interpreter's tree (bind-mounted back at the same path): nothing else of
it is exposed, and nothing changes outside the namespace.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

USER = "waq-sandbox"

_SHOW_INTERPRETER = r"""
set -e
hidden="$1"; tree="$2"; stash="$3"; shift 3
mount --bind "$tree" "$stash"
mount -t tmpfs -o mode=755 tmpfs "$hidden"
mkdir -p "$tree"
mount --bind "$stash" "$tree"
exec "$@"
"""


def unavailable() -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to create a user and switch to it"
    for tool in ("useradd", "setpriv", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def ensure_user(name: str = USER) -> tuple[int, int]:
    """The user's (uid, gid), creating it (a system user without a home or shell) when missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _closed_ancestors(path: Path) -> list[tuple[Path, Path]]:
    """Each ancestor of `path` that others cannot enter, with its child on the way to `path`."""
    parts = path.parts
    return [(Path(*parts[:depth]), Path(*parts[:depth + 1])) for depth in range(1, len(parts))
            if not Path(*parts[:depth]).stat().st_mode & stat.S_IXOTH]


def as_user(argv: list[str], uid: int, gid: int, stash: Path) -> list[str]:
    """`argv` run as uid/gid; `stash` is an empty folder for the interpreter's bind mount, if one is needed."""
    drop = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]
    # A virtualenv's prefix may be open while its interpreter (a symlink) lives in the closed base installation.
    needed = {sys.prefix, sys.base_prefix, sys.executable}
    closed = {pair for path in needed for pair in _closed_ancestors(Path(path).resolve())}
    if not closed:
        return drop
    if len(closed) > 1:
        raise RuntimeError(f"cannot show the interpreter to another user: closed folders {sorted(closed)}")
    closed = closed.pop()
    stash.mkdir(parents=True, exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SHOW_INTERPRETER, "sh",
            str(closed[0]), str(closed[1]), str(stash), *drop]


def own(path: Path, uid: int, gid: int) -> None:
    """Make `path` (a folder) the user's, creating it."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)


def userns_problem(uid: int, gid: int, stash: Path) -> str | None:
    """Why the user cannot create the namespaces Chrome's sandbox needs on this machine, or None."""
    done = subprocess.run(as_user(["unshare", "--user", "--pid", "--net", "--fork", "true"], uid, gid, stash),
                          capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else done.stderr.strip() or f"exit {done.returncode}"

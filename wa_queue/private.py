"""Files only this system's user may read: the data folder, the SQLite files (db, -wal, -shm) and the Chrome profiles
(the WhatsApp logins). Created 0700 (folders) and 0600 (files) whatever the umask: mkdir and open apply the umask to
the mode they are given, so each path this module creates is chmod'ed afterwards. Paths that exist already keep
their mode (an operator may have chosen it); README, Security, says how to tighten an older data folder.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path | str) -> Path:
    """`path` and its missing parents, each created 0700."""
    path = Path(path)
    missing = []
    walk = path
    while not walk.exists() and walk != walk.parent:
        missing.append(walk)
        walk = walk.parent
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    for created in missing:
        os.chmod(created, DIR_MODE)
    return path


def private_file(path: Path | str) -> Path:
    """Create `path` empty and 0600 if it does not exist (its folder 0700). SQLite gives the -wal and -shm files it
    creates the database file's mode, so creating the database here first makes all three private."""
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        return path
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path

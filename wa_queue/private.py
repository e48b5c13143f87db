"""Files only this system's user may read: the data folder, the SQLite files (db, -wal, -shm) and the Chrome profiles
(the WhatsApp logins). Created 0700 (folders) and 0600 (files) whatever the umask: the mode is given to mkdir and
open themselves (a umask only takes bits away), never left to their defaults (0777, 0666 less the umask), and never
chmod'ed after the fact, which would leave a moment in which another user could open the file. Paths that exist
already keep their mode (an operator may have chosen it); docs/security.md says how to tighten an older data folder.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path | str) -> Path:
    """`path` and its missing parents, each created 0700."""
    path = Path(path)
    missing: list[Path] = []
    walk = path
    while not walk.exists() and walk != walk.parent:
        missing.append(walk)
        walk = walk.parent
    for created in reversed(missing):  # Path.mkdir(parents=True) gives the parents it makes the default mode
        created.mkdir(mode=DIR_MODE, exist_ok=True)
    return path


def private_file(path: Path | str) -> Path:
    """Create `path` empty and 0600 if it does not exist (its folder 0700). SQLite gives the -wal and -shm files it
    creates the database file's mode, so creating the database here first makes all three private."""
    path = Path(path)
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    except FileExistsError:
        pass
    return path

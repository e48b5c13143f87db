"""The Procfile's API command, as the tests that start a real gunicorn run it: the same worker class and options,
with this interpreter, a free port and (where a test says) fewer workers."""

from __future__ import annotations

import shlex
import sys

from tests.helpers.constants import ROOT


def api_args() -> list[str]:
    """The Procfile's `api:` line as arguments, as written (its bind included)."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("api:"))
    args = shlex.split(line.split(":", 1)[1])
    assert args[0] == "gunicorn", line
    return args


def api_command(port: int, workers: int | None = None) -> list[str]:
    """The Procfile's `api:` line bound to 127.0.0.1:`port`; `workers` replaces its --workers when given."""
    args = api_args()
    args[args.index("--bind") + 1] = f"127.0.0.1:{port}"
    if workers is not None:
        args[args.index("--workers") + 1] = str(workers)
    return [sys.executable, "-m", *args]

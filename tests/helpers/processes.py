"""Processes a test starts (each in its own process group) and finds again by its data folder."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.helpers.constants import ROOT
from wa_queue import procs


def processes_of(data_dir: Path) -> list[int]:
    """Every live process whose environment names this data folder: what a test's stack started, Chrome and
    chromedriver included, whatever process group they moved to."""
    return procs.with_environment("WAQ_DATA_DIR", str(data_dir))


class Proc:
    """A child process in its own process group, so a test can SIGKILL it with everything it started."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv = argv
        self.log = log
        self.handle = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=self.handle, stderr=subprocess.STDOUT, cwd=ROOT,
            start_new_session=True,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill(signal.SIGKILL)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.handle.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

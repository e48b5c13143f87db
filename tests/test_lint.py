"""Style is part of the suite: ruff at 120 columns with the rules in pyproject.toml."""

import shutil
import subprocess
import sys

from tests.helpers.constants import ROOT


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff")
    argv = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    result = subprocess.run([*argv, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]

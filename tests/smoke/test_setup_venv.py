"""Set-up on any Debian or Ubuntu (issue 13): make installs into a virtual environment it creates, from lock files of
exact versions generated from pyproject.toml.

- The lock files hold every package pyproject.toml asks for, at a version it allows, and agree with each other.
- When the virtual environment cannot be made (Debian without python3-venv), make says what to install and leaves no
  half-made environment behind.
- Long form: `make deps` into a fresh virtual environment made by the system's Python (on Debian 12 it refuses
  pip installs, PEP 668) installs exactly the locked versions, and `waq` runs from it. It takes minutes (about 80
  packages), so it runs with --long; CI's fresh clone goes through the same path with `make test` anyway."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers.constants import ROOT

# make as a person runs it, not as a sub-make of `make test`.
_ENV = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*$")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PIN.match(line)
        assert match, f"{path.name}: not an exact pin: {line!r}"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_lock_files_pin_every_requirement_of_pyproject_at_an_allowed_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, full = _pins(ROOT / "requirements.lock"), _pins(ROOT / "requirements-test.lock")
    for lock, wanted in ((runtime, project["dependencies"]),
                         (full, project["dependencies"] + project["optional-dependencies"]["test"])):
        for text in wanted:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            assert name in lock, f"{name} is not in the lock: run `make lock`"
            assert requirement.specifier.contains(lock[name], prereleases=True), (name, lock[name], text)
    # The Dockerfile's lock and make's agree: the same version of everything the program needs.
    assert {name: full.get(name) for name in runtime} == runtime
    assert "wa-queue" not in full  # the project itself is installed from the tree, not from an index
    for path in (ROOT / "requirements.lock", ROOT / "requirements-test.lock"):
        assert "file:" not in path.read_text() and "--index-url" not in path.read_text(), path


def test_make_names_python3_venv_and_leaves_nothing_when_the_venv_cannot_be_made(tmp_path: Path) -> None:
    # Debian's python3 without python3-venv: `-m venv` makes the folder and its interpreter, then fails on ensurepip.
    # That package is installed here, so this stand-in does the same with the real venv module.
    python = tmp_path / "python3"
    python.write_text(f"#!/bin/sh\n{sys.executable} -m venv --without-pip \"$3\"\n"
                      "echo 'The virtual environment was not created successfully because ensurepip is not available.'"
                      " >&2\nexit 1\n")
    python.chmod(0o755)
    venv = tmp_path / "venv"
    done = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), f"{venv}/bin/python", f"VENV={venv}",
                           f"PYTHON={python}"], capture_output=True, text=True, timeout=60, env=_ENV)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "install python3-venv" in done.stderr, done.stderr
    assert not venv.exists()  # the next make tries again instead of finding a broken environment


@pytest.mark.long
@pytest.mark.timeout(900)
def test_make_deps_installs_exactly_the_lock_into_a_fresh_venv(tmp_path: Path) -> None:
    system = Path("/usr/bin/python3")
    python = str(system) if system.exists() else sys.executable
    venv = tmp_path / "venv"
    done = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "deps", f"VENV={venv}",
                           f"PYTHON={python}"], capture_output=True, text=True, timeout=840, env=_ENV)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert (venv / ".deps.stamp").exists()
    installed = {canonicalize_name(p["name"]): p["version"] for p in json.loads(subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
        check=True).stdout)}
    locked = _pins(ROOT / "requirements-test.lock")
    assert {name: installed.get(name) for name in locked} == locked
    assert installed["wa-queue"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    waq = subprocess.run([venv / "bin" / "waq", "--help"], capture_output=True, text=True, timeout=60)
    assert waq.returncode == 0 and "wa-queue" in waq.stdout, waq.stdout + waq.stderr

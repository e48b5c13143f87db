"""The image (Dockerfile, .dockerignore, requirements.lock) checked as Docker would build it, without a Docker
engine: a pinned base, the locked dependencies then the package alone, a user that is not root, every COPY
source present and kept by .dockerignore, and secrets and local state left out of the context."""

from __future__ import annotations

import json
import re

import pytest

from tests.deploy.commands import check_command
from tests.deploy.compose_files import (
    dockerignore_excludes,
)
from tests.helpers.constants import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_base_is_pinned_by_digest() -> None:
    op, image = dockerfile_instructions()[0]
    assert op == "FROM"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", image), image


def test_dockerfile_installs_the_locked_dependencies_then_the_package_alone() -> None:
    instructions = dockerfile_instructions()
    packages = set(" ".join(args for op, args in instructions if op == "RUN" and "apt-get install" in args).split())
    assert {"chromium", "chromium-driver", "tini"} <= packages
    runs = [args for op, args in instructions if op == "RUN"]
    locked = next(i for i, args in enumerate(runs) if "pip install -r requirements.lock" in args)
    package = next(i for i, args in enumerate(runs) if "pip install --no-deps ." in args)
    assert locked < package
    assert not [args for args in runs if re.search(r"pip install (?!-r requirements\.lock|--no-deps \.)", args)]


def test_the_lock_file_stands_alone_and_pins_every_package() -> None:
    """The image copies requirements.lock alone: a -r/-c line or an unpinned package would break or loosen it."""
    lines = [line.split("#", 1)[0].strip() for line in (ROOT / "requirements.lock").read_text().splitlines()]
    requirements = [line.rstrip("\\").strip() for line in lines if line and not line.startswith("--hash")]
    assert requirements, "requirements.lock is empty"
    for line in requirements:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[\w,-]+\])?==[\w.+!-]+( *;.*)?( *\\)?", line), line
    names = {re.split(r"[\[=]", line, maxsplit=1)[0].lower().replace("_", "-") for line in requirements}
    assert {"celery", "flower", "gunicorn", "pymongo", "redis", "selenium"} <= names


def test_dockerfile_runs_as_a_user_with_data_in_data() -> None:
    instructions = dockerfile_instructions()
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the processes must not run as root"
    assert "--uid 10001" in " ".join(args for op, args in instructions if op == "RUN")
    assert "WAQ_DATA_DIR=/data" in " ".join(args for op, args in instructions if op == "ENV")
    health = [args for op, args in instructions if op == "HEALTHCHECK"]
    assert health, "the image needs a HEALTHCHECK"
    check_command(json.loads(health[0].split("CMD", 1)[1].strip()))


def test_dockerfile_copies_what_exists_and_the_context_keeps() -> None:
    ignore = (ROOT / ".dockerignore").read_text()
    for op, args in dockerfile_instructions():
        if op == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                assert not dockerignore_excludes(ignore, source), f"COPY {source}: .dockerignore leaves it out"


@pytest.mark.parametrize("path", ["var/admin.key", "var/flower.auth", "var/profiles/primary/Default/Cookies",
                                  ".venv/bin/python", ".git/config", ".env", "deploy/.env", "tests/deploy/x.py"])
def test_dockerignore_keeps_secrets_and_local_state_out(path: str) -> None:
    assert dockerignore_excludes((ROOT / ".dockerignore").read_text(), path)


def test_the_dockerignore_matcher_follows_docker_rules() -> None:
    """The matcher the two tests above rely on: parents, ** and the last rule winning."""
    rules = "var/\n**/secret\n*.log\n!keep.log\n"
    assert dockerignore_excludes(rules, "var/a/b")
    assert dockerignore_excludes(rules, "x/y/secret")
    assert dockerignore_excludes(rules, "debug.log")
    assert not dockerignore_excludes(rules, "keep.log")
    assert not dockerignore_excludes(rules, "variable.py")
    assert not dockerignore_excludes(rules, "sub/debug.log")

"""docker-compose.yml and the Dockerfile, checked against the package (no Docker engine runs here): every command
and probe exists, every WAQ_* variable is a setting, every session has a worker, no secret is written down."""

from __future__ import annotations

import dataclasses
import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from tests.conftest import ROOT
from wa_queue.cli import main
from wa_queue.settings import Settings

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|AUTH|PASSWORD|PASSWD", re.I)
INTERPOLATION = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+)(?:(?P<op>:\?|\?|:-|-)(?P<arg>.*))?\}$")
SETTING_VARS = {"WAQ_" + field.name.upper() for field in dataclasses.fields(Settings)}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # PyYAML resolves the <<: merge keys as compose does


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def ours(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run the wa-queue image (not redis or mongo)."""
    return {name: svc for name, svc in services.items() if "build" in svc}


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def check_waq(args: list[str]) -> None:
    """Parse `waq ...` arguments with the real click commands, without running them: unknown commands or options
    fail here as they would in the container."""
    command: click.Command = main
    ctx = main.make_context("waq", list(args), resilient_parsing=False)
    while isinstance(command, click.Group):
        name, command, rest = command.resolve_command(ctx, ctx.protected_args + ctx.args)
        assert command is not None, f"waq has no command {name!r}"
        ctx = command.make_context(name, rest, parent=ctx)


def check_app_spec(spec: str) -> None:
    """'module:callable()' or 'module:attr' (gunicorn and celery -A) must import."""
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    target = getattr(module, attr.removesuffix("()"))
    if attr.endswith("()"):
        assert callable(target), f"{spec}: {attr} is not callable"


def check_command(args: list[str]) -> None:
    program = Path(args[0]).name
    if program == "waq":
        check_waq(args[1:])
    elif program == "gunicorn":
        if not (ROOT / "api" / "app.py").exists():
            pytest.skip("api/app.py (create_app) is not written yet: gunicorn's app cannot be checked")
        check_app_spec(args[-1])  # gunicorn takes the app as its last argument
    elif program == "celery":
        check_app_spec(args[args.index("-A") + 1])
        assert "inspect" in args and "ping" in args
    elif program == "python":
        compile(args[args.index("-c") + 1], "<healthcheck>", "exec")
    else:
        raise AssertionError(f"unexpected program {program!r} in {args}")


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


# ---- commands ----------------------------------------------------------------------------------------------------
def test_every_service_command_exists_in_the_package(services: dict[str, dict[str, Any]]) -> None:
    commands = {name: argv(svc["command"]) for name, svc in ours(services).items()}
    assert {"api", "beat", "flower"} <= set(commands)
    assert commands["api"] == ["gunicorn", "--workers", "2", "--bind", "0.0.0.0:8000", "api.app:create_app()"]
    assert commands["beat"] == ["waq", "beat"]
    assert commands["flower"] == ["waq", "flower", "--port", "5555", "--address", "0.0.0.0"]
    for name, args in commands.items():
        if args[0] != "gunicorn":
            check_command(args)
    check_command(commands["api"])  # last: it may skip until api/app.py exists


def test_every_service_has_a_working_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        health = svc.get("healthcheck")
        assert health and not health.get("disable"), f"{name} has no healthcheck"
        test = health["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test must be CMD or CMD-SHELL"
        if name in ours(services):
            check_command(argv(test[1]) if test[0] == "CMD-SHELL" else test[1:])


def test_worker_probes_ping_their_own_celery_node(services: dict[str, dict[str, Any]]) -> None:
    """The worker names itself <session>@<hostname> (cli.worker) and beat beat@<hostname> ($$ escapes compose)."""
    for name, svc in ours(services).items():
        args = argv(svc["command"])
        if args[:2] == ["waq", "worker"]:
            node = args[args.index("--session") + 1]
        elif args[:2] == ["waq", "beat"]:
            node = "beat"
        else:
            continue
        probe = argv(svc["healthcheck"]["test"][1])
        assert probe[probe.index("--destination") + 1] == f"{node}@$$HOSTNAME", name


def test_api_and_flower_probes_hit_their_own_port(services: dict[str, dict[str, Any]]) -> None:
    assert "http://127.0.0.1:8000/healthz" in services["api"]["healthcheck"]["test"][-1]
    assert "http://127.0.0.1:5555/healthcheck" in services["flower"]["healthcheck"]["test"][-1]  # Flower's, no auth


# ---- settings and sessions ---------------------------------------------------------------------------------------
def test_every_waq_variable_is_a_setting_and_parses(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        env = environment(svc)
        unknown = {key for key in env if key.startswith("WAQ_")} - SETTING_VARS
        assert not unknown, f"{name} sets WAQ_* variables Settings does not read: {unknown}"
        literal: dict[str, str] = {}
        for key, value in env.items():
            match = INTERPOLATION.match(value)
            if match is None:
                literal[key] = value
            elif match["op"] in (":-", "-"):
                literal[key] = match["arg"]  # the default compose uses when the variable is unset
        Settings.from_env(literal)  # raises ConfigError naming a bad value


def test_store_and_broker_urls(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in ours(services).items():
        env = environment(svc)
        assert env["WAQ_STORE_URL"] == "mongodb://mongo:27017/waq", name
        assert env["WAQ_BROKER_URL"] == "redis://redis:6379/0", name
        assert env["WAQ_DATA_DIR"] == "/data", name
        assert {"redis", "mongo"} <= set(svc["depends_on"]), name


def test_every_session_has_a_worker_with_its_own_profile_volume(services: dict[str, dict[str, Any]],
                                                                compose: dict[str, Any]) -> None:
    declared = {environment(svc)["WAQ_SESSIONS"] for svc in ours(services).values()}
    assert len(declared) == 1, f"services disagree on WAQ_SESSIONS: {declared}"
    sessions = Settings.from_env({"WAQ_SESSIONS": declared.pop()}).sessions
    assert sessions == ("primary", "secondary")
    workers: dict[str, dict[str, Any]] = {}
    for svc in ours(services).values():
        args = argv(svc["command"])
        if args[:2] == ["waq", "worker"]:
            workers[args[args.index("--session") + 1]] = svc
    assert sorted(workers) == sorted(sessions), "one worker service per session, and none for unknown sessions"
    volumes = []
    for session, svc in workers.items():
        mounts = [v.split(":") for v in svc["volumes"]]
        data = [source for source, target, *_ in mounts if target == "/data"]
        assert len(data) == 1, f"worker {session} needs its own volume at /data (its Chrome profile)"
        assert data[0] in compose["volumes"], f"{data[0]} is not a named volume"
        volumes.append(data[0])
        assert svc.get("shm_size"), f"worker {session}: Chromium needs more than the default /dev/shm"
    assert len(set(volumes)) == len(volumes), "two sessions must never share a Chrome profile"


def test_redis_keeps_an_append_only_file_on_a_volume(services: dict[str, dict[str, Any]],
                                                     compose: dict[str, Any]) -> None:
    redis = services["redis"]
    command = argv(redis["command"])
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") and v.split(":")[0] in compose["volumes"] for v in redis["volumes"])
    assert any(v.endswith(":/data/db") and v.split(":")[0] in compose["volumes"] for v in services["mongo"]["volumes"])


# ---- secrets -----------------------------------------------------------------------------------------------------
def test_no_literal_secrets(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for key, value in environment(svc).items():
            if not SECRET_NAME.search(key) or value == "":
                continue
            match = INTERPOLATION.match(value)
            assert match, f"{name}: {key} must come from the environment (${{{key}:?...}}), not be written here"
            assert match["var"] == key, f"{name}: {key} is read from ${match['var']}"
            assert match["op"] in (":?", "?") or not match["arg"], f"{name}: {key} has a literal default"
    assert "${WAQ_API_KEYS:?" in environment(services["api"])["WAQ_API_KEYS"]
    assert "${WAQ_FLOWER_AUTH:?" in environment(services["flower"])["WAQ_FLOWER_AUTH"]
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", COMPOSE.read_text()), "a URL with a password"


# ---- Dockerfile --------------------------------------------------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_installs_chromium_and_its_driver() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    installs = [args for op, args in instructions if op == "RUN" and "apt-get install" in args]
    packages = set(" ".join(installs).split())
    assert {"chromium", "chromium-driver"} <= packages
    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "pip install ." in runs


def test_dockerfile_runs_as_a_user_with_data_in_data() -> None:
    instructions = dockerfile_instructions()
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the processes must not run as root"
    env = " ".join(args for op, args in instructions if op == "ENV")
    assert "WAQ_DATA_DIR=/data" in env
    health = [args for op, args in instructions if op == "HEALTHCHECK"]
    assert health, "the image needs a HEALTHCHECK"
    probe = health[0].split("CMD", 1)[1].strip()
    check_command(__import__("json").loads(probe))


def test_dockerfile_copies_what_exists() -> None:
    for op, args in dockerfile_instructions():
        if op == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"

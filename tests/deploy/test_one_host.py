"""The top-level docker-compose.yml (the whole system on one host) checked as tests/deploy checks deploy/: the same
image and seccomp profile as deploy/, the same commands and probes, a health check on every service, secrets only
from the environment, a worker per session, and no host port but the API's and Flower's, on loopback by default."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.deploy.compose_files import APP, DEPLOY, INFRA, SAMPLE_ENV, WORKER, environment, load, ours, raw, variables
from tests.helpers.constants import ROOT

ONE_HOST = ROOT / "docker-compose.yml"
SECRETS = ("MONGO_ROOT_PASSWORD", "MONGO_APP_PASSWORD", "MONGO_REPLICA_KEY", "REDIS_PASSWORD", "WAQ_API_KEYS",
           "WAQ_FLOWER_AUTH")


@pytest.fixture(scope="module")
def one_host() -> dict[str, Any]:
    return load(ONE_HOST)


@pytest.fixture(scope="module")
def deploy() -> dict[str, dict[str, Any]]:
    env = {**SAMPLE_ENV, "INFRA_HOST": "10.0.0.5"}
    services: dict[str, dict[str, Any]] = {}
    for path in (INFRA, APP, WORKER):
        services.update(load(path, env)["services"])
    return services


def test_the_same_services_as_deploy_run_on_one_host(one_host: dict[str, Any], deploy: dict[str, Any]) -> None:
    assert set(one_host["services"]) == set(deploy)
    for name, svc in one_host["services"].items():
        assert svc.get("command") == deploy[name].get("command"), name
        assert svc.get("image") == deploy[name].get("image"), name
        assert svc.get("healthcheck", {}).get("test") == deploy[name].get("healthcheck", {}).get("test"), name


def test_built_from_the_top_level_dockerfile(one_host: dict[str, Any]) -> None:
    built = ours(one_host["services"])
    assert set(built) == {"api", "beat", "callbacks", "flower", "worker-primary", "worker-secondary"}
    assert all(svc["build"] == {"context": "."} for svc in built.values())
    assert (ROOT / "Dockerfile").is_file()


def test_every_worker_runs_under_deploys_seccomp_profile(one_host: dict[str, Any]) -> None:
    workers = {name: svc for name, svc in one_host["services"].items() if name.startswith("worker-")}
    deploy_profile = raw(WORKER)["x-worker"]["security_opt"]
    assert deploy_profile == ["seccomp=./chrome-seccomp.json"]
    for name, svc in workers.items():
        assert svc["security_opt"] == ["seccomp=./deploy/chrome-seccomp.json"], name
        assert (ROOT / "deploy" / "chrome-seccomp.json").is_file()
        assert environment(svc)["WAQ_CHROME_SANDBOX"] == "on"
    others = [name for name, svc in one_host["services"].items() if "security_opt" in svc and name not in workers]
    assert others == []


def test_every_long_running_service_has_a_health_check(one_host: dict[str, Any]) -> None:
    missing = [name for name, svc in one_host["services"].items()
               if name != "mongo-init" and not svc.get("healthcheck", {}).get("test")]
    assert missing == []


def test_secrets_come_from_the_environment() -> None:
    text = ONE_HOST.read_text()
    required = {name for name, op, _ in variables(text) if op == ":?"}
    assert set(SECRETS) <= required
    for secret in SECRETS:
        env = {key: value for key, value in SAMPLE_ENV.items() if key != secret}
        with pytest.raises(Exception, match=secret):
            load(ONE_HOST, env)


def test_only_the_api_and_flower_are_published_on_loopback(one_host: dict[str, Any]) -> None:
    ports = {name: svc["ports"] for name, svc in one_host["services"].items() if svc.get("ports")}
    assert ports == {"api": ["127.0.0.1:8000:8000"], "flower": ["127.0.0.1:5555:5555"]}


def test_one_worker_by_default_and_a_service_for_every_session(one_host: dict[str, Any]) -> None:
    services = one_host["services"]
    assert environment(services["api"])["WAQ_SESSIONS"] == "primary"
    started = [name for name, svc in services.items() if name.startswith("worker-") and not svc.get("profiles")]
    assert started == ["worker-primary"]
    two = load(ONE_HOST, {**SAMPLE_ENV, "WAQ_SESSIONS": "primary,secondary"})["services"]
    for session in environment(two["api"])["WAQ_SESSIONS"].split(","):
        worker = two[f"worker-{session}"]
        assert worker["command"] == ["waq", "worker", "--session", session]
        assert worker["volumes"] == [f"profile-{session}:/data"]
    assert services["worker-secondary"]["profiles"] == ["secondary"]


def test_mounted_files_exist(one_host: dict[str, Any]) -> None:
    for name, svc in one_host["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), (name, source)
                assert (DEPLOY / source.removeprefix("./deploy/")).is_file()


def _compose() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    compose = _compose()
    if compose is None:
        pytest.skip("Docker Compose is not installed here (`docker compose version` fails, no docker-compose)")
    env = {**SAMPLE_ENV, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run([*compose, "-f", str(ONE_HOST), "config", "--quiet"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr

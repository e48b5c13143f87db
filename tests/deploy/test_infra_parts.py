"""The parts of the deployment that run here for real: Redis started with the infra file's own arguments and probed
with its healthcheck, the app's password-carrying WAQ_BROKER_URL through `waq doctor` and Celery, Flower's
/metrics behind its basic auth, and the MongoDB helper scripts (no mongod runs here: see docs/deployment.md)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.deploy.compose_files import APP, DEPLOY, INFRA, SAMPLE_ENV, argv, environment, load, redis_server_args
from tests.helpers.constants import ROOT
from tests.helpers.processes import Proc
from tests.helpers.waiting import wait_for
from wa_queue.celery_app import make_celery
from wa_queue.devstack.flower import flower_argv, flower_env
from wa_queue.devstack.ports import free_port
from wa_queue.settings import Settings

PASSWORD = SAMPLE_ENV["REDIS_PASSWORD"]
PIDS: dict[str, int] = {}


@pytest.fixture(scope="module")
def infra_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """redis-server with the arguments of deploy/compose.infra.yml (port and folder are this test's)."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: run `make test` (it installs it)"
    workdir = tmp_path_factory.mktemp("infra-redis")
    port = free_port()
    args = redis_server_args(load(INFRA), PASSWORD)
    proc = subprocess.Popen([binary, *args, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={k: v for k, v in os.environ.items() if not k.startswith("WAQ_")})
    client = redis.Redis(port=port, password=PASSWORD)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_for(answers, 10, what="redis-server with the infra file's arguments")
        PIDS["redis"] = proc.pid
        yield port
    finally:
        proc.kill()
        proc.wait(10)


def broker_url(port: int, password: str = PASSWORD) -> str:
    """The app file's WAQ_BROKER_URL, pointed at this test's Redis."""
    url = environment(load(APP)["services"]["api"])["WAQ_BROKER_URL"]
    assert url == f"redis://:{PASSWORD}@redis:6379/0"
    return url.replace("@redis:6379", f"@127.0.0.1:{port}").replace(PASSWORD, password)


@pytest.mark.services  # the infra file's redis-server (infra_redis)
def test_redis_refuses_clients_without_the_password(infra_redis: int) -> None:
    once = Retry(NoBackoff(), 0)  # redis-py retries a refused login with back-off by default: seconds for nothing
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=infra_redis, retry=once).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=infra_redis, password="not-the-password", retry=once).ping()


@pytest.mark.services  # the infra file's redis-server (infra_redis)
def test_redis_hides_its_password_from_the_process_list(infra_redis: int) -> None:
    """The password is on redis-server's command line (from its shell): Redis rewrites its process title."""
    cmdline = Path(f"/proc/{PIDS['redis']}/cmdline").read_bytes()
    assert f"redis-server 127.0.0.1:{infra_redis}".encode() in cmdline  # the title it wrote over its arguments
    assert PASSWORD.encode() not in cmdline


@pytest.mark.services  # the infra file's redis-server (infra_redis)
def test_redis_keeps_an_aof_and_never_evicts(infra_redis: int) -> None:
    config = redis.Redis(port=infra_redis, password=PASSWORD, decode_responses=True).config_get("*")
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["maxmemory-policy"] == "noeviction"
    assert int(config["maxmemory"]) == 512 << 20


@pytest.mark.services  # the infra file's redis-server (infra_redis)
def test_redis_healthcheck_needs_the_working_password(infra_redis: int) -> None:
    test = load(INFRA)["services"]["redis"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and test[1].startswith("redis-cli ")
    probe = test[1].replace("redis-cli ", f"redis-cli -p {infra_redis} ", 1)

    def run(password: str | None) -> int:
        env = {"PATH": os.environ["PATH"], **({"REDISCLI_AUTH": password} if password is not None else {})}
        return subprocess.run(["sh", "-c", probe], env=env, capture_output=True, timeout=30).returncode

    assert run(PASSWORD) == 0
    assert run("not-the-password") != 0
    assert run(None) != 0


def _waq_doctor_broker(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WAQ_")},
           "WAQ_BROKER_URL": url, "WAQ_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "wa_queue.cli", "doctor", "--check", "broker"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.services  # the infra file's redis-server (infra_redis)
def test_the_app_reaches_redis_with_the_password_in_its_url(infra_redis: int, tmp_path: Path) -> None:
    """The Dockerfile's probe path (`waq doctor`) and Celery's own connection both take the password from the URL."""
    url = broker_url(infra_redis)
    done = _waq_doctor_broker(url, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert PASSWORD not in done.stdout + done.stderr, "doctor must redact the password"
    wrong = _waq_doctor_broker(broker_url(infra_redis, "not-the-password"), tmp_path)
    assert wrong.returncode != 0

    app = make_celery(Settings(broker_url=url))
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.1, interval_max=0.1)
    bad = make_celery(Settings(broker_url=broker_url(infra_redis, "not-the-password")))
    with bad.connection_for_write() as conn, pytest.raises(Exception, match="(?i)auth|password|WRONGPASS"):
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.1, interval_max=0.1)


def _get(url: str, auth: str | None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - local test server
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.services  # the infra file's redis-server (infra_redis) and a real Flower
@pytest.mark.timeout(120)
def test_flower_metrics_need_the_basic_auth(infra_redis: int, tmp_path: Path) -> None:
    """As the app file starts it: Flower with WAQ_FLOWER_AUTH, on the password-protected broker."""
    flower_cmd = argv(load(APP)["services"]["flower"]["command"])
    assert flower_cmd[:2] == ["waq", "flower"]
    auth = SAMPLE_ENV["WAQ_FLOWER_AUTH"]
    env = {"WAQ_BROKER_URL": broker_url(infra_redis), "WAQ_DATA_DIR": str(tmp_path / "data"),
           "WAQ_FLOWER_AUTH": auth}
    settings = Settings.from_env(env)
    port = free_port()
    flower = Proc(flower_argv(settings, port, auth_in_env=True), {**env, **flower_env(settings)},
                  tmp_path / "flower.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(f"{base}/healthcheck", None) == 200 or not flower.alive(), 60, 0.5, "Flower to answer")
        assert flower.alive(), (tmp_path / "flower.log").read_text()[-3000:]
        assert _get(f"{base}/healthcheck", None) == 200  # the container probe needs no credentials
        assert _get(f"{base}/metrics", None) == 401
        assert _get(f"{base}/metrics", "admin:wrong-password-1") == 401
        assert _get(f"{base}/metrics", auth) == 200
        assert _get(f"{base}/api/workers", None) == 401
    finally:
        flower.stop()


@pytest.mark.parametrize("key", ["", "short", "not base64 at all!", "A" * 1025])
def test_mongo_keyfile_script_refuses_a_bad_key(key: str, tmp_path: Path) -> None:
    """It stops before writing anything: a member with a bad key must not start half-configured."""
    done = subprocess.run(["bash", str(DEPLOY / "mongo-keyfile.sh"), "mongod"], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "MONGO_REPLICA_KEY": key}, timeout=30)
    assert done.returncode == 1
    assert "MONGO_REPLICA_KEY must be 6-1024 base64 characters" in done.stderr


def test_mongo_keyfile_script_writes_the_key_then_runs_the_image_entrypoint(tmp_path: Path) -> None:
    """With the key given, the script reaches the image's docker-entrypoint.sh with mongod's arguments (a stand-in
    here, since no MongoDB image runs: it reports what it was given). Run as root, like the image's entrypoint."""
    if os.geteuid() != 0:
        pytest.skip("the script chowns the keyfile to mongodb, which needs root")
    script = (DEPLOY / "mongo-keyfile.sh").read_text()
    keyfile = tmp_path / "run" / "keyfile"
    assert "keyfile=/run/mongo/keyfile" in script
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker-entrypoint.sh").write_text(
        '#!/bin/sh\nstat -c "%a %U" "$KEYFILE"; cat "$KEYFILE"; echo "args: $*"; '
        'echo "key in env: ${MONGO_REPLICA_KEY:-none}"\n')
    (bin_dir / "docker-entrypoint.sh").chmod(0o755)
    (bin_dir / "chown").write_text('#!/bin/sh\n[ "$1" = mongodb:mongodb ] && exec /bin/chown root:root "$2"\nexit 3\n')
    (bin_dir / "chown").chmod(0o755)
    patched = tmp_path / "mongo-keyfile.sh"
    patched.write_text(script.replace("keyfile=/run/mongo/keyfile", f"keyfile={keyfile}"))
    key = SAMPLE_ENV["MONGO_REPLICA_KEY"]
    done = subprocess.run(["bash", str(patched), "mongod", "--replSet", "rs0"], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "MONGO_REPLICA_KEY": key,
                               "KEYFILE": str(keyfile)}, timeout=30)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "400 root"  # mode 400; the owner is mongodb in the image
    assert lines[1] == key
    assert lines[2] == "args: mongod --replSet rs0"
    assert lines[3] == "key in env: none", "the key must not stay in mongod's environment"


def test_mongo_init_script_is_valid_javascript() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the mongosh script's syntax cannot be checked")
    done = subprocess.run([node, "--check", str(DEPLOY / "mongo-init.js")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_flower_that_routes_metrics_elsewhere_refuses_to_start() -> None:
    """protect_metrics wraps one known handler; if a Flower version serves /metrics from another, starting it would
    serve the metrics open, so it raises instead. (In a child: under pytest, tests/flower shadows the package.)"""
    script = """
from flower import urls
from flower.views import monitor
from wa_queue.errors import ConfigError
from wa_queue.devstack.flower import protect_metrics

class OtherMetrics(monitor.Metrics):
    pass

urls.handlers = [("/metrics", OtherMetrics) if isinstance(spec, tuple) and spec[0] == "/metrics" else spec
                 for spec in urls.handlers]
try:
    protect_metrics()
except ConfigError as exc:
    print("refused:", exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: this Flower routes /metrics to"), done.stdout

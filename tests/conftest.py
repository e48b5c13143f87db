"""Shared fixtures: real services started by the tests themselves, on free ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False, help="also run the long forms (chaos, scale)")
    parser.addoption("--chaos-seed", type=int, default=None, help="seed of the chaos suite (default: random)")
    parser.addoption("--chaos-clock-skew-s", type=float, default=None,
                     help="shift every time the simulator's page shows in the chaos suite (default: 0 for the short "
                          "form, -240 for the long one)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--long"):
        skip = pytest.mark.skip(reason="long form: run with --long (make test-long)")
        for item in items:
            if "long" in item.keywords:
                item.add_marker(skip)
    _build_ferretdb_if_needed(config, items)


def _needs_mongo_server(item: pytest.Item) -> bool:
    if "long" in item.keywords and not item.config.getoption("--long"):
        return False
    callspec = getattr(item, "callspec", None)
    return ({"mongo_server", "mongo_store_url"} & set(getattr(item, "fixturenames", ()))
            or (callspec is not None and "ferretdb" in callspec.params.values()))


def _build_ferretdb_if_needed(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Build FerretDB once collection shows a test needs it, outside any test: a first build (a few minutes on a
    cold Go cache) is not charged to one test's timeout. A failure is kept and raised by mongo_server."""
    from tests.helpers import ferretdb

    if config.getoption("collectonly") or ferretdb.go_problem() or os.environ.get(ferretdb.MONGO_URL_VARIABLE):
        return
    if any(_needs_mongo_server(item) for item in items):
        try:
            ferretdb.ensure_binary()
        except (ferretdb.BuildFailed, OSError, subprocess.SubprocessError) as exc:
            config.stash[FERRETDB_BUILD_ERROR] = exc


FERRETDB_BUILD_ERROR = pytest.StashKey[Exception]()


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    """One line when the FerretDB tests were skipped for want of Go (the only reason they may skip)."""
    from tests.helpers import ferretdb

    problem = ferretdb.go_problem()
    if problem and any(problem in str(report.longrepr) for report in terminalreporter.stats.get("skipped", [])):
        terminalreporter.write_line(problem)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def processes_of(data_dir: Path) -> list[int]:
    """Every live process whose environment names this data folder: what a test's stack started, Chrome and
    chromedriver included, whatever process group they moved to."""
    from wa_queue.transport import procs

    return procs.with_environment("WAQ_DATA_DIR", str(data_dir))


class RedisServer:
    """A real redis-server on a free port, with nothing on disk."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test` (it installs it) or apt-get install")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("WAQ_")},  # not part of any stack
        )
        import redis

        client = redis.Redis(port=self.port)
        wait_for(lambda: _pings(client), 10, what="redis-server to answer")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart_empty(self) -> None:
        """Kill it and start a new one on the same port with nothing in it (a crash of a cache-only Redis)."""
        self.stop()
        self.start()

    def client(self):  # noqa: ANN201
        import redis

        return redis.Redis(port=self.port)


def _pings(client) -> bool:  # noqa: ANN001
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[object]:
    """A MongoDB server for the whole session: WAQ_TEST_MONGO_URL's when set, else FerretDB built and started here
    (tests/helpers/ferretdb.py); skipped, with one line at the end, only where no Go toolchain can build it."""
    from tests.helpers import ferretdb

    external = os.environ.get(ferretdb.MONGO_URL_VARIABLE)
    if external:
        yield ferretdb.ExternalMongo(external)
        return
    problem = ferretdb.go_problem()
    if problem:
        pytest.skip(problem)
    failed = request.config.stash.get(FERRETDB_BUILD_ERROR, None)
    if failed is not None:
        raise failed  # Go is there and the build failed: every test that needs the server fails with why
    server = ferretdb.FerretDB(tmp_path_factory.mktemp("ferretdb")).start()
    yield server
    server.stop()


@pytest.fixture
def mongo_store_url(mongo_server) -> Iterator[str]:  # noqa: ANN001
    """A fresh database on the session's server, dropped afterwards: a test's own store."""
    from tests.helpers import ferretdb

    url = f"{mongo_server.url}/waq_test_{uuid.uuid4().hex[:12]}"
    yield url
    ferretdb.drop_database(url)


STORES = ("sqlite", "ferretdb")  # the stores a multi-process test runs on: parametrize("store_backend", ..., indirect)
# The same, its MongoDB form only with --long (what issue 23 does not ask `make test` to run twice).
STORES_MONGO_LONG = ("sqlite", pytest.param("ferretdb", marks=pytest.mark.long))


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """Which store a test's processes share: "sqlite" unless the test parametrises it (indirect) with "ferretdb",
    a MongoDB server (FerretDB, or WAQ_TEST_MONGO_URL's MongoDB)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def store_url(store_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """WAQ_STORE_URL of the test's store: a fresh SQLite file, or a fresh database on the session's MongoDB server."""
    if store_backend == "ferretdb":
        return request.getfixturevalue("mongo_store_url")
    return f"sqlite:///{tmp_path / 'data' / 'waq.db'}"


@pytest.fixture
def waq_env(tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch,
            store_url: str) -> Iterator[dict[str, str]]:
    """In-process settings pointing at a fresh store (SQLite unless `store_backend` says otherwise) and a clean broker
    DB; the same dict serves as the environment of worker subprocesses."""
    redis_server.client().flushall()
    env = {
        "WAQ_DATA_DIR": str(tmp_path / "data"),
        "WAQ_STORE_URL": store_url,
        "WAQ_BROKER_URL": redis_server.url,
        "WAQ_SESSIONS": "primary,secondary",
        "WAQ_TRANSPORT": "fake",
        "WAQ_MIN_DELAY_S": "0",
        "WAQ_MAX_DELAY_S": "0",
        "WAQ_RETRY_DELAYS": "1s,1s,2s,2s,3s",
        "WAQ_LEASE_S": "20",
        "WAQ_DISPATCH_INTERVAL_S": "1",
        "WAQ_RECOVER_INTERVAL_S": "2",
        "WAQ_REDISPATCH_AFTER_S": "5",
        "WAQ_HEALTH_INTERVAL_S": "2",
        "WAQ_RECONNECT_UNIT_S": "1",
        "WAQ_WARMUP_CAPS": "",  # no warm-up ramp (a new session's 20 a day would park most of a test's messages)
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from wa_queue.app import close_default_app

    # The test's App is the default one (wa_queue.app.default_app()), built on first use from these settings; a
    # test that changes the settings closes it (close_default_app) and the next use builds another.
    close_default_app()
    yield env
    close_default_app()  # publishes what its relay holds: nothing of this test reaches the next one's broker


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


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[callable]:
    """Start `waq ...` processes; all are stopped (process group, SIGTERM then SIGKILL) at the end."""
    started: list[Proc] = []

    def start(args: list[str], env: dict[str, str], name: str) -> Proc:
        proc = Proc([sys.executable, "-m", "wa_queue.cli", *args], env, tmp_path / f"{name}.log")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()

"""The suite's hooks (options, markers, FerretDB's build) and shared fixtures: real services started by the tests
themselves, on free ports. Helpers live in tests/helpers/."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import markers
from tests.helpers.processes import Proc
from tests.helpers.services import isolated_redis
from tests.helpers.stores import ADAPTERS, open_adapter

if TYPE_CHECKING:
    from wa_queue.devstack.redis_server import RedisServer
    from wa_queue.store.base import MessageStore


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False, help="also run the long forms (chaos, scale)")
    parser.addoption("--chaos-seed", type=int, default=None, help="seed of the chaos suite (default: random)")
    parser.addoption("--chaos-clock-skew-s", type=float, default=None,
                     help="shift every time the simulator's page shows in the chaos suite (default: 0 for the short "
                          "form, -240 for the long one)")


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the markers it reads are set here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _mark_needs(items)
    if not config.getoption("--long"):
        skip = pytest.mark.skip(reason="long form: run with --long (make test-long)")
        for item in items:
            if "long" in item.keywords:
                item.add_marker(skip)
    _build_ferretdb_if_needed(config, items)


def _mark_needs(items: list[pytest.Item]) -> None:
    """browser / services / slow from the folder, fixtures and parameters (tests/helpers/markers.py)."""
    tests_dir = Path(__file__).parent
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        relpath = item.path.relative_to(tests_dir).as_posix() if item.path.is_relative_to(tests_dir) else ""
        for name in sorted(markers.marks_for(relpath, getattr(item, "fixturenames", ()), params) - set(
                m.name for m in item.iter_markers())):
            item.add_marker(name)


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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = isolated_redis(tmp_path_factory.mktemp("redis")).start()
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


@pytest.fixture(params=ADAPTERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    """A fresh store of each adapter (SQLite, mongomock, a real server); a module narrows the kinds with
    parametrize("store", [...], indirect=True)."""
    adapter = open_adapter(request.param, tmp_path, lambda: request.getfixturevalue("mongo_store_url"))
    yield adapter
    adapter.close()


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
    from wa_queue.hub import close_default_hub

    # The test's Hub is the default one (wa_queue.hub.default_hub()), built on first use from these settings; a
    # test that changes the settings closes it (close_default_hub) and the next use builds another.
    close_default_hub()
    yield env
    close_default_hub()  # publishes what its relay holds: nothing of this test reaches the next one's broker


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

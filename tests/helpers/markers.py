"""Which tests need Chromium (`browser`), a service process (`services`: redis-server, Celery workers, FerretDB,
gunicorn, Flower) or wait on time (`slow`): the rule conftest's pytest_collection_modifyitems applies, so that
`make test-fast` (-m "not browser and not services and not slow") runs only what needs none of them.

A test gets a marker from its folder, from a fixture it uses (the whole closure: waq_env brings redis_server), from a
parameter that names such a store or sender, or from its own `pytest.mark`. tests/unit/test_markers.py checks the
rule against the suite."""

from __future__ import annotations

from collections.abc import Iterable

KINDS = ("browser", "services", "slow")

# Folders where every test drives Chromium, runs real processes, or waits for them.
FOLDERS: dict[str, frozenset[str]] = {
    "browser": frozenset({"browser"}),  # the Selenium sender and Swagger UI in real Chromium
    "chaos": frozenset({"browser", "services", "slow"}),
    "integration": frozenset({"services", "slow"}),
    "smoke": frozenset({"services", "slow"}),
    "flower": frozenset({"services"}),
    "scale": frozenset({"slow"}),
}

# Fixtures that start a service or a browser; a test that uses one, directly or through another fixture, needs it.
FIXTURES: dict[str, str] = {
    "redis_server": "services",
    "mongo_server": "services",
    "mongo_store_url": "services",
    "procs": "services",  # `waq ...` processes
    "browser": "browser",  # the simulator tests' Chromium (tests/simulator/conftest.py)
}

# Parameter values that pick a real server or a real browser: the ferretdb / mongo store, the selenium sender.
PARAMS: dict[str, str] = {"ferretdb": "services", "mongo": "services", "selenium": "browser"}


def marks_for(relpath: str, fixturenames: Iterable[str], params: Iterable[object] = ()) -> set[str]:
    """The markers a test at relpath (relative to tests/, with '/') gets from its folder, fixtures and parameters."""
    parts = relpath.split("/")
    found = set(FOLDERS.get(parts[0], ())) if len(parts) > 1 else set()
    found |= {FIXTURES[name] for name in fixturenames if name in FIXTURES}
    found |= {PARAMS[value] for value in params if isinstance(value, str) and value in PARAMS}
    return found

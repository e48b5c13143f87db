"""Rules of the wiring (issue 14), read from the source with ast: the REST API and the CLI reach the store only
through the operations module (wa_queue/operations.py); no module of wa_queue/ but the simulator imports Flask; hub.py
does not import the operations module; and no module keeps process state in a global but the default Hub, the
Selenium sender's registry of live browsers and the in-memory MongoDB of mongomock:// URLs."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.mutable_globals import ROOT, module_state, mutable_globals

OPERATIONS = "wa_queue.operations"
STORE_MODULES = ("wa_queue.store", "wa_queue.recovery", "wa_queue.sessions", "wa_queue.delivery")
STORE_NAMES = {"store", "_store", "open_store", "MessageStore"}


def _modules(*folders: str) -> Iterator[tuple[Path, ast.Module]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT), ast.parse(path.read_text())


def store_access(tree: ast.Module) -> list[str]:
    """Every place `tree` could reach a store other than through the operations module: an import of a module that
    hands out stores or works on one (its constants excepted), or a name or attribute that is a store. Building
    the Hub (wa_queue/hub.py) is allowed: an entry point does, then hands it to the operations."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            constants = all(alias.name.isupper() for alias in node.names)
            if not constants and any(m == s or m.startswith(s + ".") for m in modules for s in STORE_MODULES):
                found.append(f"line {node.lineno}: from {node.module} import "
                             + ", ".join(alias.name for alias in node.names))
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {alias.name}" for alias in node.names
                      if any(alias.name == s or alias.name.startswith(s + ".") for s in STORE_MODULES)]
        elif isinstance(node, ast.Attribute) and node.attr in STORE_NAMES:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in STORE_NAMES:
            found.append(f"line {node.lineno}: {node.id}")
    return found


def test_api_and_cli_reach_the_store_only_through_the_operations_module() -> None:
    offences = {str(path): found for path, tree in _modules("api", "wa_queue/cli") if (found := store_access(tree))}
    assert offences == {}


def test_the_store_rule_sees_an_offence() -> None:
    tree = ast.parse("from wa_queue.store import open_store\n\ndef f(app):\n    return app.store.get('x')\n")
    assert store_access(tree) == ["line 1: from wa_queue.store import open_store", "line 4: .store"]
    assert store_access(ast.parse("from wa_queue import operations\noperations.get_message(app, 'x')\n")) == []


def _imports_flask(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        if any(name == "flask" or name.startswith(("flask.", "flask_")) for name in names):
            return True
    return False


def test_no_module_of_wa_queue_imports_flask_but_the_simulator() -> None:
    offenders = [str(path) for path, tree in _modules("wa_queue")
                 if not path.parts[1] == "simulator" and _imports_flask(tree)]
    assert offenders == []
    assert _imports_flask(ast.parse("from flask import Flask")) and _imports_flask(ast.parse("import flask_restx"))
    assert any(_imports_flask(tree) for path, tree in _modules("wa_queue/simulator"))


def test_process_state_lives_in_the_hub() -> None:
    # _MOCK_CLIENT stands in for a MongoDB server (store/mongo.py, mongomock:// URLs in tests): like a server, it
    # outlives the Hubs that open it, so two opens of one URL see the same data.
    names = {entry.split(" ", 1)[1] for entry in mutable_globals()}
    assert names <= {"_default", "_live", "_MOCK_CLIENT"}, mutable_globals()


def _state(source: str) -> dict[str, int]:
    return module_state(ast.parse(source))


def test_the_detector_sees_a_handle_built_at_import() -> None:
    # wa_queue/celery_app.py built its Celery app at import, from the environment
    assert _state("def make_celery(settings=None):\n    return Celery('x')\n\napp = make_celery()\n") == {"app": 4}
    assert _state("from celery import Celery\ncelery = Celery('wa_queue', broker='redis://')\n") == {"celery": 2}
    assert _state("import redis\nBROKER = redis.Redis.from_url('redis://')\n") == {"BROKER": 2}
    assert _state("settings = Settings.from_env()\nhub = Hub.build()\n") == {"settings": 1, "hub": 2}
    # declarations and values are not handles
    assert _state("ns = Namespace('x')\nlog = logging.getLogger(__name__)\nHORIZON = timedelta(days=7)\n") == {}


def test_the_detector_sees_a_cache_filled_through_global() -> None:
    # wa_queue/settings.py cached the settings in `_cached`, bound to None and filled on first use
    settings_cache = ("_cached: Settings | None = None\n\ndef get_settings():\n    global _cached\n"
                      "    if _cached is None:\n        _cached = Settings.from_env()\n    return _cached\n")
    assert _state(settings_cache) == {"_cached": 1}
    # an ALL_CAPS name is no constant when a function rebinds it (store/mongo.py's _MOCK_CLIENT)
    assert _state("_CLIENT = None\n\ndef client():\n    global _CLIENT\n    _CLIENT = _CLIENT or make()\n") \
        == {"_CLIENT": 1}
    assert _state("LIMIT = None\n\ndef limit():\n    return LIMIT\n") == {}


def _imports(tree: ast.Module, module: str) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == module or any(f"{node.module}.{alias.name}" == module for alias in node.names):
                return True
        elif isinstance(node, ast.Import) and any(alias.name == module for alias in node.names):
            return True
    return False


def test_the_hub_does_not_import_the_operations_module() -> None:
    """operations.py takes a Hub; hub.py builds the group commit from group_commit.py, not from operations.py."""
    assert not _imports(ast.parse((ROOT / "wa_queue" / "hub.py").read_text()), OPERATIONS)
    assert _imports(ast.parse("def f():\n    from wa_queue import operations\n"), OPERATIONS)
    assert _imports(ast.parse("import wa_queue.operations\n"), OPERATIONS)


def proc_paths(tree: ast.Module) -> list[int]:
    """The lines of `tree` whose code names a /proc path: a string constant that is not a docstring."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.startswith("/proc") and id(node) not in docstrings]


def test_procs_is_the_one_reader_of_proc() -> None:
    readers = {str(path): lines for path, tree in _modules("wa_queue", "workers", "api") if (lines := proc_paths(tree))}
    assert set(readers) == {"wa_queue/procs.py"}, readers


def test_the_proc_rule_sees_an_offence() -> None:
    assert proc_paths(ast.parse('"""Reads /proc/meminfo."""\nimport os\nos.readlink("/proc/self/ns/pid")\n')) == [3]

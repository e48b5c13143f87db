"""Module-level mutable globals of the package (wa_queue/, api/, workers/), found with ast.

A global is a module-level name bound to a list, dict or set (literal or comprehension) or to an object built by a
call, which its module then changes: an item or attribute assignment, an augmented assignment, a mutating method
(append, update, ...), a `global` rebinding, or any method call on an object of a capitalised class that is not
known to be immutable. Constants (ALL_CAPS names) and Final annotations are not counted, with two exceptions that
are process state whatever they are bound to: a name a function rebinds through `global` (`_cached = None` filled
in on first use, ALL_CAPS or not), and a name bound at module level to a factory of process handles (a Celery or
Flask app, a Redis or Mongo client, a Hub, settings read from the environment: `app = make_celery()`).

    python -m tests.helpers.mutable_globals     # prints them and their number
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.constants import ROOT

FOLDERS = ("wa_queue", "api", "workers")
_MUTATORS = {"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "add", "discard",
             "popitem", "appendleft", "sort", "reverse"}
_IMMUTABLE = {"TypeVar", "Path", "Final", "Exchange", "Queue", "Namespace", "Blueprint"}
_FACTORIES = {"Celery", "Flask", "Redis", "StrictRedis", "MongoClient", "Hub", "build", "default_hub", "from_env",
              "from_url", "read_settings", "get_settings", "open_store", "make_client"}
_FACTORY_PREFIXES = ("make_", "create_", "build_", "open_", "connect")
_CONTAINERS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp, ast.Call)


def _candidates(tree: ast.Module) -> tuple[dict[str, int], set[str]]:
    found: dict[str, int] = {}
    objects: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value, annotation = node.targets, node.value, None
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value, annotation = [node.target], node.value, node.annotation
        else:
            continue
        for target in targets:
            if not isinstance(target, ast.Name) or target.id.lstrip("_").isupper():
                continue
            if annotation is not None and "Final" in ast.unparse(annotation):
                continue
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id[:1].isupper() \
                    and value.func.id not in _IMMUTABLE:
                objects.add(target.id)
            if isinstance(value, _CONTAINERS):
                found[target.id] = node.lineno
    return found, objects


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _factory_bound(tree: ast.Module) -> dict[str, int]:
    """Module-level names bound to a call of a handle factory (see the module's docstring)."""
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call):
            callee = _callee(node.value)
            if callee in _FACTORIES or callee.startswith(_FACTORY_PREFIXES):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found.update({t.id: node.lineno for t in targets if isinstance(t, ast.Name)})
    return found


def _rebound_by_global(tree: ast.Module) -> dict[str, int]:
    """Names some function rebinds through `global`, with the line of their module-level binding (else of the
    `global` statement)."""
    declared = {name: node.lineno for node in ast.walk(tree) if isinstance(node, ast.Global) for name in node.names}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) \
            else []
        for target in targets:
            if isinstance(target, ast.Name) and target.id in declared:
                declared[target.id] = min(declared[target.id], node.lineno)
    return declared


def module_state(tree: ast.Module) -> dict[str, int]:
    """name -> line of every module-level mutable global of one module."""
    found, objects = _candidates(tree)
    state = {name: line for name, line in found.items() if _mutated(tree, name, name in objects)}
    state.update(_factory_bound(tree))
    state.update(_rebound_by_global(tree))
    return state


def _is(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _mutated(tree: ast.Module, name: str, is_object: bool) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            for target in flat:
                if isinstance(target, (ast.Subscript, ast.Attribute)) and _is(target.value, name):
                    return True
                if isinstance(node, ast.AugAssign) and _is(target, name):
                    return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is(node.func.value, name) \
                and (node.func.attr in _MUTATORS or is_object):
            return True
        if isinstance(node, ast.Global) and name in node.names:
            return True
    return False


def mutable_globals(root: Path = ROOT) -> list[str]:
    """'path:line name' of every module-level mutable global."""
    out = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            state = module_state(ast.parse(path.read_text()))
            out += [f"{path.relative_to(root)}:{line} {name}"
                    for name, line in sorted(state.items(), key=lambda item: item[1])]
    return out


if __name__ == "__main__":
    names = mutable_globals()
    print("\n".join(names))
    print(len(names))

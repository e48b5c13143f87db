"""docs/architecture.md's module table names every module of the code, so the map cannot fall behind the code."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers.constants import ROOT

CODE = ("wa_queue", "api", "workers", "bench", "tools")  # the folders of the program, its benches and its tools
TOP_LEVEL = ("beat_schedule.py",)
ROW = re.compile(r"^\| (?P<paths>[^|]+) \| (?P<what>.+) \|$")


def table_rows(text: str) -> list[tuple[str, str]]:
    """The rows of the "Module by module" table: (first cell, second cell)."""
    section = text.split("Module by module:", 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if not line.startswith("|") and rows:
            break
        found = ROW.match(line)
        if found and not found["paths"].startswith(("path", "---")):
            rows.append((found["paths"], found["what"]))
    return rows


def named_modules(rows: list[tuple[str, str]]) -> set[str]:
    """Each row's first cell names a path, then names beside it in the same folder (`a/b.py`, `c.py`); a folder
    (`bench/`) names its modules in the second cell."""
    named: set[str] = set()
    for paths, what in rows:
        items = re.findall(r"`([^`]+)`", paths)
        if not items:
            continue
        first = items[0]
        if first.endswith("/"):
            named |= {first + name for name in re.findall(r"`(\w+\.py)`", what)}
            continue
        folder = first.rsplit("/", 1)[0] + "/" if "/" in first else ""
        named.add(first)
        named |= {folder + item for item in items[1:] if item.endswith(".py") and "/" not in item}
    return named


def code_modules() -> set[str]:
    found = {path.relative_to(ROOT).as_posix() for folder in CODE for path in (ROOT / folder).rglob("*.py")
             if "__pycache__" not in path.parts and _says_something(path)}
    return found | set(TOP_LEVEL)


def _says_something(path: Path) -> bool:
    """An `__init__.py` that only marks a package (a docstring, comments, `from __future__`) is no module a reader
    looks for."""
    if path.name != "__init__.py":
        return True
    body = re.sub(r'""".*?"""', "", path.read_text(), count=1, flags=re.S)
    return any(line.strip() and not line.lstrip().startswith(("#", "from __future__ "))
               for line in body.splitlines())


def test_every_module_is_in_the_table() -> None:
    named = named_modules(table_rows((ROOT / "docs" / "architecture.md").read_text()))
    missing = sorted(code_modules() - named)
    assert not missing, f"docs/architecture.md's module table does not name: {missing}"


def test_the_table_names_no_module_that_is_gone() -> None:
    named = named_modules(table_rows((ROOT / "docs" / "architecture.md").read_text()))
    gone = sorted(path for path in named if path.endswith(".py") and not (ROOT / path).exists())
    assert not gone, f"docs/architecture.md's module table names modules that do not exist: {gone}"


def test_the_rule_reads_both_forms_of_a_row() -> None:
    rows = table_rows("Module by module:\n\n| path | what |\n|---|---|\n| `a/b.py`, `c.py` | x |\n"
                      "| `bench/` | runs (`d.py`, `e.py`, not `f/g.py`) |\n\nafter\n| `z.py` | not in the table |\n")
    assert named_modules(rows) == {"a/b.py", "a/c.py", "bench/d.py", "bench/e.py"}

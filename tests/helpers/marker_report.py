"""A pytest plugin for tests/unit/test_markers.py: after collection, writes each test's markers and the source of its
function and of every fixture it uses to the JSON file named by MARKER_REPORT."""

from __future__ import annotations

import inspect
import json
import os

import pytest


def _source(func: object) -> str:
    try:
        return inspect.getsource(func)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


def pytest_collection_finish(session: pytest.Session) -> None:
    report = []
    for item in session.items:
        sources = [_source(getattr(item, "function", None))]
        info = getattr(item, "_fixtureinfo", None)
        for defs in (info.name2fixturedefs.values() if info else ()):
            sources += [_source(d.func) for d in defs]
        report.append({"nodeid": item.nodeid, "markers": sorted({m.name for m in item.iter_markers()}),
                       "source": "\n".join(sources)})
    with open(os.environ["MARKER_REPORT"], "w") as handle:
        json.dump(report, handle)

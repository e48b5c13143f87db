"""The rule behind `make test-fast` (tests/helpers/markers.py): which tests are marked browser, services or slow,
and, over the whole suite, that a test whose code starts Chromium or a service process carries the marker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import markers
from tests.helpers.constants import ROOT

# What a test's own code (or a fixture's) does that needs Chromium, or a process of its own. (Building a
# SeleniumSender starts nothing: logging it in does.)
BROWSER_SIGNS = ("start_chrome(", "page_browser(", "log_in(", "Stack(", "webdriver.")
SERVICE_SIGNS = ("Proc(", "isolated_redis(", "RedisServer(", "Stack(", "start_api(", "FerretDB(")


def test_folders_fixtures_and_parameters_give_the_markers() -> None:
    assert markers.marks_for("browser/test_profiles.py", ()) == {"browser"}
    assert markers.marks_for("integration/test_pipeline.py", ()) == {"services", "slow"}
    assert markers.marks_for("unit/test_delivery.py", ("tmp_path",)) == set()
    assert markers.marks_for("unit/test_recovery.py", ("waq_env", "redis_server", "tmp_path")) == {"services"}
    assert markers.marks_for("contract/store/test_enqueue.py", ("store",), ["ferretdb"]) == {"services"}
    assert markers.marks_for("contract/store/test_enqueue.py", ("store",), ["mongomock"]) == set()
    assert markers.marks_for("contract/test_sender.py", ("sender",), ["selenium"]) == {"browser"}
    assert markers.marks_for("simulator/test_page.py", ("browser",)) == {"browser"}
    assert markers.marks_for("test_lint.py", ()) == set()  # a file at the top: no folder


def test_every_test_that_starts_chromium_or_a_service_is_marked(tmp_path: Path) -> None:
    out = tmp_path / "markers.json"
    env = {**os.environ, "MARKER_REPORT": str(out), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "-p", "tests.helpers.marker_report", "tests"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert len(report) > 1000  # the whole suite
    missing = []
    for item in report:
        for marker, signs in (("browser", BROWSER_SIGNS), ("services", SERVICE_SIGNS)):
            hits = [sign for sign in signs if sign in item["source"]]
            if hits and marker not in item["markers"]:
                missing.append(f"{item['nodeid']}: {hits} but not marked {marker}")
    assert not missing, "\n".join(missing)

"""A misspelt WAQ_* variable is reported at start with the closest known setting, instead of silently ignored."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.constants import ROOT
from wa_queue import settings as settings_module
from wa_queue.settings import (
    READ_ELSEWHERE,
    read_settings,
    setting_variables,
    unknown_variables,
    warn_unknown_variables,
)


def test_unknown_variables_name_the_closest_setting() -> None:
    env = {"WAQ_SESIONS": "a", "WAQ_HEALTH_INTERVAL": "3", "waq_store_url": "x", "WAQ_XYZZY": "1",
           "WAQ_STORE_URL": "sqlite:///x", "WAQ_WORKER_SESSION": "primary", "WAQ_API_PORT": "8000", "PATH": "/bin",
           "NOT_WAQ_SESSIONS": "x"}
    assert unknown_variables(env) == [
        ("WAQ_HEALTH_INTERVAL", "WAQ_HEALTH_INTERVAL_S"),
        ("WAQ_SESIONS", "WAQ_SESSIONS"),
        ("WAQ_XYZZY", None),
        ("waq_store_url", "WAQ_STORE_URL"),
    ]


def test_every_setting_and_allowed_variable_is_known() -> None:
    env = {name: "x" for name in setting_variables() | READ_ELSEWHERE}
    assert unknown_variables(env) == []
    assert "WAQ_STORE_START_TIMEOUT_S" in setting_variables()


def test_the_warning_names_the_variable_and_its_likely_meaning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="wa_queue.settings"):
        assert warn_unknown_variables({"WAQ_MAX_DAILY": "5", "WAQ_SESSIONS": "a"}) == ["WAQ_MAX_DAILY"]
    assert [r.getMessage() for r in caplog.records] == [
        "WAQ_MAX_DAILY is not a wa-queue setting and is ignored; did you mean WAQ_MAX_DAILY_PER_SESSION?"
    ]


def test_reading_the_settings_warns_when_a_process_reads_its_settings(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WAQ_MIN_DELAY", "0")
    with caplog.at_level(logging.WARNING, logger="wa_queue.settings"):
        read_settings()
    assert any("WAQ_MIN_DELAY is not a wa-queue setting" in r.getMessage() and "WAQ_MIN_DELAY_S" in r.getMessage()
               for r in caplog.records)


def test_a_starting_command_logs_the_warning(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "WAQ_DATA_DIR": str(tmp_path), "WAQ_SESIONS": "primary"}
    done = subprocess.run([sys.executable, "-m", "wa_queue.cli", "worker", "--session", "nosuch"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2  # the unknown session is refused, after the warning
    assert "WAQ_SESIONS is not a wa-queue setting and is ignored; did you mean WAQ_SESSIONS?" in done.stderr


def test_the_allow_list_covers_every_variable_the_code_reads() -> None:
    # Variables named in the code (not the tests' own cases) are either settings or deliberately read elsewhere.
    sources = [*ROOT.joinpath("wa_queue").rglob("*.py"), *ROOT.joinpath("workers").rglob("*.py"),
               *ROOT.joinpath("api").rglob("*.py"), *ROOT.joinpath("bench").rglob("*.py"),
               *ROOT.joinpath("tests", "helpers").rglob("*.py"), ROOT / "tests" / "conftest.py",
               ROOT / "beat_schedule.py", ROOT / "Procfile"]
    named = {name for path in sources if path.exists()
             for name in re.findall(r"\bWAQ_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8"))}
    assert named, "the scan found nothing: it is looking in the wrong place"
    assert named - setting_variables() - READ_ELSEWHERE == set()
    assert settings_module.READ_ELSEWHERE <= named | {"WAQ_TEST_MONGO_URL"}  # no stale entries

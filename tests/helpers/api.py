"""The API under test: a Flask test client of create_app() over a new default App."""

from __future__ import annotations

from typing import Any

import pytest

from api.app import create_app
from wa_queue.app import close_default_app, default_app


def api_client(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """Set these WAQ_* variables, then build the App and the API afresh (an App keeps the settings it was built with)
    and return its test client."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    close_default_app()
    return create_app(default_app()).test_client()

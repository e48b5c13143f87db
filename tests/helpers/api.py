"""The API under test: a Flask test client of create_app() over a new default Hub."""

from __future__ import annotations

from typing import Any

import pytest

from api.app import create_app
from wa_queue.hub import close_default_hub, default_hub


def api_client(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """Set these WAQ_* variables, then build the Hub and the API afresh (a Hub keeps the settings it was built with)
    and return its test client."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    close_default_hub()
    return create_app(default_hub()).test_client()

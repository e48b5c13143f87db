"""The API tests' app (keys for an admin and two producers, a 64 KiB body limit) and its test client."""

from __future__ import annotations

import pytest

from api.app import create_app
from tests.api.helpers import OTHER_PRODUCER_KEY
from tests.helpers.constants import ADMIN_KEY, PRODUCER_KEY
from wa_queue.hub import close_default_hub, default_hub


@pytest.fixture
def app(waq_env, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("WAQ_API_KEYS", f"ops:admin:{ADMIN_KEY},shop:producer:{PRODUCER_KEY},"
                                       f"crm:producer:{OTHER_PRODUCER_KEY}")
    monkeypatch.setenv("WAQ_MAX_REQUEST_BYTES", str(64 * 1024))
    close_default_hub()
    return create_app(default_hub())


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    return app.test_client()

"""One desktop-UA Chromium for the simulator's browser tests: each test gets its own simulator (and origin)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.simulator.chrome import start_chrome


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    driver = start_chrome()
    yield driver
    driver.quit()

"""What the browser tests share: the simulator, one per test module (a test that needs its own takes `fresh_sim`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.browser import Sim


def _serve() -> Iterator[Sim]:
    server = Sim()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    yield from _serve()


@pytest.fixture
def fresh_sim() -> Iterator[Sim]:
    yield from _serve()

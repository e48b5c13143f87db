"""WAQ_WORKER_POOL and WAQ_CHROME_MAX_PSS_MB: defaults and refusals; where a worker builds its Hub (runtime.forks)."""

from __future__ import annotations

import pytest
from celery.concurrency.prefork import TaskPool as Prefork
from celery.concurrency.solo import TaskPool as Solo
from celery.concurrency.thread import TaskPool as Threads

from wa_queue.errors import ConfigError
from wa_queue.settings import Settings
from workers.runtime import forks


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.worker_pool == "threads"
    assert settings.chrome_max_pss_mb == 0


@pytest.mark.parametrize("pool", ["threads", "solo", "prefork"])
def test_each_pool_is_accepted(pool: str) -> None:
    assert Settings.from_env({"WAQ_WORKER_POOL": pool}).worker_pool == pool


@pytest.mark.parametrize(("variable", "raw"), [("WAQ_WORKER_POOL", "gevent"), ("WAQ_WORKER_POOL", "Threads"),
                                                ("WAQ_CHROME_MAX_PSS_MB", "-1"), ("WAQ_CHROME_MAX_PSS_MB", "300MB")])
def test_bad_values_are_refused_naming_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: raw})


def test_only_prefork_builds_the_hub_in_a_child() -> None:
    assert forks("prefork") and forks(Prefork) and forks(None)
    assert not forks("threads") and not forks(Threads)
    assert not forks("solo") and not forks(Solo)

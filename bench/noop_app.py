"""The baseline: bare Celery with a no-op task, configured with the same reliability settings as wa-queue."""

from __future__ import annotations

import os

import redis
from celery import Celery

app = Celery("noop", broker=os.environ["BENCH_BROKER_URL"])
app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
                task_serializer="json", accept_content=["json"], task_ignore_result=True,
                worker_hijack_root_logger=False)
_counter = redis.Redis.from_url(os.environ["BENCH_BROKER_URL"])


@app.task(name="bench.noop", ignore_result=True)
def noop(_: str, __: int) -> None:
    # The only work: count, so the benchmark knows when all tasks ran (wa-queue's equivalent is the store).
    _counter.incr("bench:done")

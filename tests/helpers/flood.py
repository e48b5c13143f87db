"""Many threads of one producer at once against a served API, each on its own connection, all released together:
what the tests of per-key limits throw at a real gunicorn."""

from __future__ import annotations

import threading
from collections.abc import Callable

import requests

Request = Callable[[requests.Session, int, int], requests.Response]  # (connection, thread, i) -> its answer


def flood(threads: int, each: int, request: Request) -> list[requests.Response]:
    """`threads` threads, each sending `each` requests made by `request`, started at one barrier; every answer."""
    answers: list[requests.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run(thread: int) -> None:
        with requests.Session() as http:
            start.wait()
            for i in range(each):
                answer = request(http, thread, i)
                with lock:
                    answers.append(answer)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return answers

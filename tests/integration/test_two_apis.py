"""Issue 23, part 3: two API processes and two workers on one store, as on two machines sharing MongoDB.

Two gunicorn APIs, two `waq worker` processes (primary and secondary, the fake sender) and beat share one store and
one redis-server. Each message is posted by two producers at once, one through each API, with the same
Idempotency-Key: both get the same message id. Midway, one API is SIGKILLed and restarted while its producers retry
with their keys. At the end: as many messages as keys (none lost, none stored twice), and each sent exactly once by
the fake sender's log. On a MongoDB store (FerretDB, or WAQ_TEST_MONGO_URL's server) the two APIs are two store
clients racing for one key, which mongomock could never show; on SQLite it runs with --long.
"""

from __future__ import annotations

import collections
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.helpers.processes import Proc
from tests.helpers.waiting import wait_for
from tests.integration.test_pipeline import _phones, _wait_done
from wa_queue.devstack.ports import free_port
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus
from wa_queue.transport.fake import FakeControl, read_log

pytestmark = pytest.mark.timeout(240)

KEY = "two-apis-admin-key-0123456789abcdef"
MESSAGES = 40
KILL_AFTER = 15  # keys answered before API "a" is SIGKILLed


class Api:
    def __init__(self, name: str, env: dict[str, str], tmp: Path) -> None:
        self.name, self.env, self.tmp = name, env, tmp
        self.port = free_port()
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4",
                "--bind", f"127.0.0.1:{self.port}", "api.app:create_app()"]
        self.proc = Proc(argv, self.env, self.tmp / f"api-{self.name}.log")
        wait_for(self.up, 30, 0.2, f"API {self.name}")

    def up(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).status_code in (200, 503)
        except requests.RequestException:
            return False


def _post_until_accepted(api: Api, phone: str, text: str, key: str, retries: collections.Counter) -> str:
    """A producer that wants its message in: the same key until the API answers 2xx."""
    while True:
        try:
            response = requests.post(f"{api.url}/api/whatsapp/messages", json={"phone": phone, "text": text},
                                     headers={"X-API-Key": KEY, "Idempotency-Key": key}, timeout=10)
            if response.status_code in (200, 202):
                return response.json()["id"]
            assert response.status_code >= 500, response.text  # never a 4xx for a good request
        except requests.RequestException:
            pass
        retries[api.name] += 1
        time.sleep(0.2)


@pytest.mark.parametrize("store_backend", [pytest.param("sqlite", marks=pytest.mark.long), "ferretdb"],
                         indirect=True)
def test_two_apis_and_two_workers_on_one_store_lose_nothing_and_send_once(waq_env, procs, tmp_path) -> None:  # noqa: ANN001
    waq_env["WAQ_API_KEYS"] = f"two-apis:admin:{KEY}"
    data = Path(waq_env["WAQ_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    FakeControl(data / "fake-control.json").write({"send_delay_s": 0.05})
    workers = ("primary", "secondary")
    for name in workers:
        procs(["worker", "--session", name], waq_env, f"worker-{name}")
    procs(["beat"], waq_env, "beat")
    apis = {name: Api(name, waq_env, tmp_path) for name in ("a", "b")}
    try:
        for api in apis.values():
            api.start()
        store = default_hub().store
        wait_for(lambda: all(store.get_session(n).status == "connected" for n in workers), 60, 0.2,
                 "workers connected")
        phones = _phones(MESSAGES)
        answers: dict[str, dict[str, str]] = collections.defaultdict(dict)  # key -> API -> id
        retries: collections.Counter = collections.Counter()

        together = threading.Barrier(len(apis))  # each key posted through both APIs at the same moment

        def produce(name: str) -> None:
            for n, phone in enumerate(phones):
                key = f"two-apis-{n}"
                together.wait(60)
                answers[key][name] = _post_until_accepted(apis[name], phone, f"twice posted {n}", key, retries)

        producers = [threading.Thread(target=produce, args=(name,), daemon=True) for name in apis]
        for thread in producers:
            thread.start()
        wait_for(lambda: sum(len(a) == 2 for a in list(answers.values())) >= KILL_AFTER, 90, 0.02,
                 f"{KILL_AFTER} keys answered by both APIs")
        apis["a"].proc.kill(signal.SIGKILL)  # type: ignore[union-attr]
        apis["a"].proc.proc.wait(10)  # type: ignore[union-attr]
        time.sleep(1)
        apis["a"].start()
        for thread in producers:
            thread.join(120)
        assert not any(thread.is_alive() for thread in producers), "a producer never got all its messages in"

        ids = {key: set(by_api.values()) for key, by_api in answers.items()}
        split = {key: found for key, found in ids.items() if len(found) != 1}
        assert not split, f"one key, two messages: {split}"
        message_ids = [next(iter(found)) for found in ids.values()]
        assert len(set(message_ids)) == MESSAGES
        counts = _wait_done(message_ids, 150)
        assert sum(counts.values()) == MESSAGES, counts  # nothing stored twice, nothing else stored
        sent = collections.Counter(entry["ref"] for entry in read_log(data / "fake-sent.jsonl"))
        twice = {mid: n for mid, n in sent.items() if n > 1}
        lost = [mid for mid in message_ids if sent[mid] == 0]
        by_session = collections.Counter(store.get(mid).sent_by for mid in message_ids)
        print(f"\ntwo APIs, two workers, {waq_env['WAQ_STORE_URL'].split(':')[0]} store: {MESSAGES} keys posted "
              f"through both; API a SIGKILLed after {KILL_AFTER}; producer retries {dict(retries)}; sent by "
              f"{dict(by_session)}; lost {len(lost)}; sent twice {len(twice)}")
        assert not twice and not lost, (twice, lost)
        assert all(store.get(mid).status is MessageStatus.SENT for mid in message_ids)
    finally:
        for api in apis.values():
            if api.proc is not None:
                api.proc.stop()

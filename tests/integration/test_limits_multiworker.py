"""Issue 16, part 5: the daily limits are the store's decisions, held across several workers and a SIGKILL.

Two real `waq worker` processes (primary and secondary, the fake sender) and beat, a real redis-server and SQLite
file; a warm-up of one step of 5 (each session's cap today), at most 2 messages per recipient a day; 20 messages to
6 recipients, more than both limits allow. The primary worker is SIGKILLed midway (often inside a send) and
restarted. The fake sender's log, shared by the processes, then shows no session over 5 a day, no recipient over 2
a day, nothing sent outside its send window and nothing sent twice; what is over the limits or outside its window
waits, pending, with why in its history, and nothing failed. It runs on SQLite and on a MongoDB store (FerretDB, or
WAQ_TEST_MONGO_URL's server): two store clients in two processes racing for one counter.
"""

from __future__ import annotations

import collections
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.helpers.stores import STORES
from tests.helpers.waiting import wait_for
from wa_queue import operations
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import HistoryEvent, MessageStatus
from wa_queue.send_window import is_open, recipient_day_start
from wa_queue.transport.fake import FakeControl, read_log

pytestmark = pytest.mark.timeout(180)

CAP, PER_RECIPIENT, MESSAGES, RECIPIENTS = 5, 2, 20, 6
OPEN_NOW, CLOSED_NOW = {"start": "06:00", "end": "20:00"}, {"start": "00:00", "end": "05:00"}  # see _noonest_zone
# Single-zone numbers around the world: the test takes those whose local time is furthest from midnight, so that
# no day (the sessions' in WAQ_TIMEZONE, the recipients') ends during the run and the counts of one day compare.
ZONED_NUMBERS = {
    "America/Los_Angeles": "+1415555012{}", "America/New_York": "+1212555012{}", "Europe/Berlin": "+491512345678{}",
    "Asia/Dubai": "+97150123456{}", "Asia/Calcutta": "+91812345678{}", "Asia/Singapore": "+658123456{}",
    "Asia/Tokyo": "+81901234567{}",
}


def _noonest_zone() -> str:
    now = datetime.now(UTC)

    def from_noon(zone: str) -> float:
        local = now.astimezone(ZoneInfo(zone))
        return abs(local.hour + local.minute / 60 - 12)

    return min(ZONED_NUMBERS, key=from_noon)


@pytest.mark.parametrize("store_backend", STORES, indirect=True)
def test_caps_and_recipient_limits_hold_across_two_workers_and_a_sigkill(waq_env, procs, monkeypatch) -> None:  # noqa: ANN001
    zone = _noonest_zone()
    waq_env.update({"WAQ_WARMUP_CAPS": str(CAP), "WAQ_MAX_PER_RECIPIENT_PER_DAY": str(PER_RECIPIENT),
                    "WAQ_TIMEZONE": zone, "WAQ_LEASE_S": "10"})
    for key in ("WAQ_WARMUP_CAPS", "WAQ_MAX_PER_RECIPIENT_PER_DAY", "WAQ_TIMEZONE", "WAQ_LEASE_S"):
        monkeypatch.setenv(key, waq_env[key])
    close_default_hub()
    data = Path(waq_env["WAQ_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    FakeControl(data / "fake-control.json").write({"send_delay_s": 0.3})  # a SIGKILL often lands inside a send
    phones = [ZONED_NUMBERS[zone].format(i) for i in range(RECIPIENTS)]

    workers = {name: procs(["worker", "--session", name], waq_env, f"worker-{name}")
               for name in ("primary", "secondary")}
    procs(["beat"], waq_env, "beat")
    store = default_hub().store
    wait_for(lambda: all(store.get_session(n).status == "connected" for n in workers), 60, 0.2, "workers connected")
    # Three in a row to each number (the last gets five): its third waits for the number's next day while the
    # sessions still have room, and once both sessions reached their cap the rest waits for theirs.
    # Two messages first, to a seventh number, with a window closed now (the zone's local time is 08:30-15:30): they
    # wait for it and are never sent in this run. Then the 20, the first few with a window open now.
    closed = operations.enqueue_many(default_hub(), [{"phone": ZONED_NUMBERS[zone].format(RECIPIENTS),
                                                    "text": f"at night {i}", "send_window": CLOSED_NOW}
                                                   for i in range(2)])
    ids = closed + operations.enqueue_many(default_hub(), [
        {"phone": phones[min(i // 3, RECIPIENTS - 1)], "text": f"hello {i}",
         **({"send_window": OPEN_NOW} if i < 4 else {})} for i in range(MESSAGES)])
    log_path = data / "fake-sent.jsonl"
    wait_for(lambda: len(read_log(log_path)) >= 3, 60, 0.02, "three sends")
    workers["primary"].kill(signal.SIGKILL)
    killed_at = len(read_log(log_path))
    time.sleep(0.5)
    procs(["worker", "--session", "primary"], waq_env, "worker-primary-2")

    def settled() -> bool:
        counts = store.count_by_status()
        if counts["processing"] or counts["sent"] + counts["pending"] + counts["failed"] != len(ids):
            return False
        later = datetime.now(UTC) + timedelta(minutes=30)  # parked for the next day, not due again soon
        return counts["sent"] == 2 * CAP and all(store.get(i).next_attempt_at > later for i in ids
                                                 if store.get(i).status is MessageStatus.PENDING)

    wait_for(settled, 120, 0.25, f"the limits to be reached: {store.count_by_status()}")

    log = read_log(log_path)
    sends = collections.Counter(entry["ref"] for entry in log)
    twice = {ref: n for ref, n in sends.items() if n > 1}
    zone_info = ZoneInfo(zone)
    per_session = collections.Counter(
        (entry["session"], datetime.fromisoformat(entry["at"]).astimezone(zone_info).date()) for entry in log)
    per_recipient = collections.Counter(
        (entry["phone"], recipient_day_start(entry["phone"], datetime.fromisoformat(entry["at"]))) for entry in log)
    windows = {i: store.get(i).send_window or default_hub().settings.send_window for i in sends}
    outside = [entry for entry in log
               if not is_open(windows[entry["ref"]], entry["phone"], datetime.fromisoformat(entry["at"]))]
    over_cap = {key: n for key, n in per_session.items() if n > CAP}
    over_limit = {key: n for key, n in per_recipient.items() if n > PER_RECIPIENT}
    interrupted = [i for i in ids if any(e.event == HistoryEvent.RECOVERED for e in store.get(i).history)]
    print(f"zone {zone}; killed after {killed_at} sends; leases recovered {len(interrupted)}; per session "
          f"{sorted(per_session.values())}; per recipient {sorted(per_recipient.values())}; sent twice {twice}; "
          f"sent outside the window {len(outside)}")
    assert not twice and not over_cap and not over_limit and not outside, (twice, over_cap, over_limit, outside)
    assert len(log) == 2 * CAP and {session for session, _ in per_session} == {"primary", "secondary"}

    counts = store.count_by_status()
    assert (counts["sent"], counts["pending"], counts["failed"]) == (2 * CAP, len(ids) - 2 * CAP, 0), counts
    waiting = [store.get(i) for i in ids if store.get(i).status is MessageStatus.PENDING]
    reasons = collections.Counter()
    for message in waiting:
        entry = message.history[-1]
        assert (entry.event, entry.error_class) in {(HistoryEvent.DEFERRED, "RecipientLimitReached"),
                                                    (HistoryEvent.DEFERRED, "SendWindowClosed"),
                                                    (HistoryEvent.RELEASED, "DailyCapReached")}, entry
        assert message.attempts == 0
        reasons[entry.error_class] += 1
    assert reasons["RecipientLimitReached"] >= 1 and reasons["DailyCapReached"] >= 1, reasons
    # Held by their window before any session reached its cap (then the cap's pre-check may answer first).
    assert any(e.error_class == "SendWindowClosed" for i in closed for e in store.get(i).history), closed
    for message_id in sends:
        assert store.get(message_id).status is MessageStatus.SENT

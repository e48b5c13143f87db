"""The chaos run's recipients, who answer: a seeded thread that posts replies to the simulator while the faults
happen (ordinary ones, STOPs to numbers that still have messages queued, a START later for some of them), and the
checks of what the system made of them (test_chaos.py's docstring says which).

Clocks. The simulator runs in the test process and records each click and reply at the real clock (`time.time()`);
a suppression entry's `since`, a history entry's `at` and a reply's `received_at` are the workers' clock
(`models.utcnow`), the same clock of the same host. The page's clock skew (the long form's) shifts only what the page
shows and is in none of these, so the checks allow nothing for it. What they do allow for is exactly two things: the
store keeps times cut to its resolution (SQLite the microsecond, MongoDB the millisecond), and a `since` is taken a
moment before the entry is written (inbound.receive reads the store in between), so a mark made in that moment by
another session is not yet refused. That moment ends, provably, when this thread first reads the entry back
(`seen_on`): a mark after that is a violation, whatever the page showed.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import requests

from tests.helpers.stack import ACCOUNTS, Stack
from wa_queue.hub import default_hub
from wa_queue.models import HistoryEvent, Message, MessageStatus, OptChange

if TYPE_CHECKING:
    from tests.chaos.test_chaos import Canceller, Producer

ORDINARY = ("thanks", "ok", "Thanks!", "ok, see you then", "received, thank you")
OPEN = (MessageStatus.PENDING, MessageStatus.PROCESSING)
ENDED_UNSENT = (HistoryEvent.CANCELLED, HistoryEvent.EXPIRED, HistoryEvent.FAILED)


@dataclass(frozen=True)
class PostedReply:
    session: str  # whose account it was posted to
    phone: str  # E.164, the contact who wrote
    text: str
    wa_id: str  # the simulator's id of the incoming message
    posted_at: float  # the simulator's clock (real epoch seconds)
    worker_alive: bool  # the session's worker process was running when it was posted


def row_key(wa_id: str) -> str:
    """What identifies a row in every markup profile: a packed id's last part (false_<chat>@c.us_<HEX>) or the bare
    <HEX>; the chat a reader names it by must not make one reply two."""
    return wa_id.rsplit("_", 1)[-1]


@dataclass
class Recipient:
    """Makes recipients of the producer's messages reply, through POST /__sim__/incoming, to the account that last
    wrote to them (or any session's, for one not written to yet)."""

    stack: Stack
    producer: Producer
    rng: random.Random
    stops: int  # how many numbers answer STOP
    starts: int  # how many of those answer START later
    ordinary: int  # how many ordinary replies
    pause_s: tuple[float, float]  # between two replies
    recorded: threading.Event = field(default_factory=threading.Event)  # set once every STOP's entry was read back
    done: threading.Event = field(default_factory=threading.Event)
    replies: list[PostedReply] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)  # phone -> the session its STOP was posted to first
    seen_on: dict[str, float] = field(default_factory=dict)  # phone -> when its entry was first read back
    started: set[str] = field(default_factory=set)  # phones that answered START
    _final: dict[str, MessageStatus] = field(default_factory=dict)  # message id -> its final status, once read

    def run(self) -> None:
        next_at = time.time() + self.rng.uniform(*self.pause_s) / 2
        while not self.done.is_set():
            self.watch()
            if time.time() >= next_at:
                self.act()
                next_at = time.time() + self.rng.uniform(*self.pause_s)
            time.sleep(0.1)

    def watch(self) -> None:
        """Note when each STOP's entry is first on the list: read back, it was written before this moment."""
        for phone in [p for p in self.stopped if p not in self.seen_on]:
            if default_hub().store.get_suppression(phone) is not None:
                self.seen_on[phone] = time.time()
        if len(self.seen_on) >= self.stops:
            self.recorded.set()

    def act(self) -> None:
        roll = self.rng.random()
        if len(self.stopped) < self.stops and roll < 0.45:
            phone = self.queued_phone()
            if phone is not None:
                # In every session's chat with it: the session that sends its next message reads the STOP in its
                # own chat right before that send (its badge), as a contact written to from two numbers answers both.
                first = self.post(phone, "STOP")
                for other in [s for s in self.stack.sessions if s != first]:
                    self.post(phone, "STOP", other)
                self.stopped[phone] = first
                return
        # START once each of its STOPs is recorded: a STOP still unread in another session's chat, read after the
        # START, would rightly put the number back on the list (the later word wins), which this run does not count.
        ready = sorted(p for p, seen in self.seen_on.items() if p not in self.started and time.time() - seen > 3
                       and self.stops_recorded(p))
        if len(self.started) < self.starts and ready and roll < 0.6:
            phone = self.rng.choice(ready)
            self.post(phone, "START", self.stopped[phone])
            self.started.add(phone)
            return
        sent = self.stack.sim.state.sent()
        if sum(r.text in ORDINARY for r in self.replies) < self.ordinary and sent:
            message = self.rng.choice(sent)
            self.post(f"+{message['to']}", self.rng.choice(ORDINARY))

    def stops_recorded(self, phone: str) -> bool:
        """Whether every STOP posted from `phone` is recorded, in each session it was posted to."""
        rows, _ = default_hub().store.list_inbound(phone=phone, limit=100)
        recorded = {(r.session, row_key(r.wa_id)) for r in rows}
        return all((r.session, row_key(r.wa_id)) in recorded for r in self.replies
                   if r.phone == phone and r.text == "STOP")

    def queued_phone(self) -> str | None:
        """A number not yet stopped that has a message of the producer's still pending or processing."""
        by_phone: dict[str, list[str]] = collections.defaultdict(list)
        for mid, (phone, _) in list(self.producer.accepted.items()):
            if mid not in self._final and phone not in self.stopped:
                by_phone[phone].append(mid)
        phones = sorted(by_phone)
        self.rng.shuffle(phones)
        for phone in phones[:6]:
            for mid in by_phone[phone]:
                status = default_hub().store.get(mid).status
                if status in OPEN:
                    return phone
                self._final[mid] = status
        return None

    def post(self, phone: str, text: str, session: str | None = None) -> str:
        if session is None:
            accounts = {number: name for name, number in ACCOUNTS.items()}
            wrote = [accounts[m["from"]] for m in self.stack.sim.state.sent(to=phone.lstrip("+"))
                     if m["from"] in accounts]
            session = wrote[-1] if wrote else self.rng.choice(self.stack.sessions)
        alive = self.stack.procs[session].alive()
        response = requests.post(f"{self.stack.sim.url}/__sim__/incoming", timeout=5,
                                 json={"account": ACCOUNTS[session], "from": phone.lstrip("+"), "text": text})
        assert response.ok, response.text
        message = response.json()["message"]
        self.replies.append(PostedReply(session, phone, text, str(message["id"]), float(message["time"]), alive))
        return session

    def delays(self) -> list[float]:
        """For each STOP, in the order posted: seconds from its post until its entry was read back."""
        posted: dict[str, float] = {}
        for r in self.replies:
            if r.text == "STOP":
                posted.setdefault(r.phone, r.posted_at)  # the first of its STOPs
        return [round(self.seen_on[p] - posted[p], 1) for p in self.stopped if p in self.seen_on]

    def settle(self, timeout: float) -> None:
        """After the messages are done: wait (at most `timeout`) for every reply to be recorded and every STOP's
        entry to be read back; the checks say what is missing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.watch()
            recorded = {(r.session, row_key(r.wa_id)) for r in all_inbound()}
            if len(self.seen_on) == len(self.stopped) and all((r.session, row_key(r.wa_id)) in recorded
                                                              for r in self.replies):
                return
            time.sleep(0.5)


def all_inbound() -> list:
    store, rows, offset = default_hub().store, [], 0
    while True:
        page, total = store.list_inbound(limit=500, offset=offset)
        rows += page
        offset += len(page)
        if not page or offset >= total:
            return rows


def seconds(at: datetime) -> float:
    return at.timestamp()


def check_replies(recipient: Recipient, timeline: list[tuple[float, str]]) -> collections.Counter:
    """Every reply posted is recorded exactly once (by its row, in the session it was posted to), as posted; nothing
    recorded that nobody posted; each STOP put its number on the list and each START took it off."""
    store = default_hub().store
    rows = all_inbound()
    by_row = collections.defaultdict(list)
    for row in rows:
        by_row[(row.session, row_key(row.wa_id))].append(row)
    posted = {(r.session, row_key(r.wa_id)) for r in recipient.replies}
    strangers = [(k, [(r.chat, r.text) for r in v]) for k, v in by_row.items() if k not in posted]
    assert not strangers, f"replies recorded that nobody posted: {strangers[:3]}"
    outcome: collections.Counter = collections.Counter()
    for reply in recipient.replies:
        found = by_row.get((reply.session, row_key(reply.wa_id)), [])
        assert len(found) <= 1, f"reply recorded {len(found)} times: {reply}: {[(r.chat, r.wa_id) for r in found]}"
        if not found:
            near = [f"{t - reply.posted_at:+.1f}s {what}" for t, what in timeline
                    if reply.session in what and -30 < t - reply.posted_at < 120]
            raise AssertionError(
                f"reply lost: {reply} (worker {'up' if reply.worker_alive else 'down'} when posted); "
                f"{reply.session}'s chat notes now: {store.chat_notes(reply.session)}; faults on {reply.session} "
                f"around it: {near}; recorded from {reply.phone}: "
                f"{[(r.session, r.chat, r.text) for r in rows if r.phone == reply.phone]}")
        [row] = found
        assert (row.phone, row.text) == (reply.phone, reply.text), (reply, row)
        if reply.text in ("STOP", "START"):
            assert row.opt is (OptChange.OUT if reply.text == "STOP" else OptChange.IN), (reply, row)
        outcome["recorded"] += 1
        if not reply.worker_alive:
            outcome["of them posted while its worker was down"] += 1
    for phone, session in recipient.stopped.items():
        changes = sorted(store.suppression_log(phone=phone, limit=100)[0], key=lambda c: c.at)
        expect = [OptChange.OUT, OptChange.IN] if phone in recipient.started else [OptChange.OUT]
        assert [c.change for c in changes] == expect, (phone, changes)
        stopped_in = {r.session for r in recipient.replies if r.phone == phone and r.text == "STOP"}
        assert session in stopped_in and changes[0].by in stopped_in and changes[0].word == "STOP", changes[0]
    return outcome


@dataclass
class Window:
    """A time the number was on the list: `since` (the entry's, taken just before it was written), `seen` (read back:
    written by then) and `until` (the START's removal, taken just before it was written; None: still on it)."""

    phone: str
    since: float
    seen: float
    until: float | None


def windows(recipient: Recipient) -> list[Window]:
    store, out = default_hub().store, []
    for phone in recipient.stopped:
        changes = sorted(store.suppression_log(phone=phone, limit=100)[0], key=lambda c: c.at)
        until = seconds(changes[1].at) if len(changes) > 1 else None
        out.append(Window(phone, seconds(changes[0].at), recipient.seen_on[phone], until))
    return out


def marks(message: Message) -> list[float]:
    return [seconds(e.at) for e in message.history if e.event is HistoryEvent.SENDING]


def check_opt_outs(stack: Stack, producer: Producer, canceller: Canceller, recipient: Recipient,
                   resolution_s: float) -> collections.Counter:
    """Nothing clicked to a number while it was on the list, every unsent message to it ended for a reason that
    clicked nothing (the opt-out's cancel, above all), and each 409 came from the list."""
    store = default_hub().store
    by_text = {(phone, text): mid for mid, (phone, text) in producer.accepted.items()}
    outcome: collections.Counter = collections.Counter()
    listed = windows(recipient)
    assert len(recipient.seen_on) == len(recipient.stopped), (
        f"STOPs never recorded: {sorted(set(recipient.stopped) - set(recipient.seen_on))}")
    for w in listed:
        # A click the simulator shows at or before `since` was before the STOP was even read. One after it must
        # come from a mark (the last before the click) made before the entry was known written (`seen`): another
        # session's send already decided, in flight. A mark while the entry was provably on the list and not yet
        # provably off it (until, taken before the removal was written) is a violation.
        for click in stack.sim.state.sent(to=w.phone.lstrip("+")):
            at_s = float(click["time"])
            if at_s <= w.since + resolution_s:
                outcome["clicked before the STOP was recorded"] += 1
                continue
            mid = by_text[(w.phone, str(click["text"]))]
            message = store.get(mid)
            mark = max((m for m in marks(message) if m <= at_s + resolution_s), default=None)
            assert mark is not None, f"{mid} clicked to {w.phone} at {at_s} with no mark before it: {message.history}"
            assert not (w.seen < mark and (w.until is None or mark < w.until)), (
                f"{mid} clicked to {w.phone} at {at_s:.6f}, marked at {mark:.6f}, while it was on the suppression list "
                f"(since {w.since:.6f}, read back at {w.seen:.6f}, until {w.until})")
            outcome["clicked after the START" if w.until is not None and mark >= w.until
                    else "in flight at the STOP (marked before it was read)" if mark <= w.since
                    else "marked while the STOP was being written"] += 1
        for mid, (phone, _) in producer.accepted.items():
            if phone != w.phone:
                continue
            message = store.get(mid)
            if message.status is MessageStatus.SENT:
                continue
            ended = max(seconds(e.at) for e in message.history if e.event in ENDED_UNSENT)
            if not (w.seen < ended and (w.until is None or ended < w.until)):
                continue  # ended before the entry was known written, or after it was taken off
            if message.status is MessageStatus.CANCELLED and message.last_error_class == "OptedOut":
                outcome["cancelled: opted out"] += 1
            elif message.status is MessageStatus.EXPIRED:
                outcome["expired while on the list"] += 1
            elif message.status is MessageStatus.CANCELLED and mid in canceller.tried:
                outcome["cancelled by the producer while on the list"] += 1
            else:
                # Failed only as a doubt from a click decided before the entry was written (OutcomeUnverified).
                assert message.status is MessageStatus.FAILED and any(m <= w.seen for m in marks(message)), (
                    f"{mid} to {phone} ended {message.status.value} ({message.last_error_class}) at {ended:.6f}, "
                    f"while on the list since {w.since:.6f}: not cancelled as opted out")
                outcome["failed: a doubt from before the STOP"] += 1
    suppressed = {w.phone for w in listed}
    for mid, (phone, _) in producer.accepted.items():
        message = store.get(mid)
        if message.last_error_class == "OptedOut":
            assert message.status is MessageStatus.CANCELLED and phone in suppressed, (mid, phone, message.status)
    # A 409 names the list: its number was put on it before the answer, and the refused message was never stored.
    for key, (phone, text, answered_at, _) in producer.refused.items():
        entries = [w for w in listed if w.phone == phone]
        assert entries and entries[0].since <= answered_at, f"{key} to {phone} refused (409) but not on the list"
        assert (phone, text) not in by_text, key
        outcome["refused at enqueue (409)"] += 1
    stored = sum(store.count_by_status().values())
    unsure = sorted(k for k, (_, _, _, unsure) in producer.refused.items() if unsure)
    assert stored == len(producer.accepted), (
        f"the store holds {stored} messages, the producer had {len(producer.accepted)} accepted; refused after a "
        f"try whose outcome it never learned: {unsure} (a replay of a stored request refused with 409?)")
    return outcome

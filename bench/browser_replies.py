"""`bench/browser.py --replies-every S`: what reading replies in the pacing pause costs the send rate (issue 28).

A real Delivery (pacing on: WAQ_MIN_DELAY_S = WAQ_MAX_DELAY_S = --pause, a SQLite store, a recording publisher)
around one SeleniumSender on the strict simulator, so the pause is spent as a worker's is: Delivery._idle's
read_replies while one read (Delivery.reply_read_s) fits in what is left, then the rest slept; before each send
Delivery's own read of the open chat (and of the recipient's when the list shows it unread). Every send goes to a new
number. Rounds alternate, ABAB: without replies (the baseline: the same reads run and find nothing), then with a
thread posting a reply every S seconds (`POST /__sim__/incoming`) from four numbers in turn: the chat just sent to
(open in the page: no badge), one sent to five sends earlier, and two that were never sent to. After each round with
replies the poster stops and the replies still unread are read outside the timing, so none reaches the baseline.

The sender is wrapped (TimedSender) to time each call Delivery makes: `send` (the send itself, what the other modes'
"send median" is), the number check, the read before the send and the pause's reads. Printed per side: the send
median and p90, the message median (read before the send + number check + send), the cycle (end of one send to the
end of the next) and its send rate, and the pause as it ran (end of one send to the start of the next message's
first step) against the configured one; then the ratios with / without, and the replies posted, read where, and
missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench._stats import percentile
from wa_queue.broker.recording import RecordingPublisher
from wa_queue.delivery import Delivery
from wa_queue.inbound import StoreChatNotes
from wa_queue.models import NewMessage, utcnow
from wa_queue.settings import Settings
from wa_queue.simulator import pairing
from wa_queue.store.sqlite import SQLiteStore
from wa_queue.transport.base import Reply
from wa_queue.transport.selenium import SeleniumSender

SESSION = "bench"
STRANGERS = ("+15557770001", "+15557770002")  # never sent to: their replies open a new chat in the list
EARLIER = 5  # the second replier is the recipient this many sends back: a chat with our row, not open
DEFAULT_PAUSE_MEAN_S = 32.5  # WAQ_MIN_DELAY_S / WAQ_MAX_DELAY_S defaults, 25-40 s: the rate a worker would have


@dataclasses.dataclass
class Call:
    kind: str  # send | check | before (the read before a send) | pause (a read in the pause) | drain
    start: float
    end: float
    ids: tuple[str, ...] = ()  # the replies a read returned (WhatsApp ids)


class TimedSender:
    """The SeleniumSender, each call Delivery makes timed (perf_counter). Anything else passes through untouched, so
    Delivery drives it exactly as a worker drives the sender."""

    def __init__(self, sender: SeleniumSender) -> None:
        self._sender = sender
        self.calls: list[Call] = []
        self.phones: list[str] = []  # recipients, in the order sent
        self.draining = False  # reads outside the rounds (after a round with replies): not timed as pause reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sender, name)

    def read_replies(self, *args: Any, **kwargs: Any) -> list[Reply]:
        max_chats = kwargs.get("max_chats", args[0] if args else 1)
        # Delivery reads with max_chats=0 right before a send (the open chat's, the recipient's), else in the pause.
        kind = "drain" if self.draining else "before" if max_chats == 0 else "pause"
        start = time.perf_counter()
        found = self._sender.read_replies(*args, **kwargs)
        self.calls.append(Call(kind, start, time.perf_counter(), tuple(r.wa_id for r in found)))
        return found

    def is_registered(self, phone: str) -> bool | None:
        start = time.perf_counter()
        try:
            return self._sender.is_registered(phone)
        finally:
            self.calls.append(Call("check", start, time.perf_counter()))

    def send(self, phone: str, text: str, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._sender.send(phone, text, **kwargs)
        finally:
            self.calls.append(Call("send", start, time.perf_counter()))
            self.phones.append(phone)


class Poster(threading.Thread):
    """Posts a reply every `every_s` seconds (on a fixed schedule from its start, so a slow post does not stretch
    it) from the four repliers in turn, as the phone's contacts would."""

    def __init__(self, base: str, account: str, timed: TimedSender, every_s: float, first: int) -> None:
        super().__init__(daemon=True)
        self.base, self.account, self.timed, self.every_s, self.n = base, account, timed, every_s, first
        self.stopping = threading.Event()
        self.posted: list[tuple[str, str, str, float]] = []  # (wa id, replier kind, phone, perf_counter)
        self.errors: list[str] = []

    def replier(self) -> tuple[str, str]:
        phones = self.timed.phones
        turn = self.n % 4
        if turn == 0 and phones:
            return "just sent to", phones[-1]
        if turn == 1 and len(phones) > EARLIER:
            return f"sent to {EARLIER} sends back", phones[-1 - EARLIER]
        return "never sent to", STRANGERS[turn % 2]

    def run(self) -> None:
        started = time.monotonic()
        k = 1
        while not self.stopping.wait(max(0.0, started + k * self.every_s - time.monotonic())):
            kind, phone = self.replier()
            try:
                answer = requests.post(f"{self.base}/__sim__/incoming", timeout=5, json={
                    "account": self.account, "from": phone.lstrip("+"), "text": f"Thanks, got it ({self.n})"})
                answer.raise_for_status()
                self.posted.append((answer.json()["message"]["id"], kind, phone, time.perf_counter()))
            except requests.RequestException as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.n += 1
            k += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join()


@dataclasses.dataclass
class Sent:
    """One message's timeline, from the calls since the previous send."""

    side: str
    round: int
    send_s: float
    message_s: float  # from its first step after the pause (the read before the send) to the end of the send
    gap_s: float | None  # end of the previous send to that first step: the pause as it ran (None: a round's first)
    cycle_s: float | None  # end of the previous send to the end of this one
    pause_reads: list[float]  # seconds of each read in the pause before it


def timeline(calls: list[Call], side: str, round_no: int, previous_end: float | None) -> Sent:
    send = calls[-1]
    first = next(c for c in calls if c.kind in ("before", "check", "send"))
    return Sent(side, round_no, send.end - send.start, send.end - first.start,
                None if previous_end is None else first.start - previous_end,
                None if previous_end is None else send.end - previous_end,
                [c.end - c.start for c in calls if c.kind == "pause"])


def main_replies(args: argparse.Namespace, start_simulator: Any, account: str) -> None:
    """The mode's run and its report (module docstring)."""
    server, base = start_simulator(args.markup, 0.0)
    data_dir = Path(tempfile.mkdtemp(prefix="waq-bench-replies-"))
    rounds, per_round = args.rounds, args.round_sends
    settings = Settings.from_env({
        "WAQ_DATA_DIR": str(data_dir), "WAQ_WHATSAPP_URL": base, "WAQ_HEADLESS": str(not args.headful),
        "WAQ_SESSIONS": SESSION, "WAQ_MIN_DELAY_S": str(args.pause), "WAQ_MAX_DELAY_S": str(args.pause),
        # Off: the warm-up's first cap (20 a day) and the daily cap would stop the run, not measure anything.
        "WAQ_WARMUP_CAPS": "", "WAQ_MAX_DAILY_PER_SESSION": "100000", "WAQ_SEND_TIMEOUT_S": "30",
        # No recycle in the run: a restarted Chrome reads its noted chat again, a cost of the recycle, not of replies.
        "WAQ_CHROME_RECYCLE_SENDS": str(2 * rounds * per_round + 50),
        **({"WAQ_CHAT_SETTLE_S": str(args.chat_settle)} if args.chat_settle is not None else {}),
        **({"WAQ_CHROME_BINARY": args.chrome[0], "WAQ_CHROMEDRIVER": args.chrome[1]} if args.chrome else {}),
    })
    store = SQLiteStore(str(data_dir / "waq.db"))
    sender = SeleniumSender(SESSION, settings)
    timed = TimedSender(sender)
    seen: set[str] = set()

    def on_reply(reply: Reply) -> bool:  # what the worker's record does first: each reply counted once
        new = reply.wa_id not in seen
        seen.add(reply.wa_id)
        return new

    delivery = Delivery(store=store, settings=settings, session=SESSION, owner=f"{SESSION}/bench/1", sender=timed,
                        publisher=RecordingPublisher(store), rng=random.Random(7), on_reply=on_reply)
    sender.chat_notes = StoreChatNotes(store, SESSION, utcnow)  # as the worker: each chat noted before it opens
    rows: list[Sent] = []
    posters: list[Poster] = []
    number = iter(range(1, 1_000_000))
    failed: list[str] = []
    print(f"strict simulator, profile {args.markup}, chat settle {settings.chat_settle_s:g} s (one read allowed "
          f"{delivery.reply_read_s:g} s); a Delivery with pacing on, pause {args.pause:g} s, SQLite store; "
          f"{rounds} rounds x {per_round} sends each side, alternated (without, with); replies every "
          f"{args.replies_every:g} s from 4 numbers (the chat just sent to, one {EARLIER} sends back, two never "
          f"sent to); every send to a new number", flush=True)

    def one_message(side: str, round_no: int, previous_end: float | None) -> float:
        phone = f"+1555300{next(number):04d}"
        message = store.insert(NewMessage(phone=phone, text=f"Benchmark message to {phone}: your *order* has "
                                          "shipped 📦", session=SESSION), utcnow())[0]
        mark = len(timed.calls)
        outcome = delivery.process(message.id, 0)
        if outcome.kind != "sent":
            failed.append(f"{phone}: {outcome.kind} {outcome.detail}")
            return time.perf_counter()
        calls = timed.calls[mark:]
        rows.append(timeline(calls, side, round_no, previous_end))
        return calls[-1].end

    def drain(poster: Poster) -> None:
        """Read what the round's replies left unread, outside the timing: the next baseline round starts clean."""
        timed.draining = True
        deadline = time.monotonic() + 60
        time.sleep(1.0)  # the page learns of a reply at its next poll (poll_ms, 0.5 s)
        while {p[0] for p in poster.posted} - seen and time.monotonic() < deadline:
            delivery.read_replies(60.0)
            time.sleep(0.5)
        timed.draining = False

    try:
        pairing.log_in(sender, base, account, interval_s=0.3)
        store.update_session(SESSION, status="connected", heartbeat_at=utcnow())
        end = None
        for _ in range(args.warmup):  # Chrome's first loads are slow: not counted
            end = one_message("warm-up", 0, end)
        rows.clear()
        for round_no in range(1, rounds + 1):
            for side in ("without", "with"):
                poster = None
                if side == "with":
                    poster = Poster(base, account, timed, args.replies_every, first=4 * len(posters))
                    posters.append(poster)
                    poster.start()
                for k in range(per_round):
                    end = one_message(side, round_no, end if k else None)
                if poster is not None:
                    poster.stop()
                    drain(poster)
                    end = None
                print(f"  round {round_no} {side} replies: send median "
                      f"{statistics.median(r.send_s for r in rows if r.side == side and r.round == round_no):.3f} s",
                      flush=True)
        received = requests.get(f"{base}/__sim__/incoming", params={"account": account}, timeout=10).json()
    finally:
        sender.close()
        store.close()
        server.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
    report(args, rows, posters, timed, received, failed)


def report(args: argparse.Namespace, rows: list[Sent], posters: list[Poster], timed: TimedSender,
           received: list[dict[str, Any]], failed: list[str]) -> None:
    """The table, the ratios, where the replies were read and the pause as it ran."""
    def side_of(name: str) -> dict[str, Any]:
        mine = [r for r in rows if r.side == name]
        cycles = [r.cycle_s for r in mine if r.cycle_s is not None]
        gaps = [r.gap_s for r in mine if r.gap_s is not None]
        reads = [s for r in mine for s in r.pause_reads]
        return {"n": len(mine), "send": statistics.median(r.send_s for r in mine),
                "send90": percentile([r.send_s for r in mine], 0.9),
                "message": statistics.median(r.message_s for r in mine), "cycle": statistics.median(cycles),
                "gap": statistics.median(gaps), "gap_max": max(gaps), "over": sum(g > args.pause + 0.25 for g in gaps),
                "gaps": len(gaps), "reads": len(reads), "read_med": statistics.median(reads) if reads else 0.0,
                "read_max": max(reads, default=0.0)}

    a, b = side_of("without"), side_of("with")
    print(f"{'side':<16} {'sends':>5} {'send med':>8} {'send p90':>8} {'msg med':>7} {'cycle med':>9} "
          f"{'sends/h':>7} {'at 32.5 s':>9} {'pause med':>9} {'pause max':>9} {'over':>6} {'reads':>5} "
          f"{'read med':>8} {'read max':>8}")
    for name, s in (("without replies", a), ("with replies", b)):
        print(f"{name:<16} {s['n']:>5} {s['send']:>8.3f} {s['send90']:>8.3f} {s['message']:>7.3f} {s['cycle']:>9.3f} "
              f"{3600 / s['cycle']:>7.0f} {3600 / (DEFAULT_PAUSE_MEAN_S + s['message']):>9.1f} {s['gap']:>9.3f} "
              f"{s['gap_max']:>9.3f} {s['over']:>3}/{s['gaps']:<2} {s['reads']:>5} {s['read_med']:>8.3f} "
              f"{s['read_max']:>8.3f}")
    ratio = b["send"] / a["send"]
    print(f"with / without: send median {ratio:.3f} (goal <= 1.10: {'met' if ratio <= 1.10 else 'MISSED'}), "
          f"message {b['message'] / a['message']:.3f}, cycle {b['cycle'] / a['cycle']:.3f}")
    for round_no in sorted({r.round for r in rows}):
        meds = [statistics.median(r.send_s for r in rows if r.round == round_no and r.side == side)
                for side in ("without", "with")]
        print(f"  round {round_no}: send median {meds[0]:.3f} / {meds[1]:.3f} s ({meds[1] / meds[0]:.3f})")

    posted = {p[0]: p for poster in posters for p in poster.posted}
    where: dict[str, tuple[str, float]] = {}  # wa id -> (the kind of read that first returned it, when)
    for call in timed.calls:
        for wa_id in call.ids:
            where.setdefault(wa_id, (call.kind, call.end))
    found = {k: v for k, v in where.items() if k in posted}
    missed = sorted(set(posted) - set(found))
    by = {kind: sum(v[0] == kind for v in found.values()) for kind in ("pause", "before", "drain")}
    latency = [found[k][1] - posted[k][3] for k in found if found[k][0] != "drain"]
    print(f"replies: {len(posted)} posted ({sum(len(p.errors) for p in posters)} posts failed), {len(found)} read: "
          f"{by['pause']} in a pause, {by['before']} by the read before a send, {by['drain']} after the round "
          f"(read outside the timing); posted to read median "
          f"{statistics.median(latency) if latency else 0:.1f} s, max {max(latency, default=0):.1f} s; the simulator "
          f"holds {len(received)} incoming")
    for kind in dict.fromkeys(p[1] for p in posted.values()):
        mine = [k for k, p in posted.items() if p[1] == kind]
        print(f"  from a number {kind}: {len(mine)} posted, {sum(k in found for k in mine)} read")
    if missed:
        print(f"MISSED: {len(missed)} replies posted and never read: " + ", ".join(
            f"{posted[k][2]} ({posted[k][1]})" for k in missed))
    else:
        print("missed: none")
    print(f"pause: configured {args.pause:g} s; end of a send to the next message's first step (the read before its "
          f"send), median {a['gap']:.3f} / {b['gap']:.3f} s, max {a['gap_max']:.3f} / {b['gap_max']:.3f} s "
          f"(without / with); over the pause by more than 0.25 s: {a['over']} / {b['over']}")
    if failed:
        print(f"not sent: {len(failed)}: " + "; ".join(failed[:5]))
    print("seconds; send: the send alone (open chat found open, type, mark, click, ack); msg: the read before the "
          "send + the number check (its page load) + the send; cycle: end of one send to the end of the next; "
          "sends/h: 3600 / cycle here; at 32.5 s: the rate at the default pause's mean (25-40 s) plus msg; reads: "
          "the reads in the pauses (each a chat at most)")

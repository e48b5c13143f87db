"""Many sessions at once: N real session workers, each driving its own Chromium, on one simulator, all sending at
once with pacing off.

    python bench/sessions.py [--sessions 8] [--messages 50] [--idle-s 60] [--reserve-gib 2] [--keep]

Starts its own redis-server on a free port, a temporary SQLite store, `waq simulator --auto-scan` (strict, the
default markup: every browser is logged in on its first visit), `waq beat`, and one `waq worker --session sNN` per
session (WAQ_TRANSPORT=selenium, pacing off, a daily cap out of reach). Once every session is connected it queues
--messages messages for each session with `waq enqueue --file` (each to its own session, a distinct recipient per
message) and waits until the store has every one sent and the simulator has received each exactly once. Then:

- PSS per session after the sends: the worker's own processes (Celery, its pool child) and its browser
  (chromedriver, every Chrome process), found as wa_queue/headroom.py finds them;
- CPU of the sessions' processes (utime + stime, with the children they reaped) over the send phase, as cores
  used, and over a quiet --idle-s afterwards (beat's health checks still run, as in production);
- sends a minute (first claim to last send, from the store), and the send time p50 / p99: claimed -> sent in each
  message's history (the number check, the sending mark, the send and its record; with pacing off no pause is in
  it), beside the worker's own send histogram (the send alone) from the broker's Redis;
- how many sessions a machine of --machine-gib and --machine-cores would hold at that footprint, and how.

WAQ_* settings set in the environment reach the workers (those above excepted), so a Chrome option can be compared:
`WAQ_CHROME_RECYCLE_SENDS=1000 python bench/sessions.py`; the run prints the ones it passed on.

Every process it started is killed with its tree, and any process left with this run's WAQ_DATA_DIR in its
environment (Chrome's crash handler leaves the tree), also on Ctrl-C. The run's folder (logs, store, profiles) is
removed unless --keep, or the run failed.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
import requests  # noqa: E402

from bench._services import PYTHON, ROOT, spawn, start_redis  # noqa: E402
from bench._stats import percentile  # noqa: E402
from wa_queue import headroom, metrics_sink, procs  # noqa: E402
from wa_queue.devstack.ports import free_port  # noqa: E402
from wa_queue.models import HistoryEvent, Message, MessageStatus  # noqa: E402
from wa_queue.settings import Settings  # noqa: E402
from wa_queue.store import MessageStore, open_store  # noqa: E402

MIB = 1024
GIB_KIB = 1024 * 1024
P99_GOAL_S = 5.0  # the goals for many sessions at once (BENCHMARKS.md, current figures)
BROWSER_GOAL_MIB = 250
TEXT = "Order {i} of {session}: your *parcel* has shipped 📦\nTrack it at https://example.com/t/{session}/{i}"


class BenchError(Exception):
    """The run could not be completed (a process did not start, a message did not arrive)."""


# ---- pure parts ------------------------------------------------------------------------------------------------
def send_seconds(message: Message) -> float | None:
    """Seconds from the last claim to the send in the message's history; None when it was not sent."""
    claimed: datetime | None = None
    for entry in message.history:
        if entry.event is HistoryEvent.CLAIMED:
            claimed = entry.at
        elif entry.event is HistoryEvent.SENT and claimed is not None:
            return (entry.at - claimed).total_seconds()
    return None


def stat_ticks(stat: str) -> int:
    """utime + stime + cutime + cstime from a /proc/<pid>/stat line, in clock ticks. Counting the children a process
    reaped keeps a tree's sum steady when a Chrome renderer exits inside it."""
    fields = stat[stat.rfind(")") + 2:].split()  # fields[0] is the state, field 3 of proc(5)
    return sum(int(fields[i]) for i in (11, 12, 13, 14))


def histogram_quantile(buckets: list[tuple[str, float]], q: float) -> str:
    """The upper bound of the bucket holding the q-quantile of a cumulative histogram (metrics_sink's form)."""
    total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if total and count >= q * total:
            return bound
    return "n/a"


@dataclasses.dataclass(frozen=True)
class Projection:
    """How many sessions a machine holds at a measured footprint: the smaller of what its memory and its cores
    allow."""

    machine_kib: int
    reserve_kib: int
    session_pss_kib: float
    cores: float
    cpu_s_per_send: float
    idle_cores: float
    pace_s: float

    @property
    def memory_bound(self) -> int:
        return max(0, int((self.machine_kib - self.reserve_kib) // self.session_pss_kib))

    @property
    def paced_cores(self) -> float:
        """One session's CPU when sending at the paced rate: its CPU per send at one send per pace_s, plus its idle."""
        return self.cpu_s_per_send / self.pace_s + self.idle_cores

    @property
    def cpu_bound(self) -> int:
        return int(self.cores // self.paced_cores) if self.paced_cores > 0 else sys.maxsize

    @property
    def sessions(self) -> int:
        return min(self.memory_bound, self.cpu_bound)

    @property
    def limit(self) -> str:
        return "memory" if self.memory_bound <= self.cpu_bound else "CPU"

    def explain(self) -> list[str]:
        return [
            f"memory: ({self.machine_kib / GIB_KIB:g} GiB - {self.reserve_kib / GIB_KIB:g} GiB reserve for the OS, "
            f"redis, the API and beat) / {self.session_pss_kib / MIB:.0f} MiB per session = {self.memory_bound}",
            f"CPU: {self.cores:g} cores / ({self.cpu_s_per_send:.3f} CPU-s per send / {self.pace_s:g} s between sends"
            f" + {self.idle_cores:.4f} cores idle) = {self.cores:g} / {self.paced_cores:.4f} = {self.cpu_bound}",
            f"projection: {self.sessions} sessions ({self.limit} is the limit)",
        ]


# ---- the processes ---------------------------------------------------------------------------------------------
def tree_ticks(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += stat_ticks(Path(f"/proc/{pid}/stat").read_text())
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile: its time is in its parent's cutime once reaped
    return total


def processes_with_data_dir(data_dir: Path) -> list[int]:
    """Every live process with this run's WAQ_DATA_DIR in its environment (Chrome and its detached crash handler
    inherit the worker's)."""
    return procs.with_environment(headroom.DATA_DIR_ENV, str(data_dir))


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Run:
    """One run's folder, services and workers."""

    def __init__(self, sessions: int, folder: Path) -> None:
        self.names = [f"s{i:02d}" for i in range(1, sessions + 1)]
        self.folder = folder
        self.data_dir = folder / "data"
        self.logs = folder / "logs"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}
        self.sim_url = ""
        self.broker: redis.Redis | None = None
        self.store: MessageStore | None = None

    def start(self) -> None:
        redis_proc, broker_url = start_redis(self.folder / "redis")
        self.procs["redis"] = redis_proc
        self.broker = redis.Redis.from_url(broker_url)
        port = free_port()
        self.sim_url = f"http://127.0.0.1:{port}"
        self.env = {
            "WAQ_DATA_DIR": str(self.data_dir), "WAQ_STORE_URL": f"sqlite:///{self.data_dir / 'waq.db'}",
            "WAQ_BROKER_URL": broker_url, "WAQ_SESSIONS": ",".join(self.names), "WAQ_TRANSPORT": "selenium",
            "WAQ_WHATSAPP_URL": self.sim_url, "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0",
            "WAQ_MAX_DAILY_PER_SESSION": "1000000", "WAQ_WARMUP_CAPS": "", "WAQ_RECONNECT_UNIT_S": "5",
        }
        self.data_dir.mkdir(parents=True)
        self.store = open_store(self.env["WAQ_STORE_URL"])
        self.procs["simulator"] = spawn([PYTHON, "-m", "wa_queue.cli", "simulator", "--port", str(port),
                                         "--auto-scan"], self.env, self.logs / "simulator.log")
        wait_until(self._simulator_up, 30, "the simulator")
        self.procs["beat"] = spawn([PYTHON, "-m", "wa_queue.cli", "beat", "--loglevel", "WARNING"], self.env,
                                   self.logs / "beat.log")
        for name in self.names:
            self.procs[name] = spawn([PYTHON, "-m", "wa_queue.cli", "worker", "--session", name], self.env,
                                     self.logs / f"worker-{name}.log")
        wait_until(self._all_connected, 60 + 20 * len(self.names), "every session to connect", 0.5)

    def _simulator_up(self) -> bool:
        self._check_alive(["simulator"])
        try:
            return requests.get(f"{self.sim_url}/__sim__/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    def _all_connected(self) -> bool:
        self._check_alive(["beat", *self.names])
        return all(self.store.get_session(name).status == "connected" for name in self.names)

    def _check_alive(self, names: list[str]) -> None:
        for name in names:
            if self.procs[name].poll() is not None:
                raise BenchError(f"{name} exited with {self.procs[name].returncode}; see {self.logs}")

    def enqueue(self, messages: int) -> dict[str, tuple[str, str, str]]:
        """Queue `messages` for each session through `waq enqueue --file`; returns id -> (session, phone, text)."""
        # A new recipient for every message, so every number check opens a chat; the texts name the session.
        rows = [(name, f"+1415555{(s * messages + i) % 10000:04d}", TEXT.format(i=i, session=name))
                for s, name in enumerate(self.names) for i in range(messages)]
        path = self.folder / "messages.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["phone", "text", "session"])
            writer.writerows((phone, text, name) for name, phone, text in rows)
        done = subprocess.run([PYTHON, "-m", "wa_queue.cli", "enqueue", "--file", str(path), "--json"],
                              env={**os.environ, **self.env}, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise BenchError(f"waq enqueue exited {done.returncode}: {done.stderr[-2000:]}")
        ids = json.loads(done.stdout)["ids"]
        if len(ids) != len(rows):
            raise BenchError(f"waq enqueue queued {len(ids)} of {len(rows)}")
        return dict(zip(ids, rows, strict=True))

    def finished(self, total: int) -> bool:
        self._check_alive(["beat", *self.names])
        counts = self.store.count_by_status()
        return counts.get("sent", 0) + counts.get("failed", 0) >= total

    def trees(self) -> dict[str, headroom.WorkerTree]:
        """Each session's processes, as wa_queue/headroom.py finds them, for this run's workers only."""
        ours = {self.procs[name].pid: name for name in self.names}
        found = {ours[t.pid]: t for t in headroom.find_sessions()[0] if t.pid in ours}
        missing = set(self.names) - set(found)
        if missing:
            raise BenchError(f"no processes found for {sorted(missing)}")
        return found

    def session_ticks(self) -> dict[str, int]:
        return {name: tree_ticks([*t.worker_pids, *t.browser_pids]) for name, t in self.trees().items()}

    def service_ticks(self) -> dict[str, int]:
        return {name: tree_ticks([proc.pid, *procs.descendants(proc.pid)])
                for name, proc in self.procs.items() if name in ("simulator", "redis", "beat")}

    def stop(self) -> list[int]:
        """Kill everything this run started; returns the pids that had left its trees (killed too)."""
        for proc in reversed(self.procs.values()):  # the workers first, the broker last
            if proc.poll() is None:
                procs.kill_tree(proc.pid)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                print(f"pid {proc.pid} did not exit after SIGKILL", file=sys.stderr)
        left = processes_with_data_dir(self.data_dir)
        procs.kill_pids(left)
        if self.store is not None:
            self.store.close()
        return left


# ---- the run ---------------------------------------------------------------------------------------------------
def measure(run: Run, args: argparse.Namespace) -> None:
    total = len(run.names) * args.messages
    passed = {k: v for k, v in os.environ.items() if k.startswith("WAQ_") and k not in run.env}
    if passed:
        print("settings from the environment: " + " ".join(f"{k}={v}" for k, v in sorted(passed.items())))
    print(f"{len(run.names)} sessions connected; queueing {args.messages} messages each ({total})", flush=True)
    tick = os.sysconf("SC_CLK_TCK")
    before, services_before, started = run.session_ticks(), run.service_ticks(), time.monotonic()
    queued = run.enqueue(args.messages)
    wait_until(lambda: run.finished(total), 120 + 10 * args.messages, "every message to be sent", 0.25)
    wall = time.monotonic() - started
    load = os.getloadavg()[0]
    after, services_after = run.session_ticks(), run.service_ticks()
    footprints = {s.pid: s for s in headroom.measure().sessions}
    trees = run.trees()

    messages = [run.store.get(i) for i in queued]
    failed = [m for m in messages if m.status is not MessageStatus.SENT]
    received = requests.get(f"{run.sim_url}/__sim__/sent", timeout=30).json()
    counts: dict[tuple[str, str], int] = {}
    for item in received:
        counts[(item["to"], item["text"])] = counts.get((item["to"], item["text"]), 0) + 1
    not_once = [i for i, (_, phone, text) in queued.items() if counts.get((phone.lstrip("+"), text)) != 1]

    print(f"quiet period: {args.idle_s:g} s", flush=True)
    idle_before, idle_started = run.session_ticks(), time.monotonic()
    time.sleep(args.idle_s)
    idle_after, idle_wall = run.session_ticks(), time.monotonic() - idle_started

    times = {m.id: send_seconds(m) for m in messages}
    sent_by: dict[str, list[Message]] = {}
    for m in messages:
        if m.status is MessageStatus.SENT:
            sent_by.setdefault(m.sent_by or "?", []).append(m)
    claims = [e.at for m in messages for e in m.history if e.event is HistoryEvent.CLAIMED]
    sends = [m.sent_at for m in messages if m.sent_at is not None]
    span = (max(sends) - min(claims)).total_seconds() if sends and claims else float("nan")

    print(f"\n{'session':>8} {'sent':>5} {'worker MiB':>10} {'browser MiB':>11} {'total MiB':>9} {'procs':>5} "
          f"{'CPU s':>7} {'CPU s/send':>10} {'idle cores':>10} {'p50 s':>6} {'p99 s':>6}")
    pss, cpu, idle = [], {}, {}
    for name in run.names:
        fp = footprints[trees[name].pid]
        cpu[name] = (after[name] - before[name]) / tick
        idle[name] = (idle_after[name] - idle_before[name]) / tick / idle_wall
        mine = [times[m.id] for m in sent_by.get(name, []) if times[m.id] is not None]
        n = len(sent_by.get(name, []))
        pss.append(fp.pss_kib)
        print(f"{name:>8} {n:>5} {fp.worker_pss_kib / MIB:>10.1f} {fp.browser_pss_kib / MIB:>11.1f} "
              f"{fp.pss_kib / MIB:>9.1f} {len(fp.worker_pids) + len(fp.browser_pids):>5} {cpu[name]:>7.1f} "
              f"{cpu[name] / max(n, 1):>10.3f} {idle[name]:>10.4f} "
              f"{percentile(mine, 0.5) if mine else float('nan'):>6.2f} "
              f"{percentile(mine, 0.99) if mine else float('nan'):>6.2f}")

    all_times = [t for t in times.values() if t is not None]
    sent_total = sum(len(v) for v in sent_by.values())
    total_cpu = sum(cpu.values())
    mean_pss = sum(pss) / len(pss)
    print(f"\nsent {sent_total}/{total} ({len(failed)} not sent); the simulator received "
          f"{total - len(not_once)} exactly once ({len(not_once)} missing or repeated)")
    print(f"PSS after the sends: total {sum(pss) / MIB:.0f} MiB, per session mean {mean_pss / MIB:.0f} MiB "
          f"(min {min(pss) / MIB:.0f}, max {max(pss) / MIB:.0f})")
    print(f"send phase: {wall:.1f} s from queueing to the last send seen; sessions' CPU {total_cpu:.1f} s = "
          f"{total_cpu / wall:.2f} cores; {total_cpu / max(sent_total, 1):.3f} CPU-s per send; load average "
          f"{load:.2f} at its end")
    for name in services_after:
        used = (services_after[name] - services_before[name]) / tick
        print(f"  beside them: {name} {used:.1f} CPU-s = {used / wall:.2f} cores")
    print(f"sends a minute: {sent_total / span * 60:.0f} (first claim to last send: {span:.1f} s)")
    if all_times:
        print(f"send time (claimed -> sent in the history): p50 {percentile(all_times, 0.5):.2f} s, "
              f"p99 {percentile(all_times, 0.99):.2f} s, max {max(all_times):.2f} s")
    for session, outcome, buckets, seconds in metrics_sink.read_send_histograms(run.broker):
        if outcome == "sent" and buckets[-1][1]:
            print(f"  worker histogram {session}: {buckets[-1][1]:.0f} sends, mean {seconds / buckets[-1][1]:.2f} s "
                  f"(the send alone), p50 <= {histogram_quantile(buckets, 0.5)}, "
                  f"p99 <= {histogram_quantile(buckets, 0.99)}")
    idle_mean = sum(idle.values()) / len(idle)
    print(f"idle: {idle_mean:.4f} cores per session over {idle_wall:.0f} quiet s")
    browser_max = max(footprints[trees[name].pid].browser_pss_kib for name in run.names)
    if all_times:
        p99 = percentile(all_times, 0.99)
        print(f"goals: p99 send < {P99_GOAL_S:g} s: {'met' if p99 < P99_GOAL_S else 'missed'} ({p99:.2f} s); "
              f"Chrome and chromedriver <= {BROWSER_GOAL_MIB} MiB a session: "
              f"{'met' if browser_max <= BROWSER_GOAL_MIB * MIB else 'missed'} (largest {browser_max / MIB:.0f} MiB, "
              f"after {args.messages} sends; the goal is after 500)")

    defaults = Settings()
    projection = Projection(
        machine_kib=int(args.machine_gib * GIB_KIB), reserve_kib=int(args.reserve_gib * GIB_KIB),
        session_pss_kib=mean_pss, cores=args.machine_cores, cpu_s_per_send=total_cpu / max(sent_total, 1),
        idle_cores=idle_mean, pace_s=(defaults.min_delay_s + defaults.max_delay_s) / 2)
    print(f"\nsessions a {args.machine_gib:g} GiB, {args.machine_cores:g}-core machine holds at this footprint "
          f"(pacing {defaults.min_delay_s:g}-{defaults.max_delay_s:g} s, the default):")
    for line in projection.explain():
        print("  " + line)
    if failed or not_once:
        raise BenchError(f"{len(failed)} message(s) not sent, {len(not_once)} not received exactly once")


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM ends the run as Ctrl-C does, through the same clean-up."""
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=8, help="session workers, each with its Chromium")
    parser.add_argument("--messages", type=int, default=50, help="messages queued for each session")
    parser.add_argument("--idle-s", type=float, default=60.0, help="the quiet period after the sends (idle CPU)")
    parser.add_argument("--machine-gib", type=float, default=24.0, help="memory of the machine projected")
    parser.add_argument("--machine-cores", type=float, default=2.0, help="cores of the machine projected")
    parser.add_argument("--reserve-gib", type=float, default=2.0,
                        help="memory kept for the OS, redis, the API and beat in the projection")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs, store, profiles)")
    args = parser.parse_args()
    if args.sessions < 1 or args.messages < 1:
        parser.error("--sessions and --messages must be at least 1")

    folder = Path(tempfile.mkdtemp(prefix="waq-bench-sessions-"))
    run = Run(args.sessions, folder)
    signal.signal(signal.SIGTERM, _interrupted)
    keep, code = True, 1  # a run that did not finish keeps its logs
    try:
        memory = procs.meminfo()
        print(f"machine: {os.cpu_count()} cores, {memory['MemTotal'] / GIB_KIB:.1f} GiB, "
              f"{memory['MemAvailable'] / GIB_KIB:.1f} GiB available; load average {os.getloadavg()[0]:.2f}")
        print(f"starting {args.sessions} sessions (folder {folder})", flush=True)
        run.start()
        measure(run, args)
        keep, code = args.keep, 0
    except BenchError as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", file=sys.stderr)
        keep, code = args.keep, 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        left = run.stop()
        if left:
            print(f"killed {len(left)} process(es) that had left their trees", file=sys.stderr)
        if keep:
            print(f"logs kept in {folder / 'logs'}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()

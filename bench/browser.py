"""Browser benchmark: one SeleniumSender against the in-process strict simulator, pacing off.

    python bench/browser.py [--sends 60] [--boot-delay 3] [--markup 2026-08]
    python bench/browser.py --options [--sends 500] [--rows baseline,renderer-limit,...,kept] [--kept a,b]
    python bench/browser.py --media [--sends 100] [--rounds 3]
    python bench/browser.py --replies-every 10 [--pause 6] [--rounds 2] [--round-sends 20]

Each message is what Delivery does: a number check, then the send.

Default form: four rows side by side in one run: without and with a boot delay B on every full page load (the real
app boots on each, BENCHMARKS.md), each with the number check and the send sharing one /send?phone= load (what
Delivery does) and, as the baseline, loading the chat twice (a check and a send each a full load). Prints the median
and p90 seconds per message, the send median, the goal (median per message <= B + 1.5 s), and Chrome's PSS (MiB,
summed over chromedriver and every Chrome process) after 1, 100 and the last send.

--options: Chrome's memory options (WAQ_CHROME_MEMORY_OPTIONS, wa_queue/transport/chrome_options.py) side by side in
one run, B = 0: the baseline (none), each option on its own, and the kept combination (--kept, by default the
setting's default). Prints, per row, PSS after 100 and the last send (chromedriver and every Chrome process), its
ratio to the baseline, USS (private memory: unlike PSS it does not shrink when other Chromes run on the machine) and
the number of processes, the send median, how many other Chrome processes ran beside it, and each row's PSS per kind
of process. Then the Celery worker's own memory (a `waq worker` on the simulator, its Python processes: one with the
threads or solo pool, a main process and its child with prefork; Chrome not counted; bench/worker_memory.py compares
the pools).
--media: media messages beside text in the same run, B = 0, the default memory options: the send median per kind
(document, image, audio, video) and size (100 KB, 1 MB, 10 MB; photos up to 5 MB, WhatsApp's cap), each a number
check and an attach-caption-send on one page load, `--rounds` sends of each, text sends interleaved as the baseline;
then Chrome's PSS after --sends media sends (the four kinds at 1 MB in turn) against a fresh Chrome's after --sends
text sends. Goals: a 1 MB document under 3 s on the simulator, PSS within 10% of text's.
--replies-every S: what reading replies in the pacing pause costs the send rate (issue 28; bench/browser_replies.py):
a Delivery with pacing on (a fixed --pause) around the sender, rounds alternated without replies and with one posted
every S seconds from four numbers; prints both send medians and their ratio (goal <= 1.10), the message and cycle
medians, the pause as it ran against the configured one, and the replies posted, read and missed.
--private-chrome DIR runs a copy of Chrome's folder made in DIR: Chromes that others run on the machine map other
files, so they take no share of this one's pages (a share that lowers PSS).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from bench._services import spawn, start_redis, stop  # noqa: E402
from bench._stats import percentile  # noqa: E402
from wa_queue import procs  # noqa: E402
from wa_queue.settings import Settings  # noqa: E402
from wa_queue.simulator import pairing  # noqa: E402
from wa_queue.simulator.app import create_app  # noqa: E402
from wa_queue.simulator.profiles import DEFAULT_MARKUP  # noqa: E402
from wa_queue.transport.base import Attachment  # noqa: E402
from wa_queue.transport.chrome_options import MEMORY_OPTIONS  # noqa: E402
from wa_queue.transport.selenium import SeleniumSender  # noqa: E402

ACCOUNT = "15550000001"  # the simulated phone the browser is linked to


def start_simulator(markup: str, boot_delay_s: float) -> tuple[object, str]:
    app = create_app(markup=markup, strict=True, config={"boot_delay_s": boot_delay_s})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def uss_kib(pids: list[int]) -> int:
    """Private memory summed over pids, in KiB: what their exit would free, whoever else maps the same files."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Private_"))
    return total


def by_kind(pids: list[int]) -> dict[str, float]:
    """PSS in MiB per kind of process (chromedriver, browser, renderer, gpu-process, utility:<service>, ...)."""
    kinds: dict[str, float] = {}
    for pid in pids:
        args = procs.cmdline(pid).split()
        kind = next((a[len("--type="):] for a in args if a.startswith("--type=")), "")
        kind = kind or ("chromedriver" if args and "chromedriver" in args[0] else "browser")
        service = next((a.split("=", 1)[1].split(".")[0] for a in args if a.startswith("--utility-sub-type=")), "")
        kind = f"{kind}:{service}" if service else "top-chrome-webui" if "--top-chrome-webui" in args else kind
        kinds[kind] = kinds.get(kind, 0.0) + procs.pss_kib([pid]) / 1024
    return kinds


def other_chromes(mine: list[int]) -> int:
    """Chrome processes on the machine that are not this session's: they share Chrome's file pages, which lowers
    this session's PSS."""
    return len([p for p in procs.pids_with_arg("chromium") if p not in mine])


def private_chrome(folder: Path, binary: str, driver: str) -> tuple[str, str]:
    """A copy of Chrome's folder (and its launcher script, pointed at the copy) in folder, made once: processes that
    map other files share no pages with the Chromes others run on this machine, whose share would lower PSS."""
    lib = Path(os.path.realpath(driver)).parent  # /usr/lib/chromium: the browser, chromedriver and their data
    copy = folder / lib.name
    if not copy.exists():
        shutil.copytree(lib, folder / "partial", symlinks=True)
        (folder / "partial").rename(copy)
    launcher = folder / "launcher"
    text = Path(binary).read_text(errors="replace") if Path(binary).read_bytes()[:2] == b"#!" else None
    if text is not None:  # Debian's /usr/bin/chromium: a script that adds flags and runs $LIBDIR/chromium
        launcher.write_text(re.sub(r"(?m)^LIBDIR=.*$", f"LIBDIR={copy}", text))
        launcher.chmod(0o755)
        return str(launcher), str(copy / Path(os.path.realpath(driver)).name)
    return str(copy / Path(os.path.realpath(binary)).name), str(copy / Path(os.path.realpath(driver)).name)


def run(args: argparse.Namespace, boot_delay_s: float, loads: str, memory_options: str = "") -> dict[str, object]:
    """`loads`: "one" = the number check and the send share one /send?phone= load (what Delivery does); "two" = the
    send loads the chat again (a check and a send each a full load), the baseline."""
    server, base = start_simulator(args.markup, boot_delay_s)
    data_dir = Path(tempfile.mkdtemp(prefix="waq-bench-browser-"))
    settings = Settings.from_env({
        "WAQ_DATA_DIR": str(data_dir), "WAQ_WHATSAPP_URL": base, "WAQ_HEADLESS": str(not args.headful),
        "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0", "WAQ_SEND_TIMEOUT_S": str(20 + boot_delay_s),
        "WAQ_CHROME_RECYCLE_SENDS": str(args.recycle_sends), "WAQ_CHROME_MEMORY_OPTIONS": memory_options,
        **({"WAQ_CHROME_BINARY": args.chrome[0], "WAQ_CHROMEDRIVER": args.chrome[1]} if args.chrome else {}),
    })
    sender = SeleniumSender("bench", settings)
    per_message: list[float] = []
    send_only: list[float] = []
    memory: dict[int, float] = {}
    private: dict[int, float] = {}
    processes: dict[int, int] = {}
    others: dict[int, int] = {}
    kinds: dict[int, dict[str, float]] = {}
    checkpoints = sorted({1, min(100, args.sends), args.sends})
    try:
        pairing.log_in(sender, base, ACCOUNT, interval_s=0.3)
        text = "Benchmark message {i}: your *order* has shipped 📦\nTrack it at https://example.com/t/{i}"
        for i in range(1, args.sends + 1):
            phone = f"+1555100{i % args.recipients:04d}"
            started = time.perf_counter()
            sender.is_registered(phone)
            if loads == "two":
                sender.page.forget_chat()  # forget the open chat: the send loads it again
            sent_at = time.perf_counter()
            sender.send(phone, text.format(i=i), ref=f"bench-{i}")
            done = time.perf_counter()
            per_message.append(done - started)
            send_only.append(done - sent_at)
            if i in checkpoints:
                pids = [p for p in sender.chrome.browser_pids() if procs.alive(p)]
                memory[i] = procs.pss_kib(pids) / 1024
                private[i] = uss_kib(pids) / 1024
                processes[i] = len(pids)
                others[i] = other_chromes(pids)
                kinds[i] = by_kind(pids)
        sent = requests.get(f"{base}/__sim__/sent", timeout=10).json()
    finally:
        sender.close()
        server.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
    leftover = len([p for p in sender.chrome.browser_pids() if procs.alive(p)])
    return {"boot": boot_delay_s, "loads": loads, "per_message": per_message, "send": send_only, "memory": memory,
            "private": private, "processes": processes, "others": others, "kinds": kinds, "recorded": len(sent),
            "restarts": sender.chrome.restarts - 1, "leftover": leftover}


MEDIA_SIZES = (100_000, 1_000_000, 10_000_000)
MEDIA_KINDS = ("document", "image", "audio", "video")


def media_file(kind: str, size: int, folder: Path, n: int) -> Attachment:
    """A file of `kind` and `size` under `folder`, checked as wa-queue checks it (random bytes after real headers)."""
    from tests.helpers import media_samples as samples
    from wa_queue.media.rules import check_file

    make, ext = {"document": (samples.pdf, "pdf"), "image": (samples.jpeg, "jpg"), "audio": (samples.mp3, "mp3"),
                 "video": (samples.mp4, "mp4")}[kind]
    data = make(size)
    path = folder / f"{kind}-{size}-{n}.{ext}"
    path.write_bytes(data)
    return Attachment(path, check_file(data, path.name, None, Settings.from_env({"WAQ_MEDIA_MAX_IMAGE_MB": "16"})))


def media_sender(args: argparse.Namespace, base: str, data_dir: Path) -> SeleniumSender:
    settings = Settings.from_env({
        "WAQ_DATA_DIR": str(data_dir), "WAQ_WHATSAPP_URL": base, "WAQ_HEADLESS": str(not args.headful),
        "WAQ_SEND_TIMEOUT_S": "30", "WAQ_CHROME_RECYCLE_SENDS": str(max(args.recycle_sends, 2 * args.sends + 10)),
        **({"WAQ_CHAT_SETTLE_S": str(args.chat_settle)} if args.chat_settle is not None else {}),
        **({"WAQ_CHROME_BINARY": args.chrome[0], "WAQ_CHROMEDRIVER": args.chrome[1]} if args.chrome else {}),
    })
    sender = SeleniumSender("bench", settings)
    pairing.log_in(sender, base, ACCOUNT, interval_s=0.3)
    return sender


def timed_send(sender: SeleniumSender, i: int, text: str, media: Attachment | None) -> tuple[float, float]:
    """(seconds of the number check and the send, seconds of the send alone)."""
    phone = f"+1555200{i % 50:04d}"
    started = time.perf_counter()
    sender.is_registered(phone)
    sending = time.perf_counter()
    sender.send(phone, text, ref=f"media-bench-{i}", media=media)
    done = time.perf_counter()
    return done - started, done - sending


def main_media(args: argparse.Namespace) -> None:
    server, base = start_simulator(args.markup, 0.0)
    data_dir = Path(tempfile.mkdtemp(prefix="waq-bench-media-"))
    files = data_dir / "files"
    files.mkdir()
    times: dict[tuple[str, int], list[tuple[float, float]]] = {}
    text_times: list[tuple[float, float]] = []
    i = 0
    settle = args.chat_settle if args.chat_settle is not None else 1.5
    print(f"strict simulator, profile {args.markup}, upload 8000 KB/s (its default), chat settle {settle:g} s; "
          f"{args.rounds} sends of each kind and size, a text send between every two")
    try:
        sender = media_sender(args, base, data_dir)
        try:
            for _ in range(args.rounds):
                for kind in MEDIA_KINDS:
                    for size in MEDIA_SIZES:
                        if kind == "image" and size > 5_000_000:
                            continue  # over WhatsApp's photo cap: sent as a document instead, counted there
                        i += 1
                        times.setdefault((kind, size), []).append(
                            timed_send(sender, i, f"caption {i}" if kind != "audio" else "",
                                       media_file(kind, size, files, i)))
                        i += 1
                        text_times.append(timed_send(sender, i, f"Benchmark text {i}: your *order* has shipped",
                                                     None))
        finally:
            sender.close()
        sent = requests.get(f"{base}/__sim__/media", timeout=10).json()
        def medians(values: list[tuple[float, float]]) -> tuple[float, float]:
            return statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)

        text_message, text_send = medians(text_times)
        print(f"{'kind':>9} {'size':>11} {'msg median':>10} {'send median':>11} {'send x text':>11}")
        for (kind, size), values in times.items():
            message, send = medians(values)
            print(f"{kind:>9} {size:>11,} {message:>10.3f} {send:>11.3f} {send / text_send:>11.2f}")
        print(f"{'text':>9} {'':>11} {text_message:>10.3f} {text_send:>11.3f} {1.0:>11.2f}   ({len(text_times)} sends)")
        document = medians(times[("document", 1_000_000)])[1]
        print(f"goal: a 1 MB document's send under 3 s: {document:.3f} s, {'met' if document < 3 else 'missed'}; "
              f"{len(sent)} media messages recorded by the simulator for {sum(len(v) for v in times.values())} sent")
        if args.no_pss:
            return
        pss = {}
        for label in ("text", "media"):
            sender = media_sender(args, base, data_dir / label)
            try:
                for n in range(1, args.sends + 1):
                    media = media_file(MEDIA_KINDS[n % 4], 1_000_000, files, 10_000 + n) if label == "media" else None
                    timed_send(sender, 20_000 + n, f"{label} {n}" if n % 4 != 2 or label == "text" else "", media)
                    if media is not None:
                        media.path.unlink()
                pids = [p for p in sender.chrome.browser_pids() if procs.alive(p)]
                pss[label] = procs.pss_kib(pids) / 1024
            finally:
                sender.close()
        print(f"Chrome's PSS after {args.sends} sends: text {pss['text']:.1f} MiB, media (1 MB each, the four kinds) "
              f"{pss['media']:.1f} MiB: {pss['media'] / pss['text']:.2f}x (goal: within 10%)")
    finally:
        server.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)


def worker_memory(args: argparse.Namespace) -> list[tuple[str, float]]:
    """A real `waq worker` (WAQ_WORKER_POOL's pool, concurrency 1) for one session on the simulator, its own Redis
    and a SQLite store: PSS of each of its Python processes once the session's Chrome has started (Chrome and
    chromedriver not counted: they are the rows above)."""
    server, base = start_simulator(args.markup, 0.0)
    work = Path(tempfile.mkdtemp(prefix="waq-bench-worker-"))
    redis_proc, broker = start_redis(work / "redis")
    env = {"WAQ_DATA_DIR": str(work), "WAQ_BROKER_URL": broker, "WAQ_WHATSAPP_URL": base, "WAQ_SESSIONS": "bench",
           "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0"}
    worker = spawn([sys.executable, "-m", "wa_queue.cli", "worker", "--session", "bench"], env, work / "worker.log")
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            python = [p for p in [worker.pid, *procs.descendants(worker.pid)]
                      if procs.alive(p) and "chrom" not in procs.cmdline(p)]
            chrome = [p for p in procs.descendants(worker.pid) if "chromium" in procs.cmdline(p)]
            if chrome:
                break
            time.sleep(0.5)
        time.sleep(5)  # imports done, Chrome up
        python = [p for p in [worker.pid, *procs.descendants(worker.pid)]
                  if procs.alive(p) and "chrom" not in procs.cmdline(p)]
        return [(procs.cmdline(p)[:60], procs.pss_kib([p]) / 1024) for p in python]
    finally:
        stop(worker)
        stop(redis_proc)
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def main_options(args: argparse.Namespace) -> None:
    kept = args.kept if args.kept is not None else ",".join(Settings().chrome_memory_options)
    names = args.rows.split(",") if args.rows else ["baseline", *MEMORY_OPTIONS, "kept"]
    rows = []
    for name in names:
        options = "" if name == "baseline" else kept if name == "kept" else name
        row = run(args, 0.0, "one", options)
        row["name"] = f"kept ({kept or 'none'})" if name == "kept" else name
        row["options"] = [n for n in options.split(",") if n]
        rows.append(row)
        print(f"  done: {row['name']}", file=sys.stderr, flush=True)
    last = args.sends
    mid = min(100, last)
    base = next((r for r in rows if r["name"] == "baseline"), None)
    print(f"strict simulator, profile {args.markup}, B = 0; {last} messages per row (a number check and a send), "
          f"{args.recipients} recipients, Chrome recycled every {args.recycle_sends} sends")
    print(f"{'option':<28} {f'PSS@{mid}':>8} {f'PSS@{last}':>8} {'x base':>6} {f'USS@{last}':>8} {'procs':>5} "
          f"{'send med':>8} {'msg med':>7} {'others':>6} {'recorded':>8}")
    for row in rows:
        mem, send = row["memory"], row["send"]
        ratio = f"{mem[last] / base['memory'][last]:.2f}" if base else "-"
        print(f"{row['name']:<28} {mem.get(mid, 0):>8.1f} {mem[last]:>8.1f} {ratio:>6} {row['private'][last]:>8.1f} "
              f"{row['processes'][last]:>5} {statistics.median(send):>8.3f} "
              f"{statistics.median(row['per_message']):>7.3f} "
              f"{row['others'][last]:>6} {row['recorded']:>8}")
    for row in rows:
        print(f"  {row['name']}: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(
            row["kinds"][last].items(), key=lambda kv: -kv[1])))
    for name in dict.fromkeys(n for row in rows for n in row["options"]):
        print(f"  {name}: {MEMORY_OPTIONS[name].what}")
    print("PSS and USS in MiB over chromedriver and every Chrome process of the session; x base: PSS at the last send "
          "over the baseline's; others: Chrome processes of other programs running at that moment (they lower PSS)")
    print(f"leftover browser processes after close(): {sum(r['leftover'] for r in rows)}")
    if not args.no_worker:
        parts = worker_memory(args)
        print(f"Celery worker (waq worker, pool {Settings().worker_pool}, Chrome not counted): "
              f"{sum(m for _, m in parts):.1f} MiB PSS: "
              + "; ".join(f"{m:.1f} MiB {c!r}" for c, m in parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=60, help="sends per configuration")
    parser.add_argument("--recipients", type=int, default=50, help="distinct numbers the sends rotate over")
    parser.add_argument("--recycle-sends", type=int, default=200, help="WAQ_CHROME_RECYCLE_SENDS")
    parser.add_argument("--markup", default=DEFAULT_MARKUP, help="the simulator's markup profile (strict mode)")
    parser.add_argument("--boot-delay", type=float, default=3.0, help="B: seconds every full page load takes to boot")
    parser.add_argument("--headful", action="store_true")
    parser.add_argument("--options", action="store_true", help="Chrome's memory options side by side (see above)")
    parser.add_argument("--rows", help="--options: the rows, comma-separated: baseline, option names, kept")
    parser.add_argument("--kept", help="--options: the kept combination (default: WAQ_CHROME_MEMORY_OPTIONS' default)")
    parser.add_argument("--no-worker", action="store_true", help="--options: skip the Celery worker's memory")
    parser.add_argument("--media", action="store_true", help="media sends by kind and size beside text (see above)")
    parser.add_argument("--rounds", type=int, help="--media: sends of each kind and size (default 3); "
                        "--replies-every: rounds of each side (default 2)")
    parser.add_argument("--replies-every", type=float, metavar="S",
                        help="replies posted every S seconds during alternate rounds of paced sends (see above)")
    parser.add_argument("--pause", type=float, default=6.0,
                        help="--replies-every: the pacing pause, WAQ_MIN_DELAY_S = WAQ_MAX_DELAY_S")
    parser.add_argument("--round-sends", type=int, default=20, help="--replies-every: sends a round")
    parser.add_argument("--warmup", type=int, default=2, help="--replies-every: sends before the rounds, not counted")
    parser.add_argument("--chat-settle", type=float, help="--media, --replies-every: WAQ_CHAT_SETTLE_S (default: "
                        "the setting's 1.5 s; "
                        "the tests give the simulator 0.5 s, which renders a chat's history in one step)")
    parser.add_argument("--no-pss", action="store_true", help="--media: the medians only")
    parser.add_argument("--private-chrome", type=Path, metavar="DIR",
                        help="run a copy of Chrome made in DIR (once), so that other Chromes do not share its pages")
    args = parser.parse_args()
    args.chrome = None
    if args.private_chrome:
        defaults = Settings()
        args.private_chrome.mkdir(parents=True, exist_ok=True)
        args.chrome = private_chrome(args.private_chrome.resolve(), defaults.chrome_binary, defaults.chromedriver)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    if args.options:
        main_options(args)
        return
    if args.media:
        args.rounds = args.rounds or 3
        main_media(args)
        return
    if args.replies_every is not None:
        from bench.browser_replies import main_replies  # its own module: it builds a whole Delivery

        args.rounds = args.rounds or 2
        main_replies(args, start_simulator, ACCOUNT)
        return
    print(f"strict simulator, profile {args.markup}; {args.sends} messages per row, each a number check and a send")
    rows = [run(args, boot, loads) for boot in (0.0, args.boot_delay) for loads in ("two", "one")]
    print(f"{'boot B s':>8} {'loads/msg':>9} {'msg median':>10} {'msg p90':>8} {'send median':>11} "
          f"{'goal B+1.5':>10} {'PSS@1':>7} {'PSS@100':>8} {f'PSS@{args.sends}':>9} {'recorded':>8}")
    for row in rows:
        per, send, mem = row["per_message"], row["send"], row["memory"]
        goal = "ok" if statistics.median(per) <= row["boot"] + 1.5 else "missed"
        print(f"{row['boot']:>8.1f} {'1' if row['loads'] == 'one' else '2':>9} {statistics.median(per):>10.3f} "
              f"{percentile(per, 0.9):>8.3f} {statistics.median(send):>11.3f} {goal:>10} "
              f"{mem.get(1, 0):>7.1f} {mem.get(100, 0):>8.1f} {mem.get(args.sends, 0):>9.1f} {row['recorded']:>8}")
    for boot in (0.0, args.boot_delay):
        two, one = (statistics.median(r["per_message"]) for r in rows if r["boot"] == boot)
        print(f"B={boot:g}: one load per message takes {one / two:.2f}x the time of two (median per message)")
    print("PSS in MiB, summed over chromedriver and every Chrome process; the goal compares the median per message "
          "(check + send) with B + 1.5 s")
    print(f"leftover browser processes after close(): {sum(r['leftover'] for r in rows)}")


if __name__ == "__main__":
    main()

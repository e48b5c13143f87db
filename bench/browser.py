"""Browser benchmark: one SeleniumSender against the in-process simulator, pacing off.

    python bench/browser.py --sends 500

Prints the median and p90 seconds per send, Chrome's PSS (MiB, summed over chromedriver and every Chrome process)
after 1, 100 and 500 sends, the ratio mem500/mem100 (goal <= 1.2), and the median against pywhatkit's fixed
15-20 s wait per message.
"""

from __future__ import annotations

import argparse
import logging
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

from wa_queue.settings import Settings  # noqa: E402
from wa_queue.simulator.app import create_app  # noqa: E402
from wa_queue.transport import procs  # noqa: E402
from wa_queue.transport.base import SessionState  # noqa: E402
from wa_queue.transport.selenium import SeleniumSender  # noqa: E402

ACCOUNT = "15550000001"  # the simulated phone the browser is linked to
PYWHATKIT_WAIT_S = (15.0, 20.0)  # pywhatkit.sendwhatmsg's wait_time default plus its tab-close delay


def start_simulator() -> tuple[object, str]:
    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def log_in(sender: SeleniumSender, base: str) -> None:
    state = sender.connect()
    deadline = time.monotonic() + 30
    scanned = None
    while state is not SessionState.CONNECTED:
        ref = sender.qr_ref()
        if ref and ref != scanned:  # the page shows the old code until its next poll reloads it
            requests.post(f"{base}/__sim__/sessions/{ACCOUNT}/scan", json={"ref": ref}, timeout=5).raise_for_status()
            scanned = ref
        if time.monotonic() > deadline:
            raise SystemExit(f"login failed: state {state}")
        time.sleep(0.3)
        state = sender.state()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=500)
    parser.add_argument("--recipients", type=int, default=50, help="distinct numbers the sends rotate over")
    parser.add_argument("--recycle-sends", type=int, default=200, help="WAQ_CHROME_RECYCLE_SENDS")
    parser.add_argument("--headful", action="store_true")
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server, base = start_simulator()
    data_dir = Path(tempfile.mkdtemp(prefix="waq-bench-browser-"))
    settings = Settings.from_env({
        "WAQ_DATA_DIR": str(data_dir), "WAQ_WHATSAPP_URL": base, "WAQ_HEADLESS": str(not args.headful),
        "WAQ_MIN_DELAY_S": "0", "WAQ_MAX_DELAY_S": "0", "WAQ_SEND_TIMEOUT_S": "20",
        "WAQ_CHROME_RECYCLE_SENDS": str(args.recycle_sends),
    })
    sender = SeleniumSender("bench", settings)
    durations: list[float] = []
    memory: dict[int, float] = {}
    checkpoints = sorted({1, min(100, args.sends), args.sends})
    try:
        log_in(sender, base)
        text = "Benchmark message {i}: your order has shipped 📦\nTrack it at https://example.com/t/{i}"
        for i in range(1, args.sends + 1):
            phone = f"+1555100{i % args.recipients:04d}"
            started = time.perf_counter()
            sender.send(phone, text.format(i=i), ref=f"bench-{i}")
            durations.append(time.perf_counter() - started)
            if i in checkpoints:
                memory[i] = procs.pss_kib(sender.browser_pids()) / 1024
                print(f"  after {i:>4} sends: Chrome PSS {memory[i]:7.1f} MiB over {len(sender.browser_pids())} "
                      f"processes", flush=True)
        sent = requests.get(f"{base}/__sim__/sent", timeout=10).json()
    finally:
        sender.close()
        server.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
    median = statistics.median(durations)
    print(f"sends: {len(durations)} (simulator recorded {len(sent) if isinstance(sent, list) else sent}); "
          f"Chrome restarts: {sender.restarts - 1} (recycle every {args.recycle_sends} sends)")
    print(f"seconds per send: median {median:.3f}  p90 {percentile(durations, 0.9):.3f}  "
          f"max {max(durations):.3f}  (first {durations[0]:.3f})")
    if 100 in memory and args.sends in memory:
        ratio = memory[args.sends] / memory[100]
        print(f"Chrome PSS MiB: 1 -> {memory[1]:.1f}, 100 -> {memory[100]:.1f}, {args.sends} -> "
              f"{memory[args.sends]:.1f}; mem{args.sends}/mem100 = {ratio:.2f} (goal <= 1.2)")
    low, high = PYWHATKIT_WAIT_S
    print(f"vs pywhatkit's fixed {low:g}-{high:g} s wait per message: {low / median:.0f}-{high / median:.0f}x faster")
    print(f"leftover browser processes after close(): {len([p for p in sender.browser_pids() if procs.alive(p)])}")


if __name__ == "__main__":
    main()

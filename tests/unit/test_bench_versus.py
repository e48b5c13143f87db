"""bench/versus.py reads the figures each bench prints: these are lines in the benches' own formats."""

from __future__ import annotations

from bench.versus import BENCHES

PIPELINE = """
medians over 3 runs, 500 messages each
  bare Celery no-op tasks           841 tasks/s
  wa-queue, one session worker      472 messages/s
  ratio wa-queue / bare            0.56   (goal >= 0.5)
  enqueue one by one               1204 messages/s
  enqueue batched (500)           11520 messages/s
"""

API = """
enqueue (api, SQLite + Redis publish):    1,512 req/s (median)
bare Flask 202:                           3,020 req/s (median)
ratio: 0.50 median of 3 (goal >= 0.4); 8 client threads
GET /api/whatsapp/health         median    4.10 ms over 51 requests
GET /api/whatsapp/stats          median   12.25 ms over 51 requests
"""

BROWSER = """
boot B s loads/msg msg median  msg p90 send median goal B+1.5   PSS@1 PSS@100    PSS@60 recorded
     0.0         2      0.912    1.020       0.410         ok   301.2     0.0     402.5       60
     3.0         1      3.801    3.990       0.420         ok   305.0     0.0     410.0       60
"""


def test_each_bench_s_figures_are_read() -> None:
    assert BENCHES["pipeline"](PIPELINE) == {
        "bare Celery tasks/s": 841, "one session worker messages/s": 472, "ratio wa-queue / bare": 0.56,
        "enqueue one by one /s": 1204, "enqueue batched /s": 11520}
    assert BENCHES["api"](API) == {"enqueue req/s": 1512, "bare Flask req/s": 3020, "ratio api / bare": 0.5,
                                   "GET /api/whatsapp/health ms": 4.1, "GET /api/whatsapp/stats ms": 12.25}
    browser = BENCHES["browser"](BROWSER)
    assert browser["B=0 loads=2 s a message"] == 0.912 and browser["B=3 loads=1 send s"] == 0.42
    assert browser["B=3 loads=1 PSS MiB at the end"] == 410.0


def test_an_output_without_figures_gives_none() -> None:
    assert all(extract("Traceback (most recent call last):\n") == {} for extract in BENCHES.values())

"""One bench, run on the code of another commit and on this tree, alternately in one run, its figures side by side.

    python bench/versus.py --before REV [--rounds 3] pipeline|api|browser [-- the bench's own arguments]

A refactoring keeps the speed it had: this says so with figures from the same machine in the same hour. REV is
checked out in a temporary git worktree (removed at the end); each round runs the bench there and here, the first
of the two alternating between rounds so that neither side always runs on a machine warmed (or loaded) by the other.
Each side runs with its own tree first on the Python path, the children it spawns too (cwd and PYTHONPATH), and
says which tree it imported. Prints each figure's median over the rounds for both sides and their ratio
(this tree / REV). A figure is whatever the bench prints as its result: the extractors below read the lines each
bench prints, so a bench that changes its output changes them too.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

Extractor = Callable[[str], dict[str, float]]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _pipeline(out: str) -> dict[str, float]:
    figures = {}
    for label, pattern in (("bare Celery tasks/s", r"bare Celery no-op tasks\s+([\d.,]+)"),
                           ("one session worker messages/s", r"wa-queue, one session worker\s+([\d.,]+)"),
                           ("ratio wa-queue / bare", r"ratio wa-queue / bare\s+([\d.,]+)"),
                           ("mixed priorities messages/s", r"mixed priorities \(1:8:1\)\s+([\d.,]+)"),
                           ("enqueue one by one /s", r"enqueue one by one\s+([\d.,]+)"),
                           ("enqueue batched /s", r"enqueue batched \(500\)\s+([\d.,]+)")):
        found = re.search(pattern, out)
        if found:
            figures[label] = _number(found.group(1))
    return figures


def _api(out: str) -> dict[str, float]:
    figures = {}
    for label, pattern in (("enqueue req/s", r"enqueue \(api, SQLite \+ Redis publish\):\s+([\d.,]+)"),
                           ("bare Flask req/s", r"bare Flask 202:\s+([\d.,]+)"),
                           ("ratio api / bare", r"ratio: ([\d.]+) median")):
        found = re.search(pattern, out)
        if found:
            figures[label] = _number(found.group(1))
    for path, ms in re.findall(r"GET (\S+)\s+median\s+([\d.]+) ms", out):
        figures[f"GET {path} ms"] = _number(ms)
    return figures


def _browser(out: str) -> dict[str, float]:
    figures = {}
    row = re.compile(r"^\s*([\d.]+)\s+([12])\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\S+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)",
                     re.M)
    for boot, loads, median, _p90, send, _pss1, _pss100, pss_last in row.findall(out):
        name = f"B={float(boot):g} loads={loads}"
        figures[f"{name} s a message"] = _number(median)
        figures[f"{name} send s"] = _number(send)
        figures[f"{name} PSS MiB at the end"] = _number(pss_last)
    return figures


BENCHES: dict[str, Extractor] = {"pipeline": _pipeline, "api": _api, "browser": _browser}


def run_side(tree: Path, bench: str, extra: list[str], log: Path) -> dict[str, float]:
    """The bench of `tree`, with `tree` first on the path of it and its children; its figures."""
    path = [str(tree), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    probe = subprocess.run([sys.executable, "-c", "import wa_queue; print(wa_queue.__file__)"], cwd=tree, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not probe.startswith(str(tree)):
        sys.exit(f"versus: the bench of {tree} would import wa_queue from {probe}")
    done = subprocess.run([sys.executable, str(tree / "bench" / f"{bench}.py"), *extra], cwd=tree, env=env,
                          capture_output=True, text=True)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        sys.exit(f"versus: bench/{bench}.py of {tree} failed (exit {done.returncode}); its output: {log}")
    figures = BENCHES[bench](done.stdout)
    if not figures:
        sys.exit(f"versus: no figure found in the output of bench/{bench}.py of {tree}: {log}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the commit to compare with (any git revision)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("bench", choices=sorted(BENCHES))
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="after --: the bench's own arguments")
    args = parser.parse_args()
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    sides: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="waq-versus-") as root:
        before = Path(root) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(before), args.before],
                       check=True)
        try:
            for round_ in range(args.rounds):
                order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
                for side in order:
                    tree = before if side == "before" else ROOT
                    figures = run_side(tree, args.bench, extra, Path(root) / f"{side}-{round_}.log")
                    sides[side].append(figures)
                    print(f"round {round_ + 1} {side:6}: " + ", ".join(f"{k} {v:g}" for k, v in figures.items()),
                          flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)
    labels = [label for label in sides["after"][0] if all(label in run for run in sides["before"] + sides["after"])]
    print(f"\nbench/{args.bench}.py {' '.join(extra)}: medians over {args.rounds} rounds; "
          f"before = {args.before}, after = this tree")
    print(f"{'figure':<36} {'before':>10} {'after':>10} {'after/before':>12}")
    for label in labels:
        old = statistics.median(run[label] for run in sides["before"])
        new = statistics.median(run[label] for run in sides["after"])
        print(f"{label:<36} {old:>10.3f} {new:>10.3f} {new / old if old else float('nan'):>12.2f}")


if __name__ == "__main__":
    main()

"""`llm-sizer sweep` end to end: a 10,000-point sweep (100 context lengths x 100 batch sizes) as a user
runs it, each run a new process with a warm cache, best of 3; and the evaluation alone, in process.

    python benchmarks/sweep_command.py
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time

VARY = ["--vary", "max_model_len=1024:102400:+1024", "--vary", "batch_size=1:100:+1"]


def command(args, repeats=3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "engine.cli", "sweep", *VARY, *args], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t)
    return best


def in_process(repeats=5) -> tuple[float, int]:
    from engine import sizing, sweep

    g, c = sizing.load()
    varies = [sweep.parse_vary(v) for v in VARY[1::2]]
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        sw = sweep.run(g, c, {}, varies)
        best = min(best, time.perf_counter() - t)
    return best, len(sw)


def main():
    command(["--no-files"], repeats=1)          # warm the cache of compiled formulas
    seconds, points = in_process()
    print(f"{points:,} points: evaluation (sweep.run) {seconds * 1000:.0f} ms")
    print(f"llm-sizer sweep --no-files: {command(['--no-files']):.2f} s")
    with tempfile.TemporaryDirectory() as out:
        print(f"llm-sizer sweep (CSV, XLSX with charts, Markdown): {command(['--out', out]):.2f} s")


if __name__ == "__main__":
    main()

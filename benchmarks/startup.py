"""Cold and warm start-up of everyday commands, as a user runs them (a new process each time).

Cold: an empty cache directory, so the formulas are compiled with sympy and quantities parsed
with pint. Warm: the cache from the previous run is used. Prints the best of N wall times.

    python benchmarks/startup.py [N]
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [
    ["size", "--no-files"],
    ["size", "--out", "{tmp}/out"],
    ["check"],
    ["list", "models"],
    ["workbook", "-o", "{tmp}/w.xlsx"],
    ["explain", "kv_cache_tokens"],
]
EXE = Path(sys.executable).with_name("llm-sizer")


def run(args, env) -> float:
    start = time.perf_counter()
    subprocess.run([str(EXE), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main(n: int = 5):
    tmp = tempfile.mkdtemp()
    cache = Path(tmp) / "cache"
    env = {**os.environ, "LLM_SIZER_CACHE_DIR": str(cache)}
    baseline = min(run(["--help"], env) for _ in range(n))
    print(f"llm-sizer --help (Python start-up, click): {baseline:.3f} s\n")
    print(f"{'command':40} {'cold s':>8} {'warm s':>8}")
    for cmd in COMMANDS:
        args = [a.format(tmp=tmp) for a in cmd]
        cold = []
        for _ in range(max(1, n // 2)):
            shutil.rmtree(cache, ignore_errors=True)
            cold.append(run(args, env))
        warm = min(run(args, env) for _ in range(n))
        print(f"{'llm-sizer ' + ' '.join(cmd).replace('{tmp}/', ''):40} {min(cold):8.3f} {warm:8.3f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)

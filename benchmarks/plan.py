"""Plan benchmark: about 400,000 candidate deployments planned end to end, as `llm-sizer plan` does.

    python benchmarks/plan.py

Every GPU of the catalog x 9 TP/PP layouts (up to 16 GPUs) x 4 memory utilizations x 6 weight formats x 2 KV-cache dtypes x 40 context
lengths, for Llama-3.1-70B with 40 concurrent users and ITL < 50 ms: requirements parsed, every family resolved,
one vectorized evaluation, feasibility, ranking, Pareto front, reasons, and the JSON of the 20 best. Prints the
time of each part (best of 5, after one warm-up run that also fills the compiled-formula cache).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time


def main(repeats: int = 5) -> None:
    from engine import plan, sizing

    t0 = time.perf_counter()
    g, c = sizing.load()
    t_load = time.perf_counter() - t0
    lens = [str(4096 + k * 3072) for k in range(40)]          # 4,096 .. 123,904 tokens
    options = {"max_model_len": lens, "concurrency": "40", "max_itl": "50 ms", "max_gpus": 16,
               "quantization": "none,fp8,int8-w8a8,awq-int4-g128,gptq-int4-g128,nvfp4", "kv_cache_dtype": "auto,fp8"}
    best, p = None, None
    for _ in range(repeats + 1):
        t = time.perf_counter()
        req = plan.requirements(c, "meta-llama/Llama-3.1-70B-Instruct", options)
        p = plan.plan(g, c, req, top=20)
        text = json.dumps(plan.json_plan(p))
        elapsed = time.perf_counter() - t
        best = elapsed if best is None else min(best, elapsed)
    resolved = sum(f.bindings is not None for f in p.families)
    print(f"load formulas + catalogs: {t_load:.2f} s")
    print(f"{p.evaluated:,} candidates ({len(req.gpus)} GPUs x {len(req.parallel)} layouts x {len(req.utilizations)} utilizations x 6 formats x 2 KV dtypes "
          f"x {len(lens)} context lengths; {resolved} of {len(p.families)} GPU/format/KV families resolvable), "
          f"{p.feasible:,} feasible: planned in {best:.2f} s end to end (best of {repeats}), "
          f"{p.evaluated / best:,.0f} candidates/s; JSON {len(text):,} bytes")
    argv = [sys.executable, "-m", "engine.cli", "plan", "--model", "meta-llama/Llama-3.1-70B-Instruct",
            "--concurrency", "40", "--max-itl", "50 ms", "--max-gpus", "16", "--quantization", options["quantization"],
            "--kv-cache-dtype", options["kv_cache_dtype"], "--json", "--top", "20"]
    for n in lens:
        argv += ["--max-model-len", n]
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        runs.append(time.perf_counter() - t)
    print(f"the same plan as a command (`llm-sizer plan ... --json`, a new process, warm cache): {min(runs):.2f} s "
          f"(best of {repeats})")


if __name__ == "__main__":
    main()

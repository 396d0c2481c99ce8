"""Plain-text output for the terminal."""
from __future__ import annotations

import numpy as np

from ..evaluate import Derivation, Result, format_number
from ..units import GB, GIB

BREAKDOWN = [
    ("Weights", "weight_memory_per_gpu"),
    ("Activation peak (profiling run)", "activation_peak_memory"),
    ("Non-torch memory (NCCL, ...)", "non_torch_memory"),
    ("KV cache", "available_kv_cache_memory"),
]
OUTSIDE = [("CUDA context", "cuda_context_memory"), ("CUDA graphs", "cuda_graph_memory")]
# Frameworks sized by the workload minimum (the remediation plan's overhead shape) (catalogs/frameworks.yaml memory_model).
MINIMUM = [
    ("Weights", "weight_memory_per_gpu"),
    ("KV cache (this workload)", "workload_kv_cache_memory"),
    ("Activation peak (one forward pass)", "activation_peak_memory"),
    ("Framework overhead (004)", "framework_overhead_memory"),
]
# What each verdict condition means, with the figures that show it (formulas named in the catalog).
CONDITIONS = {
    "fits_gpu_memory": "in use per GPU {total_memory_per_gpu} exceeds the GPU's {gpu_memory_total} "
                       "by {gpu_memory_overcommit}",
    "fits_one_request": "the KV cache holds {kv_cache_tokens:n} tokens, fewer than one request of max_model_len "
                        "{max_model_len:n}; the budget is short by {request_kv_cache_shortfall}",
    "fits_workload": "the workload needs {workload_kv_cache_tokens:n} tokens of KV cache, it holds "
                     "{kv_cache_tokens:n}; the budget is short by {workload_kv_cache_shortfall}",
    "minimum_memory_fits": "the workload needs {minimum_memory_per_gpu} per GPU, the GPU has {gpu_memory_total}; "
                           "short by {minimum_memory_shortfall}",
}
# A way out, shown when its figure is positive.
HINTS = {"fits_one_request": ("max_model_len_that_fits", " (--max-model-len {max_model_len_that_fits:d} would fit)")}
KEY_FIGURES = {"fits": ["kv_cache_tokens", "available_kv_cache_memory", "weight_memory_per_gpu",
                        "kv_cache_bytes_per_token", "memory_shortfall"],
               "minimum_memory_fits": ["minimum_memory_per_gpu", "workload_kv_cache_memory", "weight_memory_per_gpu",
                                       "framework_overhead_memory"]}


def scalar(v) -> float:
    return float(np.asarray(v).reshape(-1)[0])


def gib_gb(v) -> str:
    v = scalar(v)
    return f"{v / GIB:9.2f} GiB {v / GB:9.2f} GB"


def compact(v) -> str:
    v = scalar(v)
    return f"{v / GIB:.2f} GiB ({v / GB:.2f} GB)"


def table(rows, header=None) -> str:
    widths = [max(len(str(r[i])) for r in rows + ([header] if header else [])) for i in range(len(rows[0]))]
    fmt = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths)))
    lines = [fmt(header), fmt(["-" * w for w in widths])] if header else []
    return "\n".join(lines + [fmt(r) for r in rows])


def verdict(result: Result, sc) -> dict:
    """The framework's verdict, read from the formulas its catalog record names."""
    names = sc.framework["memory_model"]["verdict"]
    failed = int(scalar(result[names["failed"]]))
    return {"fits": bool(scalar(result[names["fits"]])), "memory_shortfall": scalar(result[names["shortfall"]]),
            "failed_condition": names["conditions"][failed - 1] if failed else None,
            "conditions": {n: bool(scalar(result[n])) for n in names["conditions"]},
            "formulas": {k: names[k] for k in ("fits", "shortfall", "failed")},
            **({"load_sustainable": bool(scalar(result["served_load_sustainable"]))}
               if "serving_mode" in result and scalar(result["serving_mode"]) else {})}


def verdict_line(result: Result, sc) -> str:
    verdict_ = verdict(result, sc)
    if verdict_["fits"]:
        return "Verdict: fits."
    return (f"Verdict: does NOT fit - short by {verdict_['memory_shortfall'] / GIB:.2f} GiB per GPU: "
            f"{condition_text(result, sc, verdict_['failed_condition'])}.")


def condition_text(result: Result, sc, condition: str) -> str:
    """One verdict condition in words, with its figures (bytes in GiB, counts in full)."""
    class Figures(dict):
        def __missing__(self, name):
            return _Figure(scalar(result[name]), result.unit(name))
    figures = Figures()
    hint = HINTS.get(condition)
    text = CONDITIONS[condition] + (hint[1] if hint and figures[hint[0]] > 0 else "")
    return text.format_map(figures)


class _Figure(float):
    def __new__(cls, value, unit):
        f = super().__new__(cls, value)
        f.unit = unit
        return f

    def __format__(self, spec):
        if spec == "n":
            return format_number(self)
        if spec == "d":      # a value to type as an option
            return str(int(self))
        return f"{self / GIB:.2f} GiB" if self.unit.startswith("byte") else format_number(self)


def key_figures(sc) -> list:
    return KEY_FIGURES[sc.framework["memory_model"]["verdict"]["fits"]]


def uses_vllm_budget(sc) -> bool:
    return not (sc.framework.get("memory_model") or {}).get("formulas_not_used")


def breakdown_rows(result: Result, sc) -> list:
    """(label, bytes) for the per-GPU memory table: vLLM's budget and what lies outside it, or the workload minimum."""
    if not uses_vllm_budget(sc):
        rows = [(label, scalar(result[name])) for label, name in MINIMUM]
        rows.append((f"= needed per GPU under {sc.framework.get('name')}", scalar(result["minimum_memory_per_gpu"])))
        rows.append(("GPU total (runtime)", scalar(result["gpu_memory_total"])))
        return rows
    rows = [(label, scalar(result[name])) for label, name in BREAKDOWN]
    rows.append(("= vLLM budget", scalar(result["gpu_memory_budget"])))
    rows += [(f"+ {label} (outside the budget)", scalar(result[name])) for label, name in OUTSIDE]
    rows.append(("= in use per GPU", scalar(result["total_memory_per_gpu"])))
    return rows


def capacity_lines(result: Result, sc) -> list:
    v = lambda n: scalar(result[n])  # noqa: E731
    s = sc.values
    verdict_ = verdict(result, sc)
    if uses_vllm_budget(sc):
        # a hybrid model's recurrent state is paged beside the KV cache, in blocks vLLM enlarges to hold it
        state = (f" + {format_number(v('recurrent_state_bytes_per_sequence'))} bytes/sequence/GPU of recurrent state"
                 if "recurrent_state_bytes_per_sequence" in result and v("recurrent_state_bytes_per_sequence") else "")
        lines = [f"KV cache: {format_number(v('kv_cache_bytes_per_token'))} bytes/token/GPU{state}, "
                 f"{format_number(v('num_gpu_blocks'))} blocks of {format_number(v('kv_block_size'))} tokens = "
                 f"{format_number(v('kv_cache_tokens'))} tokens; max concurrency at "
                 f"{format_number(s['max_model_len'])} tokens/request: {v('max_concurrency'):.2f}x"]
    else:
        lines = [f"KV cache: {format_number(v('kv_cache_bytes_per_token'))} bytes/token/GPU; the workload's "
                 f"{format_number(v('workload_kv_cache_tokens'))} tokens take {v('workload_kv_cache_memory') / GIB:.2f} GiB"]
    lines.append(verdict_line(result, sc))
    if "ttft" in result and verdict_["fits"]:
        lines.append(latency_line(result, sc))
    if uses_vllm_budget(sc) and not scalar(result["serving_mode"]):    # a served load has no fixed batch
        lines.append(f"Workload {s['batch_size']} x ({s['input_tokens']:g} + {s['output_tokens']:g}) tokens needs at "
                     f"least {v('minimum_memory_per_gpu') / GIB:.2f} GiB per GPU (weights, its KV cache, activations and "
                     "framework overhead; vLLM reserves its budget whatever the workload).")
    return lines


CAPACITY_LIMITS = {1: "the token budget, --max-num-batched-tokens, binds", 2: "--max-num-seqs binds",
                   3: "the KV cache binds"}


def latency_line(result: Result, sc) -> str:
    """The offline batch's latency, or the served load's steady state (formulas/serving.yaml)."""
    v = lambda n: scalar(result[n])  # noqa: E731
    s = sc.values
    tokens = f"{s['input_tokens']:g} + {s['output_tokens']:g} tokens"
    mode = int(v("serving_mode"))
    # an offline batch's prefill and decode step are each one roofline step: say which side binds it
    bound = lambda n: (f" ({'compute' if v(n) else 'memory'}-bound)" if mode == 0 else "")  # noqa: E731
    figures = (f"TTFT {v('ttft') * 1000:.1f} ms{bound('prefill_compute_bound')}, inter-token "
               f"{v('inter_token_latency') * 1000:.2f} ms{bound('decode_compute_bound')}, end-to-end "
               f"{v('e2e_latency'):.2f} s, {v('output_throughput'):,.0f} output tokens/s")
    if mode == 0:
        return f"Latency at batch {s['batch_size']}, {tokens}: {figures}"
    prefix = f" ({s['prefix_tokens']:g} shared prefix)" if s.get("prefix_tokens") else ""
    capacity = (f"sustainable up to {v('max_sustainable_request_rate'):.2f} requests/s "
                f"({CAPACITY_LIMITS[int(v('capacity_limit'))]})")
    if mode == 2:
        users = f"{s['concurrency']} user{'' if s['concurrency'] == 1 else 's'}"
        return (f"Served to {users} in a closed loop, {tokens}{prefix}: {figures} "
                f"({v('served_request_rate'):.2f} requests/s); {capacity}")
    if not v("served_load_sustainable"):
        return (f"Served at {s['request_rate']:g} requests/s: the queue grows without bound - {capacity}. Running "
                f"requests would see {v('inter_token_latency') * 1000:.2f} ms between tokens; TTFT and end-to-end "
                "grow with the queue.")
    return f"Served at {s['request_rate']:g} requests/s (Poisson), {tokens}{prefix}: {figures}; {capacity}"


def headline(sc, result: Result | None = None) -> str:
    s = sc.values
    weights = "unquantized" if sc.quant_id == "none" else sc.quant_id
    variant = f" [variant {result.variant}]" if result is not None and result.variant else ""
    return (f"{sc.model.id} on {s['tensor_parallel_size'] * s.get('pipeline_parallel_size', 1)} x {sc.gpu['name']}"
            f" (TP={s['tensor_parallel_size']}, PP={s.get('pipeline_parallel_size', 1)}): {sc.dtype} {weights} weights,"
            f" {sc.kv_dtype} KV cache, framework {sc.framework_id}{variant}")


def size_report(result: Result, sc, command: str) -> str:
    s = sc.values
    out = [headline(sc, result), ""]
    if uses_vllm_budget(sc):
        out.append(f"Per GPU: the runtime reports {compact(result['gpu_memory_total'])}; vLLM's budget is "
                   f"{s['gpu_memory_utilization']:g} x that = {compact(result['gpu_memory_budget'])}")
    else:
        out.append(f"Per GPU: the runtime reports {compact(result['gpu_memory_total'])}; "
                   f"{sc.framework.get('name')} is sized by the least memory the workload needs (004)")
    out += [table([[label, gib_gb(value)] for label, value in breakdown_rows(result, sc)]), ""]
    out += capacity_lines(result, sc)
    out += [f"Note: {note}" for note in sc.notes]
    out += ["", "Command:", "  " + command]
    return "\n".join(out)


def derivation(d: Derivation, depth: int = 0, latex: bool = False) -> str:
    pad = "  " * depth
    unit = "" if d.unit in ("1", "") else f" {d.unit}"
    if d.unit.startswith("byte") and scalar(d.value) >= 1e6:
        unit += f" ({scalar(d.value) / GIB:,.3f} GiB)"
    lines = [f"{pad}{d.name}{' [variant ' + d.variant + ']' if d.variant else ''} = {format_number(scalar(d.value))}{unit}",
             f"{pad}  {d.doc}",
             f"{pad}  = {d.symbolic}",
             f"{pad}  = {d.substituted}"]
    if latex:
        lines.append(f"{pad}  LaTeX: {d.latex}")
    if d.sources:
        lines.append(f"{pad}  sources: {'; '.join(str(s) for s in d.sources)}")
    for name, value, unit_, doc, src in d.inputs:
        u = "" if unit_ in ("1", "") else f" {unit_}"
        lines.append(f"{pad}  - {name} = {format_number(scalar(value))}{u}  ({doc}; {src})")
    for step in d.steps:
        lines.append(derivation(step, depth + 1, latex))
    return "\n".join(lines)


def _latency_accuracy(report: dict) -> str:
    """`accuracy --latency`: per dataset, GPU and framework, then the served profiles no fit saw."""
    from ..accuracy import LATENCY

    pct = lambda d, k: f"{d[k]['pct']:.1f} ({d[k]['n']})" if k in d else "-"  # noqa: E731
    rows = [[d["dataset"], d["gpu"], d["framework"], str(d["models"]),
             "held out" if d.get("held_out") else "in-sample" if d["fitted"] else "not fitted"]
            + [pct(d["in_sample"], k) for k in LATENCY]
            + [pct(d["left_out"], k) for k in LATENCY] for d in report["datasets"]]
    out = [table(rows, ["dataset", "GPU", "framework", "models", "recorded fit", "TTFT %", "step %", "E2E %",
                        "left-out TTFT %", "left-out step %", "left-out E2E %"]),
           "Mean absolute % error (rows); left-out: each model scored by a fit made without its rows"
           + ("; held out: a dataset no fit uses (held_out in its record), scored by the recorded fit."
              if any(d.get("held_out") for d in report["datasets"]) else ".")]
    if report["cases"]:
        def cell(r, k):
            pred, meas = r["values"][k]
            if k not in r["errors"]:
                return f"queue grows / {meas * 1000:.1f}"
            return f"{pred * 1000:.1f} / {meas * 1000:.1f} ({r['errors'][k]:.2f} %)"

        def load(r):
            s = r["served"]
            return f"{s['request_rate']:.2f} / {s['max_sustainable_request_rate']:.2f}" if s else "one at a time"
        rows = [[r["id"][:45], r["model"][:30], str(r["tp"]), load(r)] + [cell(r, k) for k in LATENCY]
                for r in report["cases"]]
        rows.append(["mean absolute error", "", "", ""] + [f"{report['mean_abs_error_pct'][k]:.2f} %"
                                                            for k in LATENCY])
        out.append(table(rows, ["served profile (no fit saw it)", "model", "TP", "rate / capacity req/s",
                                "TTFT ms pred / meas", "ITL ms pred / meas", "E2E ms pred / meas"]))
    return "\n\n".join(out)


def _cross_validated_rows(cv, errors) -> list:
    """--cross-validate: the fitted cases, each model predicted by a refit that did not see it."""
    if not cv:
        return []
    return ([["in the fit, its model left out of a refit", str(cv["n"])] + errors(cv["mean_abs_error_pct"])]
            + [[f"  model left out: {g}", str(v["n"])] + errors(v["mean_abs_error_pct"]) for g, v in cv["groups"].items()])


def accuracy_table(report: dict, latency: bool) -> str:
    """`llm-sizer accuracy`: one row per measured profile, absolute % errors, the mean last."""
    from ..accuracy import COMPARED

    if latency:
        return _latency_accuracy(report)

    def errors(means):
        return [f"{means[f]:.2f}" if f in means else "-" for f in COMPARED]

    rows = [[r["id"][:58], r["version"][:12], r["gpu"], str(r["tp"]), str(r["pp"])] + errors(r["errors"])
            for r in report["cases"]]
    rows.append(["mean absolute error", "", "", "", ""] + errors(report["mean_abs_error_pct"]))
    out = [table(rows, ["profile", "vLLM", "GPU", "TP", "PP", "weights %", "KV memory %", "KV tokens %",
                        "concurrency %"])]
    if report.get("groups"):
        out.append(table([[g, str(v["n"])] + errors(v["mean_abs_error_pct"]) for g, v in report["groups"].items()],
                         ["group (mean absolute error)", "cases", "weights %", "KV memory %", "KV tokens %",
                          "concurrency %"]))
    if report.get("left_out", {}).get("n") and report["in_fit"]["n"]:
        lo = report["left_out"]
        out.append(table([["in the memory fit", str(report["in_fit"]["n"])] + errors(report["in_fit"]["mean_abs_error_pct"]),
                          ["left out of it", str(lo["n"])] + errors(lo["mean_abs_error_pct"])]
                         + [[f"  left out: {g}", str(v["n"])] + errors(v["mean_abs_error_pct"])
                            for g, v in lo["groups"].items()]
                         + _cross_validated_rows(report.get("cross_validated"), errors),
                         ["fit (catalogs/fits/vllm_memory.yaml)", "cases", "weights %", "KV memory %", "KV tokens %",
                          "concurrency %"]))
    if report.get("not_scored"):
        out.append("Logged but not scored (the stated setup cannot produce them):\n"
                   + "\n".join(f"  {n['id']} {n['field']}: {n['reason']}" for n in report["not_scored"]))
    if report.get("not_sized"):
        out.append("Not sized (the engine cannot size them yet):\n"
                   + "\n".join(f"  {n['id']} (vLLM {n['version'] or '?'}): {n['reason']}" for n in report["not_sized"]))
    return "\n\n".join(out)

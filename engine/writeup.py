"""A real-world validation write-up in 000's structure: every figure recomputed, each claim checked.

000 checks the calculator against one vLLM startup by carrying its printed (rounded) figures
forward. Each of its figures here is a formula evaluated with the measured values pinned in
place of what the formula would predict (`pinned`), so the write-up computes nothing the
formulas do not. A figure the profile does not measure is None, which the template shows as
"not measured".
"""
from __future__ import annotations

from . import evaluate as ev
from . import scenario as scn
from .catalog import Catalog
from .errors import ProfileError
from .graph import FormulaGraph
from .units import GB, GIB, MIB
from .validation import about, band, profile_scenario

PREDICTED = ("weight_memory_per_gpu", "activation_peak_memory", "non_torch_memory", "cuda_graph_memory",
             "available_kv_cache_memory", "kv_cache_tokens", "gpu_memory_budget", "gpu_memory_total",
             "num_gpu_blocks", "num_kv_cache_groups", "kv_block_size", "kv_cache_bytes_per_token", "num_gpus",
             "attention_heads_per_gpu", "attention_width_per_gpu", "hidden_size_per_gpu",
             "simple_calculator_activation_tokens", "simple_calculator_activation_memory", "head_dim",
             "profile_run_tokens")
SIMPLE_CALCULATOR = "simple_calculator"   # the variant holding 000's simple calculator


def _decimals(x) -> int:
    text = repr(float(x)) if not float(x).is_integer() else str(int(x))
    return len(text.split(".")[1]) if "." in text else 0


def _printed(value, unit: float, decimals: int):
    """A measured figure as 000 prints and then carries it forward: rounded in its unit."""
    return None if value is None else round(value / unit, decimals) * unit


def _ratio(value, unit: float):
    return None if value is None else value / unit


def _diff_pct(calculated, measured):
    """(calculated - measured) / measured in %, 000's sign; None when either is missing."""
    if calculated is None or measured is None:
        return None
    return (calculated - measured) / measured * 100


class Pinned:
    """Formula values with some formulas (or inputs) fixed at measured figures."""

    def __init__(self, graph: FormulaGraph, bindings: dict):
        self.graph, self.bindings = graph, bindings

    def __call__(self, target: str, variant: str | None = None, **pins):
        if any(v is None for v in pins.values()):
            return None          # a pinned figure the profile does not measure
        result = ev.evaluate(self.graph, {**self.bindings, **pins}, [target], variant)
        return float(result[target])


def writeup(graph: FormulaGraph, catalog: Catalog, profile, overrides: dict | None = None) -> dict:
    """Everything 000's write-up shows, recomputed; each of the source's claims checked."""
    sc = profile_scenario(catalog, profile, overrides)
    with about(profile):
        bindings = scn.bindings(graph, catalog, sc)
        ours = ev.evaluate(graph, bindings)
    pinned = Pinned(graph, bindings)
    m, notes = profile.measured, list(profile.notes)
    weights, kv, tokens = m.get("weights_memory"), m.get("kv_cache_memory"), m.get("kv_cache_tokens")
    if kv is not None and catalog.validation["views"].get(profile.kind) == "workload":
        kv = None   # 001's profiler measures the batch's KV cache, not what vLLM set aside for it
        notes.append("the profile's KV-cache figure is what the measured batch used, not vLLM's available KV "
                     "memory: the KV-cache checks below are not measured")
    predicted = {n: float(ours[n]) for n in PREDICTED}
    predicted["dtype_bytes"] = float(ours["dtype_bytes"])
    f = _source_figures(profile, sc.values, pinned, predicted, weights, kv, tokens)
    claims = _claims(profile, f)
    # llm-sizer's own model, fed the measured memory instead of its predictions
    predicted["kv_tokens_from_measured"] = pinned("kv_cache_tokens", available_kv_cache_memory=kv)
    budget_beyond = pinned("budget_beyond_weights_and_kv_cache", weight_memory_per_gpu=weights,
                           available_kv_cache_memory=kv)
    errors = {"weights_pct": _diff_pct(predicted["weight_memory_per_gpu"], weights),
              "kv_pct": _diff_pct(predicted["available_kv_cache_memory"], kv),
              "tokens_from_measured_pct": _diff_pct(predicted["kv_tokens_from_measured"], tokens),
              "token_error_pct": f["token_error_pct"], "bytes_per_token_error_pct": f["bytes_per_token_error_pct"]}
    return {"profile": profile.path, "kind": profile.kind, "scenario": sc.values,
            "sc": {"model": sc.model.id, "model_name": sc.model.id.split("/")[-1], "gpu": sc.gpu["name"],
                   "gpu_id": sc.gpu_id, "notes": sc.notes},
            "arch": sc.model.arch, "figures": f, "claims": claims, "differs": [c for c in claims if not c["ok"]],
            "reproduced": sum(c["ok"] for c in claims), "predicted": predicted, "errors": errors,
            "bands": {k: (None if v is None else band(v, catalog)) for k, v in errors.items()},
            "measured": {"weights": weights, "kv": kv, "tokens": tokens},
            "missing": [k for k, v in (("weights_memory", weights), ("kv_cache_memory", kv),
                                       ("kv_cache_tokens", tokens)) if v is None],
            "vllm_budget_gb": predicted["gpu_memory_budget"] / GB,
            "everything_else_vllm_gb": _ratio(budget_beyond, GB),
            "model_note": sc.model.params.get("mismatch_explained"), "profile_notes": notes,
            "derivation": ours.derivation("kv_cache_bytes_per_token")}


def _source_figures(profile, s: dict, pinned: Pinned, predicted: dict, weights, kv, tokens) -> dict:
    """000's figures, each computed its way: from the printed (rounded) figures it carries forward."""
    m = profile.measured
    smi, used = m.get("nvidia_smi_total"), m.get("total_memory")
    f = {"total_vram_mib": _ratio(smi, MIB), "used_mib": _ratio(used, MIB), "total_vram_gib": _ratio(smi, GIB),
         "used_gib": _ratio(used, GIB), "total_vram_gb": _ratio(smi, GB)}
    free = pinned("memory_headroom", gpu_memory_total=smi, total_memory_per_gpu=used)
    f.update(free_mib=_ratio(free, MIB), free_gib=_ratio(free, GIB))
    smi_printed = _printed(smi, GB, 1)              # 000: "34.2 GB" x utilization
    f["available_gb"] = _ratio(pinned("gpu_memory_budget", gpu_memory_total=smi_printed), GB)
    f.update(weights_gb=_ratio(weights, GB), weights_gib=_ratio(weights, GIB), kv_available_gb=_ratio(kv, GB),
             kv_available_gib=_ratio(kv, GIB), kv_bytes_per_token=predicted["kv_cache_bytes_per_token"],
             measured_tokens=tokens)
    kv_printed, weights_printed = _printed(kv, GB, 2), _printed(weights, GB, 2)
    f["kv_available_bytes_as_printed"] = kv_printed
    f["measured_bytes_per_token"] = pinned("kv_cache_bytes_per_cached_token", available_kv_cache_memory=kv_printed,
                                           kv_cache_tokens=tokens)
    f["expected_tokens"] = pinned("kv_cache_tokens_unpaged", available_kv_cache_memory=kv_printed)
    f["token_error"] = None if tokens is None or f["expected_tokens"] is None else round(f["expected_tokens"]) - tokens
    f["token_error_pct"] = _diff_pct(f["expected_tokens"], tokens)
    f["bytes_per_token_error_pct"] = _diff_pct(f["measured_bytes_per_token"], f["kv_bytes_per_token"])
    f.update(prefill_tokens=predicted["profile_run_tokens"], decode_tokens=s["max_num_seqs"],
             calc_tokens=predicted["simple_calculator_activation_tokens"],
             heads_per_gpu=predicted["attention_heads_per_gpu"],
             calc_hidden_per_gpu=predicted["attention_width_per_gpu"],
             actual_hidden_per_gpu=predicted["hidden_size_per_gpu"],
             activation_bytes=predicted["simple_calculator_activation_memory"],
             activation_gb=predicted["simple_calculator_activation_memory"] / GB)
    seed_overhead = pinned("vllm_overhead_memory", SIMPLE_CALCULATOR)
    f["seed_overhead_gb"] = seed_overhead / GB
    f["everything_else_gb"] = _ratio(pinned("budget_beyond_weights_and_kv_cache", gpu_memory_total=smi_printed,
                                            weight_memory_per_gpu=weights_printed, available_kv_cache_memory=kv_printed), GB)
    f.update(missing_overhead_gb=None, kv_without_padding_gb=None, extra_overhead_gb=None, kv_with_padding_gb=None)
    if f["everything_else_gb"] is not None:
        # 000's comparisons of its calculator with the log: differences of figures both printed
        seed_printed = round(f["seed_overhead_gb"], 3)
        f["missing_overhead_gb"] = round(f["everything_else_gb"], 2) - seed_printed
        f["kv_without_padding_gb"] = f["available_gb"] - round(f["weights_gb"], 2) - seed_printed
        if profile.info.get("extra_overhead_gb") is not None:   # the source's suggested padding
            f["extra_overhead_gb"] = float(profile.info["extra_overhead_gb"])
            f["kv_with_padding_gb"] = f["kv_without_padding_gb"] - f["extra_overhead_gb"]
    return f


def _claims(profile, f: dict) -> list:
    claims = []
    for name, claim in (profile.info.get("claims") or {}).items():
        if name not in f:
            raise ProfileError(f"claim '{name}' is not a figure of the write-up", None,
                               expected=", ".join(sorted(f)))
        if f[name] is None:
            raise ProfileError(f"claim '{name}' needs a measurement the profile does not have", None,
                               hint="add the measured figure it is computed from under measured:")
        d = _decimals(claim)
        ok = abs(f[name] - claim) <= 0.5 * 10 ** -d + 1e-9
        claims.append({"name": name, "source": claim, "ours": f[name], "decimals": d, "ok": ok})
    return claims

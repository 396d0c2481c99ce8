"""A real-world validation write-up in 000's structure: every figure recomputed, each claim checked."""
from __future__ import annotations

from . import evaluate as ev
from . import scenario as scn
from .catalog import Catalog
from .errors import ProfileError
from .graph import FormulaGraph
from .validation import GB, GIB, profile_scenario

MIB = 2 ** 20


def _decimals(x) -> int:
    text = repr(float(x)) if not float(x).is_integer() else str(int(x))
    return len(text.split(".")[1]) if "." in text else 0


def writeup(graph: FormulaGraph, catalog: Catalog, profile, overrides: dict | None = None) -> dict:
    """Everything 000's write-up shows, recomputed; each of the source's claims checked."""
    sc = profile_scenario(catalog, profile, overrides)
    bindings = scn.bindings(graph, catalog, sc)
    ours = ev.evaluate(graph, bindings)
    seed = ev.evaluate(graph, bindings, ["vllm_overhead_memory"], variant="seed_000")
    m = profile.measured
    s = sc.values
    weights, kv, tokens = profile.need("weights_memory"), profile.need("kv_cache_memory"), profile.need("kv_cache_tokens")
    util = s["gpu_memory_utilization"]
    bpt = float(ours["kv_cache_bytes_per_token"])
    rounded = lambda v, d: round(v, d)  # noqa: E731  000 carries each printed (rounded) figure forward
    f = {}
    if "nvidia_smi_total" in m:
        smi, used = m["nvidia_smi_total"], m.get("total_memory", 0)
        f.update(total_vram_mib=smi / MIB, used_mib=used / MIB, free_mib=(smi - used) / MIB,
                 total_vram_gib=smi / GIB, used_gib=used / GIB, free_gib=(smi - used) / GIB,
                 total_vram_gb=smi / GB)
        f["available_gb"] = util * rounded(f["total_vram_gb"], 1)
    f.update(weights_gb=weights / GB, weights_gib=weights / GIB, kv_available_gb=kv / GB, kv_available_gib=kv / GIB,
             kv_bytes_per_token=bpt, measured_tokens=tokens)
    kv_gb = rounded(f["kv_available_gb"], 2)
    f["kv_available_bytes_as_printed"] = kv_gb * GB
    f["measured_bytes_per_token"] = kv_gb * GB / tokens
    f["expected_tokens"] = kv_gb * GB / bpt
    f["token_error"] = round(f["expected_tokens"]) - tokens
    f["token_error_pct"] = f["token_error"] / tokens * 100
    f["bytes_per_token_error_pct"] = (f["measured_bytes_per_token"] - bpt) / bpt * 100
    heads_per_gpu = sc.model.arch["num_attention_heads"] // s["tensor_parallel_size"]
    f.update(prefill_tokens=s["max_num_batched_tokens"], decode_tokens=s["max_num_seqs"],
             calc_tokens=s["max_num_batched_tokens"] + s["max_num_seqs"], heads_per_gpu=heads_per_gpu,
             calc_hidden_per_gpu=heads_per_gpu * sc.model.arch["head_dim"],
             actual_hidden_per_gpu=sc.model.arch["hidden_size"] / s["tensor_parallel_size"])
    f["activation_bytes"] = float(seed["vllm_overhead_memory"]) / 3
    f["seed_overhead_gb"] = float(seed["vllm_overhead_memory"]) / GB
    if "available_gb" in f:
        f["everything_else_gb"] = f["available_gb"] - rounded(f["weights_gb"], 2) - kv_gb
        f["missing_overhead_gb"] = rounded(f["everything_else_gb"], 2) - rounded(f["seed_overhead_gb"], 3)
        f["kv_without_padding_gb"] = f["available_gb"] - rounded(f["weights_gb"], 2) - rounded(f["seed_overhead_gb"], 3)
        if profile.info.get("extra_overhead_gb") is not None:   # the source's suggested padding
            f["extra_overhead_gb"] = float(profile.info["extra_overhead_gb"])
            f["kv_with_padding_gb"] = f["kv_without_padding_gb"] - f["extra_overhead_gb"]
    claims = []
    for name, claim in (profile.info.get("claims") or {}).items():
        if name not in f:
            raise ProfileError(f"claim '{name}' is not a figure of the write-up", None,
                               expected=", ".join(sorted(f)))
        d = _decimals(claim)
        ok = abs(f[name] - claim) <= 0.5 * 10 ** -d + 1e-9
        claims.append({"name": name, "source": claim, "ours": f[name], "decimals": d, "ok": ok})
    predicted = {n: float(ours[n]) for n in ("weight_memory_per_gpu", "activation_peak_memory", "non_torch_memory",
                                             "cuda_graph_memory", "available_kv_cache_memory", "kv_cache_tokens",
                                             "gpu_memory_budget", "gpu_memory_total", "num_gpu_blocks",
                                             "num_kv_cache_groups", "kv_cache_tokens_unpaged", "vllm_overhead_memory")}
    predicted["kv_tokens_from_measured"] = (kv // float(ours["kv_block_bytes"])) // float(ours["num_kv_cache_groups"]) \
        * s["block_size"]
    vllm_budget_gb = float(ours["gpu_memory_budget"]) / GB
    return {"profile": profile.path, "scenario": s, "sc": {"model": sc.model.id, "gpu": sc.gpu["name"],
                                                          "gpu_id": sc.gpu_id, "notes": sc.notes},
            "arch": sc.model.arch, "figures": f, "claims": claims, "differs": [c for c in claims if not c["ok"]],
            "predicted": predicted, "errors": {
                "weights_pct": (predicted["weight_memory_per_gpu"] - weights) / weights * 100,
                "kv_pct": (predicted["available_kv_cache_memory"] - kv) / kv * 100,
                "tokens_from_measured_pct": (predicted["kv_tokens_from_measured"] - tokens) / tokens * 100},
            "vllm_budget_gb": vllm_budget_gb,
            "everything_else_vllm_gb": vllm_budget_gb - weights / GB - kv / GB,
            "derivation": ours.derivation("kv_cache_bytes_per_token"), "params": sc.model.params}

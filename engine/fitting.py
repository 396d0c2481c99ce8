"""Calibration fits: vLLM's memory constants and the roofline's latency constants, from measured profiles.

The fits read the same profiles as the accuracy tables, solve small least-squares problems over
features that are themselves formulas, and return the constants with the data they were fitted on
and the error of the fit (written to catalogs/fits/ by `llm-sizer calibrate`).
"""
from __future__ import annotations

import numpy as np

from . import evaluate as ev
from .accuracy import GIB, cases, latency_cases, latency_bindings, predict
from .catalog import Catalog
from .errors import ProfileError
from .graph import FormulaGraph

ACTIVATION_FEATURES = ["activation_logits_bytes", "activation_mlp_bytes", "activation_moe_bytes",
                       "activation_qkv_bytes", "activation_hidden_bytes"]
FITTED = ["BwEffConstant", "mfuPrefill"]   # calibration fields the latency fit determines


# -- vLLM memory constants ------------------------------------------------------------------

def fit_vllm_memory(graph: FormulaGraph, catalog: Catalog, version: str = "0.19") -> dict:
    """Least-squares fits of vLLM's activation peak, non-torch, CUDA-context and CUDA-graph memory."""
    # vLLM logs rank 0; under pipeline parallelism rank 0 holds no sampler, so its activation
    # peak is not the binding stage's: single-stage runs only.
    data = [c for c in cases(catalog, version)
            if "activation_peak" in c.measured and c.scenario.values.get("pipeline_parallel_size", 1) == 1]
    if len(data) < 6:
        raise ProfileError(f"need at least 6 profiles of vLLM {version} with activation_peak to fit, "
                           f"found {len(data)}")
    feats, layers, weights, ngpus = [], [], [], []
    for c in data:
        r = predict(graph, catalog, c, ACTIVATION_FEATURES + ["layers_per_gpu", "num_gpus"])
        feats.append([float(r[f]) for f in ACTIVATION_FEATURES])
        layers.append(float(r["layers_per_gpu"]))
        ngpus.append(float(r["num_gpus"]))
        weights.append(c.measured["weights_memory"])
    m = lambda k: np.array([c.measured[k] for c in data])  # noqa: E731
    tp = np.array([c.scenario.values["tensor_parallel_size"] for c in data])
    pp = np.array([c.scenario.values.get("pipeline_parallel_size", 1) for c in data])

    act_x = np.column_stack([np.ones(len(data)), np.array(feats)])
    act_coef, act_pred = _nonnegative_lstsq(act_x, m("activation_peak"))
    cg_x = np.column_stack([np.ones(len(data)), layers])
    cg_coef, cg_pred = _nonnegative_lstsq(cg_x, m("cuda_graph_memory"))
    groups = {"single_gpu": (tp == 1) & (pp == 1), "tensor_parallel": tp > 1, "pipeline_parallel": (tp == 1) & (pp > 1)}
    non_torch = {g: float(np.mean(m("non_torch_memory")[mask])) for g, mask in groups.items() if mask.any()}
    context = {"single_gpu": float(np.mean(m("cuda_context_memory")[groups["single_gpu"]])),
               "multi_gpu": float(np.mean(m("cuda_context_memory")[~groups["single_gpu"]]))}
    # 004's shape for vLLM: overhead beyond weights, KV and activations = non-torch + context + graphs
    overhead = m("non_torch_memory") + m("cuda_context_memory") + m("cuda_graph_memory")
    model_mem = np.array(weights) + m("activation_peak")
    ov_x = np.column_stack([np.ones(len(data)), model_mem, np.array(weights) * (np.array(ngpus) - 1)])
    ov_coef, ov_pred = _nonnegative_lstsq(ov_x, overhead)
    gib = lambda v: f"{v / GIB:.4f} GiB"  # noqa: E731
    mae = lambda pred, obs: gib(float(np.mean(np.abs(pred - obs))))  # noqa: E731
    return {
        "doc": "vLLM memory constants fitted by least squares (non-negative) on measured startups.",
        "command": f"llm-sizer calibrate memory --version {version} --write",
        "fitted_on": {"profiles": [c.id for c in data], "vllm_version": version,
                      "gpu": sorted({c.scenario.gpu_id for c in data})},
        "constants": {
            "activation_base": gib(act_coef[0]),
            **{f"activation_{n}_factor": round(float(v), 4)
               for n, v in zip(["logits", "mlp", "moe", "qkv", "hidden"], act_coef[1:])},
            "non_torch_single_gpu": gib(non_torch["single_gpu"]),
            "non_torch_tensor_parallel": gib(non_torch.get("tensor_parallel", non_torch["single_gpu"])),
            "non_torch_pipeline_parallel": gib(non_torch.get("pipeline_parallel", non_torch["single_gpu"])),
            "cuda_context_single_gpu": gib(context["single_gpu"]),
            "cuda_context_multi_gpu": gib(context["multi_gpu"]),
            "cuda_graph_base": gib(cg_coef[0]),
            "cuda_graph_per_layer": f"{cg_coef[1] / GIB:.6f} GiB/layer",
        },
        "framework_overhead": {
            "baseline": gib(ov_coef[0]), "proportional": round(float(ov_coef[1]), 5),
            "multi_gpu": round(float(ov_coef[2]), 5),
            "batch_scaling": catalog.frameworks["vllm"]["seed_004"]["batch_scaling"],
        },
        "fit_error": {
            "activation_peak_mean_abs": mae(act_pred, m("activation_peak")),
            "activation_peak_max_abs": gib(float(np.max(np.abs(act_pred - m("activation_peak"))))),
            "cuda_graph_mean_abs": mae(cg_pred, m("cuda_graph_memory")),
            "non_torch_mean_abs": mae(np.select([groups["single_gpu"], groups["tensor_parallel"]],
                                                [non_torch["single_gpu"], non_torch.get("tensor_parallel", 0)],
                                                non_torch.get("pipeline_parallel", 0)), m("non_torch_memory")),
            "framework_overhead_mean_abs": mae(ov_pred, overhead),
        },
        "notes": [
            "batch_scaling is not identifiable from startups (no batch dimension); 004's value is kept.",
            "CUDA graphs and the CUDA context are outside the utilization budget in these vLLM versions.",
            "Pipeline-parallel runs are left out: vLLM logs rank 0, whose stage holds no sampler.",
        ],
    }


def _nonnegative_lstsq(x: np.ndarray, y: np.ndarray):
    """Least squares with every coefficient >= 0 (active-set: drop negative ones and refit)."""
    active = np.ones(x.shape[1], dtype=bool)
    while True:
        coef = np.zeros(x.shape[1])
        coef[active] = np.linalg.lstsq(x[:, active], y, rcond=None)[0]
        if (coef >= 0).all():
            return coef, x @ coef
        active &= coef > 0




# -- roofline latency constants -----------------------------------------------------------------

def _input_reading(graph: FormulaGraph, path: str) -> str:
    return next(n for n, d in graph.inputs.items() if d.source_path == path)


def fit_latency(graph: FormulaGraph, catalog: Catalog, gpu_id: str) -> dict:
    """Fit bandwidth efficiency and prefill MFU for one GPU (and the prompts' prefix-cache hit
    fraction, a property of the measured workload) to one-request-at-a-time TTFT and ITL."""
    from scipy.optimize import least_squares

    data = latency_cases(catalog, gpu_id)
    if not data:
        raise ProfileError(f"no latency profiles measured on {gpu_id}", None,
                           hint="add synchronous TTFT/ITL rows to catalogs/profiles/ (see latency_h100.yaml)")
    base = [latency_bindings(graph, catalog, c, {"prefix_cache_hit_fraction": 0.0}) for c in data]
    ranges = catalog.calibration["ranges"]
    names = [*(_input_reading(graph, f"calibration.{k}") for k in FITTED), "prefix_cache_hit_fraction"]
    lo = [ranges[k]["min"] for k in FITTED] + [0.0]
    hi = [ranges[k]["max"] for k in FITTED] + [0.9]

    def predict_all(x):
        return [ev.evaluate(graph, {**b, **dict(zip(names, x))}, ["ttft", "inter_token_latency", "e2e_latency"])
                for b in base]

    def residuals(x):
        out = []
        for c, r in zip(data, predict_all(x)):
            out += [(float(r["ttft"]) - c.measured["ttft"]) / c.measured["ttft"],
                    (float(r["inter_token_latency"]) - c.measured["itl"]) / c.measured["itl"]]
        return np.array(out)

    start = catalog.calibration["gpus"].get(gpu_id, catalog.calibration["gpus"]["default"])   # never a prior fit
    x0 = [float(start[k]) for k in FITTED] + [0.1]
    before = residuals([*x0[:-1], 0.0])
    # chunked prefill makes TTFT a staircase in the hit fraction: differentiate over a wide step
    fit = least_squares(residuals, x0, bounds=(lo, hi), diff_step=0.03)
    after = residuals(fit.x)
    pct = lambda r: [round(float(v) * 100, 2) for v in r]  # noqa: E731
    verdict = []
    for i, (name, key) in enumerate(zip(("TTFT", "ITL"), ("mfuPrefill", "BwEffConstant"))):
        b = float(np.mean(before[i::2])) * 100
        k = FITTED.index(key)
        verdict.append(f"{name}: the starting constants predicted {abs(b):.1f} % too "
                       f"{'slow' if b > 0 else 'fast'}; {key} {x0[k]:g} -> {fit.x[k]:.4f} "
                       f"({'more' if fit.x[k] > x0[k] else 'less'} of the peak is reached than assumed)")
    verdict.append(f"Prompts: {fit.x[-1]:.0%} of each measured prompt was served from the prefix cache; without it "
                   f"the chunked-prefill row cannot be reached (every chunk reads all the weights)")
    return {
        "doc": f"Roofline constants for {gpu_id}, fitted by least squares on one-request-at-a-time TTFT and ITL.",
        "command": f"llm-sizer calibrate latency --gpu {gpu_id} --write",
        "fitted_on": {"profiles": [c.id for c in data], "models": sorted({c.scenario.model.id for c in data}),
                      "tensor_parallel_sizes": sorted({c.scenario.values["tensor_parallel_size"] for c in data})},
        "constants": {k: round(float(v), 4) for k, v in zip(FITTED, fit.x)},
        "dataset": {"prefix_cache_hit_fraction": round(float(fit.x[-1]), 4),
                    "note": "share of the measured prompts found in vLLM's prefix cache (on by default in V1); "
                            "a property of that workload, applied only to these profiles"},
        "fit_error": {"relative_residuals_pct_before": pct(before), "relative_residuals_pct_after": pct(after)},
        "verdict": verdict,
        "notes": ["In-sample: the data hold one model at one TP size on one GPU; generalisation across models "
                  "and TP is not demonstrated by these rows.",
                  "Other constants (overheads, TP exponents, decode MFU) keep 002's values: these rows cannot "
                  "separate them."],
    }

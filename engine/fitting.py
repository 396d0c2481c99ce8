"""Calibration fits: vLLM's memory constants and the roofline's latency constants, from measured profiles.

The fits read the same profiles as the accuracy tables, solve small least-squares problems over
features that are themselves formulas, and return the constants with the data they were fitted on
and the error of the fit (written to catalogs/fits/ by `llm-sizer calibrate`).
"""
from __future__ import annotations

import numpy as np

from . import evaluate as ev
from . import scenario as scn
from .accuracy import accuracy, by_group, cases, mean_errors
from .units import GIB
from .catalog import Catalog
from .errors import ProfileError
from .graph import FormulaGraph


# -- vLLM memory constants ------------------------------------------------------------------

# Each fitted formula, the measured field it is fitted to, and the `from:` prefix of its constants.
# A formula is fitted through itself: it is linear in its constants, so evaluating it with one
# constant set to 1 and the others to 0 gives that constant's column of the least-squares problem.
MEMORY_FITS = [
    ("activation_peak_memory", "activation_peak", "fit.vllm_memory.constants."),
    ("non_torch_memory", "non_torch_memory", "fit.vllm_memory.constants."),
    ("cuda_context_memory", "cuda_context_memory", "fit.vllm_memory.constants."),
    ("cuda_graph_memory", "cuda_graph_memory", "fit.vllm_memory.constants."),
    ("framework_overhead_memory", "runtime_overhead", "framework.overhead."),
]
# Formulas whose inputs carry the vLLM engine (catalogs/vllm_versions.yaml), so one fit covers every release:
# they are fitted on the startups of all versions that measured them, whatever --version says.
POOLED = {"activation_peak_memory", "non_torch_memory"}
# Formulas that are not linear in their constants (a maximum of two phases): fitted by bounded non-linear least squares.
NONLINEAR = {"activation_peak_memory"}


def fit_vllm_memory(graph: FormulaGraph, catalog: Catalog, version: str = "0.19") -> dict:
    """Least-squares fits (non-negative) of vLLM's activation peak, non-torch, CUDA-context, CUDA-graph
    and 004-shaped overhead constants, each through the formula that uses them."""
    # vLLM logs rank 0; under pipeline parallelism rank 0 holds no sampler, so its activation
    # peak is not the binding stage's: single-stage runs only.
    single_stage = lambda c: c.scenario.values.get("pipeline_parallel_size", 1) == 1  # noqa: E731
    data = [c for c in cases(catalog, version) if "activation_peak" in c.measured and single_stage(c)]
    if len(data) < 6:
        raise ProfileError(f"need at least 6 profiles of vLLM {version} with activation_peak to fit, "
                           f"found {len(data)}")
    constants, overhead, errors, unfitted, pooled_ids = {}, {}, {}, [], set()
    for formula, field, prefix in MEMORY_FITS:
        rows = data
        if formula in POOLED:
            rows = _pooled_rows(catalog, field)
            pooled_ids |= {c.id for c in rows}
        fitter = fit_nonlinear if formula in NONLINEAR else fit_linear
        fit = fitter(graph, catalog, rows, formula, _measured(rows, field), prefix, _startup_pins(field))
        into = overhead if prefix.startswith("framework.") else constants
        key = lambda n: graph.inputs[n].source_path[len(prefix):]  # noqa: E731
        into.update({key(n): _as_catalog_value(graph.inputs[n], v) for n, v in fit["values"].items()})
        errors[f"{formula}_mean_abs"] = f"{fit['mean_abs_error'] / GIB:.4f} GiB"
        unfitted += [f"{key(n)}: no startup in the data varies it; {fit['stand_in'][n]} stands in"
                     for n in fit["not_identifiable"]]
    return {
        "doc": "vLLM memory constants fitted by least squares (non-negative) on measured startups, each "
               "through the formula that uses it (formulas/activations.yaml, vllm_memory.yaml, workload.yaml).",
        "command": f"llm-sizer calibrate memory --version {version} --write",
        "fitted_on": {"profiles": sorted({c.id for c in data} | pooled_ids), "vllm_version": version,
                      "gpu": sorted({c.scenario.gpu_id for c in data}),
                      "every_version": {"formulas": sorted(POOLED), "profiles": len(pooled_ids),
                                        "gpu": sorted({c.scenario.gpu_id for c in cases(catalog) if c.id in pooled_ids})}},
        "constants": constants,
        "framework_overhead": overhead,
        "fit_error": errors,
        "not_identifiable": unfitted,
        "notes": [
            "CUDA graphs and the CUDA context are outside the utilization budget in these vLLM versions.",
            "The activation peak and non-torch memory read the engine (V0/V1) from catalogs/vllm_versions.yaml and are "
            "fitted on every release's startups that logged them (every_version); the rest on --version's.",
            "The activation peak is the larger of two phases (forward pass, sampler): fitted by bounded non-linear "
            "least squares from a neutral start (every multiple 1, every memory 0.1 GiB).",
            "Pipeline-parallel runs are left out: vLLM logs rank 0, whose stage holds no sampler.",
            "The overhead shape is fitted with batch size 1: a startup has no batch.",
        ],
    }


def _pooled_rows(catalog: Catalog, field: str, exclude=frozenset()) -> list:
    """Single-stage startups of every release that logged `field`, but those in `exclude`."""
    return [c for c in cases(catalog) if field in c.measured and c.id not in exclude
            and c.scenario.values.get("pipeline_parallel_size", 1) == 1]


def refit_pooled(graph: FormulaGraph, catalog: Catalog, exclude) -> dict:
    """The constants of the every-release fits (POOLED) refitted without the startups in `exclude`, as the
    catalog writes them - what `llm-sizer accuracy --cross-validate` predicts a left-out model with."""
    out = {}
    for formula, field, prefix in MEMORY_FITS:
        if formula in POOLED:
            rows = _pooled_rows(catalog, field, frozenset(exclude))
            fitter = fit_nonlinear if formula in NONLINEAR else fit_linear
            fit = fitter(graph, catalog, rows, formula, _measured(rows, field), prefix)
            out.update({graph.inputs[n].source_path[len(prefix):]: _as_catalog_value(graph.inputs[n], v)
                        for n, v in fit["values"].items()})
    return out


def cross_validate(graph: FormulaGraph, catalog: Catalog, report: dict) -> dict:
    """Add to an accuracy report the fitted cases again, each model's predicted by the every-release fits
    refitted without that model's startups (leave one model out): how the fit does on a model it has not seen.
    The catalog's constants are put back afterwards."""
    fitted_rows = [r for r in report["cases"] if r["in_fit"]]
    constants = catalog.fits["vllm_memory"]["constants"]
    kept, held = dict(constants), []
    try:
        for model in sorted({r["model"] for r in fitted_rows}):
            ids = {r["id"] for r in fitted_rows if r["model"] == model}
            constants.update(refit_pooled(graph, catalog, ids))
            held += accuracy(graph, catalog, only=ids)["cases"]
    finally:
        constants.clear()
        constants.update(kept)
    report["cross_validated"] = {"n": len(held), "mean_abs_error_pct": mean_errors(held), "groups": by_group(held)}
    return report


def _measured(data, field: str) -> np.ndarray:
    """A measured field per startup; 'runtime_overhead' is what vLLM uses beyond weights, KV and activations."""
    parts = ["non_torch_memory", "cuda_context_memory", "cuda_graph_memory"] if field == "runtime_overhead" else [field]
    return np.array([sum(c.measured[p] for p in parts) for c in data])


def _startup_pins(field: str):
    """Formula values a startup measures (pinned instead of predicted) for the overhead fit."""
    if field != "runtime_overhead":
        return lambda case: {}
    return lambda case: {"weight_memory_per_gpu": case.measured["weights_memory"], "batch_size": 1,
                         "model_memory_per_gpu": case.measured["weights_memory"] + case.measured["activation_peak"]}


def fit_linear(graph: FormulaGraph, catalog: Catalog, data, formula: str, measured: np.ndarray, prefix: str,
               pins=lambda case: {}) -> dict:
    """Fit the constants of `formula` (its inputs read from `prefix`...) to `measured`, by non-negative
    least squares over columns the formula itself gives. Constants no startup varies keep their value."""
    names = [n for n in graph.inputs_for([formula]) if (graph.inputs[n].source_path or "").startswith(prefix)]
    rows, base = [], []
    for case in data:
        b = {**scn.bindings(graph, catalog, case.scenario, graph.inputs_for([formula], pinned=pins(case))),
             **pins(case)}
        at = lambda **x: float(ev.evaluate(graph, {**b, **dict.fromkeys(names, 0.0), **x}, [formula])[formula])  # noqa: E731
        zero = at()
        rows.append([at(**{n: 1.0}) - zero for n in names])
        base.append(zero)
    x, y = np.array(rows), measured - np.array(base)
    varied = np.any(x != 0, axis=0)
    coef, pred = _nonnegative_lstsq(x[:, varied], y)
    values = dict(zip([n for n, v in zip(names, varied) if v], coef))
    stand_in = {}
    for n in (n for n, v in zip(names, varied) if not v):     # keep a twin's value, else the current one
        twin = _twin(n, values)
        values[n] = values[twin] if twin else float(b[n])
        stand_in[n] = f"the fitted {twin}" if twin else "the catalog's current value"
    return {"values": {n: values[n] for n in names}, "mean_abs_error": float(np.mean(np.abs(pred - y))),
            "not_identifiable": [n for n, v in zip(names, varied) if not v], "stand_in": stand_in}


def fit_nonlinear(graph: FormulaGraph, catalog: Catalog, data, formula: str, measured: np.ndarray, prefix: str,
                  pins=lambda case: {}) -> dict:
    """Fit the constants of a formula that is not linear in them (a Max of phases) by least squares with every
    constant >= 0, the startups evaluated together as arrays, from a neutral start. A constant
    that moves no startup's value is not identifiable and keeps its value."""
    from scipy.optimize import least_squares

    names = [n for n in graph.inputs_for([formula]) if (graph.inputs[n].source_path or "").startswith(prefix)]
    per_case = [{**scn.bindings(graph, catalog, c.scenario, graph.inputs_for([formula], pinned=pins(c))), **pins(c)}
                for c in data]
    stacked = {k: np.array([b[k] for b in per_case], dtype=float) for k in per_case[0]}
    # the same neutral start whatever the catalog holds (a multiple of 1, 0.1 GiB), so a refit reproduces the file
    scale = np.array([0.1 * GIB if graph.inputs[n].unit_text.replace(" ", "") == "byte" else 1.0 for n in names])
    value = lambda x: np.asarray(ev.evaluate(graph, {**stacked, **dict(zip(names, x * scale))}, [formula])[formula],  # noqa: E731
                                 dtype=float) * np.ones(len(data))
    residual = lambda x: (value(x) - measured) / GIB  # noqa: E731
    base = residual(np.ones(len(names)))
    moves = [bool(np.any(residual(np.where(np.arange(len(names)) == i, 2.0, 1.0)) != base)) for i in range(len(names))]
    free = np.array(moves)
    x = np.ones(len(names))

    def free_residual(xf):
        full = x.copy()
        full[free] = xf
        return residual(full)

    if free.any():
        x[free] = least_squares(free_residual, x[free], bounds=(0, np.inf), ftol=1e-12, xtol=1e-12, gtol=1e-12).x
    values = dict(zip(names, x * scale))
    return {"values": values, "mean_abs_error": float(np.mean(np.abs(residual(x)))) * GIB,
            "not_identifiable": [n for n, f in zip(names, free) if not f],
            "stand_in": {n: "the catalog's current value" for n, f in zip(names, free) if not f}}


def _twin(name: str, fitted: dict) -> str | None:
    """The fitted constant a non-identifiable one shares its prefix with (pipeline -> single GPU)."""
    stem = name.rsplit("_", 2)[0]
    return next((n for n in sorted(fitted) if n.startswith(stem) and n.endswith("single_gpu")), None)


def _as_catalog_value(decl, v: float):
    """A fitted magnitude as the catalog writes it: memory in GiB, per-layer memory in GiB/layer, else a number."""
    unit = decl.unit_text.replace(" ", "")
    if unit == "byte":
        return f"{v / GIB:.4f} GiB"
    if unit.startswith("byte/"):
        return f"{v / GIB:.6f} GiB/{unit.split('/', 1)[1]}"
    return round(float(v), 5 if decl.source_path.startswith("framework.") else 4)


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

def fit_latency(graph: FormulaGraph, catalog: Catalog, gpu_id: str, framework: str) -> dict:
    """Fit the step-time constants of one GPU and framework (formulas/roofline.yaml) to every measured
    offline batch (catalogs/latency/), least squares on relative error within the catalog's physical
    ranges, starting from the catalog's values; report the in-sample error per dataset and the error
    on each model when it is left out of the fit."""
    from . import latency as lat

    data = lat.rows(graph, catalog, gpu_id, framework)
    gpus = catalog.calibration["gpus"]
    start = {k: v for k, v in gpus.get(gpu_id, gpus["default"]).items() if k != "source"}   # never a prior fit
    constants = lat.fit(graph, catalog, data, start)
    return {
        "doc": f"Step-time constants for {framework} on {gpu_id}, fitted by least squares on relative error of every "
               "measured whole-batch latency, TTFT and decode step (each kind weighted equally).",
        "command": f"llm-sizer calibrate latency --gpu {gpu_id} --framework {framework} --write",
        "fitted_on": {"records": sorted(set(data.record)), "rows": len(data),
                      "models": sorted(set(data.model)), "tensor_parallel_sizes": sorted({int(t) for t in data.tp})},
        "constants": {k: round(float(v), 4) for k, v in constants.items() if k in lat.FITTED},
        "kept": {k: v for k, v in start.items() if k not in lat.FITTED},
        "fit_error": _dataset_errors(lat, data, lat.relative_errors(graph, data, constants)),
        "left_out_error": _dataset_errors(lat, data, lat.left_out_errors(graph, catalog, data, start)),
        "notes": ["fit_error is in-sample (every row was fitted); left_out_error refits once per model without that "
                  "model's rows and scores it on them.",
                  "Starting values and bounds: catalogs/hardware_calibration.yaml."],
    }


def _dataset_errors(lat, data, errors: dict) -> dict:
    """Mean absolute % error per dataset and measured column, as the fit file records it."""
    return {ds: {c: f"{v['pct']:.2f} % of {v['n']}" for c, v in lat.mean_abs_pct(errors, data.dataset == ds).items()}
            for ds in sorted(set(data.dataset))}

"""One measured profile against the calculator, in 001's format: component table, quality bands,
recommendations; its CSV record and the batch summary over several profiles.
"""
from __future__ import annotations

import contextlib

import numpy as np

from . import evaluate as ev
from . import scenario as scn
from . import units
from .catalog import Catalog
from .errors import EngineError, Location, ProfileError
from .graph import FormulaGraph
from .units import GB, GIB



def band(pct: float | None, catalog: Catalog) -> dict:
    """001's quality band for an absolute % difference (None: nothing to grade against)."""
    bands = catalog.validation["quality_bands"]
    if pct is None:
        return dict(bands["not_graded"])
    for b in bands["bands"]:
        if b["max"] is None or abs(pct) <= b["max"]:
            return {"name": b["name"], "symbol": b["symbol"]}
    raise ProfileError("quality_bands needs a last band with max: null")  # pragma: no cover


def percent_difference(measured: float, calculated: float) -> float | None:
    """001's % difference, (profiled - calculated) / profiled; None when the profile measured 0."""
    return (measured - calculated) / measured * 100 if measured else None


@contextlib.contextmanager
def about(profile):
    """Errors about what a profile describes (its scenario, values the formulas refuse) name the profile."""
    try:
        yield
    except EngineError as exc:
        if exc.location is None:
            exc.location = Location(profile.path)
            exc.hint = exc.hint or "the value comes from the profile; correct it there or override it on the command line"
        raise


def profile_scenario(catalog: Catalog, profile, overrides: dict | None = None):
    """The scenario a profile describes; `overrides` (model, gpu, quantization, ...) win."""
    with about(profile):
        return _profile_scenario(catalog, profile, overrides)


def _profile_scenario(catalog: Catalog, profile, overrides: dict | None = None):
    given = {k: v for k, v in profile.scenario.items() if k in scn.KEYS}
    given.update({k: v for k, v in (overrides or {}).items() if v is not None})
    notes = []
    # The log's release and engine pick their defaults (catalogs/vllm_versions.yaml), e.g. V0's profiling
    # run of max(max_model_len, 2048) tokens without chunked prefill (formulas/activations.yaml).
    for key in ("vllm_version", "engine"):
        if profile.info.get(key):
            given.setdefault("vllm_engine" if key == "engine" else key, profile.info[key])
    if "gpu" not in given:
        given["gpu"] = _gpu_from_total(catalog, given.get("gpu_memory_total"), profile)
        notes.append(f"GPU not named in the profile: {given['gpu']} assumed from the runtime total "
                     f"{given['gpu_memory_total']} (override with --gpu)")
    sc = scn.resolve(catalog, {k: scn.coerce(k, v) for k, v in given.items()})
    sc.notes[:0] = notes
    return sc


def _gpu_from_total(catalog: Catalog, total, profile) -> str:
    if total:
        want = units.parse_quantity(total, "GiB")
        gap, _, gid = min((abs(units.parse_quantity(g["memory_total_runtime"], "GiB") - want), i, gid)
                          for i, (gid, g) in enumerate(catalog.gpus.items()))   # ties: catalog order
        if gap <= 0.06:
            return gid
    raise ProfileError("the profile does not say which GPU it ran on", None, hint="give it with --gpu")


def compare(graph: FormulaGraph, catalog: Catalog, profile, overrides: dict | None = None) -> dict:
    """Every measured component beside its calculated value, with 001's quality bands."""
    sc = profile_scenario(catalog, profile, overrides)
    with about(profile):
        bindings = scn.bindings(graph, catalog, sc)
        result = ev.evaluate(graph, bindings)
        measured = _with_overhead(graph, bindings, profile.measured)
    unit, scale = ("GB", GB) if profile.kind == "profiler-json" else ("GiB", GIB)
    view = profile.info.get("view") or catalog.validation["views"][profile.kind]
    rows = [_row(comp, comp[view], measured[comp["measured"]], float(result[comp[view]]), scale, catalog)
            for comp in catalog.validation["components"] if comp["measured"] in measured]
    if not rows:
        raise ProfileError("the profile measures none of the compared components", None,
                           hint="a profile needs at least weights_memory or kv_cache_memory")
    capacity = [{"label": c["label"], "profiled": measured[c["measured"]], "calculated": float(result[c["formula"]]),
                 "pct": percent_difference(measured[c["measured"]], float(result[c["formula"]]))}
                for c in catalog.validation["capacity"] if measured.get(c["measured"])]
    total = next((r for r in rows if r["key"] == "total"), None)
    components = [r for r in rows if r["key"] != "total"]
    graded = [abs(r["pct"]) for r in components if r["pct"] is not None]
    overall_pct = total["pct"] if total else (float(np.mean(graded)) if graded else None)
    params = float(ev.evaluate(graph, bindings, ["total_params"])["total_params"])
    return {
        "profile": profile.path, "kind": profile.kind, "view": view, "unit": unit,
        "config_keys": [k for k in CONFIG_KEYS if view == "workload" or k not in WORKLOAD_KEYS],
        "given": sorted(k for k in profile.scenario if k in scn.KEYS), "scenario": sc.public(), "notes": sc.notes,
        "profile_notes": profile.notes, "model_id": sc.model.id, "model_params_b": params / 1e9,
        "profiled_params_b": (float(profile.info["model_params"]) / 1e9) if profile.info.get("model_params") else None,
        "gpu_name": sc.gpu["name"], "gpu_id": sc.gpu_id, "gpu_count": int(result["num_gpus"]),
        "request_tokens": int(result["request_tokens"]),
        "gpu_memory": float(result["gpu_memory_total"]) / scale,
        "components": components, "total": total, "capacity": capacity,
        "overall": {"pct": overall_pct, "basis": "total" if total else "mean absolute component error",
                    **band(overall_pct, catalog)},
        "missing_lines": profile.missing, "complete": not profile.missing,
        "bands": catalog.validation["quality_bands"]["bands"],
        "recommendations": _advice(rows, catalog), "recommendation_threshold": _threshold(catalog),
        "confidence": profile.info.get("confidence"),
        "engine": profile.info.get("engine"), "vllm_version": profile.info.get("vllm_version"),
    }


def _row(comp: dict, formula: str, measured: float, calculated: float, scale: float, catalog: Catalog) -> dict:
    pct = percent_difference(measured, calculated)
    return {"key": comp["key"], "label": comp["label"], "formula": formula, "profiled": measured / scale,
            "calculated": calculated / scale, "difference": (measured - calculated) / scale, "pct": pct,
            **band(pct, catalog)}


def _with_overhead(graph: FormulaGraph, bindings: dict, measured: dict) -> dict:
    """The measured figures, plus 001's framework overhead where a log gives its parts: the
    runtime_overhead_memory formula evaluated with the logged parts pinned."""
    parts = graph.formulas["runtime_overhead_memory"].deps
    if "framework_overhead" in measured or not all(p in measured for p in parts):
        return measured
    pinned = ev.evaluate(graph, {**bindings, **{p: measured[p] for p in parts}}, ["runtime_overhead_memory"])
    return {**measured, "framework_overhead": float(pinned["runtime_overhead_memory"])}


def _threshold(catalog: Catalog) -> float:
    return catalog.validation["recommendations"]["threshold"]


def _advice(rows: list, catalog: Catalog) -> list:
    """Recommendations for the components off by more than the catalog's threshold."""
    rec = catalog.validation["recommendations"]
    return [{"label": r["label"], "pct": r["pct"], "symbol": r["symbol"], "band": r["name"],
             "direction": "higher" if r["pct"] > 0 else "lower", "text": rec[r["key"]]["higher" if r["pct"] > 0 else "lower"]}
            for r in rows if r["pct"] is not None and abs(r["pct"]) > _threshold(catalog)]


CONFIG_KEYS = ["tensor_parallel_size", "pipeline_parallel_size", "dtype", "quantization", "kv_cache_dtype",
               "max_model_len", "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "batch_size",
               "input_tokens", "output_tokens"]
WORKLOAD_KEYS = {"batch_size", "input_tokens", "output_tokens"}

RECORD_COLUMNS = ["profile_file", "model_id", "model_params_b", "gpu_type", "gpu_count", "batch_size", "seq_length",
                  "dtype", "profiled_total_gb", "calculated_total_gb", "difference_gb", "difference_pct",
                  "match_quality", "profiled_weights_gb", "calculated_weights_gb", "weights_diff_pct",
                  "profiled_kv_gb", "calculated_kv_gb", "kv_diff_pct", "profiled_activations_gb",
                  "calculated_activations_gb", "activations_diff_pct", "profiled_overhead_gb",
                  "calculated_overhead_gb", "overhead_diff_pct"]


def record_row(report: dict) -> dict:
    """One row of 001's validation-results.csv (GB = 10^9 bytes, as its column names say)."""
    to_gb = GIB / GB if report["unit"] == "GiB" else 1.0
    s = report["scenario"]
    row = {"profile_file": report["profile"].split("/")[-1], "model_id": report["model_id"],
           "model_params_b": f"{report['model_params_b']:.2f}", "gpu_type": report["gpu_name"],
           "gpu_count": report["gpu_count"],
           "batch_size": s["batch_size"] if "batch_size" in report["given"] else None,
           "seq_length": report["request_tokens"] if "input_tokens" in report["given"] else None,
           "dtype": s.get("dtype"),
           "match_quality": report["overall"]["name"]}
    total = report["total"]
    if total:
        row.update({"profiled_total_gb": f"{total['profiled'] * to_gb:.2f}",
                    "calculated_total_gb": f"{total['calculated'] * to_gb:.2f}",
                    "difference_gb": f"{total['difference'] * to_gb:.2f}", "difference_pct": f"{total['pct']:.1f}"})
    names = {"weights": "weights", "kv_cache": "kv", "activations": "activations", "overhead": "overhead"}
    for r in report["components"]:
        if r["key"] in names:
            n = names[r["key"]]
            row.update({f"profiled_{n}_gb": f"{r['profiled'] * to_gb:.2f}",
                        f"calculated_{n}_gb": f"{r['calculated'] * to_gb:.2f}", f"{n}_diff_pct": f"{r['pct']:.1f}"})
    return {c: ("" if row.get(c) is None else row.get(c)) for c in RECORD_COLUMNS}


def batch_summary(reports: list[dict], catalog: Catalog) -> dict:
    """001's batch summary: counts per band, mean error per component, by model size and GPU count."""
    bands = [b["name"] for b in catalog.validation["quality_bands"]["bands"]]
    counts = {b: sum(r["overall"]["name"] == b for r in reports) for b in bands}
    labels = [c["label"] for c in catalog.validation["components"]]
    per_component = {}
    for label in labels:
        errs = [abs(row["pct"]) for r in reports for row in r["components"] + ([r["total"]] if r["total"] else [])
                if row["label"] == label and row["pct"] is not None]
        if errs:
            per_component[label] = {"n": len(errs), "mean_abs_pct": float(np.mean(errs))}

    def size_class(b):
        return next(c["name"] for c in catalog.validation["model_size_classes"] if c["max"] is None or b < c["max"])

    def grouped(key):
        groups = {}
        for r in [r for r in reports if r["overall"]["pct"] is not None]:
            groups.setdefault(key(r), []).append(abs(r["overall"]["pct"]))
        return [{"group": g, "n": len(v), "mean_abs_pct": float(np.mean(v))} for g, v in sorted(groups.items())]

    return {"n": len(reports), "bands": counts, "components": per_component,
            "by_model_size": grouped(lambda r: size_class(r["model_params_b"])),
            "by_gpu_count": grouped(lambda r: f"{r['gpu_count']} GPU{'s' if r['gpu_count'] > 1 else ''}")}

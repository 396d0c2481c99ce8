"""Measured profiles against the formulas: predictions and accuracy tables (memory and latency).

A profile (catalogs/profiles/*.yaml) is a scenario plus what vLLM logged; each becomes a Case.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import evaluate as ev
from . import scenario as scn
from . import units
from .catalog import Catalog
from .errors import ProfileError
from .graph import FormulaGraph

GIB = 2 ** 30
# measured field -> formula it checks
COMPARED = {
    "weights_memory": "weight_memory_per_gpu",
    "kv_cache_memory": "available_kv_cache_memory",
    "kv_cache_tokens": "kv_cache_tokens",
    "max_concurrency": "max_concurrency",
}


@dataclass
class Case:
    id: str
    scenario: scn.Scenario
    measured: dict        # field -> magnitude (bytes for memory, plain numbers otherwise)
    source: str
    version: str
    assumed: str | None = None


MEASURED_UNITS = {"ttft": "s", "itl": "s", "e2e": "s", "output_throughput": "token / s"}


def measured_value(field: str, value, where=None):
    """A measured quantity in the engine's units: bytes for memory, seconds for times."""
    if isinstance(value, str):
        return units.parse_quantity(value, MEASURED_UNITS.get(field, "byte"), where, field=field)
    return float(value)


def cases(catalog: Catalog, version: str | None = None) -> list[Case]:
    out = []
    for pid, rec in sorted(catalog.profiles.items()):
        if version and not str(rec.get("vllm_version", "")).startswith(version):
            continue
        if "scenario" not in rec or "measured" not in rec:
            raise ProfileError(f"profile '{pid}' needs scenario: and measured:", rec.where())
        sc = scn.resolve(catalog, {k: scn.coerce(k, v, rec["scenario"].where(k))
                                   for k, v in rec["scenario"].items()})
        meas = {k: measured_value(k, v, rec["measured"].where(k)) for k, v in rec["measured"].items()}
        out.append(Case(pid, sc, meas, rec.get("source", ""), str(rec.get("vllm_version", "")),
                        rec.get("assumed")))
    return out


def predict(graph: FormulaGraph, catalog: Catalog, case: Case, targets=None) -> ev.Result:
    targets = list(targets or graph.formulas)
    names = graph.inputs_for(targets)
    return ev.evaluate(graph, scn.bindings(graph, catalog, case.scenario, names), targets)


def accuracy(graph: FormulaGraph, catalog: Catalog, version: str | None = None) -> dict:
    """Per case and overall absolute % error of weights, KV memory, KV tokens, concurrency."""
    rows = []
    for case in [c for c in cases(catalog, version) if "weights_memory" in c.measured]:
        result = predict(graph, catalog, case, list(COMPARED.values()))
        row = {"id": case.id, "version": case.version, "model": case.scenario.model.id,
               "tp": case.scenario.values["tensor_parallel_size"],
               "pp": case.scenario.values.get("pipeline_parallel_size", 1), "errors": {}, "values": {}}
        for field, formula in COMPARED.items():
            if field in case.measured:
                got, want = float(result[formula]), case.measured[field]
                row["values"][field] = (got, want)
                row["errors"][field] = abs(got - want) / want * 100 if want else float("nan")
        rows.append(row)
    mean = {f: float(np.mean([r["errors"][f] for r in rows if f in r["errors"]])) for f in COMPARED
            if any(f in r["errors"] for r in rows)}  # fields no profile measured are left out
    return {"cases": rows, "mean_abs_error_pct": mean}

# -- latency: the roofline against one-request-at-a-time runs --------------------------------------

LATENCY = {"ttft": "ttft", "itl": "inter_token_latency", "e2e": "e2e_latency"}


def latency_cases(catalog: Catalog, gpu_id: str | None = None) -> list[Case]:
    return [c for c in cases(catalog) if "ttft" in c.measured and (gpu_id is None or c.scenario.gpu_id == gpu_id)]


def latency_bindings(graph, catalog, case, overrides=None):
    b = scn.bindings(graph, catalog, case.scenario, graph.inputs_for(list(LATENCY.values())))
    fit = catalog.fits.get(f"roofline_{case.scenario.gpu_id}", {})
    if case.id in fit.get("fitted_on", {}).get("profiles", []):   # the fitted property of those prompts
        b["prefix_cache_hit_fraction"] = fit["dataset"]["prefix_cache_hit_fraction"]
    b.update(overrides or {})
    return b


def latency_accuracy(graph: FormulaGraph, catalog: Catalog) -> dict:
    rows = []
    for case in latency_cases(catalog):
        r = ev.evaluate(graph, latency_bindings(graph, catalog, case), list(LATENCY.values()))
        values = {k: (float(r[f]), case.measured[k]) for k, f in LATENCY.items() if k in case.measured}
        rows.append({"id": case.id, "model": case.scenario.model.id, "gpu": case.scenario.gpu_id,
                     "tp": case.scenario.values["tensor_parallel_size"], "values": values,
                     "errors": {k: abs(p - m) / m * 100 for k, (p, m) in values.items()}})
    mean = {k: float(np.mean([r["errors"][k] for r in rows if k in r["errors"]])) for k in LATENCY
            if any(k in r["errors"] for r in rows)}
    return {"cases": rows, "mean_abs_error_pct": mean}

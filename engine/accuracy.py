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
    engine: str = "V1"
    lora: bool = False


# Groups the accuracy report averages over; a case may be in several. H100 here is the 0.19 sweep's GPU.
GROUPS = {
    "H100 vLLM 0.19": lambda c: c.scenario.gpu_id == "h100-sxm" and c.version.startswith("0.19"),
    "H100 other vLLM": lambda c: c.scenario.gpu_id == "h100-sxm" and not c.version.startswith("0.19"),
    "other GPUs": lambda c: c.scenario.gpu_id != "h100-sxm",
    "V0 engine": lambda c: c.engine == "V0",
    "quantized": lambda c: c.scenario.quant_id != "none",
    "LoRA": lambda c: c.lora,
}


def groups(case: Case) -> list[str]:
    return [name for name, member in GROUPS.items() if member(case)]


MEASURED_UNITS = {"ttft": "s", "itl": "s", "e2e": "s", "output_throughput": "token / s"}


def measured_value(field: str, value, where=None):
    """A measured quantity in the engine's units: bytes for memory, seconds for times."""
    if isinstance(value, str):
        return units.parse_quantity(value, MEASURED_UNITS.get(field, "byte"), where, field=field)
    return float(value)


def not_sized(catalog: Catalog, version: str | None = None) -> list[dict]:
    """Profiles the engine cannot size yet (their `not_sized:` says why): listed, never predicted."""
    return [{"id": pid, "version": str(rec.get("vllm_version") or ""), "reason": rec["not_sized"],
             "source": rec.get("source", "")}
            for pid, rec in sorted(catalog.profiles.items())
            if "not_sized" in rec and (not version or str(rec.get("vllm_version", "")).startswith(version))]


def not_scored(catalog: Catalog, version: str | None = None) -> list[dict]:
    """Measured fields a profile keeps but does not score (its `not_scored: {field: why}`): a logged figure the
    stated setup cannot produce, kept as logged and reported with the reason."""
    return [{"id": pid, "field": field, "reason": why}
            for pid, rec in sorted(catalog.profiles.items()) if "not_sized" not in rec
            and (not version or str(rec.get("vllm_version", "")).startswith(version))
            for field, why in (rec.get("not_scored") or {}).items()]


def cases(catalog: Catalog, version: str | None = None) -> list[Case]:
    out = []
    for pid, rec in sorted(catalog.profiles.items()):
        if version and not str(rec.get("vllm_version", "")).startswith(version):
            continue
        if "not_sized" in rec:
            continue
        if "scenario" not in rec or "measured" not in rec:
            raise ProfileError(f"profile '{pid}' needs scenario: and measured:", rec.where())
        given = {k: scn.coerce(k, v, rec["scenario"].where(k)) for k, v in rec["scenario"].items()}
        logged = {"vllm_version": rec.get("vllm_version"), "vllm_engine": rec.get("engine"),
                  "enable_chunked_prefill": rec.get("enable_chunked_prefill")}   # what the log says it ran
        given.update({k: scn.coerce(k, str(v) if k != "enable_chunked_prefill" else v)
                      for k, v in logged.items() if v is not None and k not in given})
        sc = scn.resolve(catalog, given)
        unscored = rec.get("not_scored") or {}
        if set(unscored) - set(rec["measured"]):
            raise ProfileError(f"profile '{pid}' does not score {sorted(set(unscored) - set(rec['measured']))}, which it "
                               "never measured", rec.where("not_scored"), hint="name fields of its measured: block")
        meas = {k: measured_value(k, v, rec["measured"].where(k)) for k, v in rec["measured"].items() if k not in unscored}
        out.append(Case(pid, sc, meas, rec.get("source", ""), str(rec.get("vllm_version", "")),
                        rec.get("assumed"), rec.get("engine", "V1"), bool(sc.values.get("enable_lora"))))
    return out


def predict(graph: FormulaGraph, catalog: Catalog, case: Case, targets=None) -> ev.Result:
    targets = list(targets or graph.formulas)
    names = graph.inputs_for(targets)
    return ev.evaluate(graph, scn.bindings(graph, catalog, case.scenario, names), targets)


def accuracy(graph: FormulaGraph, catalog: Catalog, version: str | None = None, only=None) -> dict:
    """Per case, per group and overall absolute % error of weights, KV memory, KV tokens, concurrency;
    `only` (case ids) restricts it, e.g. to the cases a fit left out (fitting.cross_validate adds the fitted
    cases predicted by refits that did not see their model)."""
    rows = []
    for case in [c for c in cases(catalog, version) if "weights_memory" in c.measured
                 and (only is None or c.id in only)]:
        result = predict(graph, catalog, case, list(COMPARED.values()))
        row = {"id": case.id, "version": case.version, "model": case.scenario.model.id, "gpu": case.scenario.gpu_id,
               "tp": case.scenario.values["tensor_parallel_size"], "groups": groups(case),
               "pp": case.scenario.values.get("pipeline_parallel_size", 1), "errors": {}, "values": {}}
        for field, formula in COMPARED.items():
            if field in case.measured:
                got, want = float(result[formula]), case.measured[field]
                row["values"][field] = (got, want)
                row["errors"][field] = abs(got - want) / want * 100 if want else float("nan")
        rows.append(row)
    fitted = set((catalog.fits.get("vllm_memory") or {}).get("fitted_on", {}).get("profiles", []))
    for row in rows:
        row["in_fit"] = row["id"] in fitted
    left_out = [r for r in rows if not r["in_fit"]]
    return {"cases": rows, "mean_abs_error_pct": mean_errors(rows), "groups": by_group(rows),
            "in_fit": {"n": len(rows) - len(left_out), "mean_abs_error_pct": mean_errors([r for r in rows if r["in_fit"]])},
            "left_out": {"n": len(left_out), "mean_abs_error_pct": mean_errors(left_out), "groups": by_group(left_out)},
            "not_sized": [] if only is not None else not_sized(catalog, version),
            "not_scored": [] if only is not None else not_scored(catalog, version)}


def by_group(rows: list) -> dict:
    return {g: {"n": len(members), "mean_abs_error_pct": mean_errors(members)}
            for g in GROUPS if (members := [r for r in rows if g in r["groups"]])}


def mean_errors(rows: list) -> dict:
    """Mean absolute % error per compared field over `rows`; fields none of them measured are left out."""
    return {f: float(np.mean([r["errors"][f] for r in rows if f in r["errors"]])) for f in COMPARED
            if any(f in r["errors"] for r in rows)}

# -- latency: the roofline against measured offline batches and one-request-at-a-time runs ------------

LATENCY = {"ttft": "ttft", "itl": "inter_token_latency", "e2e": "e2e_latency"}
SERVED = ("serving_mode", "request_rate", "max_sustainable_request_rate")   # a served profile's load vs capacity
# measured column of catalogs/latency/ -> the name the report uses
LATENCY_COLUMNS = {"ttft_ms": "ttft", "decode_step_ms": "itl", "e2e_ms": "e2e"}


def latency_cases(catalog: Catalog, gpu_id: str | None = None) -> list[Case]:
    return [c for c in cases(catalog) if "ttft" in c.measured and (gpu_id is None or c.scenario.gpu_id == gpu_id)]


def latency_bindings(graph, catalog, case, overrides=None):
    b = scn.bindings(graph, catalog, case.scenario, graph.inputs_for(list(LATENCY.values())))
    b.update(overrides or {})
    return b


def latency_accuracy(graph: FormulaGraph, catalog: Catalog) -> dict:
    """Per GPU, framework and dataset of catalogs/latency/: mean absolute % error of TTFT, decode step
    and E2E with the recorded fit (in-sample) and with each model left out of a refit (out-of-sample);
    a dataset marked held_out (no fit uses it) scored out of sample by the recorded fit;
    then the served profiles (catalogs/profiles/: one request at a time, or a constant rate), which no fit saw."""
    from . import latency as lat

    datasets = []
    for gpu, framework in lat.groups(catalog):
        data = lat.rows(graph, catalog, gpu, framework)
        fitted = scn.roofline_fit(gpu, framework) in catalog.fits
        gpus = catalog.calibration["gpus"]
        start = {k: v for k, v in gpus.get(gpu, gpus["default"]).items() if k != "source"}
        in_sample = lat.relative_errors(graph, data)
        left_out = lat.left_out_errors(graph, catalog, data, start)
        for ds in sorted(set(data.dataset)):
            mask = data.dataset == ds
            name = lambda e: {LATENCY_COLUMNS[c]: v for c, v in lat.mean_abs_pct(e, mask).items()}  # noqa: E731
            datasets.append({"gpu": gpu, "framework": framework, "dataset": ds, "rows": int(mask.sum()),
                             "models": len(set(data.model[mask])), "fitted": fitted, "held_out": None,
                             "in_sample": name(in_sample), "left_out": name(left_out)})
        # records marked held_out: no fit saw them, so the recorded fit scores them out of sample
        held = [r for r in catalog.latency_data.values()
                if r.get("held_out") and (r["gpu"], r["framework"]) == (gpu, framework)]
        if held:
            data = lat.rows(graph, catalog, gpu, framework, held_out=True)
            errors = lat.relative_errors(graph, data)
            for ds in sorted(set(data.dataset)):
                mask = data.dataset == ds
                reason = next(str(r["held_out"]) for r in held if r["dataset"] == ds)
                datasets.append({"gpu": gpu, "framework": framework, "dataset": ds, "rows": int(mask.sum()),
                                 "models": len(set(data.model[mask])), "fitted": fitted, "held_out": reason,
                                 "in_sample": {},
                                 "left_out": {LATENCY_COLUMNS[c]: v for c, v in lat.mean_abs_pct(errors, mask).items()}})
    rows = []
    for case in latency_cases(catalog):
        r = ev.evaluate(graph, latency_bindings(graph, catalog, case), [*LATENCY.values(), *SERVED])
        values = {k: (float(r[f]), case.measured[k]) for k, f in LATENCY.items() if k in case.measured}
        served = {k: float(r[k]) for k in SERVED} if float(r["serving_mode"]) else None
        rows.append({"id": case.id, "model": case.scenario.model.id, "gpu": case.scenario.gpu_id,
                     "tp": case.scenario.values["tensor_parallel_size"], "values": values, "served": served,
                     # a rate beyond the modelled capacity has no steady state to score
                     "errors": {k: abs(p - m) / m * 100 for k, (p, m) in values.items()
                                if not served or served["request_rate"] < served["max_sustainable_request_rate"]}})
    mean = {k: float(np.mean([r["errors"][k] for r in rows if k in r["errors"]])) for k in LATENCY
            if any(k in r["errors"] for r in rows)}
    return {"datasets": datasets, "cases": rows, "mean_abs_error_pct": mean}

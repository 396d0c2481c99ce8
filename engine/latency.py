"""Measured offline-batch latencies (catalogs/latency/) against the roofline, and its fits.

Every row of a latency_data record is one whole-batch generate(): B prompts of L_in tokens, L_out
tokens each. The rows of all records become one set of NumPy arrays of the roofline's inputs, so a
prediction of every row is one evaluate() call, and a least-squares fit evaluates the formulas a
few hundred times rather than rows x iterations times.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import evaluate as ev
from . import scenario as scn
from .catalog import Catalog
from .errors import ProfileError
from .graph import FormulaGraph

# measured column -> formula it checks (ms in the data, s in the formulas)
MEASURED = {"e2e_ms": "batch_e2e_latency", "ttft_ms": "batch_ttft", "decode_step_ms": "batch_inter_token_latency"}
PER_ROW = ("batch_size", "input_tokens", "output_tokens")   # scenario keys a row sets
RECORD_OPTIONAL = ("kv_cache_dtype",)    # scenario keys a record may set; the framework's default where it does not
MS = 1e-3
# Calibration fields a fit determines; the others keep their starting values.
FITTED = ["BwEffConstant", "gemmPeakFraction", "gemmHalfSaturationTokens", "attentionPeakFraction",
          "attentionBwFraction", "attentionKvRereadFraction", "TOverheadMicros", "perLayerOverhead", "perSequenceMicros", "allReduceLatency"]


@dataclass
class Rows:
    """Measured rows of some latency_data records, as parallel arrays."""
    record: np.ndarray        # record id per row
    dataset: np.ndarray
    model: np.ndarray
    framework: np.ndarray
    gpu: np.ndarray
    tp: np.ndarray
    measured: dict            # column -> seconds (NaN where not measured)
    bindings: dict            # roofline input -> array over rows

    def __len__(self):
        return len(self.record)

    def take(self, mask) -> "Rows":
        pick = lambda d: {k: (v[mask] if np.ndim(v) else v) for k, v in d.items()}  # noqa: E731
        return Rows(self.record[mask], self.dataset[mask], self.model[mask], self.framework[mask], self.gpu[mask],
                    self.tp[mask], pick(self.measured), pick(self.bindings))


def groups(catalog: Catalog) -> list[tuple[str, str]]:
    """(gpu, framework) pairs the data measure (in records a fit may use)."""
    return sorted({(str(r["gpu"]), str(r["framework"])) for r in catalog.latency_data.values() if not r.get("held_out")})


def rows(graph: FormulaGraph, catalog: Catalog, gpu: str | None = None, framework: str | None = None,
         held_out: bool = False) -> Rows:
    """The measured rows (of one GPU and framework, if given) with the roofline's inputs bound per row: those of
    the records a fit uses, or with `held_out` those of the records marked `held_out:` (a reason), which no fit sees."""
    targets = list(MEASURED.values())
    parts = []
    for rid, rec in sorted(catalog.latency_data.items()):
        if (gpu and rec["gpu"] != gpu) or (framework and rec["framework"] != framework):
            continue
        if bool(rec.get("held_out")) != held_out:
            continue
        table = np.array([[np.nan if v is None else float(v) for v in row] for row in rec["rows"]])
        col = {c: table[:, i] for i, c in enumerate(rec["columns"])}
        given = {k: scn.coerce(k, rec[k], rec.where(k)) for k in
                 ("model", "gpu", "framework", "tensor_parallel_size", "max_model_len", "max_num_batched_tokens",
                  *(k for k in RECORD_OPTIONAL if k in rec))}
        sc = scn.resolve(catalog, {**given, **{k: int(col[k][0]) for k in PER_ROW}})
        # a framework without vLLM's KV pool sizes it from free memory, as `size` does (its stand_ins)
        stand_ins = scn.stand_ins(sc)
        b = scn.bindings(graph, catalog, sc, graph.inputs_for([*targets, *stand_ins.values()], None, set(stand_ins)))
        n = len(table)
        b = {k: np.full(n, v, dtype=float) for k, v in b.items()}
        b.update({k: col[k] for k in PER_ROW})
        ev.pin_stand_ins(graph, b, stand_ins)       # per row: free memory depends on the batch
        b.update({k: np.broadcast_to(np.asarray(b[k], dtype=float), (n,)) for k in stand_ins})
        parts.append((rid, rec, n, {c: col.get(c, np.full(n, np.nan)) * MS for c in MEASURED}, b))
    if not parts:
        raise ProfileError(f"no {'held-out ' if held_out else ''}measured latencies for {gpu or 'any GPU'} / "
                           f"{framework or 'any framework'}", None,
                           hint="add a latency_data record under catalogs/latency/ (see argonne_llm_inference_bench.yaml)")
    rep = lambda f: np.concatenate([np.full(n, f(rid, rec), dtype=object) for rid, rec, n, _, _ in parts])  # noqa: E731
    cat = lambda i, k: np.concatenate([p[i][k] for p in parts])  # noqa: E731
    return Rows(rep(lambda i, r: i), rep(lambda i, r: str(r["dataset"])), rep(lambda i, r: str(r["model"])),
                rep(lambda i, r: str(r["framework"])), rep(lambda i, r: str(r["gpu"])),
                rep(lambda i, r: int(r["tensor_parallel_size"])),
                {c: cat(3, c) for c in MEASURED}, {k: cat(4, k) for k in parts[0][4]})


def constant_inputs(graph: FormulaGraph) -> dict:
    """Calibration field -> the roofline input that reads it."""
    return {d.source_path.split(".", 1)[1]: n for n, d in graph.inputs.items()
            if (d.source_path or "").startswith("calibration.")}


def predict(graph: FormulaGraph, data: Rows, constants: dict | None = None) -> dict:
    """Predicted seconds per measured column, every row at once; `constants` (calibration field ->
    value) replace the catalog's."""
    by_field = constant_inputs(graph)
    b = {**data.bindings, **{by_field[k]: v for k, v in (constants or {}).items() if k in by_field}}
    r = ev.evaluate(graph, b, list(MEASURED.values()))
    return {c: np.broadcast_to(np.asarray(r[f], dtype=float), (len(data),)) for c, f in MEASURED.items()}


def relative_errors(graph: FormulaGraph, data: Rows, constants: dict | None = None) -> dict:
    """(predicted - measured) / measured per column; NaN where not measured."""
    p = predict(graph, data, constants)
    return {c: (p[c] - data.measured[c]) / data.measured[c] for c in MEASURED}


def fit(graph: FormulaGraph, catalog: Catalog, data: Rows, start: dict) -> dict:
    """Bounded least squares on relative errors of every measured E2E, TTFT and decode step;
    constants no row can move (all-reduce latency without TP > 1) keep their starting value."""
    from scipy.optimize import least_squares

    names = [k for k in FITTED if k != "allReduceLatency" or (data.tp > 1).any()]
    lo, hi = bounds(catalog, set(data.gpu), names)
    x0 = np.clip([float(start[k]) for k in names], lo, hi)

    data = frozen(graph, data, [constant_inputs(graph)[k] for k in names])
    # each measured quantity weighs the same: three TTFTs count as much as three hundred E2Es
    measured = {c: np.isfinite(m) for c, m in data.measured.items()}
    weight = {c: np.sqrt(len(data) / max(int(m.sum()), 1)) for c, m in measured.items()}

    def residuals(x):
        err = relative_errors(graph, data, {**start, **dict(zip(names, x))})
        return np.concatenate([e[measured[c]] * weight[c] for c, e in err.items()])

    # scale each constant by its range: they differ by six orders of magnitude
    out = least_squares(residuals, x0, bounds=(lo, hi), x_scale=hi - lo, diff_step=1e-3)
    return {**{k: float(start[k]) for k in FITTED}, **dict(zip(names, out.x.tolist()))}


def bounds(catalog: Catalog, gpus, names) -> tuple[np.ndarray, np.ndarray]:
    """Each constant's physical range (catalogs/hardware_calibration.yaml ranges) for rows of `gpus`: a range's
    min_by_gpu floor replaces its min when every row is of that GPU."""
    ranges, gpus = catalog.calibration["ranges"], set(gpus)
    floor = lambda r: (r.get("min_by_gpu") or {}).get(next(iter(gpus)), r["min"]) if len(gpus) == 1 else r["min"]  # noqa: E731
    return (np.array([floor(ranges[k]) for k in names], dtype=float),
            np.array([ranges[k]["max"] for k in names], dtype=float))


def frozen(graph: FormulaGraph, data: Rows, varying: list) -> Rows:
    """The rows with every formula the `varying` inputs do not reach evaluated once and pinned, so
    each step of a fit recomputes only what the constants move (the same values, fewer operations)."""
    targets = list(MEASURED.values())
    full = ev.evaluate(graph, data.bindings, targets)
    moving = set(varying)
    for name in full.evaluated:          # in dependency order
        if moving & (set(graph.deps(name)) | graph.requirement_names(name)):
            moving.add(name)
    pinned = {n: full[n] for n in full.evaluated if n not in moving}
    needed = graph.inputs_for(targets, pinned=pinned)
    return Rows(data.record, data.dataset, data.model, data.framework, data.gpu, data.tp, data.measured,
                {**{n: data.bindings[n] for n in needed}, **pinned})


def left_out_errors(graph: FormulaGraph, catalog: Catalog, data, start: dict) -> dict:
    """Relative errors of every row when its model is left out of the fit (one refit per model)."""
    out = {c: np.full(len(data), np.nan) for c in MEASURED}
    for model in sorted(set(data.model)):
        held = data.model == model
        constants = fit(graph, catalog, data.take(~held), start)
        for c, e in relative_errors(graph, data.take(held), constants).items():
            out[c][held] = e
    return out


def mean_abs_pct(errors: dict, mask=None) -> dict:
    """Mean absolute % error per measured column over the rows in `mask` (columns measured nowhere left out)."""
    out = {}
    for c, e in errors.items():
        e = e if mask is None else e[mask]
        e = e[np.isfinite(e)]
        if e.size:
            out[c] = {"n": int(e.size), "pct": float(np.mean(np.abs(e)) * 100)}
    return out


SWEEP_BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256]   # why: powers of two span a chat server to a batch job
SWEEP_LOAD_SHARES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]   # of the sustainable rate: the queue's knee
TARGETS = ["ttft", "inter_token_latency", "e2e_latency", "output_throughput"]
# serving_mode -> (scenario key varied, axis title, chart titles for TTFT, inter-token latency, E2E)
AXES = {0: ("batch_size", "batch size", ("Time to first token of the batch", "Mean decode step (inter-token latency)",
                                         "Wall time of the whole batch")),
        1: ("request_rate", "request rate (requests/s)", ("Mean time to first token", "Mean inter-token latency",
                                                          "Mean end-to-end latency")),
        2: ("concurrency", "concurrent users", ("Mean time to first token", "Mean inter-token latency",
                                                "Mean end-to-end latency"))}


def sweep(result) -> dict:
    """TTFT, inter-token latency, E2E and throughput vs the load, the scenario otherwise unchanged, in one
    vectorized evaluation: an offline batch vs batch size, a served load vs request rate (up to 95 % of the
    sustainable rate) or vs concurrent users."""
    g = result.graph
    mode = int(np.asarray(result["serving_mode"]).reshape(-1)[0])
    key, label, titles = AXES[mode]
    x = (np.array(SWEEP_LOAD_SHARES) * float(result["max_sustainable_request_rate"]) if mode == 1
         else np.array(SWEEP_BATCH_SIZES, dtype=float))
    pinned = {n for n in result.values if n in g.formulas and n not in result.evaluated}   # stand-ins, as sized
    b = {n: result.values[n] for n in [*g.inputs_for(TARGETS, result.variant, pinned), *pinned] if n in result.values}
    r = ev.evaluate(g, {**b, key: x}, TARGETS, result.variant)
    series = {n: np.broadcast_to(np.asarray(r[n], dtype=float), x.shape).tolist() for n in TARGETS}
    return {"axis": label, "x": [round(float(v), 2) if mode == 1 else int(v) for v in x], "titles": titles, **series}

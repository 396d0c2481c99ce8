"""`llm-sizer plan`: which GPUs, how many, which weight and KV-cache formats, and what it costs (issue 11).

Candidates are GPU type x (tensor, pipeline) parallel sizes and GPU memory utilization x weight format x KV-cache
dtype x context length.
The categorical axes (GPU, weight format, KV-cache dtype: a *family*) change the records a scenario reads, so each
family is resolved once (engine.scenario) into a dict of scalar bindings; the families' bindings are stacked into
NumPy arrays on axis 0, the parallel sizes and context lengths broadcast on axes 1 and 2, and one call of
engine.evaluate.evaluate evaluates every candidate. A candidate that breaks a `requires` (a TP that does not divide
the heads) is evaluated with the rest (check_requires=False) and marked, never raised.

Feasible = the rules hold, it has a price, it fits (formulas/vllm_memory.yaml `fits`) and every latency or
throughput limit is met. Feasible candidates are ranked by cost_per_hour, then cost_per_million_output_tokens, then
inter_token_latency; the Pareto front of cost per hour against inter-token latency is marked. Every number is a
formula's value; this module only selects, sorts and compares them with the user's limits.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from . import evaluate as ev
from . import scenario as scn
from . import units
from .errors import CatalogError, EngineError, ScenarioError, fill, shorten

RESULTS = ["num_gpus", "cost_per_hour", "cost_per_million_output_tokens", "ttft", "inter_token_latency",
           "e2e_latency", "output_throughput", "kv_cache_tokens", "max_concurrency", "weight_memory_per_gpu",
           "fits", "memory_shortfall", "served_load_sustainable", "served_utilization", "max_sustainable_request_rate"]
# A limit: the option, the formula it bounds, its unit, how the terminal names it, and which side is good.
LIMITS = {"max_ttft": ("ttft", "s", "TTFT", "<"), "max_itl": ("inter_token_latency", "s", "ITL", "<"),
          "min_throughput": ("output_throughput", "token / s", "throughput", ">=")}
# The numeric axes broadcast over every family, and the scenario keys they are read from.
AXES = {"tp": "tensor_parallel_size", "pp": "pipeline_parallel_size", "util": "gpu_memory_utilization",
        "max_model_len": "max_model_len"}
# What a plan tries unless restricted: catalogs/frameworks.yaml, vllm.plan_search.
SEARCH = ("tensor_parallel_sizes", "pipeline_parallel_sizes", "gpu_memory_utilizations", "kv_cache_dtypes",
          "formats_for_unquantized")
MAX_CANDIDATES = 2_000_000  # why: ~1 s per million candidates here; beyond it a plan is a mistake, and memory-hungry


class NoFeasibleDeployment(EngineError):
    """Every candidate fails: a failed check (exit 1), with the closest candidate."""

    exit_code = 1


@dataclass
class Requirements:
    """What the user asked for: the model, the workload, the limits, and the restrictions."""

    model: str
    max_model_len: list
    workload: dict                      # scenario keys: concurrency | request_rate | batch_size, input/output tokens
    limits: dict = field(default_factory=dict)        # max_ttft / max_itl / min_throughput -> (value, as typed)
    gpus: list = field(default_factory=list)
    parallel: list = field(default_factory=list)      # (tp, pp) pairs
    quantizations: list = field(default_factory=list)
    kv_cache_dtypes: list = field(default_factory=list)
    prices: dict = field(default_factory=dict)        # gpu id -> USD per GPU-hour given with --price
    utilizations: list = field(default_factory=list)  # plan_search's: the first is vLLM's default, then fallbacks

    @property
    def layouts(self) -> list:
        """(tp, pp, gpu_memory_utilization) of axis 1, the utilizations of one (tp, pp) pair side by side."""
        return [(tp, pp, u) for tp, pp in self.parallel for u in self.utilizations]

    def conditions(self) -> str:
        """The limits as the user typed them: 'ITL < 30 ms and TTFT < 2 s'."""
        return " and ".join(f"{LIMITS[n][2]} {LIMITS[n][3]} {typed}" for n, (_, typed) in self.limits.items()) \
            or "no latency or throughput limit"

    def public(self) -> dict:
        out = {"model": self.model, "max_model_len": self.max_model_len[0] if len(self.max_model_len) == 1
               else self.max_model_len, **self.workload}
        for name, (value, typed) in self.limits.items():
            out[name] = {"value": value, "unit": LIMITS[name][1], "given": typed}
        out.update({"gpus": self.gpus, "parallel": [{"tensor_parallel_size": t, "pipeline_parallel_size": p}
                                                    for t, p in self.parallel],
                    "gpu_memory_utilization": self.utilizations,
                    "quantization": self.quantizations, "kv_cache_dtype": self.kv_cache_dtypes,
                    "prices": self.prices})
        return out


@dataclass
class Family:
    """One GPU x weight format x KV-cache dtype: its resolved scenario and bindings, or why it has none."""

    gpu: str
    quantization: str
    kv_cache_dtype: str
    scenario: object = None
    no_price: str | None = None         # why the GPU has no price (catalogs/prices.yaml why_none), when it has none
    bindings: dict | None = None
    error: str | None = None


@dataclass
class Plan:
    requirements: Requirements
    families: list
    candidates: list           # dicts, best first: scenario, results, pareto
    infeasible: list           # dicts: family, reason
    evaluated: int             # candidates evaluated
    feasible: int
    closest: dict | None = None
    model_id: str = ""

    def notes(self) -> list[str]:
        """What a reader of the candidates must know: formats the checkpoint is not in."""
        own = {c["weights"] for c in self.candidates if "quantization" not in c["scenario"]}
        other = sorted({c["scenario"]["quantization"] for c in self.candidates if "quantization" in c["scenario"]} - own)
        out = [f"{', '.join(other)} weights: served from a checkpoint of {self.model_id} in that format, or quantized by "
               "vLLM on load where it can (--quantization fp8); sized at the format's stored bits"] if other else []
        lowered = sorted({c["scenario"]["gpu_memory_utilization"] for c in self.candidates
                          if "gpu_memory_utilization" in c["scenario"]}, reverse=True)
        if lowered:
            out.append(f"--gpu-memory-utilization {', '.join(map(str, lowered))}: where vLLM's default "
                       f"{self.requirements.utilizations[0]} leaves too little memory outside its budget for the CUDA "
                       "context and graphs (it would run out while capturing graphs), a lower one that fits is shown")
        return out


# -- requirements from the command line ---------------------------------------------------------

def requirements(catalog, model: str, options: dict) -> Requirements:
    """Parse and check the plan's options (strings as typed); bad ones are one error naming the option."""
    model_rec = catalog.model(model)
    lens = [scn.coerce("max_model_len", v) for v in options.get("max_model_len") or ()] \
        or [model_rec.arch["max_position_embeddings"]]
    workload = _workload(options, catalog.scenarios_default())
    limits = {name: (_quantity(options[name], LIMITS[name][1], "--" + name.replace("_", "-")), options[name])
              for name in LIMITS if options.get(name) is not None}
    gpus = [_gpu_id(catalog, g) for g in _list(options.get("gpus"))] or list(catalog.gpus)
    max_gpus = options.get("max_gpus") or 8
    search = _search(catalog)
    parallel = [(t, p) for p in search["pipeline_parallel_sizes"] for t in search["tensor_parallel_sizes"] if t * p <= max_gpus]
    if not parallel:
        raise ScenarioError(f"--max-gpus {max_gpus} allows no deployment", None, expected="at least 1")
    quants = [catalog.resolve("formats", q)[0] for q in _list(options.get("quantization"))] \
        or _default_formats(search, model_rec)
    kvs = _list(options.get("kv_cache_dtype")) or list(search["kv_cache_dtypes"])
    for kv in kvs:
        if kv != "auto":
            catalog.resolve("kv_cache_dtypes", kv)
    prices = dict(_price(catalog, p) for p in options.get("price") or ())
    req = Requirements(model, lens, workload, limits, gpus, parallel, quants, kvs, prices,
                       [float(u) for u in search["gpu_memory_utilizations"]])
    if len(gpus) * len(quants) * len(kvs) * len(req.layouts) * len(lens) > MAX_CANDIDATES:
        raise ScenarioError(f"the plan has more than {MAX_CANDIDATES:,} candidates", None,
                            hint="restrict --gpus, --quantization, --kv-cache-dtype or --max-model-len")
    return req


def _workload(options: dict, default: dict) -> dict:
    """The load, as scenario keys: a closed loop of --concurrency users or Poisson --request-rate arrivals, and
    the tokens of a request (the default scenario's unless given)."""
    if options.get("concurrency") is not None and options.get("request_rate") is not None:
        raise ScenarioError("give --concurrency or --request-rate, not both", None)
    out = {}
    for key in ("concurrency", "request_rate", "input_tokens", "output_tokens"):
        value = options.get(key) if options.get(key) is not None or "tokens" not in key else default.get(key)
        if value is not None:
            out[key] = scn.coerce(key, value)
    if "concurrency" in out:
        out["batch_size"] = out["concurrency"]   # fits_workload: the KV cache holds every user's request at once
    return out


def _list(text) -> list:
    if text is None:
        return []
    items = [s.strip() for s in (text if isinstance(text, (list, tuple)) else str(text).split(",")) if s.strip()]
    return list(dict.fromkeys(items))


def _quantity(text, unit: str, option: str) -> float:
    """A limit as typed ('30 ms', '0.5 s', '2000 tokens/s'), parsed by the unit registry (never eval)."""
    value = units.parse_quantity(str(text), unit, None, field=option)
    if not value > 0:
        raise ScenarioError(f"{option} must be positive", None, found=str(text))
    return value


def _gpu_id(catalog, key: str) -> str:
    try:
        return catalog.gpu(key)[0]
    except EngineError as exc:
        exc.message = f"--gpus: {exc.message}"
        raise


def _price(catalog, text: str) -> tuple[str, float]:
    """GPU=USD per GPU-hour ('l40s=0.9', or 'l40s=0.9 USD/gpu/h')."""
    gpu, sep, value = str(text).partition("=")
    if not sep or not gpu.strip() or not value.strip():
        raise ScenarioError(f"--price {shorten(text)} is not GPU=USD", None, expected="e.g. --price h100-sxm=2.49")
    gid = _gpu_id(catalog, gpu.strip())
    try:
        usd = float(value)
    except ValueError:
        usd = units.parse_quantity(value, "USD / gpu / hour", None, field=f"--price {gid}")
    if not usd >= 0 or usd == float("inf"):
        raise ScenarioError(f"--price {gid} must be a finite amount of at least 0", None, found=value)
    return gid, usd


def _search(catalog) -> dict:
    vllm = catalog.frameworks.get("vllm") or {}
    search = vllm.get("plan_search") or {}
    where = vllm.where("plan_search") if hasattr(vllm, "where") and "plan_search" in vllm else None
    missing = [k for k in SEARCH if not isinstance(search.get(k), list) or not search[k]]
    if missing:
        raise CatalogError(f"frameworks.vllm.plan_search needs {', '.join(missing)}", where,
                           hint="lists of what `plan` tries: " + ", ".join(SEARCH))
    sizes = search["tensor_parallel_sizes"] + search["pipeline_parallel_sizes"]
    bad = [v for v in sizes if not isinstance(v, int) or isinstance(v, bool) or v < 1] + [
        u for u in search["gpu_memory_utilizations"]
        if not isinstance(u, (int, float)) or isinstance(u, bool) or not 0 < u <= 1]
    if bad:
        raise CatalogError(f"frameworks.vllm.plan_search holds {bad[0]!r}", where,
                           expected="whole numbers of at least 1 for the parallel sizes, fractions in (0, 1] for the "
                                    "utilizations")
    return search


def _default_formats(search, model) -> list:
    own = model.arch["quantization"]
    return [own] if own != "none" else [own, *search["formats_for_unquantized"]]


# -- families: GPU x format x KV dtype, each resolved once --------------------------------------

def families(graph, catalog, req: Requirements, names: list) -> list:
    out, seen = [], set()
    unpriced = [n for n in names if (graph.inputs[n].source_path or "").startswith("price.")]
    for gpu, quant, kv in itertools.product(req.gpus, req.quantizations, req.kv_cache_dtypes):
        given = {"model": req.model, "gpu": gpu, "quantization": quant, "kv_cache_dtype": kv,
                 "max_model_len": max(req.max_model_len), **req.workload}
        if gpu in req.prices:
            given["price_per_gpu_hour"] = req.prices[gpu]
        fam = Family(gpu, quant, kv)
        try:
            fam.scenario = scn.resolve(catalog, given)
            if (gpu, quant, fam.scenario.kv_dtype) in seen:   # 'auto' named the same dtype as another entry
                continue
            seen.add((gpu, quant, fam.scenario.kv_dtype))
            if fam.scenario.price:
                fam.bindings = scn.bindings(graph, catalog, fam.scenario, names)
            else:   # evaluated with a price of 0 beside the others, then left out with the catalog's reason
                fam.no_price = (catalog.prices.get(gpu) or {}).get("why_none") or "catalogs/prices.yaml has no record of it"
                fam.bindings = {**scn.bindings(graph, catalog, fam.scenario, [n for n in names if n not in unpriced]),
                                **dict.fromkeys(unpriced, 0.0)}
        except EngineError as exc:
            fam.error = exc.message
        out.append(fam)
    return out


# -- the plan ------------------------------------------------------------------------------------

def plan(graph, catalog, req: Requirements, top: int | None = 20) -> Plan:
    targets = list(graph.formulas)     # all of them, as `size` does: every `requires` is checked, not only those of RESULTS
    names = graph.inputs_for(targets)
    fams = families(graph, catalog, req, names)
    _first_model_error(fams)
    ok = [f for f in fams if f.bindings is not None]
    grid = _evaluate(graph, ok, req, targets) if ok else None
    feasible, closest = (_feasible(grid, ok, req) if grid else (np.zeros(0, bool), None))
    order = _ranked(grid, feasible) if grid else np.zeros(0, int)
    pareto = _pareto(grid, order) if grid else np.zeros(0, bool)
    shown = order if not top else order[:top]
    candidates = [_candidate(grid, ok, req, i, bool(p)) for i, p in zip(shown, pareto[:len(shown)])]
    return Plan(req, fams, candidates, _infeasible(fams, ok, grid, feasible, req),
                grid["size"] if grid else 0, int(feasible.sum()), closest, catalog.model(req.model).id)


def command(catalog, p: Plan) -> str | None:
    """`vllm serve` for the best candidate, as `size` prints it for that scenario."""
    from .sizing import vllm_command

    if not p.candidates:
        return None
    sc = scn.resolve(catalog, p.candidates[0]["scenario"])
    if "quantization" in p.candidates[0]["scenario"]:     # vLLM's name for the format (awq, not awq-int4-g128)
        sc.values["quantization"] = (catalog.formats[sc.quant_id].get("vllm") or [sc.quant_id])[0]
    return vllm_command(sc)


def _first_model_error(fams: list):
    """A problem every family shares (the model refuses the context length, ...) is the user's to fix: raise it."""
    errors = {f.error for f in fams}
    if fams and None not in errors and len(errors) == 1 and not any("quantization" in e for e in errors):
        raise ScenarioError(errors.pop(), None)


def _evaluate(graph, fams: list, req: Requirements, targets: list) -> dict:
    """One vectorized evaluation: families on axis 0, (tp, pp, utilization) on axis 1, context lengths on axis 2."""
    bindings = {}
    for name in fams[0].bindings:
        column = [f.bindings[name] for f in fams]
        same = all(isinstance(v, (int, float)) and v == column[0] for v in column)
        bindings[name] = column[0] if same else np.asarray(column, dtype=float)[:, None, None]
    axis = {key: _input_of(graph, path) for key, path in AXES.items()}
    for key, values in zip(("tp", "pp", "util"), zip(*req.layouts)):
        bindings[axis[key]] = np.asarray(values, dtype=float)[None, :, None]
    bindings[axis["max_model_len"]] = np.asarray(req.max_model_len, dtype=float)[None, None, :]
    result = ev.evaluate(graph, bindings, targets, check_requires=False)
    shape = (len(fams), len(req.layouts), len(req.max_model_len))
    rules, broken = ev.requirements_met(result)
    full = {n: np.broadcast_to(np.asarray(result[n], dtype=float), shape).reshape(-1) for n in RESULTS}
    return {"values": full, "rules": np.broadcast_to(rules, shape).reshape(-1), "broken": broken, "shape": shape,
            "size": int(np.prod(shape)), "units": {n: result.unit(n) for n in RESULTS}, "result": result}


def _input_of(graph, key: str) -> str:
    return next(n for n, i in graph.inputs.items() if i.source_path == f"scenario.{key}")


def _limit_excess(grid: dict, req: Requirements) -> np.ndarray:
    """How far the worst limit is missed, as a fraction of it (0 where every limit is met)."""
    v = grid["values"]     # a served load past capacity misses by how far the rate exceeds the sustainable one
    excess = np.where(v["served_load_sustainable"] >= 1, 0.0, v["served_utilization"] - 1 + 1e-12)
    for name, (limit, _) in req.limits.items():
        formula, _, _, side = LIMITS[name]
        v = grid["values"][formula]
        miss = np.where(v < limit, 0.0, v / limit - 1 + 1e-12) if side == "<" else np.where(v >= limit, 0.0, limit / v - 1)
        excess = np.maximum(excess, miss)
    return excess


def _feasible(grid: dict, fams: list, req: Requirements):
    v = grid["values"]
    priced = np.repeat([bool(f.scenario.price) for f in fams], grid["size"] // len(fams))
    usable = grid["rules"] & priced
    fits = usable & (v["fits"] >= 1)
    excess = _limit_excess(grid, req)
    feasible = _first_utilization(fits & (excess == 0), grid, req)
    closest = None
    if not feasible.any() and usable.any():
        pick = np.where(fits, excess, np.inf) if fits.any() else np.where(usable, v["memory_shortfall"], np.inf)
        closest = _candidate(grid, fams, req, int(np.argmin(pick)), False)
    return feasible, closest


def _first_utilization(feasible: np.ndarray, grid: dict, req: Requirements) -> np.ndarray:
    """Of the utilizations of one deployment, only the first that is feasible: a lower one is a fallback."""
    f, _, n = grid["shape"]
    by = feasible.reshape(f, len(req.parallel), len(req.utilizations), n)
    earlier = np.cumsum(by, axis=2) - by > 0
    return (by & ~earlier).reshape(-1)


def _ranked(grid: dict, feasible: np.ndarray) -> np.ndarray:
    v, idx = grid["values"], np.flatnonzero(feasible)
    keys = (v["inter_token_latency"][idx], v["cost_per_million_output_tokens"][idx], v["cost_per_hour"][idx])
    return idx[np.lexsort(keys)]


def _pareto(grid: dict, order: np.ndarray) -> np.ndarray:
    """On the front of cost per hour vs inter-token latency (for each candidate of `order`): no candidate as cheap
    or cheaper is as fast or faster. Sorted by (cost, ITL), a candidate is on it when it beats the fastest before it."""
    cost, itl = grid["values"]["cost_per_hour"][order], grid["values"]["inter_token_latency"][order]
    by = np.lexsort((itl, cost))
    best_before = np.concatenate([[np.inf], np.minimum.accumulate(itl[by])[:-1]])
    front = np.empty(len(order), bool)
    front[by] = itl[by] < best_before
    return front


def _candidate(grid: dict, fams: list, req: Requirements, i: int, pareto: bool) -> dict:
    f, t, l = np.unravel_index(i, grid["shape"])
    fam, (tp, pp, util) = fams[f], req.layouts[t]
    scenario = {"model": req.model, "gpu": fam.gpu, "tensor_parallel_size": tp, "pipeline_parallel_size": pp,
                "quantization": fam.quantization, "kv_cache_dtype": fam.kv_cache_dtype,
                "max_model_len": req.max_model_len[l], **req.workload}
    if util != fam.scenario.values["gpu_memory_utilization"]:   # what `size` would take without it
        scenario["gpu_memory_utilization"] = util
    if fam.quantization == fam.scenario.model.arch["quantization"]:
        del scenario["quantization"]     # the checkpoint's own: vLLM reads it from config.json
    if pp == 1:
        del scenario["pipeline_parallel_size"]    # vLLM's default
    if fam.gpu in req.prices:
        scenario["price_per_gpu_hour"] = req.prices[fam.gpu]
    results = {n: {"value": float(grid["values"][n][i]), "unit": grid["units"][n]} for n in RESULTS}
    return {"scenario": scenario, "results": results, "pareto": pareto, "gpu_name": fam.scenario.gpu["name"],
            "weights": fam.scenario.dtype if fam.scenario.quant_id == "none" else fam.scenario.quant_id,
            "kv_dtype": fam.scenario.kv_dtype}


# -- why families fail ---------------------------------------------------------------------------

def _infeasible(fams: list, ok: list, grid, feasible, req: Requirements) -> list:
    """One entry per family with no feasible candidate; a GPU whose every family fails is one entry."""
    per_family = {id(f): f.error for f in fams if f.error}
    if grid:
        width = grid["size"] // len(ok)
        for k, fam in enumerate(ok):
            part = slice(k * width, (k + 1) * width)
            if not feasible[part].any():
                per_family[id(fam)] = _reason(grid, fam, k, part, req)
    out = _refused_layouts(grid, ok, req) if grid else []
    for gpu in dict.fromkeys(f.gpu for f in fams):
        mine = [f for f in fams if f.gpu == gpu]
        failing = [f for f in mine if id(f) in per_family]
        if len(failing) == len(mine) and len({_kind(per_family[id(f)]) for f in failing}) == 1:
            out.append({"family": gpu, "reason": per_family[id(failing[0])]})
        else:
            out += [{"family": f"{gpu} {f.quantization} weights, {f.scenario.kv_dtype if f.scenario else f.kv_cache_dtype} KV cache",
                     "reason": per_family[id(f)]} for f in failing]
    return out


def _refused_layouts(grid: dict, fams: list, req: Requirements) -> list:
    """A TP/PP layout every family refuses (a TP that does not divide the model's heads) is one entry."""
    rules = grid["rules"].reshape(grid["shape"])
    out = []
    for k, (tp, pp) in enumerate(req.parallel):
        t = k * len(req.utilizations)     # a layout's rules do not depend on the utilization: its first one speaks
        if not rules[:, t:t + len(req.utilizations), :].any():
            i = int(np.ravel_multi_index((0, t, 0), grid["shape"]))
            out.append({"family": f"TP={tp}, PP={pp} (every GPU)",
                        "reason": f"refused: {_broken_rule(grid, slice(i, i + 1), fams[0])}"})
    return out


def _kind(reason: str) -> str:
    return reason.split(":")[0]


def _reason(grid: dict, fam: Family, k: int, part: slice, req: Requirements) -> str:
    if fam.no_price:
        return f"no price: {fam.no_price}"
    v, rules = grid["values"], grid["rules"][part]
    if not rules.any():
        return f"refused: {_broken_rule(grid, part, fam)}"
    shortfall = np.where(rules, v["memory_shortfall"][part], np.inf)
    if not (np.where(rules, v["fits"][part], 0) >= 1).any():
        i = part.start + int(np.argmin(shortfall))
        return (f"does not fit: short by {shortfall.min() / units.GIB:.2f} GiB per GPU even on "
                f"{_where(grid, req, i)}")
    excess = np.where(rules & (v["fits"][part] >= 1), _limit_excess(grid, req)[part], np.inf)
    i = part.start + int(np.argmin(excess))
    return f"too slow: {_missed(grid, req, i)} at best, on {_where(grid, req, i)}"


def _where(grid: dict, req: Requirements, i: int) -> str:
    _, t, l = np.unravel_index(i, grid["shape"])
    tp, pp, util = req.layouts[t]
    n = grid["values"]["num_gpus"][i]
    lowered = f", utilization {util}" if util != req.utilizations[0] else ""
    return f"{n:.0f} GPU{'' if n == 1 else 's'} (TP={tp}, PP={pp}{lowered}) at max_model_len {req.max_model_len[l]:,}"


def _missed(grid: dict, req: Requirements, i: int) -> str:
    """The limits candidate i misses, each with its value and by how much."""
    v = grid["values"]
    parts = [] if v["served_load_sustainable"][i] >= 1 else [
        f"the queue grows without bound (sustainable up to {v['max_sustainable_request_rate'][i]:.2f} requests/s)"]
    for name, (limit, typed) in req.limits.items():
        formula, unit, label, side = LIMITS[name]
        value = grid["values"][formula][i]
        if (value < limit) if side == "<" else (value >= limit):
            continue
        parts.append(f"{label} {show(value, unit)}, limit {side} {typed} ({abs(value / limit - 1):.0%} "
                     f"{'over' if side == '<' else 'under'})")
    return "; ".join(parts)


def _broken_rule(grid: dict, part: slice, fam: Family) -> str:
    for name, req, holds in grid["broken"]:
        mask = np.broadcast_to(holds, grid["shape"]).reshape(-1)[part]
        if not mask.all():
            j = part.start + int(np.flatnonzero(~mask)[0])
            values = grid["result"].values
            at = {a: np.broadcast_to(values[a], grid["shape"]).reshape(-1)[j] for a in req.code.args}
            fields = ev.rule_fields(req, at, fam.scenario.model.id)
            return fill(req.message, fields) if getattr(req, "message", None) else f"{name} requires {req.text}"
    return "a rule of the formulas"


def show(value: float, unit: str) -> str:
    """A figure as the plan prints it: latencies in ms, throughput in tokens/s (display only)."""
    if unit == "s":
        return f"{value * 1e3:,.1f} ms"
    return f"{value:,.0f} tokens/s" if unit == "token / s" else f"{value:,.4g} {unit}"


def no_feasible(p: Plan) -> NoFeasibleDeployment:
    c = p.closest
    found = None
    if c:
        s, r = c["scenario"], c["results"]
        found = (f"closest: {r['num_gpus']['value']:.0f} x {s['gpu']} (TP={s['tensor_parallel_size']}, PP="
                 f"{s.get('pipeline_parallel_size', 1)}"
                 + (f", utilization {s['gpu_memory_utilization']}" if "gpu_memory_utilization" in s else "")
                 + f"), {c['weights']} weights, {c['kv_dtype']} KV cache, max_model_len "
                 f"{s['max_model_len']:,}: "
                 + (f"does not fit, short by {r['memory_shortfall']['value'] / units.GIB:.2f} GiB per GPU"
                    if r["fits"]["value"] < 1 else
                    f"the queue grows without bound, sustainable up to "
                    f"{r['max_sustainable_request_rate']['value']:.2f} requests/s"
                    if r["served_load_sustainable"]["value"] < 1 else
                    f"TTFT {show(r['ttft']['value'], 's')}, ITL {show(r['inter_token_latency']['value'], 's')}, "
                    f"{show(r['output_throughput']['value'], 'token / s')}"))
    rate = p.requirements.workload.get("request_rate")
    wanted = (f"sustains {rate:g} requests/s" + (f" with {p.requirements.conditions()}" if p.requirements.limits else "")
              if rate else f"meets {p.requirements.conditions()}")
    return NoFeasibleDeployment(f"no deployment in the catalog {wanted}", None, found=found,
                                hint="relax the limit, or widen --gpus, --max-gpus, --quantization, --kv-cache-dtype")


def json_plan(p: Plan) -> dict:
    """The contract: {"requirements", "candidates": [{"scenario", "results"}], "infeasible": [{"family", "reason"}]}."""
    return {"requirements": p.requirements.public(),
            "candidates": [{"scenario": c["scenario"], "results": c["results"]} for c in p.candidates],
            "infeasible": p.infeasible}

"""`llm-sizer sweep`: one or two scenario keys varied over ranges or lists, every point evaluated.

A numeric key (max_model_len, tensor_parallel_size, batch_size, gpu_memory_utilization, ...) is
evaluated vectorized: the scenario is resolved once with the varied keys as NumPy arrays (the grid;
two numeric keys meshed) and engine.evaluate.evaluate runs once over every point. A categorical key
(model, gpu, quantization, kv_cache_dtype, dtype, framework, a true/false flag) changes many
bindings and the records they come from, so the scenario is resolved once per value of it: a loop
over those values only, each still one evaluation of the numeric grid.

A point that breaks a `requires` (a TP that does not divide the heads, ...) is a row marked
"refused" with vLLM's reason, and one that does not fit a row marked "does not fit" with the
condition that fails: neither stops the sweep. Values the inputs' `min`/`max` refuse, unknown keys
and malformed ranges are one error before anything is evaluated.
"""
from __future__ import annotations

import difflib
import itertools
import math
import re
from dataclasses import dataclass, field

import numpy as np

from . import evaluate as ev
from . import scenario as scn
from .errors import EngineError, RequirementError, ScenarioError, fill, shorten
from .scenario_keys import KEYS

MAX_POINTS = 1_000_000   # why: a million points evaluate in a few seconds; more is a mistake, and its CSV huge
MAX_PROBED = 100         # why: values resolved one by one to name the one a refusal is about (failures only)
MAX_VARIED = 2           # why: a table and a chart read two dimensions; more is what `plan` is for
MARKDOWN_ROWS = 200       # why: a summary, not the data; sweep.csv holds every point
DEFAULT_OUTPUTS = ["total_memory_per_gpu", "kv_cache_tokens", "max_concurrency", "ttft", "inter_token_latency",
                   "e2e_latency", "output_throughput"]
_RANGE = re.compile(r"^(?P<start>[^:]+):(?P<stop>[^:]+):(?P<op>[x*+])(?P<step>[^:]+)$")


@dataclass
class Vary:
    """One varied scenario key: its values in order, as the user asked for them."""
    key: str
    values: list          # floats for a numeric key, strings for a categorical one
    numeric: bool
    spec: str             # as typed, for messages
    ratio: float | None = None    # the step of a geometric range (x2), which the charts plot on a log axis


@dataclass
class Sweep:
    """Every point of a sweep: the varied values, a status, and the chosen outputs (declared units)."""
    varies: list
    outputs: list
    units: dict                   # output -> declared unit
    inputs: dict                  # varied key -> array over points (floats or strings)
    values: dict                  # output -> float array over points (NaN: not evaluated, or refused)
    status: np.ndarray            # "fits" | "does not fit" | "load beyond capacity" | "refused"
    reason: np.ndarray            # the failed condition, or the refused rule in vLLM's words; "" when it fits
    scenario: dict = field(default_factory=dict)   # the scenario's keys that were not varied
    notes: list = field(default_factory=list)
    conditions: dict = field(default_factory=dict)  # verdict condition -> its doc
    key_units: dict = field(default_factory=dict)   # varied numeric key -> the unit of the input reading it

    def __len__(self):
        return len(self.status)


# -- parsing --------------------------------------------------------------------------------

def parse_vary(text: str) -> Vary:
    """`KEY=start:stop:xK` (geometric), `KEY=start:stop:+K` (arithmetic) or `KEY=a,b,c` (a list)."""
    key, sep, spec = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not spec.strip():
        raise ScenarioError(f"--vary {shorten(text)}: expected KEY=start:stop:xK, KEY=start:stop:+K or KEY=a,b,c",
                            None, hint="e.g. --vary max_model_len=4096:131072:x2 --vary tensor_parallel_size=1,2,4,8")
    _known_key(key, text)
    kind = KEYS[key][0]
    numeric = kind in (int, float)
    spec = spec.strip()
    match = _RANGE.match(spec)
    if match:
        if not numeric:
            raise ScenarioError(f"--vary {shorten(text)}: {key} is not numeric, so it takes a list, not a range",
                                None, hint=f"list its values: --vary {key}=a,b,c")
        values, ratio = _range(text, match)
    elif ":" in spec:
        raise ScenarioError(f"--vary {shorten(text)}: '{shorten(spec)}' is not a range", None,
                            expected="start:stop:xK (geometric) or start:stop:+K (arithmetic), e.g. 4096:131072:x2")
    else:
        values, ratio = _list(text, spec, numeric), None
    if numeric:
        _check_numbers(key, values, text)
    else:
        values = [_categorical(key, v, text) for v in values]
    return Vary(key, values, numeric, text, ratio)


def _known_key(key: str, text: str):
    if key not in KEYS:
        close = difflib.get_close_matches(key, list(KEYS), n=1)
        raise ScenarioError(f"--vary {shorten(text)}: unknown scenario key '{shorten(key)}'", None,
                            hint=f"did you mean '{close[0]}'?" if close else f"keys: {', '.join(KEYS)}")


def _number(text: str, part: str, what: str) -> float:
    try:
        value = float(part.replace("_", ""))
    except ValueError:
        raise ScenarioError(f"--vary {shorten(text)}: {what} '{shorten(part)}' is not a number", None,
                            expected="start:stop:xK or start:stop:+K with numbers, e.g. 4096:131072:x2") from None
    if not math.isfinite(value):
        raise ScenarioError(f"--vary {shorten(text)}: {what} must be a finite number", None, found=part)
    return value


def _range(text: str, match) -> tuple[list, float | None]:
    start, stop, step = (_number(text, match[k], k) for k in ("start", "stop", "step"))
    geometric = match["op"] in "x*"
    if stop < start:
        raise ScenarioError(f"--vary {shorten(text)}: the range is empty (stop {stop:g} is below start {start:g})",
                            None, hint="give start <= stop")
    if geometric and (start <= 0 or step <= 1):
        raise ScenarioError(f"--vary {shorten(text)}: a geometric range needs start > 0 and a factor above 1", None,
                            found=f"start {start:g}, factor x{step:g}", hint="e.g. 4096:131072:x2")
    if not geometric and step <= 0:
        raise ScenarioError(f"--vary {shorten(text)}: an arithmetic range needs a step above 0", None,
                            found=f"+{step:g}", hint="e.g. 1:64:+1")
    # a tiny tolerance: 0.1:0.9:+0.1 reaches 0.9 although 8 * 0.1 rounds below it
    count = (math.floor(math.log(stop / start) / math.log(step) + 1e-9) if geometric
             else math.floor((stop - start) / step + 1e-9)) + 1
    if count > MAX_POINTS:
        raise ScenarioError(f"--vary {shorten(text)}: {count:,} values, more than the {MAX_POINTS:,} points a sweep "
                            "may have", None, hint="take a larger step or a shorter range")
    i = np.arange(count, dtype=float)
    values = start * step ** i if geometric else start + step * i
    values = np.where(np.isclose(values, np.round(values), rtol=1e-12, atol=1e-12), np.round(values), values)
    return [float(v) for v in np.round(values, 12)], step if geometric else None


def _list(text: str, spec: str, numeric: bool) -> list:
    items = [s.strip() for s in spec.split(",")]
    if any(not s for s in items):
        raise ScenarioError(f"--vary {shorten(text)}: an empty item in the list", None, hint="e.g. 1,2,4,8")
    if len(items) > MAX_POINTS:
        raise ScenarioError(f"--vary {shorten(text)}: more than {MAX_POINTS:,} values", None)
    values = [_number(text, s, "value") for s in items] if numeric else items
    if len(set(values)) != len(values):
        twice = next(v for v in values if values.count(v) > 1)
        raise ScenarioError(f"--vary {shorten(text)}: {twice if not numeric else format(twice, 'g')} is listed twice",
                            None, hint="list each value once")
    return values


def _check_numbers(key: str, values: list, text: str):
    """What scenario.coerce refuses, checked on the whole array (a million values, no loop)."""
    arr = np.asarray(values, dtype=float)
    kind = KEYS[key][0]
    bad = None
    if kind is int and not np.all(arr == np.floor(arr)):
        bad, expected = arr[arr != np.floor(arr)][0], "whole numbers"
    elif np.any(np.abs(arr) > scn.MAX_MAGNITUDE):
        bad, expected = arr[np.abs(arr) > scn.MAX_MAGNITUDE][0], f"values of at most {scn.MAX_MAGNITUDE:,}"
    if bad is not None:
        raise ScenarioError(f"--vary {shorten(text)}: {scn.flag(key)} takes {expected}", None,
                            found=format(bad, "g"), expected=f"{expected}: {KEYS[key][1]}")


def _categorical(key: str, value: str, text: str):
    try:
        return scn.coerce(key, value)
    except ScenarioError as exc:
        raise ScenarioError(f"--vary {shorten(text)}: {exc.message}", None, found=exc.found,
                            expected=exc.expected, hint=exc.hint) from None


def given_keys(scenario_file, options: dict) -> dict:
    """The scenario keys set by --scenario and the options, unresolved (the sweep resolves them per block)."""
    given = scn.read_file(scenario_file) if scenario_file else {}
    given.update({k: scn.coerce(k, v, None) for k, v in options.items() if v is not None and k in KEYS})
    listed = sorted(k for k, v in given.items() if hasattr(v, "shape"))
    if listed:
        raise ScenarioError(f"{scenario_file}: {', '.join(listed)} holds a list of values", None,
                            hint=f"give one value per key and the list with --vary {listed[0]}=a,b,c")
    return given


def check_request(varies: list, given: dict):
    """One or two distinct keys, none also given as an option, and at most MAX_POINTS points."""
    if not varies:
        raise ScenarioError("nothing to sweep: give --vary KEY=...", None,
                            hint="e.g. --vary max_model_len=4096:131072:x2")
    if len(varies) > MAX_VARIED:
        raise ScenarioError(f"--vary is given {len(varies)} times; a sweep varies one or two keys", None,
                            hint="`llm-sizer plan` searches more dimensions")
    keys = [v.key for v in varies]
    if len(set(keys)) != len(keys):
        raise ScenarioError(f"--vary {keys[0]} is given twice", None, hint="vary two different keys")
    for v in varies:
        if given.get(v.key) is not None:
            raise ScenarioError(f"{scn.flag(v.key)} is set and also varied (--vary {shorten(v.spec)})", None,
                                hint=f"drop {scn.flag(v.key)} (or the key from --scenario), or the --vary")
    total = math.prod(len(v.values) for v in varies)
    if total > MAX_POINTS:
        raise ScenarioError(f"the sweep has {total:,} points, more than {MAX_POINTS:,}", None,
                            hint="take larger steps or shorter ranges")


def check_outputs(g, outputs) -> list:
    names = list(outputs) or DEFAULT_OUTPUTS
    for name in names:
        if name not in g.formulas:
            close = difflib.get_close_matches(name, list(g.formulas), n=1)
            raise EngineError(f"--output {shorten(name)}: no formula of that name", None,
                              hint=f"did you mean '{close[0]}'?" if close else "llm-sizer list formulas shows them")
    return list(dict.fromkeys(names))


# -- evaluation -----------------------------------------------------------------------------

def run(g, c, given: dict, varies: list, outputs=(), variant=None) -> Sweep:
    """Evaluate every point: one vectorized evaluation per combination of categorical values."""
    check_request(varies, given)
    outputs = check_outputs(g, outputs)
    if variant and variant not in g.variant_names:
        raise EngineError(f"unknown variant '{variant}'", None, expected=", ".join(g.variant_names))
    shape = [len(v.values) for v in varies]
    index = np.indices(shape).reshape(len(varies), -1)       # index[k][p]: which value of vary k point p takes
    n = index.shape[1]
    values = {o: np.full(n, np.nan) for o in outputs}
    status, reason = np.full(n, "refused", dtype=object), np.full(n, "", dtype=object)
    cats = [k for k, v in enumerate(varies) if not v.numeric]
    first_sc, conditions, notes = None, {}, []
    for combo in itertools.product(*(range(shape[k]) for k in cats)):
        points = np.flatnonzero(np.all([index[k] == i for k, i in zip(cats, combo)], axis=0)) if cats \
            else np.arange(n)
        keys = {varies[k].key: varies[k].values[i] for k, i in zip(cats, combo)}
        keys.update({v.key: np.asarray(v.values, dtype=float)[index[k][points]]
                     for k, v in enumerate(varies) if v.numeric})
        sc, result = _evaluate_block(g, c, {**given, **keys}, varies, outputs, variant)
        first_sc = first_sc or sc
        notes += sc.notes
        _record(result, sc, points, values, status, reason, conditions)
    inputs = {v.key: (np.asarray(v.values, dtype=float) if v.numeric else np.asarray(v.values, dtype=object))[index[k]]
              for k, v in enumerate(varies)}
    varied = {v.key for v in varies}
    scenario = {k: val for k, val in first_sc.public().items() if k not in varied}
    return Sweep(varies, outputs, {o: g.formulas[o].unit_text for o in outputs}, inputs, values, status, reason,
                 scenario, list(dict.fromkeys(notes)), conditions, _key_units(g, varies))


def _key_units(g, varies) -> dict:
    units = {}
    for v in varies:
        decl = next((d for d in g.inputs.values() if d.source_path == f"scenario.{v.key}"), None)
        if v.numeric and decl is not None and decl.unit_text not in ("1", ""):
            units[v.key] = decl.unit_text
    return units


def _evaluate_block(g, c, keys: dict, varies: list, outputs: list, variant):
    from .sizing import framework_formulas

    try:
        sc = scn.resolve(c, keys)
    except ScenarioError as exc:
        raise _refused_value(c, keys, varies, exc) from None
    used = framework_formulas(g, sc)
    # every formula the framework uses, as `size` evaluates them: each one's `requires` is a rule vLLM
    # enforces, whether or not the chosen outputs depend on it
    targets = used
    bindings = scn.bindings(g, c, sc, g.inputs_for(targets, variant))
    for v in varies:
        if v.numeric:
            _check_bounds(g, v, bindings)
    result = ev.evaluate(g, bindings, targets, variant, check_requires=False)
    return sc, result


def _refused_value(c, keys: dict, varies: list, exc: ScenarioError) -> ScenarioError:
    """A value the scenario's resolution refuses (a max_model_len beyond the model's, a block size vLLM
    does not offer), found by resolving the extremes of each varied numeric key alone, then its values."""
    for v in (v for v in varies if v.numeric):
        candidates = [min(v.values), max(v.values), *v.values[:MAX_PROBED]]
        for value in dict.fromkeys(candidates):
            try:
                scn.resolve(c, {**keys, **{w.key: scn.coerce(w.key, w.values[0]) for w in varies if w.numeric},
                                v.key: scn.coerce(v.key, value)})
            except ScenarioError as single:
                return ScenarioError(f"--vary {shorten(v.spec)}: {single.message}", None, found=single.found,
                                     expected=single.expected, hint=single.hint)
    return exc


def _check_bounds(g, vary: Vary, bindings: dict):
    """A value an input's min/max (or integer) refuses, as one error naming the --vary."""
    arr = np.asarray(vary.values, dtype=float)
    for name, decl in g.inputs.items():
        if decl.source_path != f"scenario.{vary.key}" or name not in bindings:
            continue
        for candidate in (arr.min(), arr.max()):
            try:
                ev.check_input(g, name, candidate)
            except RequirementError as exc:
                raise ScenarioError(f"--vary {shorten(vary.spec)}: {exc.message}", None,
                                    found=format(candidate, "g"), expected=exc.expected, hint=exc.hint) from None


def _record(result, sc, points, values, status, reason, conditions):
    """Status, reason and outputs of one block's points, from its (vectorized) result."""
    names = sc.framework["memory_model"]["verdict"]
    m = len(points)
    per_point = lambda v: np.broadcast_to(np.asarray(v, dtype=float), (m,))  # noqa: E731
    ok = np.ones(m, dtype=bool)
    refused = np.full(m, "", dtype=object)
    for name, req, holds in ev.requirements_met(result)[1]:
        broken = ok & ~np.broadcast_to(holds, (m,))
        if broken.any():
            refused[broken] = _refusal_texts(result, req, np.flatnonzero(broken), m, sc.model.id)
            ok &= ~broken
    fits = per_point(result[names["fits"]]).astype(bool)
    failed = per_point(result[names["failed"]]).astype(int)
    for cond in names["conditions"]:
        conditions[cond] = result.graph.formulas[cond].doc
    cond_names = np.asarray(["", *names["conditions"]], dtype=object)
    # a served load beyond capacity: memory fits, but the queue grows without bound (formulas/serving.yaml)
    load = per_point(result["served_load_sustainable"]).astype(bool) if "served_load_sustainable" in result \
        else np.ones(m, dtype=bool)
    status[points] = np.where(~ok, "refused", np.where(~fits, "does not fit",
                                                       np.where(load, "fits", "load beyond capacity")))
    reason[points] = np.where(~ok, refused, np.where(~fits, "fails " + cond_names[np.clip(failed, 0, None)],
                                                     np.where(load, "", "request_rate >= max_sustainable_request_rate")))
    for o in values:
        if o in result:     # a served figure past capacity is no steady state: left blank, as a refused point's
            valid = ok & load if "serving_mode" in result.graph.needed([o]) else ok
            values[o][points] = np.where(valid, per_point(result[o]), np.nan)


def _refusal_texts(result, req, where, m: int, model_id) -> np.ndarray:
    """The rule a point breaks, in vLLM's words where the formula file gives them, filled per point
    (once per distinct combination of the values the rule reads, not once per point)."""
    args = list(req.code.args)
    cols = np.stack([np.broadcast_to(np.asarray(result.values[a], dtype=float), (m,))[where] for a in args], axis=1)
    distinct, inverse = np.unique(cols, axis=0, return_inverse=True)
    texts = []
    for row in distinct:
        fields = ev.rule_fields(req, dict(zip(args, row)), model_id)
        message = getattr(req, "message", None)
        texts.append(fill(message, fields) if message else f"requires {req.text}")
    return np.asarray(texts, dtype=object)[inverse.reshape(-1)]


# -- output ---------------------------------------------------------------------------------

def json_result(sw: Sweep) -> dict:
    def plain(v):
        return None if isinstance(v, float) and v != v else v

    points = []
    cols = {o: sw.values[o].tolist() for o in sw.outputs}
    inputs = {k: v.tolist() for k, v in sw.inputs.items()}
    for i in range(len(sw)):
        points.append({"inputs": {k: inputs[k][i] for k in inputs}, "status": sw.status[i], "reason": sw.reason[i],
                       "results": {o: plain(cols[o][i]) for o in sw.outputs}})
    return {"scenario": sw.scenario, "notes": sw.notes,
            "vary": [{"key": v.key, "values": v.values} for v in sw.varies],
            "units": sw.units, "points": points}



def write_files(out_dir, sw: Sweep) -> list[str]:
    """sweep.csv, sweep.xlsx and sweep.md in `out_dir`, each written atomically."""
    from pathlib import Path

    from . import output
    from .render import markdown, sweep_excel, sweep_text

    out = Path(out_dir)
    texts = {"sweep.csv": sweep_text.csv_text(sw), "sweep.xlsx": sweep_excel.build(sw),
             "sweep.md": markdown.render("sweep.md.j2", s=sweep_text.summary(sw, MARKDOWN_ROWS))}
    for name, data in texts.items():
        output.write_atomic(out / name, data)
    return [str(out / name) for name in texts]

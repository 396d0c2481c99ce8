"""`llm-sizer solve`: the largest or smallest value of one input that meets a condition on an output.

The answer is searched on the compiled graph: a grid of candidate values is evaluated in one vectorized
call, then the bracket where the condition changes is refined the same way until no untried value is left
in it. Whether the largest or the smallest value is wanted is read from that grid (the condition holds
below the change and fails above it, or the reverse), unless --max/--min says so. Candidates that break a
`requires` (a TP that does not divide the attention heads) are never answers.

Where no floor, ceiling or modulo lies between the input and the output, sympy then inverts the chain
(a Max, Min or where() taken as the branch active on both sides of the answer) and the solved form is
printed with its numbers substituted, as `explain` prints a formula. Every answer is evaluated forward:
it meets the condition, and the next value (the next whole number for integer inputs) does not.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field

import numpy as np

from . import evaluate as ev
from . import sizing, units
from .errors import EngineError
from .scenario import MAX_MAGNITUDE
from .scenario_keys import KEYS

OPS = {"<=": np.less_equal, "<": np.less, ">=": np.greater_equal, ">": np.greater}
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:(<=|>=|<|>)\s*([^\s<>=].*?))?\s*$")
# Why: past 16M tokens, requests or GPUs no deployment question is asked; the probe only has to see the
# condition change (an input with a declared `max:` is probed up to it instead).
PROBE_MAX = 2 ** 24
COARSE_POINTS = 512        # the first grid, log-spaced over wide ranges: one evaluate() call
REFINE_POINTS = 1024       # candidates per refining pass; integer brackets narrower than twice this are tried whole
MAX_PASSES = 40            # why: each pass narrows the bracket ~1000x; 40 is far beyond what floats need
FLOAT_DIGITS = 4           # a fractional answer is given to 4 significant digits, rounded toward meeting it
MAX_SOLVE_OPS = 60         # why: sympy.solve on a larger non-linear chain can run for minutes; bisection answers anyway
BLOCKING = {"floor": "floor", "ceil": "ceiling", "mod": "modulo"}
BRANCHING = {"max": "Max", "min": "Min", "pw": "where", "ite": "where"}


class NoSolutionError(EngineError, ValueError):
    """No value of the input in its range meets the condition: a failed check, not a bad request."""

    exit_code = 1


@dataclass
class Condition:
    output: str
    op: str | None       # None: a yes/no formula, met where it is 1
    bound: float | None  # in the output's declared unit
    text: str
    unit: str

    def meets(self, values) -> np.ndarray:
        v = np.asarray(values, dtype=float)
        return v == 1 if self.op is None else OPS[self.op](v, self.bound)

    def gap(self, values) -> np.ndarray:
        """How far each value is from meeting the bound (0 where it meets)."""
        v = np.asarray(values, dtype=float)
        over = v - self.bound if self.op in ("<=", "<") else self.bound - v
        return np.where(self.meets(v), 0.0, np.abs(over))


@dataclass
class Target:
    """The input solved for: its scenario key (when it has one), the graph inputs it sets, its range."""

    name: str
    key: str | None
    inputs: list
    integer: bool
    unit: str
    doc: str
    lo: float = 0.0
    hi: float = 0.0             # the probe reaches this far (beyond `top`, to see the condition change)
    top: float = 0.0            # the largest value the scenario accepts
    top_reason: str = ""
    choices: list | None = None

    def allowed(self, xs) -> np.ndarray:
        ok = (xs >= self.lo) & (xs <= self.top)
        return ok & np.isin(xs, self.choices) if self.choices is not None else ok


@dataclass
class Answer:
    condition: Condition
    target: Target
    value: float
    direction: str
    method: str
    expression: str
    substituted: str = ""
    reason: str = ""                     # why the method (what blocks inversion, or which branch was taken)
    direction_note: str = ""
    checks: list = field(default_factory=list)   # (value, output value, meets, note)
    evaluations: int = 0
    candidates: int = 0
    scenario: object = None
    exact: float | None = None           # the solved form's value before rounding

    def to_json(self) -> dict:
        return {"output": self.condition.output, "input": self.target.name, "value": _number(self.value),
                "method": self.method, "expression": self.expression, "unit": self.target.unit,
                "condition": self.condition.text, "direction": "largest" if self.direction == "max" else "smallest",
                "substituted": self.substituted or None, "reason": self.reason,
                "check": [{"value": _number(x), self.condition.output: _number(y), "meets": bool(m), "note": note}
                          for x, y, m, note in self.checks],
                "scenario": {k: v for k, v in self.scenario.public().items() if k != self.target.key}}


def _number(v):
    v = float(v)
    return None if v != v else int(v) if v.is_integer() else v     # NaN (not evaluated) is JSON null


# -- the request -----------------------------------------------------------------------------

def parse_condition(graph, text: str) -> Condition:
    """`NAME` (a yes/no formula, met when 1) or `NAME <op> QUANTITY` with op one of <=, <, >=, >."""
    m = _CONDITION.match(text or "")
    if not m or (m[2] and not m[3]):
        raise EngineError(f"cannot read the condition '{text}'", None,
                          expected="a yes/no formula such as 'fits', or 'NAME OP QUANTITY' with OP one of "
                                   "<=, <, >=, >, such as 'inter_token_latency <= 30 ms'")
    name, op, qty = m[1], m[2], m[3]
    sizing.known_formula(graph, name)
    f = graph.formulas[name]
    if op is None:
        if f.unit_text not in ("1", ""):
            raise EngineError(f"'{name}' is in {f.unit_text}, not a yes/no figure", None,
                              hint=f"give a bound, e.g. \"{name} <= ...\" or \"{name} >= ...\" with a quantity in "
                                   f"{f.unit_text}")
        return Condition(name, None, None, name, f.unit_text)
    bound = units.parse_quantity(qty, f.unit_text, None, field=f"the bound on {name}")
    return Condition(name, op, bound, f"{name} {op} {qty.strip()}", f.unit_text)


def target_names(graph, name: str) -> tuple[str, str | None, list]:
    """(name shown, scenario key or None, graph inputs the candidate sets) for `--for NAME`."""
    if name in KEYS:
        kind = KEYS[name][0]
        if kind in (str, bool):
            what = "a yes/no switch" if kind is bool else "a choice, not a number"
            raise EngineError(f"--for {name}: {name} is {what}; solve varies a numeric input", None,
                              hint=f"compare the choices with `llm-sizer size --{name.replace('_', '-')} ...`, "
                                   "or solve for tensor_parallel_size, max_model_len, batch_size, ...")
        inputs = [i.name for i in graph.inputs.values() if i.source_path == f"scenario.{name}"] \
            or ([name] if name in graph.inputs else [])
        if not inputs:
            raise EngineError(f"--for {name}: no formula reads {name}", None)
        return name, name, inputs
    if name in graph.inputs:
        src = graph.inputs[name].source_path or ""
        key = src[len("scenario."):] if src.startswith("scenario.") else None
        return target_names(graph, key) if key in KEYS else (name, None, [name])
    if name in graph.formulas:
        raise EngineError(f"--for {name}: '{name}' is a formula, not an input", None,
                          hint=f"solve for an input it is computed from (`llm-sizer explain {name}` shows them)")
    numeric = [k for k, (kind, _) in KEYS.items() if kind not in (str, bool)] + list(graph.inputs)
    close = difflib.get_close_matches(name, numeric, n=1)
    raise EngineError(f"--for {name}: no input named '{name}'", None,
                      hint=f"did you mean '{close[0]}'?" if close else
                      "a numeric scenario key (max_model_len, tensor_parallel_size, batch_size, ...) or an input of "
                      "the formulas")


# -- the search ------------------------------------------------------------------------------

class _Probe:
    """Evaluates the condition for a whole array of candidate values in one call."""

    def __init__(self, g, c, sc, cond: Condition, target: Target, variant):
        from . import scenario as scn

        self.g, self.sc, self.cond, self.target, self.variant = g, sc, cond, target, variant
        self.verdict = (sc.framework.get("memory_model") or {}).get("verdict") or {}
        self.targets = [cond.output]
        names = g.inputs_for(self.targets, variant)
        if not set(target.inputs) & set(names):
            raise EngineError(f"{cond.output} does not depend on {target.name}: no value of it changes the answer",
                              None, hint=f"`llm-sizer explain {cond.output}` shows what it is computed from")
        # every input the framework's formulas read, as `size` binds them (a fixed point may read beyond `names`)
        self.c, self.base = c, scn.bindings(g, c, sc, g.inputs_for(sizing.framework_formulas(g, sc), variant))
        self.every = sizing.framework_formulas(g, sc)    # their rules decide which candidates `size` accepts
        self.calls, self.tried = 0, 0

    def result(self, xs, targets=None):
        """The evaluation at candidates xs (of the condition's output, or of `targets`), rules not enforced."""
        from . import scenario as scn

        missing = [n for n in self.g.inputs_for(targets, self.variant) if n not in self.base] if targets else []
        b = {**self.base, **scn.bindings(self.g, self.c, self.sc, missing)} if missing else dict(self.base)
        for n in self.target.inputs:
            if n in b:
                b[n] = xs
        with np.errstate(all="ignore"):
            return ev.evaluate(self.g, b, targets or self.targets, self.variant, check_requires=False)

    def __call__(self, xs):
        """(valid, meets, output) for each candidate in xs."""
        xs = np.asarray(xs, dtype=float)
        self.calls, self.tried = self.calls + 1, self.tried + xs.size
        result = self.result(xs, self.every)
        ok, _ = ev.requirements_met(result)
        out = np.broadcast_to(np.asarray(result[self.cond.output], dtype=float), xs.shape)
        valid = np.broadcast_to(ok, xs.shape) & np.isfinite(out)
        if self.cond.op is None and not np.all(np.isin(out[valid], (0.0, 1.0))):
            raise EngineError(f"'{self.cond.output}' is not a yes/no figure (it takes values other than 0 and 1)",
                              None, hint=f"give a bound, e.g. \"{self.cond.output} >= ...\"")
        return valid, valid & self.cond.meets(out), out


class _Points:
    """Every candidate tried so far, sorted, with whether it is valid and meets the condition."""

    def __init__(self, target: Target):
        self.target = target
        self.x = np.empty(0)
        self.valid = np.empty(0, bool)
        self.meets = np.empty(0, bool)
        self.out = np.empty(0)

    def add(self, xs, probe):
        xs = np.setdiff1d(np.asarray(xs, dtype=float), self.x)
        if not xs.size:
            return
        valid, meets, out = probe(xs)
        x = np.concatenate([self.x, xs])
        order = np.argsort(x)
        self.x = x[order]
        self.valid = np.concatenate([self.valid, valid])[order]
        self.meets = np.concatenate([self.meets, meets])[order]
        self.out = np.concatenate([self.out, out])[order]

    def bracket(self, direction):
        """(answer, neighbour): the extreme meeting candidate and the next valid one beyond it (None at the
        end of the range)."""
        usable = self.valid & self.target.allowed(self.x)
        xs, meets = self.x[usable], self.meets[usable]
        i = np.flatnonzero(meets)[-1 if direction == "max" else 0]
        j = i + (1 if direction == "max" else -1)
        return float(xs[i]), (float(xs[j]) if 0 <= j < xs.size else None)


def _coarse(target: Target, extra) -> np.ndarray:
    if target.choices is not None:
        return np.asarray(sorted(target.choices), dtype=float)
    lo, hi = target.lo, target.hi
    start = max(lo, 1.0 if target.integer else hi * 1e-9)
    pts = np.geomspace(start, hi, COARSE_POINTS) if hi > 1000 * start else np.linspace(lo, hi, COARSE_POINTS)
    pts = np.concatenate([pts, [lo, hi, target.top], [x for x in extra if lo <= x <= hi]])
    return np.unique(np.round(pts) if target.integer else pts)


def _between(target: Target, a, b, tried) -> np.ndarray:
    """Untried candidates strictly between a and b (b may be an end of the range, then included)."""
    lo, hi = sorted((a, b))
    if target.choices is not None:      # every choice was on the first grid
        return np.empty(0)
    if target.integer:
        first, last = math.floor(lo) + 1, math.ceil(hi) - 1
        if b in (target.lo, target.top) and b not in tried:
            first, last = (first, math.ceil(hi)) if b > a else (math.floor(lo), last)
        n = last - first + 1
        pts = np.arange(first, last + 1, dtype=float) if n <= 2 * REFINE_POINTS else \
            np.unique(np.round(np.linspace(first, last, REFINE_POINTS)))
    else:
        if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
            return np.empty(0)
        pts = np.linspace(lo, hi, REFINE_POINTS // 4)
    return np.setdiff1d(pts, tried)


def _direction(points: _Points, forced, cond: Condition, target: Target) -> tuple[str, str]:
    """'max' when the condition holds below a change and fails above it, 'min' for the reverse."""
    pattern = points.meets[points.valid]
    changes = int(np.count_nonzero(np.diff(pattern.astype(int))))
    over = f"{_show_x(target, target.lo)} to {_show_x(target, points.x[points.valid][-1])}"
    runs = _runs(points.x[points.valid], pattern)
    held = " and ".join(f"{_show_x(target, a)} .. {_show_x(target, b)}" for a, b in runs[:4])
    if forced:
        return forced, f"--{forced} given; of the values tried, it holds on {held}"
    if changes == 0:
        return "min", f"every valid {target.name} tried from {over} meets it: the smallest is given (--max for the largest)"
    if changes == 1:
        if pattern[0]:
            return "max", f"{cond.text} gets harder as {target.name} grows: tried from {over}, it holds below a point and fails above"
        return "min", f"{cond.text} gets easier as {target.name} grows: tried from {over}, it fails below a point and holds above"
    where = f"only on {held}" if len(runs) == 1 else f"on {len(runs)} separate ranges ({held})"
    raise EngineError(f"{cond.text} holds for {target.name} {where} of {over}: neither the largest nor the "
                      "smallest value is implied", None,
                      hint="say which end you want: --max for the largest value that meets it, --min for the smallest")


def _runs(xs, pattern) -> list:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], pattern.astype(int), [0]])))
    return [(xs[s], xs[e - 1]) for s, e in zip(edges[0::2], edges[1::2])]


def _search(probe: _Probe, target: Target, cond: Condition, forced, base_value):
    points = _Points(target)
    points.add(_coarse(target, [base_value]), probe)
    if not np.any(points.meets & target.allowed(points.x)):
        raise _no_solution(probe, points, cond, target)
    direction, note = _direction(points, forced, cond, target)
    for _ in range(MAX_PASSES):
        a, b = points.bracket(direction)
        end = b if b is not None else (target.top if direction == "max" else target.lo)
        inner = _between(target, a, end, points.x) if end != a else np.empty(0)
        if not inner.size:
            break
        points.add(inner, probe)
    return direction, note, points.bracket(direction)


# -- the answer ------------------------------------------------------------------------------

def solve(g, c, scenario_file, options: dict, condition: str, input_name: str, direction: str | None = None,
          variant: str | None = None, symbolic: bool = True) -> Answer:
    """The largest (or smallest) value of `input_name` meeting `condition`, verified forward."""
    cond = parse_condition(g, condition)
    label, key, inputs = target_names(g, input_name)
    options = {k: v for k, v in options.items() if k != key}   # the value given for the input is what is solved
    sc = sizing.scenario_from(c, scenario_file, options)
    if variant and variant not in g.variant_names:
        raise EngineError(f"unknown variant '{variant}'", None, expected=", ".join(g.variant_names))
    if cond.output not in sizing.framework_formulas(g, sc):
        raise EngineError(f"'{cond.output}' is not a figure of {sc.framework.get('name', sc.framework_id)}", None,
                          hint="solve it with --framework vllm")
    target = _target(g, sc, label, key, inputs)
    probe = _Probe(g, c, sc, cond, target, variant)
    base = float(np.asarray(probe.base.get(inputs[0], target.lo)).reshape(-1)[0])
    if target.hi == target.top == PROBE_MAX and base * 16 > PROBE_MAX:   # an input in bytes: probe past its value
        target.hi = target.top = min(base * 16, float(MAX_MAGNITUDE))
        target.top_reason = f"the end of the range searched ({_show_x(target, target.hi)})"
    direction, note, (a, b) = _search(probe, target, cond, direction, base)
    value, neighbour = _rounded(probe, target, direction, a, b)
    answer = Answer(cond, target, value, direction, "bisection", "", direction_note=note, scenario=sc,
                    evaluations=probe.calls, candidates=probe.tried)
    answer.checks = _forward_check(probe, target, cond, value, neighbour, b)
    _explain(answer, g, probe, neighbour, symbolic)
    answer.evaluations, answer.candidates = probe.calls, probe.tried
    return answer


def _target(g, sc, label, key, inputs) -> Target:
    decls = [g.inputs[n] for n in inputs]
    integer = any(d.integer for d in decls) or (key is not None and KEYS[key][0] is int)
    lo = max([d.min for d in decls if d.min is not None], default=1.0 if integer else 0.0)
    maxima = [d.max for d in decls if d.max is not None]
    hi = min(maxima) if maxima else float(PROBE_MAX)
    t = Target(label, key, inputs, integer, decls[0].unit_text, decls[0].doc, float(lo), float(hi), float(hi),
               f"the largest value {inputs[0]} is declared for (max: {format(hi, 'g')})" if maxima else
               f"the end of the range searched ({PROBE_MAX:,})")
    if key == "max_model_len":    # scenario.py refuses more, as vLLM does
        t.top = float(sc.model.arch["max_position_embeddings"])
        t.top_reason = f"{sc.model.id}'s max_position_embeddings: vLLM refuses a longer --max-model-len"
    choices = (sc.framework.get("engine_choices") or {}).get(key)
    if choices:
        t.choices = [float(x) for x in choices]
        t.top = min(t.top, max(t.choices))
        t.top_reason = f"the largest value {sc.framework.get('name')} accepts"
    return t


def _rounded(probe, target, direction, a, b):
    """The answer as the user types it and the next value: integers as they are; fractions rounded to
    FLOAT_DIGITS significant digits toward the side that meets the condition."""
    step = 1.0 if target.integer else 0.0
    if not target.integer and a != 0:
        step = 10.0 ** (math.floor(math.log10(abs(a))) - FLOAT_DIGITS + 1)
        q = a / step
        q = round(q) if abs(q - round(q)) < 1e-9 else q      # 768.0 / 0.1 is 7679.999...: still 768.0
        r = (math.floor(q) if direction == "max" else math.ceil(q)) * step
        r = float(f"{r:.{FLOAT_DIGITS + 2}g}")
        _, meets, _ = probe(np.asarray([r]))
        if target.allowed(np.asarray([r]))[0] and meets[0]:
            a = r
        else:
            step = 0.0
    if target.choices is not None or step == 0.0:     # the next choice, or past the end of the choices
        return a, b if b is not None or target.choices is None else a + (1 if direction == "max" else -1)
    nxt = a + step if direction == "max" else a - step
    nxt = float(f"{nxt:.{FLOAT_DIGITS + 2}g}") if not target.integer else nxt
    return a, nxt


def _forward_check(probe, target, cond, value, neighbour, beyond) -> list:
    """The answer and the values past it, evaluated again: the answer must meet the condition, they must not."""
    xs = list(dict.fromkeys(x for x in (value, neighbour, beyond) if x is not None))
    inside = [x for x in xs if target.lo <= x <= target.hi]
    result = probe.result(np.asarray(inside, dtype=float), probe.every)
    ok, broken = ev.requirements_met(result)
    out = np.broadcast_to(np.asarray(result[cond.output], dtype=float), (len(inside),))
    ok = np.broadcast_to(ok, (len(inside),))
    rows = []
    for x in xs:
        if x not in inside or not target.allowed(np.asarray([x]))[0]:
            rows.append((x, math.nan, False, f"beyond {target.top_reason}" if x > target.top
                         else f"not accepted: {target.name} takes {_choices_text(target)}" if target.choices
                         else f"below the smallest value {target.name} may take"))
            continue
        i = inside.index(x)
        if not ok[i]:
            name, req, _ = next((n, r, m) for n, r, m in broken if not np.asarray(m).reshape(-1)[
                i if np.size(m) > 1 else 0])
            rows.append((x, math.nan, False, f"not allowed: {name} requires {req.text}"))
            continue
        met = bool(cond.meets(out[i]))
        rows.append((x, out[i], met, "meets it" if met else "does not meet it" + _verdict_words(probe, x)))
    if len(rows) == 3 and rows[1][3].startswith("does not meet it"):     # the next value was a candidate: what lies beyond it is not needed
        rows.pop()
    if not rows[0][2]:
        raise RuntimeError(f"solve: the answer {value} does not meet {cond.text} when evaluated forward")
    if any(m for _, _, m, _ in rows[1:]) and not target.choices:
        raise RuntimeError(f"solve: a value past the answer {value} also meets {cond.text}")
    return rows


def _choices_text(target) -> str:
    return ", ".join(_show_x(target, x) for x in target.choices)


# -- why no value meets ---------------------------------------------------------------------------

def _no_solution(probe, points, cond, target) -> NoSolutionError:
    usable = points.valid & target.allowed(points.x)
    over = f"{_show_x(target, target.lo)} to {_show_x(target, target.top)}"
    message = f"no {target.name} from {over} meets {cond.text}"
    if not np.any(usable):
        return NoSolutionError(message + ": every value breaks a rule of the formulas", None,
                               hint=_rule_hint(probe, points.x[:1]))
    xs = points.x[usable]
    gap, gap_unit = _distance(probe, cond, xs)
    if gap is None:
        return NoSolutionError(message, None, hint=f"`llm-sizer explain {cond.output}` shows what it is computed from")
    i = _closest(gap)
    x = xs[i]
    if np.nanmax(gap) - np.nanmin(gap) <= 1e-9 * max(abs(np.nanmax(gap)), 1e-300):
        what = f"{cond.output} = {_show(points.out[usable][i], cond.unit)}" if cond.op is not None else \
            f"short by {_show(gap[i], gap_unit)}" + _verdict_words(probe, x)
        return NoSolutionError(message, None, found=f"at every {target.name} tried: {what}",
                               hint=f"what fails does not change with {target.name}: change another setting "
                                    f"(`llm-sizer explain {cond.output}` shows what it is computed from)")
    found = f"closest tried: {target.name} {_show_x(target, x)}, "
    if cond.op is not None:
        side = "above" if cond.op in ("<=", "<") else "below"
        found += (f"where {cond.output} = {_show(points.out[usable][i], cond.unit)}, "
                  f"{_show(gap[i], gap_unit)} {side} the bound")
    else:
        found += f"short by {_show(gap[i], gap_unit)}" + _verdict_words(probe, x)
    return NoSolutionError(message, None, found=found,
                           hint=f"`llm-sizer size --{target.key.replace('_', '-')} {_typed(target, x)} ...` shows the "
                                "closest deployment in full" if target.key else None)


def _closest(gap) -> int:
    """The candidate nearest to meeting it; among equally near ones, the one furthest in the direction the
    condition gets easier (the longest context that is only as short as the shortest one)."""
    ties = np.flatnonzero(gap <= np.nanmin(gap) * (1 + 1e-12))
    steps = np.diff(gap)
    return int(ties[-1] if np.all(steps >= 0) else ties[0])


def _distance(probe, cond, xs):
    """How far each candidate is from meeting the condition, and its unit; (None, None) when unknown."""
    if cond.op is not None:
        return cond.gap(probe(xs)[2]), cond.unit
    verdict = probe.verdict
    if verdict.get("fits") == cond.output:
        r = probe.result(xs, [verdict["shortfall"]])
        return np.broadcast_to(np.asarray(r[verdict["shortfall"]], dtype=float), xs.shape), \
            r.unit(verdict["shortfall"])
    tree = probe.g.formulas[cond.output].code.tree    # where(a <= b, 1, 0): how far a is on the wrong side of b
    if tree[0] == "pw" and len(tree) == 3 and tree[1][1][0] in ("le", "lt", "ge", "gt") \
            and all(t[0] == "s" for t in tree[1][1][1:]):
        lhs, rhs = tree[1][1][1][1], tree[1][1][2][1]
        r = probe.result(xs, [n for n in (lhs, rhs) if n in probe.g.formulas] or [cond.output])
        diff = np.asarray(r[lhs], dtype=float) - np.asarray(r[rhs], dtype=float)
        diff = diff if tree[1][1][0] in ("le", "lt") else -diff
        return np.broadcast_to(np.maximum(diff, 0.0), xs.shape), r.unit(lhs)
    return None, None


def _verdict_words(probe, x) -> str:
    """The verdict's first failing condition at x, in the words `size` uses."""
    from .render import terminal

    if probe.verdict.get("fits") != probe.cond.output:
        return ""
    result = probe.result(np.asarray(float(x)), sizing.framework_formulas(probe.g, probe.sc))
    failed = terminal.verdict(result, probe.sc)["failed_condition"]
    return f" ({terminal.condition_text(result, probe.sc, failed)})" if failed else ""


def _rule_hint(probe, xs) -> str:
    result = probe.result(xs)
    _, broken = ev.requirements_met(result)
    return f"{broken[0][0]} requires {broken[0][1].text}" if broken else "no candidate could be evaluated"


# -- how the answer was found ---------------------------------------------------------------------

def _explain(answer: Answer, g, probe, neighbour, symbolic: bool):
    cond, target = answer.condition, answer.target
    chain, fixed = _chain(g, cond.output, target.inputs, probe.variant)
    if fixed:    # only a fixed point that is solved at the answer (served load given) stands in the way
        at = probe.result(np.asarray([answer.value]), probe.every)
        fixed = [n for n in fixed if np.any(np.asarray(at[g.inputs[n].fixed_point["when"]]) > 0)]
    answer.expression = f"{cond.output} = {g.code(cond.output, probe.variant).text}"
    solved_numerically = [f"the fixed point {n} (solved numerically)" for n in fixed]
    if cond.op is None:
        blocked = solved_numerically + _blocking(g, chain, target.inputs + fixed, probe.variant)
        answer.reason = (f"{cond.output} is a yes/no figure: it steps between 0 and 1, so there is nothing to invert"
                         + (f" ({', '.join(blocked)} on the way from {target.name})" if blocked else ""))
        return
    if solved_numerically:
        answer.reason = f"not invertible: {', '.join(solved_numerically)} between {target.name} and {cond.output}"
        return
    if not symbolic:
        answer.reason = "bisection asked for"
        return
    solved = _invert(g, probe, cond, target, chain, answer.value, neighbour)
    if isinstance(solved, str):
        answer.reason = solved
        return
    expression, substituted, exact, branches = solved
    answer.method, answer.expression, answer.substituted, answer.exact = "symbolic", expression, substituted, exact
    answer.reason = f"{cond.output} solved for {target.name} with sympy" + (
        f"; {'; '.join(branches)} on both sides of the answer" if branches else "")


def _chain(g, output, inputs, variant) -> tuple[list, list]:
    """The formulas between the input and the output, in evaluation order; and the fixed-point inputs (the
    served load) on the way, which are solved numerically from formulas that depend on the input."""
    fixed_points = {n: g.inputs[n].fixed_point for n in g.inputs_for([output], variant) if g.inputs[n].fixed_point}
    defining = [f for fp in fixed_points.values() for f in fp.values() if f in g.formulas]
    touched, fixed = set(inputs), []
    while True:
        reached, chain = set(touched), []
        for name in g.needed([output, *defining], variant):
            if reached & set(g.deps(name, variant)):
                reached.add(name)
                chain.append(name)
        new = [n for n, fp in fixed_points.items() if n not in touched and reached & set(fp.values())]
        if not new:
            used = set(g.needed([output], variant))
            return [n for n in chain if n in used], fixed
        touched.update(new)
        fixed += new


def _touches(tree, touched) -> bool:
    if tree[0] == "s":
        return tree[1] in touched
    if tree[0] == "n":
        return False
    parts = [p for pair in tree[1:] for p in pair] if tree[0] == "pw" else tree[1:]
    return any(_touches(p, touched) for p in parts)


def _blocking(g, chain, inputs, variant) -> list:
    """'floor in num_gpu_blocks', ...: the steps between the input and the output that no inverse undoes."""
    touched, found = set(inputs) | set(chain), []

    def walk(tree, name):
        if tree[0] in ("s", "n"):
            return
        if tree[0] in BLOCKING and _touches(tree, touched):
            found.append(f"{BLOCKING[tree[0]]} in {name}")
        for p in ([p for pair in tree[1:] for p in pair] if tree[0] == "pw" else tree[1:]):
            walk(p, name)
    for name in chain:
        walk(g.code(name, variant).tree, name)
    return list(dict.fromkeys(found))


def _invert(g, probe, cond, target, chain, value, neighbour):
    """(solved form, with numbers, exact value, branches taken) or why there is none."""
    import sympy

    from . import compiled, printers

    xs = np.asarray([value] + ([neighbour] if neighbour is not None and target.lo <= neighbour <= target.hi
                               else []), dtype=float)
    r = probe.result(xs)
    at = [{n: float(np.asarray(v).reshape(-1)[i if np.size(v) > 1 else 0]) for n, v in r.values.items()}
          for i in range(xs.size)]
    x = sympy.Symbol(target.inputs[0], positive=True)
    touched, exprs, branches, blocked = set(target.inputs) | set(chain), {}, [], []

    def to_sympy(tree, owner):
        """The tree in x, chain formulas expanded where they are reached (only along the active branches)."""
        op = tree[0]
        if op == "n":
            return _number_sympy(sympy, tree[1])
        if op == "s":
            name = tree[1]
            if name in target.inputs:
                return x
            if name in chain and name not in exprs:
                exprs[name] = to_sympy(g.code(name, probe.variant).tree, name)
            return exprs[name] if name in exprs else sympy.Symbol(name, real=True)
        if op in BRANCHING and _touches(tree, touched):
            return to_sympy(_active(tree, owner), owner)
        if op in BLOCKING and _touches(tree, touched):
            blocked.append(f"{BLOCKING[op]} in {owner}")
        if op == "pw":
            return sympy.Piecewise(*[(to_sympy(v, owner), to_sympy(c, owner)) for v, c in tree[1:]])
        args = [to_sympy(t, owner) for t in tree[1:]]
        return _SYMPY_OPS[op](sympy, *args)

    def _active(tree, owner):
        """The branch of a Max, Min or where() that gives its value, the same on both sides of the answer."""
        if tree[0] == "pw":
            picks = {next((i for i, (_, c) in enumerate(tree[1:]) if compiled.build(c)(p)), -1) for p in at}
            options = [pair[0] for pair in tree[1:]]
        else:
            vals = np.array([[compiled.build(t)(p) for t in tree[1:]] for p in at])
            picks = set((np.argmax if tree[0] == "max" else np.argmin)(vals, axis=1).tolist())
            options = tree[1:]
        if len(picks) != 1:
            raise _Switch(f"the {BRANCHING[tree[0]]} in {owner} changes branch at the answer")
        chosen = options[picks.pop()]
        branches.append(f"{BRANCHING[tree[0]]}(...) in {owner} is {printers.text(_plain(sympy, chosen))}")
        return chosen

    try:
        expr = to_sympy(["s", cond.output], cond.output)
    except _Switch as exc:
        return str(exc)
    if blocked:
        return (f"not invertible: {', '.join(dict.fromkeys(blocked))} between {target.name} and {cond.output}"
                + (f" ({'; '.join(branches)} at the answer)" if branches else ""))
    if x not in expr.free_symbols:
        return f"{cond.output} does not vary with {target.name} near the answer"
    bound = sympy.Symbol(cond.output, real=True)
    slope = sympy.diff(expr, x)
    if x not in slope.free_symbols:       # linear in x: x = (bound - the rest) / slope, as a reader would write it
        roots = [(bound - expr.subs(x, 0)) / sympy.factor_terms(slope)]
    elif sympy.count_ops(expr) > MAX_SOLVE_OPS:
        return f"{cond.output} is not linear in {target.name} and too large to invert symbolically"
    else:
        try:
            roots = sympy.solve(sympy.Eq(expr, bound), x)
        except (NotImplementedError, ValueError, TypeError):
            roots = []
    values = {**at[0], cond.output: cond.bound}
    best = None
    for root in roots:
        if not root.free_symbols <= {sympy.Symbol(n, real=True) for n in values}:
            continue
        code = compiled.from_sympy(root, None, excel=False)
        v = complex(code({n: values[n] for n in code.args}))
        if abs(v.imag) < 1e-9 and (best is None or abs(v.real - value) < abs(best[2] - value)):
            best = (code, root, v.real)
    if best is None:
        return f"sympy found no inverse of {cond.output} in {target.name}"
    code, root, exact = best
    substituted = code.substituted(lambda n: ev.format_number(values[n]))
    return f"{target.inputs[0]} = {code.text}", f"{target.inputs[0]} = {substituted}", exact, branches


def _number_sympy(sympy, v):
    """A tree's number as sympy: 1e-06 as the exact 1/1000000 it stands for (a unit conversion), so the
    solved form divides by 1000000 rather than multiplying by 1000000.0."""
    if isinstance(v, bool):
        return sympy.true if v else sympy.false
    return sympy.Integer(v) if float(v).is_integer() else sympy.Rational(repr(float(v)))


class _Switch(Exception):
    """A Max, Min or where() on the chain takes another branch on the other side of the answer."""


def _plain(sympy, tree):
    """A tree as sympy, names kept (for printing a branch)."""
    if tree[0] == "s":
        return sympy.Symbol(tree[1])
    if tree[0] == "n":
        return _number_sympy(sympy, tree[1])
    if tree[0] == "pw":
        return sympy.Piecewise(*[(_plain(sympy, v), _plain(sympy, c)) for v, c in tree[1:]])
    return _SYMPY_OPS[tree[0]](sympy, *[_plain(sympy, t) for t in tree[1:]])


_SYMPY_OPS = {
    "add": lambda s, *a: s.Add(*a), "mul": lambda s, *a: s.Mul(*a), "div": lambda s, a, b: a / b,
    "pow": lambda s, a, b: a ** b, "max": lambda s, *a: s.Max(*a), "min": lambda s, *a: s.Min(*a),
    "mod": lambda s, a, b: s.Mod(a, b), "floor": lambda s, a: s.floor(a), "ceil": lambda s, a: s.ceiling(a),
    "log": lambda s, a: s.log(a), "and": lambda s, *a: s.And(*a), "or": lambda s, *a: s.Or(*a),
    "not": lambda s, a: s.Not(a), "ite": lambda s, c, a, b: s.Piecewise((a, c), (b, True)),
    "eq": lambda s, a, b: s.Eq(a, b), "ne": lambda s, a, b: s.Ne(a, b), "lt": lambda s, a, b: a < b,
    "le": lambda s, a, b: a <= b, "gt": lambda s, a, b: a > b, "ge": lambda s, a, b: a >= b,
}


# -- printing ---------------------------------------------------------------------------------

def _show(value, unit: str, exact: bool = False) -> str:
    """A figure as the terminal shows it: bytes in GiB (to 0.01, or 6 digits where a check compares it
    with a bound), seconds in ms, counts in full."""
    v = float(value)
    if unit == "byte":
        return f"{ev.format_number(v / units.GIB)} GiB" if exact else f"{v / units.GIB:,.2f} GiB"
    if unit == "s":
        return f"{ev.format_number(v * 1e3)} ms"
    return ev.with_unit(v, unit)


def _show_x(target: Target, x) -> str:
    return _show(x, target.unit, exact=True)


def _typed(target: Target, x) -> str:
    return str(int(x)) if float(x).is_integer() else f"{float(x):g}"


def text(answer: Answer) -> str:
    """The answer, how it was found, and its forward check."""
    cond, target, sc = answer.condition, answer.target, answer.scenario
    s = sc.values
    shown = [("tensor_parallel_size", "TP"), ("pipeline_parallel_size", "PP"), ("max_model_len", "max_model_len"),
             ("gpu_memory_utilization", "gpu_memory_utilization")]
    served = [k for k in ("request_rate", "concurrency") if s.get(k)]   # served load replaces the offline batch
    shown += [(k, k) for k in served] or [("batch_size", "batch_size")]
    settings = ", ".join(f"{label}={_typed(target, s[k])}" for k, label in shown if k != target.key and k in s)
    which = "largest" if answer.direction == "max" else "smallest"
    goal = f"{cond.output} = 1" if cond.op is None else cond.text
    lines = [f"Scenario: {sc.model.id} on {sc.gpu_id}, {settings}",
             f"Solve: the {which} {target.name} with {goal}",
             f"  {answer.direction_note}", "",
             f"{target.name} = {_show_x(target, answer.value)}",
             f"  method: {answer.method} - {answer.reason}"]
    if answer.method == "symbolic":
        exact = ev.format_number(answer.exact)
        lines += [f"  {answer.expression}", f"  {answer.substituted}", f"  = {exact}"
                  + (f" -> {_typed(target, answer.value)}, the {which} value that meets it"
                     if float(answer.exact) != answer.value else "")]
    else:
        lines += [f"  {answer.expression}",
                  f"  {answer.candidates:,} candidates in {answer.evaluations} vectorized evaluations, bracketed "
                  "and bisected on the compiled formulas"]
    lines += ["", "Check, evaluated forward:"]
    for x, y, met, note in answer.checks:
        figure = "" if y != y else f"{cond.output} = {_show(y, cond.unit, exact=True)}, "
        lines.append(f"  {target.name} = {_show_x(target, x)}: {figure}{note}")
    return "\n".join(lines)

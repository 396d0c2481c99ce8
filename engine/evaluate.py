"""Evaluate a compiled FormulaGraph on scalars or NumPy arrays; build derivations.

Values are magnitudes in each name's declared unit. Inputs are validated
(`integer`, `min`, `max`) and every `requires` condition is checked element-wise
before a formula's value is trusted.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import units
from .errors import CheckFailure, EngineError, RequirementError, fill, shorten
from .scenario_keys import KEYS
from .graph import FormulaGraph

MAX_SHOWN_VIOLATIONS = 3  # why: a sweep can violate a condition a million times; three examples suffice
BISECTION_STEPS = 48      # why: halves the bracket to 2^-48 of the capacity step, far below any printed digit


@dataclass
class Result:
    """Values of every evaluated name, in its declared unit, plus what produced them."""

    graph: FormulaGraph
    values: dict
    variant: str | None = None
    evaluated: list = field(default_factory=list)

    def __getitem__(self, name):
        return self.values[name]

    def __contains__(self, name):
        return name in self.values

    def unit(self, name) -> str:
        decl = self.graph.formulas.get(name) or self.graph.inputs[name]
        return decl.unit_text

    def derivation(self, name) -> "Derivation":
        return derive(self, name)


def _as_array(value):
    return value if isinstance(value, np.ndarray) else np.asarray(value, dtype=float)


def _describe_values(names, values, mask) -> str:
    idx = np.flatnonzero(~np.asarray(mask, dtype=bool).reshape(-1) if np.ndim(mask) else [~bool(mask)])
    shown = []
    for i in idx[:MAX_SHOWN_VIOLATIONS]:
        parts = []
        for n in names:
            v = np.asarray(values[n]).reshape(-1)
            parts.append(f"{n}={format_number(v[i if v.size > 1 else 0])}")
        shown.append(", ".join(parts) + (f" (scenario #{i})" if np.ndim(mask) else ""))
    more = f" and {len(idx) - MAX_SHOWN_VIOLATIONS} more" if len(idx) > MAX_SHOWN_VIOLATIONS else ""
    return "; ".join(shown) + more


def check_input(graph: FormulaGraph, name: str, value):
    decl = graph.inputs[name]
    arr = _as_array(value)
    problems = []
    if not np.all(np.isfinite(arr)):
        problems.append((np.isfinite(arr), "a finite number"))
    if decl.integer:
        problems.append((np.equal(np.floor(arr), arr), "a whole number"))
    if decl.min is not None:
        problems.append((arr >= decl.min, f"at least {format_number(decl.min)}"))
    if decl.max is not None:
        problems.append((arr <= decl.max, f"at most {format_number(decl.max)}"))
    for ok, expected in problems:
        if not np.all(ok):
            subject, hint = _input_words(decl)
            raise RequirementError(f"{subject} must be {expected}", None,
                                   found=_describe_values([name], {name: arr}, ok).replace(f"{name}=", ""),
                                   expected=f"{decl.doc} ({decl.unit_text}), {expected}", hint=hint)


def _input_words(decl) -> tuple[str, str | None]:
    """An input as the user set it: the option they typed (--tensor-parallel-size), else its name and source."""
    path = decl.source_path or ""
    key = path[len("scenario."):] if path.startswith("scenario.") else None
    if key in KEYS:
        return "--" + key.replace("_", "-"), None
    return f"input '{decl.name}'", (f"set by {path}" if path else None)


def evaluate(graph: FormulaGraph, bindings: dict, targets=None, variant: str | None = None,
             check_requires: bool = True, _inputs_checked: bool = False) -> Result:
    """Evaluate `targets` (default: every formula) from `bindings` (inputs, or formulas to pin)."""
    targets = list(graph.formulas) if targets is None else list(targets)
    pinned = {n for n in bindings if n in graph.formulas}
    values = {}
    # a solved input given a value is not solved: the inputs of its bounds are not needed
    given = {n for n in bindings if n in graph.inputs and graph.inputs[n].fixed_point}
    needed = graph.inputs_for(targets, variant, pinned | given)
    solved = [n for n in needed if n not in bindings and graph.inputs[n].fixed_point]
    for name in needed:
        if name not in bindings and name not in solved:
            decl = graph.inputs[name]
            raise RequirementError(f"missing input '{name}': {decl.doc}", decl.location,
                                   hint=f"it is read from {decl.source_path}" if decl.source_path
                                   else "give it a value in the scenario")
    for name, value in bindings.items():
        if name in graph.inputs:
            if not _inputs_checked:       # a fixed point's bisection re-binds only the solved input
                check_input(graph, name, value)
        elif name not in graph.formulas:
            raise RequirementError(f"unknown name '{name}' in bindings")
        values[name] = np.asarray(value, dtype=float) if isinstance(value, np.ndarray) else float(value)
    order = graph.needed(targets, variant, pinned)
    for name in order:
        for x in [x for x in solved if x not in values and x in graph.deps(name, variant)]:
            # solved when first used, from what is known by then (so earlier rules are reported first)
            values[x] = _fixed_point(graph, x, values, variant, check_requires)
        if check_requires:
            _check_requires(graph, name, values)
        with np.errstate(divide="ignore", invalid="ignore"):
            values[name] = graph.code(name, variant)(values)
    return Result(graph, values, variant, order)


def pin_stand_ins(graph: FormulaGraph, bindings: dict, stand_ins: dict, variant=None) -> dict:
    """`bindings` with each stand-in name pinned to the value of the formula standing in for it."""
    for name, source in stand_ins.items():
        bindings[name] = evaluate(graph, bindings, [source], variant)[source]
    return bindings


def _fixed_point(graph: FormulaGraph, name: str, bindings: dict, variant, check_requires: bool = True):
    """The input value x in [0, below] where formula `of`(x) = x, by vectorized bisection; 0 where `when` is
    not positive. `of` grows more slowly than x there (below is the load's upper bound), so the root is kept
    bracketed: of(x) > x below it, of(x) <= x above it. Without a root the solve ends at `below`."""
    fp = graph.inputs[name].fixed_point
    first = evaluate(graph, bindings, [fp["below"], fp["when"]], variant, check_requires, True)
    below = np.asarray(first[fp["below"]], dtype=float)
    active = (np.asarray(first[fp["when"]]) > 0) & np.isfinite(below)   # a candidate without a bound is not solved
    if not np.any(active):
        return np.zeros(np.shape(active)) if np.ndim(active) else 0.0
    lo, hi = np.zeros(below.shape), np.where(np.isfinite(below), below, 0.0)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        above = np.asarray(evaluate(graph, {**bindings, name: mid}, [fp["of"]], variant, False, True)[fp["of"]]) > mid
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    x = np.where(active, hi, 0.0)
    return x if x.ndim else float(x)


def _check_requires(graph: FormulaGraph, name: str, values: dict):
    for req in graph.formulas[name].requires:
        args, ok = req.code.args, req.code(values)
        if not np.all(ok):
            raise _requirement_error(graph.formulas[name], req, args, values, ok)


def requirements_met(result: Result) -> tuple[np.ndarray, list]:
    """Where every `requires` of the evaluated formulas holds, element-wise, for a result evaluated with
    check_requires=False (a search keeps the candidates that break a rule instead of stopping at them);
    and (formula, requirement, mask) for each requirement broken somewhere."""
    ok, broken = np.asarray(True), []
    for name in result.evaluated:
        for req in result.graph.formulas[name].requires:
            holds = np.asarray(req.code(result.values), dtype=bool)
            if not np.all(holds):
                broken.append((name, req, holds))
            ok = ok & holds
    return ok, broken


def rule_fields(req, scalars: dict, model: str) -> dict:
    """What a rule's message names: the values it reads, as the user types them (--max-num-seqs 1024), and the model."""
    return {**{a: format_number(scalars[a]).replace(",", "") for a in req.code.args}, "model": model}


def _requirement_error(f, req, args, values, ok) -> RequirementError:
    """A violated `requires`: its declared message in the user's words when it has one, else the rule."""
    message = getattr(req, "message", None)
    if not message:
        return RequirementError(f"{f.name} requires {req.text}", req.location,
                                found=_describe_values(args, values, ok),
                                hint=f"{f.doc.rstrip('.')}: change the inputs so that {req.text}")
    first = int(np.flatnonzero(~np.asarray(ok, dtype=bool).reshape(-1))[0]) if np.ndim(ok) else 0
    at = {a: np.asarray(values[a]).reshape(-1)[first if np.size(values[a]) > 1 else 0] for a in args}
    fields = rule_fields(req, at, "the model")       # the CLI names the model (RequirementError.in_scenario)
    err = RequirementError(fill(message, fields), None,
                           found=_describe_values(args, values, ok) if np.ndim(ok) else None,
                           hint=f"the rule: {req.text} ({req.location})")
    err.template, err.fields = message, fields
    return err


def format_number(v) -> str:
    """A number as derivations show it: exact integers in full, others to 6 significant digits."""
    v = float(v)
    if v != v:
        return "nan"
    if v.is_integer() and abs(v) < 1e16:
        return f"{int(v):,}"
    if 1e5 <= abs(v) < 1e16:
        return f"{v:,.0f}"
    return f"{v:,.6g}" if 1e-4 <= abs(v) else f"{v:.6g}"


def with_unit(value, unit: str) -> str:
    return format_number(value) + ("" if unit in ("1", "") else f" {unit}")


@dataclass
class Derivation:
    """One step: a formula's symbolic form, its numbers, its result, and the steps below it."""

    name: str
    doc: str
    unit: str
    symbolic: str
    latex: str
    substituted: str
    value: object
    sources: list
    variant: str | None = None
    inputs: list = field(default_factory=list)       # (name, value, unit, doc, "from <path>" | "a constant" | "given")
    steps: list = field(default_factory=list)        # Derivations of the formulas used


def _first_value(v) -> str:
    v = np.asarray(v)
    return format_number(v.reshape(-1)[0]) if v.size else "?"


def derive(result: Result, name: str, _seen=None) -> Derivation:
    graph = result.graph
    seen = {} if _seen is None else _seen
    f = graph.formulas[name]
    variant = result.variant if result.variant in f.variants else None
    code = graph.code(name, variant)
    sources = list(f.variants[variant].sources or f.sources) if variant else list(f.sources)
    d = Derivation(name, f.variants[variant].doc or f.doc if variant else f.doc, f.unit_text,
                   code.text, code.latex, code.substituted(lambda n: _first_value(result.values[n])),
                   result.values.get(name), sources, variant)
    for dep in graph.deps(name, variant):
        if dep in graph.formulas and dep in result.values and dep not in result.evaluated:
            f_ = graph.formulas[dep]       # pinned (a measurement, a framework's stand-in): given, not derived
            d.inputs.append((dep, result.values[dep], f_.unit_text, f_.doc, "given"))
        elif dep in graph.formulas and dep not in seen and dep in result.values:
            seen[dep] = True
            sub = graph.needed([dep], result.variant)
            if dep in sub:
                d.steps.append(derive(result, dep, seen))
        elif dep in graph.inputs:
            i = graph.inputs[dep]
            origin = f"from {i.source_path}" if i.source_path else "a constant" if i.default is not None \
                else f"solved so that {i.fixed_point['of']} equals it" if i.fixed_point else "given"
            d.inputs.append((dep, result.values.get(dep), i.unit_text, i.doc, origin))
    return d


def run_checks(graph: FormulaGraph) -> list[CheckFailure]:
    """Evaluate every `checks:` worked example; return the failures (empty when all hold)."""
    failures = []
    for ff in graph.files:
        for chk in ff.checks:
            try:
                given = {n: _given_value(graph, n, v, chk) for n, v in chk.given.items()}
                given.update(_defaults(graph, given))
                with np.errstate(over="ignore"):    # an overflow is reported below, as a failed check
                    result = evaluate(graph, given, targets=list(chk.expect), variant=chk.variant)
            except EngineError as exc:
                failures.append(CheckFailure(f"check '{chk.name}' could not be evaluated: {exc.message}",
                                             chk.location, found=exc.found, hint=exc.hint))
                continue
            except ArithmeticError as exc:     # OverflowError, ZeroDivisionError on Python numbers
                failures.append(CheckFailure(f"check '{chk.name}' could not be evaluated: {exc}", chk.location,
                                             hint="give values whose arithmetic stays within floating point"))
                continue
            for n, want in chk.expect.items():
                want_v = _given_value(graph, n, want, chk)
                got = float(np.asarray(result[n]).reshape(-1)[0])
                if not np.isfinite(got):
                    failures.append(CheckFailure(
                        f"check '{chk.name}': {n} is {format_number(got)}, not a finite number", chk.location,
                        expected=format_number(want_v),
                        hint="the arithmetic overflowed or divided by zero: check the formula and the given values"))
                    continue
                if not np.isclose(got, want_v, rtol=chk.tolerance, atol=0 if want_v else 1e-12):
                    failures.append(CheckFailure(
                        f"check '{chk.name}': {n} is {format_number(got)}, expected {format_number(want_v)}",
                        chk.where[f"expect.{n}"], found=with_unit(got, result.unit(n)),
                        expected=f"{with_unit(want_v, result.unit(n))} (relative tolerance {chk.tolerance:g})",
                        hint="fix the formula, or the worked example if it was computed wrongly"))
    return failures


def _defaults(graph, given) -> dict:
    """Inputs with a `default:` (constants such as parameters_per_entry) that a check does not give."""
    return {n: units.parse_quantity(i.default, i.unit_text, i.location, field=n) if isinstance(i.default, str)
            else float(i.default) for n, i in graph.inputs.items() if i.default is not None and n not in given}


def _given_value(graph, name, value, chk):
    decl = graph.formulas.get(name) or graph.inputs[name]
    where = chk.where[f"given.{name}" if name in chk.given else f"expect.{name}"]
    if isinstance(value, str):
        return units.parse_quantity(value, decl.unit_text, where, field=name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckFailure(f"check '{chk.name}': {name} must be a number or a quantity", where,
                           found=shorten(repr(value)))
    if abs(value) > 1e300:     # float() overflows near 1.8e308; arithmetic on it would too
        raise CheckFailure(f"check '{chk.name}': {name} is too large", where, found=shorten(repr(value)),
                           expected="a magnitude below 1e300")
    return float(value)

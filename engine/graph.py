"""The formula graph: every declared input and formula, their dependency order and compiled code.

Formula files are read and compiled by declarations.py (a cold build, with sympy); the
result is cached as JSON keyed by a hash of the formula files and the compiler's own
sources, so a warm start rebuilds the graph from that file without sympy.

The grammar of a formula file is documented in formulas/README.md.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from . import cache, yamlsafe
from .compiled import Code
from .errors import CycleError, EngineError, ErrorList, Location, SchemaError

DEFAULT_TOLERANCE = 1e-9
# the modules whose behaviour is baked into a compiled graph: a change to any rebuilds the cache
COMPILER = ["graph.py", "declarations.py", "expressions.py", "unitcheck.py", "units.py", "units.txt",
            "printers.py", "printers_excel.py", "compiled.py", "yamlsafe.py", "errors.py"]


@dataclass
class Input:
    name: str
    unit_text: str
    doc: str
    location: Location
    source_path: str | None = None      # `from:` dotted path
    integer: bool = False
    min: float | None = None
    max: float | None = None
    symbol: str | None = None
    default: object = None
    sources: list = field(default_factory=list)
    fixed_point: dict | None = None     # {of, below, when}: solved so that formula `of` equals it
    unit: object = None                 # the pint unit, on cold builds only


@dataclass
class Requirement:
    text: str
    code: Code
    location: Location
    names: tuple = ()
    message: str | None = None         # what the user is told, {names} filled with the values


@dataclass
class Variant:
    name: str
    text: str
    code: Code
    doc: str
    sources: list
    location: Location
    deps: tuple = ()


@dataclass
class Formula:
    name: str
    text: str
    unit_text: str
    doc: str
    location: Location
    path: str
    code: Code | None = None
    sources: list = field(default_factory=list)
    requires: list = field(default_factory=list)
    variants: dict = field(default_factory=dict)
    symbol: str | None = None
    deps: tuple = ()
    unit: object = None                 # the pint unit, on cold builds only
    expr: object = None                 # the sympy expression, on cold builds only


@dataclass
class Check:
    name: str
    given: dict
    expect: dict
    variant: str | None
    tolerance: float
    location: Location
    where: dict = field(default_factory=dict)    # name in given:/expect: -> Location of its value


@dataclass
class FormulaFile:
    path: str
    title: str
    sources: list
    inputs: list
    formulas: list
    checks: list


class FormulaGraph:
    """All declared names, their compiled code and dependency order."""

    def __init__(self, files, inputs, formulas):
        self.files: list[FormulaFile] = files
        self.inputs: dict[str, Input] = inputs
        self.formulas: dict[str, Formula] = formulas
        self._orders: dict = {}

    @property
    def variant_names(self) -> list[str]:
        return sorted({v for f in self.formulas.values() for v in f.variants})

    def code(self, name: str, variant: str | None = None) -> Code:
        f = self.formulas[name]
        return f.variants[variant].code if variant in f.variants else f.code

    def deps(self, name: str, variant: str | None = None) -> tuple:
        f = self.formulas[name]
        return f.variants[variant].deps if variant in f.variants else f.deps

    def requirement_names(self, name: str) -> set:
        return {n for r in self.formulas[name].requires for n in r.names}

    def order(self, variant: str | None = None) -> list[str]:
        """Every formula, each after the formulas it uses."""
        if variant not in self._orders:
            self._orders[variant] = _toposort(self, variant)
        return self._orders[variant]

    def needed(self, targets, variant=None, pinned=()) -> list[str]:
        """The formulas to evaluate, in order, to obtain `targets` (pinned ones are given)."""
        want, stack = set(), [t for t in targets if t in self.formulas]
        while stack:
            n = stack.pop()
            if n in want or n in pinned:
                continue
            want.add(n)
            deps = set(self.deps(n, variant)) | self.requirement_names(n)
            stack.extend(d for d in deps if d in self.formulas)
        return [n for n in self.order(variant) if n in want]

    def inputs_for(self, targets, variant=None, pinned=()) -> list[str]:
        names = set()
        for n in self.needed(targets, variant, pinned):
            names |= (set(self.deps(n, variant)) | self.requirement_names(n))
        names |= {t for t in targets if t in self.inputs}
        for n in [n for n in names if n in self.inputs and n not in pinned and self.inputs[n].fixed_point]:
            fp = self.inputs[n].fixed_point      # the solve evaluates its bound and its condition too
            names |= set(self.inputs_for([fp["below"], fp["when"]], variant, {*pinned, n}))
        return sorted(n for n in names if n in self.inputs and n not in pinned)

    # -- the cached form ------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"files": [_dump(f) for f in self.files], "inputs": [_dump(i) for i in self.inputs.values()],
                "formulas": [_dump(f) for f in self.formulas.values()]}

    @classmethod
    def from_json(cls, data: dict) -> "FormulaGraph":
        inputs = {d["name"]: _load(Input, d) for d in data["inputs"]}
        formulas = {d["name"]: _load(Formula, d) for d in data["formulas"]}
        return cls([_load(FormulaFile, f) for f in data["files"]], inputs, formulas)


# -- JSON form of the declarations: Locations as [absolute path, line, col, text], Code as its dict --

_SKIP = {"unit", "expr"}     # pint and sympy objects exist on cold builds only
_NESTED = {"requires": Requirement, "variants": Variant, "checks": Check}


def _dump(obj):
    if isinstance(obj, Location):
        return [_absolute(obj.path), obj.line, obj.col, obj.source_line]
    if isinstance(obj, Code):
        return obj.to_json()
    if dataclasses.is_dataclass(obj):
        return {f.name: _dump(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in _SKIP}
    if isinstance(obj, dict):
        return {str(k): _dump(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_dump(v) for v in obj]
    return obj


def _load(cls, d: dict):
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in _SKIP or f.name not in d:
            continue
        v = d[f.name]
        if f.name == "location":
            v = _location(v)
        elif f.name == "where":
            v = {k: _location(loc) for k, loc in v.items()}
        elif f.name == "code":
            v = Code.from_json(v) if v is not None else None
        elif f.name in ("requires", "checks"):
            v = [_load(_NESTED[f.name], x) for x in v]
        elif f.name == "variants":
            v = {k: _load(Variant, x) for k, x in v.items()}
        elif f.name in ("deps", "names"):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def _absolute(path: str) -> str:
    return str(Path(path).resolve())


def _location(v) -> Location:
    path, line, col, text = v
    return Location(yamlsafe.display_path(path), line, col, text)


# -- loading ----------------------------------------------------------------------

def formula_files(dirs) -> list[Path]:
    out = []
    for d in dirs:
        d = Path(d)
        if d.is_file():
            out.append(d)
        elif d.is_dir():
            out.extend(sorted(p for p in d.glob("*.yaml")))
        else:
            raise SchemaError(f"formula directory not found: {d}", Location(yamlsafe.display_path(d)),
                              hint="pass an existing directory with --formulas or LLM_SIZER_FORMULAS")
    return out


def load(dirs, use_cache: bool = True) -> FormulaGraph:
    """The checked, compiled graph of every formula file: from the cache when nothing changed."""
    files = formula_files(dirs)
    here = Path(__file__).resolve().parent
    name = cache.key("graph", [here / m for m in COMPILER] + files)
    if use_cache and (data := cache.read(name)) is not None:
        try:
            return FormulaGraph.from_json(data)
        except (KeyError, TypeError, ValueError, EngineError):
            pass    # a damaged or foreign file: rebuild it
    from . import declarations

    graph = declarations.build(files)
    if use_cache:
        cache.write(name, graph.to_json())
    return graph


def _edges(graph: FormulaGraph, variant):
    return {n: [d for d in (set(graph.deps(n, variant)) | graph.requirement_names(n)) if d in graph.formulas]
            for n in graph.formulas}


def _toposort(graph: FormulaGraph, variant) -> list[str]:
    edges, order, state = _edges(graph, variant), [], {}

    def visit(n, path):
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycle = path[path.index(n):] + [n]
            f = graph.formulas[cycle[0]]
            raise CycleError(f"formulas depend on themselves: {' -> '.join(cycle)}"
                             + (f" (variant {variant})" if variant else ""), f.location, width=len(f.name),
                             hint="one of these formulas must be computed from inputs without the others")
        state[n] = 1
        for d in sorted(edges[n]):
            visit(d, path + [n])
        state[n] = 2
        order.append(n)

    for n in sorted(graph.formulas):
        visit(n, [])
    return order


def check_cycles(graph: FormulaGraph, errors: ErrorList):
    """The default graph first; a variant's own cycle only when the default has none."""
    for variant in [None, *graph.variant_names]:
        try:
            graph.order(variant)
        except CycleError as exc:
            errors.add(exc)
            if variant is None:
                return

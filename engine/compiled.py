"""The sympy-free form of a formula: a JSON expression tree evaluated with NumPy, and its
printed forms (text, LaTeX, Excel, a template for the numbers substituted).

A cold build turns each unit-checked sympy expression into this form once; the graph
cache stores it, so later commands neither import sympy nor compile anything. Trees
are data: evaluating one walks a fixed table of NumPy operations, nothing is executed.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .errors import EngineError

# A defined name must not read as a cell reference (A1, XFD1048576) or an R1C1 one (R, C, R1C1).
_CELL_LIKE = re.compile(r"^([A-Za-z]{1,3}\d+|[RrCc]\d*|[Rr]\d*[Cc]\d*)$")


class ExcelPrintError(TypeError):
    """An expression construct with no Excel spelling: a bug in the printer, not user input."""


def valid_name(name: str) -> bool:
    return bool(re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", name)) and not _CELL_LIKE.match(name)


SLOT = "\x00"   # brackets a name in a template: "floor(\x00a\x00/\x00b\x00)"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class Code:
    """One expression, compiled: its tree, the names it reads, and how it prints."""

    tree: list
    args: tuple
    text: str
    latex: str = ""
    excel: str | None = None
    template: str = ""

    def __post_init__(self):
        self.fn = build(self.tree)

    def __call__(self, values: dict):
        return self.fn(values)

    def substituted(self, fmt) -> str:
        """The text form with every name replaced by fmt(name)."""
        parts = self.template.split(SLOT)
        return "".join(fmt(p) if i % 2 else p for i, p in enumerate(parts))

    def to_json(self) -> dict:
        return {"tree": self.tree, "args": list(self.args), "text": self.text, "latex": self.latex,
                "excel": self.excel, "template": self.template}

    @classmethod
    def from_json(cls, d: dict) -> "Code":
        return cls(d["tree"], tuple(d["args"]), d["text"], d["latex"], d["excel"], d["template"])


# -- sympy -> tree (cold builds only) --------------------------------------------------------

def from_sympy(expr, latex_symbols: dict | None = None, excel: bool = True) -> Code:
    """Compile a unit-checked sympy expression (or condition)."""
    import sympy

    from . import printers, printers_excel

    args = tuple(sorted(s.name for s in expr.free_symbols))
    try:   # conditions are never cells; a name Excel cannot define leaves the formula without a cell
        excel = printers_excel.excel(expr) if excel and not isinstance(expr, sympy.logic.boolalg.Boolean) else None
    except ExcelPrintError:
        excel = None
    return Code(to_tree(expr), args, printers.text(expr),
                printers.latex(expr, latex_symbols or {}) if latex_symbols is not None else "",
                excel, _template(expr))


def to_tree(expr) -> list:
    import sympy

    if expr is sympy.true or expr is sympy.false:
        return ["n", bool(expr)]
    if expr.is_Symbol:
        return ["s", expr.name]
    if expr.is_Integer:
        return ["n", int(expr)]
    if expr.is_Number:
        return ["n", float(expr)]
    if isinstance(expr, (sympy.Mul, sympy.Pow)):
        num, den = [], []
        for f in sympy.Mul.make_args(expr):   # a/b, not a*b**-1: the rounding of the printed formula
            if f.is_Pow and f.exp.is_Number and f.exp < 0:
                den.append(f.base if f.exp == -1 else f.base ** -f.exp)
            else:
                num.append(f)
        if not den:
            return _product(num) if len(num) > 1 else ["pow", to_tree(expr.base), to_tree(expr.exp)]
        return ["div", _product(num) if num else ["n", 1.0], _product(den)]
    if isinstance(expr, sympy.Piecewise):
        return ["pw", *[[to_tree(v), to_tree(c)] for v, c in expr.args]]
    op = _OP_OF.get(type(expr).__name__)
    if op is None:
        raise TypeError(f"no tree form for {type(expr).__name__}: {expr}")   # a bug, not user input
    return [op, *map(to_tree, expr.args)]


def _product(factors) -> list:
    return to_tree(factors[0]) if len(factors) == 1 else ["mul", *map(to_tree, factors)]


_OP_OF = {"Add": "add", "Pow": "pow", "Max": "max", "Min": "min", "Mod": "mod", "floor": "floor",
          "ceiling": "ceil", "log": "log", "And": "and", "Or": "or", "Not": "not", "ITE": "ite",
          "Equality": "eq", "Unequality": "ne", "StrictLessThan": "lt", "LessThan": "le",
          "StrictGreaterThan": "gt", "GreaterThan": "ge"}


def _template(expr) -> str:
    """The text form with each name bracketed by SLOT, for substituting numbers later."""
    from . import printers

    class Templating(printers.TextPrinter):
        def _print_Symbol(self, expr):
            return f"{SLOT}{expr.name}{SLOT}"
    return Templating().doprint(expr)


# -- tree -> NumPy function --------------------------------------------------------------------

def _fold(f):
    def run(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = f(out, x)
        return out
    return run


def _select(*pairs):
    values, conds = pairs[0::2], pairs[1::2]
    if all(np.ndim(c) == 0 for c in conds):          # scalars: take the first true branch
        return next((v for v, c in zip(values, conds) if c), math.nan)
    shape = np.broadcast_shapes(*(np.shape(x) for x in pairs))
    return np.select([np.broadcast_to(c, shape) for c in conds], [np.broadcast_to(v, shape) for v in values],
                     default=np.nan)


_OPS = {
    "add": _fold(np.add), "mul": _fold(np.multiply), "div": np.divide, "pow": np.power,
    "max": _fold(np.maximum), "min": _fold(np.minimum), "mod": np.mod, "floor": np.floor, "ceil": np.ceil,
    "log": np.log, "and": _fold(np.logical_and), "or": _fold(np.logical_or), "not": np.logical_not,
    "ite": lambda c, a, b: np.where(c, a, b), "eq": np.equal, "ne": np.not_equal, "lt": np.less,
    "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal, "pw": _select,
}


def build(tree):
    """A function of a values dict that evaluates `tree` element-wise (scalars or arrays)."""
    if not isinstance(tree, list) or not tree:
        raise EngineError("the compiled formula cache is damaged", None, hint="it is rebuilt automatically")
    op, rest = tree[0], tree[1:]
    if op == "n":
        value = rest[0]
        return lambda values: value
    if op == "s":
        name = rest[0]
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise EngineError("the compiled formula cache is damaged", None)
        return lambda values: values[name]
    if op == "pw":
        rest = [part for pair in rest for part in pair]
    fn = _OPS.get(op)
    if fn is None:
        raise EngineError(f"the compiled formula cache is damaged (operation {op!r})", None)
    subs = [build(t) for t in rest]
    if len(subs) == 1:
        a, = subs
        return lambda values: fn(a(values))
    if len(subs) == 2:
        a, b = subs
        return lambda values: fn(a(values), b(values))
    return lambda values: fn(*(s(values) for s in subs))

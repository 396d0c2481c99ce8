"""Printers: sympy expressions as text (parseable again), LaTeX, and NumPy code.

Each printer is a sympy printer class with one `_print_<Class>` method per
construct, recursing through `self._print`. The text printer's output is inside
the grammar of `expressions`, so parsing it gives back the same expression.
"""
from __future__ import annotations

import sympy
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

_REL_OPS = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class TextPrinter(StrPrinter):
    """Plain text in the formula grammar: `Max(1, floor(num_kv_heads/tp))`, `a == b and c > 0`."""

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Relational(self, expr):
        op = _REL_OPS[expr.rel_op]
        prec = PRECEDENCE["Relational"]
        return f"{self.parenthesize(expr.lhs, prec + 1)} {op} {self.parenthesize(expr.rhs, prec + 1)}"

    def _bool(self, expr, word):
        parts = []
        for arg in expr.args:
            text = self._print(arg)
            parts.append(f"({text})" if isinstance(arg, (sympy.And, sympy.Or)) else text)
        return f" {word} ".join(parts)

    def _print_And(self, expr):
        return self._bool(expr, "and")

    def _print_Or(self, expr):
        return self._bool(expr, "or")

    def _print_Not(self, expr):
        return f"not ({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr):
        if len(expr.args) == 2 and expr.args[1].cond == sympy.true:
            (value, cond), (other, _) = expr.args
            return f"where({self._print(cond)}, {self._print(value)}, {self._print(other)})"
        return super()._print_Piecewise(expr)

    def _print_ITE(self, expr):
        return "where({}, {}, {})".format(*(self._print(a) for a in expr.args))

    def _print_BooleanTrue(self, expr):
        return "True"

    def _print_BooleanFalse(self, expr):
        return "False"


def text(expr) -> str:
    return TextPrinter().doprint(expr)


def latex(expr, symbols: dict[sympy.Symbol, str]) -> str:
    """LaTeX with every name spelled as declared (`symbol:`) or upright with escaped underscores."""
    names = {s: symbols.get(s) or r"\mathrm{%s}" % s.name.replace("_", r"\_") for s in expr.free_symbols}
    return sympy.latex(expr, symbol_names=names, mul_symbol="dot", ln_notation=True)


class NumpyPrinter(NumPyPrinter):
    """lambdify's NumPy printer with element-wise, broadcasting Max/Min/And/Or."""

    def _nest(self, func, args):
        args = [self._print(a) for a in args]
        out = args[-1]
        for a in reversed(args[:-1]):
            out = f"{self._module_format(func)}({a}, {out})"
        return out

    def _print_Max(self, expr):
        return self._nest("numpy.maximum", expr.args)

    def _print_Min(self, expr):
        return self._nest("numpy.minimum", expr.args)

    def _print_And(self, expr):
        return self._nest("numpy.logical_and", expr.args)

    def _print_Or(self, expr):
        return self._nest("numpy.logical_or", expr.args)


def lambdify(args, expr):
    """sympy's own NumPy function of an expression: the reference compiled trees are tested against."""
    return sympy.lambdify(args, expr, modules="numpy", printer=NumpyPrinter, cse=False, docstring_limit=0)


__all__ = ["TextPrinter", "NumpyPrinter", "text", "latex", "lambdify"]

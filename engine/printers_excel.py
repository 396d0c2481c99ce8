"""Excel formulas from sympy expressions: one `_print_<Class>` per construct, strict.

Excel's precedence differs from Python's (`=-B1^2` is +9, unary minus binds before `^`), so
powers print as POWER(), negations as -(...), and every compound operand is parenthesized.
Anything outside the formula language raises ExcelPrintError instead of printing nonsense.
"""
from __future__ import annotations

import sympy
from sympy.printing.printer import Printer

from .compiled import ExcelPrintError, valid_name

class ExcelPrinter(Printer):
    printmethod = "_excel"

    def __init__(self, names: dict | None = None):
        super().__init__()
        self.names = names or {}

    def emptyPrinter(self, expr):
        raise ExcelPrintError(f"no Excel form for {type(expr).__name__}: {expr}")

    def doprint(self, expr) -> str:
        return "=" + self._print(expr)

    # -- atoms -----------------------------------------------------------------------------
    def _print_Symbol(self, expr):
        name = self.names.get(expr.name, expr.name)
        if not valid_name(name):
            raise ExcelPrintError(f"'{name}' cannot be an Excel defined name")
        return name

    def _print_Integer(self, expr):
        return str(int(expr)) if expr >= 0 else f"(-{-int(expr)})"

    _print_Zero = _print_One = _print_NegativeOne = _print_Integer

    def _print_Rational(self, expr):
        sign = "-" if expr < 0 else ""
        return f"({sign}{abs(expr.p)}/{expr.q})"

    _print_Half = _print_Rational

    def _print_Float(self, expr):
        v = float(expr)
        return repr(v) if v >= 0 else f"(-{repr(-v)})"

    def _print_BooleanTrue(self, expr):
        return "TRUE"

    def _print_BooleanFalse(self, expr):
        return "FALSE"

    # -- arithmetic ------------------------------------------------------------------------
    def _operand(self, expr) -> str:
        text = self._print(expr)
        simple = expr.is_Symbol or (expr.is_Number and expr >= 0) or isinstance(expr, sympy.Function) \
            or expr.is_Pow
        return text if simple else f"({text})"

    def _print_Add(self, expr):
        terms = list(expr.as_ordered_terms())
        out = self._print(terms[0])
        for t in terms[1:]:
            coeff, _ = t.as_coeff_Mul()
            out += f" - {self._operand(-t)}" if coeff < 0 else f" + {self._print(t)}"
        return out

    def _print_Mul(self, expr):
        coeff, _ = expr.as_coeff_Mul()
        if coeff < 0:
            return f"-({self._print(-expr)})"
        num, den = [], []
        for f in sympy.Mul.make_args(expr):
            if f.is_Pow and f.exp.is_Number and f.exp < 0:
                den.append(f.base if f.exp == -1 else f.base ** -f.exp)
            elif f.is_Rational and f.q != 1:
                if f.p != 1:
                    num.append(sympy.Integer(f.p))
                den.append(sympy.Integer(f.q))
            else:
                num.append(f)
        text = "*".join(self._operand(f) for f in num) or "1"
        if den:
            text += "/" + (self._operand(den[0]) if len(den) == 1 else "(" + "*".join(self._operand(d) for d in den) + ")")
        return text

    def _print_Pow(self, expr):
        if expr.exp == -1:
            return f"1/{self._operand(expr.base)}"
        return f"POWER({self._print(expr.base)}, {self._print(expr.exp)})"

    # -- functions -------------------------------------------------------------------------
    def _call(self, name, args):
        return f"{name}({', '.join(self._print(a) for a in args)})"

    def _print_Max(self, expr):
        return self._call("MAX", expr.args)

    def _print_Min(self, expr):
        return self._call("MIN", expr.args)

    def _print_floor(self, expr):
        return self._call("INT", expr.args)          # INT rounds toward -infinity, as floor does

    def _print_ceiling(self, expr):
        return f"(-INT(-({self._print(expr.args[0])})))"

    def _print_Mod(self, expr):
        return self._call("MOD", expr.args)          # Excel's MOD takes the divisor's sign, like sympy's

    def _print_log(self, expr):
        return self._call("LN", expr.args)

    def _print_Piecewise(self, expr):
        *branches, (last, cond) = expr.args
        if cond != sympy.true:
            raise ExcelPrintError("Piecewise without a final True branch")
        out = self._print(last)
        for value, c in reversed(branches):
            out = f"IF({self._print(c)}, {self._print(value)}, {out})"
        return out

    def _print_ITE(self, expr):
        return self._call("IF", expr.args)

    # -- conditions ------------------------------------------------------------------------
    def _rel(self, expr, op):
        return f"({self._print(expr.lhs)}{op}{self._print(expr.rhs)})"

    def _print_Equality(self, expr):
        return self._rel(expr, "=")

    def _print_Unequality(self, expr):
        return self._rel(expr, "<>")

    def _print_StrictLessThan(self, expr):
        return self._rel(expr, "<")

    def _print_LessThan(self, expr):
        return self._rel(expr, "<=")

    def _print_StrictGreaterThan(self, expr):
        return self._rel(expr, ">")

    def _print_GreaterThan(self, expr):
        return self._rel(expr, ">=")

    def _print_And(self, expr):
        return self._call("AND", expr.args)

    def _print_Or(self, expr):
        return self._call("OR", expr.args)

    def _print_Not(self, expr):
        return self._call("NOT", expr.args)


def excel(expr, names: dict | None = None) -> str:
    return ExcelPrinter(names).doprint(expr)

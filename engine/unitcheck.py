"""The unit check of sympy expressions (cold builds only: it imports sympy).

Every symbol's value is a magnitude in its declared unit. When a formula mixes
units of the same dimension (GiB beside byte) the check inserts the conversion
factor into the expression, so evaluators, Excel formulas and derivations all
carry it; when dimensions differ (byte + second) the formula is refused.
"""
from __future__ import annotations

import sympy

from .errors import Location, UnitError
from .units import ANY, BOOLEAN, _dim, describe, registry


def conversion_factor(source, target) -> sympy.Expr:
    """The exact factor turning a magnitude in `source` into one in `target` (same dimension)."""
    ureg = registry()
    f = ureg.Quantity(1, source).to(target).magnitude
    return _exact(f)


def _exact(f: float) -> sympy.Expr:
    if f == 1:
        return sympy.Integer(1)
    if float(f).is_integer():
        return sympy.Integer(int(f))
    inv = 1 / f
    if abs(inv - round(inv)) < 1e-9 * abs(inv):
        return sympy.Rational(1, int(round(inv)))
    return sympy.nsimplify(f, rational=True) if abs(f) > 1e-30 else sympy.Float(f)


class UnitChecker:
    """Infers the unit of a sympy expression, inserting conversion factors where needed."""

    def __init__(self, symbol_units: dict, where: Location | None, what: str):
        self.symbol_units = symbol_units
        self.where = where
        self.what = what
        self.ureg = registry()

    def fail(self, message, found=None, expected=None, hint=None):
        return UnitError(f"{message} in {self.what}", self.where, found=found, expected=expected, hint=hint)

    def same_dim(self, a, b) -> bool:
        return self.ureg.Quantity(1, a).dimensionality == self.ureg.Quantity(1, b).dimensionality

    def convert_to(self, expr, unit, target):
        if unit is ANY or unit == target:
            return expr
        return conversion_factor(unit, target) * expr

    def unify(self, exprs, op: str):
        """Bring several operands to the unit of the first dimensioned one."""
        pairs = [self.infer(e) for e in exprs]
        if any(u is BOOLEAN for _, u in pairs):
            raise self.fail(f"a condition used as a number in {op}")
        target = next((u for _, u in pairs if u is not ANY), ANY)
        out = []
        for (e, u), original in zip(pairs, exprs):
            if u is not ANY and not self.same_dim(u, target):
                a = next(o for (o, uu) in zip(exprs, [p[1] for p in pairs]) if uu == target)
                raise self.fail(
                    f"cannot {op} {describe(target)} and {describe(u)}",
                    found=f"`{sympy.sstr(a)}` in {describe(target)} ({_dim(target)}), "
                          f"`{sympy.sstr(original)}` in {describe(u)} ({_dim(u)})",
                    expected="operands of the same dimension",
                    hint="check the units declared for these names, or convert with a catalog constant")
            out.append(self.convert_to(e, u, target))
        return out, target

    def infer(self, expr):
        """(expression with conversions, unit)."""
        if isinstance(expr, sympy.Symbol):
            return expr, self.symbol_units[expr]
        if expr in (sympy.true, sympy.false):
            return expr, BOOLEAN
        if expr.is_Number:
            return expr, ANY if expr == 0 else self.ureg.dimensionless
        if isinstance(expr, sympy.Add):
            args, unit = self.unify(expr.args, "add")
            return sympy.Add(*args), unit
        if isinstance(expr, (sympy.Max, sympy.Min)):
            args, unit = self.unify(expr.args, "compare")
            return expr.func(*args), unit
        if isinstance(expr, sympy.Mul):
            unit = self.ureg.dimensionless
            args = []
            for a in expr.args:
                e, u = self.infer(a)
                if u is BOOLEAN:
                    raise self.fail("a condition used as a number in a product")
                if u is not ANY:
                    unit = unit * u
                args.append(e)
            return sympy.Mul(*args), unit
        if isinstance(expr, sympy.Pow):
            return self.power(expr)
        if isinstance(expr, (sympy.floor, sympy.ceiling)):
            e, u = self.infer(expr.args[0])
            return expr.func(e), u
        if isinstance(expr, sympy.Mod):
            args, unit = self.unify(expr.args, "take the remainder of")
            return sympy.Mod(*args), unit
        if isinstance(expr, sympy.log):
            e, u = self.infer(expr.args[0])
            if u is not ANY and not u.dimensionless:
                raise self.fail("log of a quantity with a unit", found=describe(u), expected="a dimensionless ratio")
            return sympy.log(self.convert_to(e, u, self.ureg.dimensionless)), self.ureg.dimensionless
        if isinstance(expr, sympy.Piecewise):
            values, unit = self.unify([c.expr for c in expr.args], "choose between")
            conds = [self.condition(c.cond) for c in expr.args]
            return sympy.Piecewise(*zip(values, conds)), unit
        if isinstance(expr, (sympy.Rel, sympy.And, sympy.Or, sympy.Not)):
            return self.condition(expr), BOOLEAN
        raise self.fail(f"unsupported construct {type(expr).__name__}")  # pragma: no cover

    def power(self, expr):
        base, bu = self.infer(expr.base)
        exp, eu = self.infer(expr.exp)
        if eu is BOOLEAN or bu is BOOLEAN:
            raise self.fail("a condition used in a power")
        if eu is not ANY and not eu.dimensionless:
            raise self.fail("an exponent with a unit", found=describe(eu), expected="a dimensionless exponent")
        if bu is ANY or bu.dimensionless:
            base = self.convert_to(base, bu, self.ureg.dimensionless) if bu is not ANY else base
            return base ** exp, self.ureg.dimensionless if bu is not ANY else ANY
        if not exp.is_Number:
            raise self.fail(f"a quantity in {describe(bu)} raised to a symbolic power",
                            hint="only dimensionless bases take a symbolic exponent")
        return base ** exp, bu ** float(exp)

    def condition(self, expr):
        if expr in (sympy.true, sympy.false):
            return expr
        if isinstance(expr, (sympy.And, sympy.Or)):
            return expr.func(*[self.condition(a) for a in expr.args])
        if isinstance(expr, sympy.Not):
            return sympy.Not(self.condition(expr.args[0]))
        if isinstance(expr, sympy.Rel):
            (lhs, rhs), _ = self.unify([expr.lhs, expr.rhs], "compare")
            return expr.func(lhs, rhs)
        e, u = self.infer(expr)
        if u is not BOOLEAN:
            raise self.fail("a number used as a condition", found=sympy.sstr(expr),
                            hint="compare it: x > 0, x == 1, ...")
        return e


def check(expr, symbol_units: dict, declared, where: Location | None, what: str):
    """The expression converted to `declared`, or a UnitError naming both units."""
    checker = UnitChecker(symbol_units, where, what)
    converted, unit = checker.infer(expr)
    if unit is BOOLEAN:
        raise checker.fail("a condition where a number was expected")
    if unit is ANY:
        return converted
    if not checker.same_dim(unit, declared):
        raise UnitError(f"{what} is declared in {describe(declared)} but its expression is in {describe(unit)}",
                        where, found=f"{describe(unit)} ({_dim(unit)})",
                        expected=f"{describe(declared)} ({_dim(declared)})",
                        hint="fix the declared unit: or the expression")
    return checker.convert_to(converted, unit, declared)


def check_condition(expr, symbol_units: dict, where: Location | None, what: str):
    return UnitChecker(symbol_units, where, what).condition(expr)

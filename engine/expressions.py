"""Safe expressions: Python's `ast` walked against a whitelist, translated to sympy by us.

sympy has no safe parser (`sympify` and `parse_expr` both call `eval`), so text
from a file never reaches them. Grammar, in full:

    numbers            1  0.9  2.5e-3            (int, float; no complex, no strings)
    names              declared inputs and formulas only (never auto-created)
    arithmetic         a + b   a - b   a * b   a / b   -a   +a
    integer division   a // b          -> floor(a / b)
    remainder          a % b           -> Mod(a, b)
    power              a ** n          (n a literal with |n| <= MAX_EXPONENT, or a dimensionless name)
    functions          Max Min floor ceiling log Mod Piecewise where
    conditions         ==  !=  <  <=  >  >=  and  or  not  True  False
    Piecewise((value, condition), ..., (value, True));  where(condition, if_true, if_false)
    calls              f(a, b) of a function a formula file declares under functions: - its body with
                       its parameters replaced by the arguments (expanded here, so the result is one
                       sympy expression like any other; a function may call others, never itself)

Everything else (attributes, subscripts, imports, lambdas, comprehensions,
keyword arguments, strings, non-ASCII text) is refused with its column.
"""
from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass
from typing import Mapping

import sympy

from .errors import ExpressionError, Location

# Named limits, with why.
MAX_LENGTH = 2000      # ast.parse on huge text is slow and can crash; no real formula is near this
MAX_NODES = 400        # bounds the sympy work one expression can cause
MAX_EXPONENT = 16      # a literal power beyond this is a typo, and 10**10**10 would hang sympy
MAX_INT_DIGITS = 30    # larger literals belong in a catalog with a unit
MAX_DEPTH = 40         # parentheses nested deeper than this are machine-made; Python's parser stops near 200

FUNCTIONS = ("Max", "Min", "floor", "ceiling", "log", "Mod", "Piecewise", "where")
_CONSTANTS = {"True": sympy.true, "False": sympy.false}

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: sympy.floor(a / b),
    ast.Mod: lambda a, b: sympy.Mod(a, b),
}
_COMPARE = {
    ast.Eq: sympy.Eq, ast.NotEq: sympy.Ne, ast.Lt: sympy.Lt,
    ast.LtE: sympy.Le, ast.Gt: sympy.Gt, ast.GtE: sympy.Ge,
}
_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call,
    ast.Name, ast.Load, ast.Constant, ast.Tuple,
    ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
)
_NODE_WORDS = {
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambda",
    ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions", ast.IfExp: "'x if c else y' (use where(c, x, y))",
    ast.List: "lists", ast.Dict: "dicts", ast.Set: "sets", ast.Starred: "starred arguments",
    ast.JoinedStr: "f-strings", ast.NamedExpr: "assignment", ast.Await: "await",
}


@dataclass(frozen=True)
class Function:
    """A formula file's named expression with parameters (functions:), expanded where it is called."""
    params: tuple
    text: str
    where: Location | None = None
    offset: int = 0


class _Translator:
    def __init__(self, text: str, names: Mapping[str, sympy.Basic], where: Location | None, offset: int,
                 functions: Mapping[str, Function] = {}, calling: tuple = ()):
        self.text = text
        self.names = names
        self.where = where
        self.offset = offset
        self.functions = functions
        self.calling = calling      # the functions being expanded, outermost first: a call back into one is refused

    def error(self, message: str, node: ast.AST | None = None, *, hint=None, found=None, expected=None,
              col: int | None = None, width: int | None = None) -> ExpressionError:
        if node is not None and hasattr(node, "col_offset"):
            col = node.col_offset
            end = getattr(node, "end_col_offset", None)
            width = width or ((end - col) if end and getattr(node, "end_lineno", 1) == node.lineno else 1)
        loc = None
        if self.where is not None:
            loc = self.where.shifted(self.offset + (col or 0))
            # point into the text itself when the YAML line does not hold it (block scalars)
            if loc.source_line is None or self.text not in loc.source_line:
                loc = Location(loc.path, loc.line, loc.col, None)
        return ExpressionError(message, loc, hint=hint, found=found, expected=expected, width=width or 1)

    # -- entry ---------------------------------------------------------------
    def parse(self) -> sympy.Basic:
        text = self.text
        if not isinstance(text, str):
            raise self.error("an expression must be text", found=repr(text))
        if len(text) > MAX_LENGTH:
            raise self.error(f"expression is {len(text)} characters long, over the limit of {MAX_LENGTH}")
        for i, ch in enumerate(text):
            if not ch.isascii() or (not ch.isprintable() and ch not in " \t\n"):
                raise self.error(f"character {ch!r} is not allowed in an expression", col=i,
                                 hint="expressions are plain ASCII: names, numbers and operators")
        if not text.strip():
            raise self.error("empty expression")
        depth = 0
        for i, ch in enumerate(text):
            depth += (ch == "(") - (ch == ")")
            if depth > MAX_DEPTH:
                raise self.error(f"parentheses nested more than {MAX_DEPTH} deep", col=i,
                                 hint="split it into named intermediate formulas")
        try:
            tree = ast.parse(text.strip().replace("\n", " "), mode="eval")
        except SyntaxError as exc:
            col = (exc.offset or 1) - 1 + (len(text) - len(text.lstrip()))
            raise self.error(f"invalid syntax: {exc.msg}", col=col) from None
        except (RecursionError, MemoryError, ValueError):
            raise self.error("expression is nested too deeply") from None
        count = 0
        for node in ast.walk(tree):
            count += 1
            if not isinstance(node, _ALLOWED_NODES):
                word = _NODE_WORDS.get(type(node), type(node).__name__)
                raise self.error(f"{word} not allowed in an expression", node)
        if count > MAX_NODES:
            raise self.error(f"expression has {count} parts, over the limit of {MAX_NODES}",
                             hint="split it into named intermediate formulas")
        try:
            expr = self.visit(tree.body)
        except RecursionError:
            raise self.error("expression is nested too deeply") from None
        except ExpressionError:
            raise
        except (TypeError, ValueError) as exc:   # sympy refusing a construct, e.g. Max of a condition
            raise self.error(f"not a valid expression: {exc}") from None
        if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise self.error("expression is infinite or undefined (a division by zero?)")
        self.check_limits(expr)
        return expr

    def check_limits(self, expr):
        """The limits hold for the expression as sympy built it too: ((a*a)**3)**3 folds to a**18."""
        for node in sympy.preorder_traversal(expr):
            if node.is_Pow and node.exp.is_Number and abs(node.exp) > MAX_EXPONENT:
                raise self.error(f"power {sympy.sstr(node)} has an exponent over the limit of {MAX_EXPONENT}")
            if node.is_Rational and max(len(str(abs(node.p))), len(str(node.q))) > MAX_INT_DIGITS:
                raise self.error(f"a number of more than {MAX_INT_DIGITS} digits results")

    # -- nodes ---------------------------------------------------------------
    def visit(self, node: ast.AST):
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise self.error(f"{type(node).__name__} not allowed here", node)
        return method(node)

    def visit_Constant(self, node: ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return sympy.true if value else sympy.false
        if isinstance(value, int):
            if len(str(abs(value))) > MAX_INT_DIGITS:
                raise self.error(f"number has more than {MAX_INT_DIGITS} digits", node)
            return sympy.Integer(value)
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise self.error("number is not finite", node)
            return sympy.Float(value)  # exactly the double, at its 53-bit precision
        raise self.error(f"{type(value).__name__} constants not allowed; only numbers", node,
                         found=repr(value)[:40])

    def visit_Name(self, node: ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if node.id in self.names:
            return self.names[node.id]
        if node.id in FUNCTIONS or node.id in self.functions:
            raise self.error(f"function '{node.id}' used without calling it", node)
        close = difflib.get_close_matches(node.id, list(self.names), n=1, cutoff=0.75)
        hint = f"did you mean '{close[0]}'?" if close else "declare it under inputs: or formulas:" + (
            f", or add it to {self.calling[-1]}'s params:" if self.calling else "")
        raise self.error(f"unknown name '{node.id}'", node, hint=hint)

    def visit_BinOp(self, node: ast.BinOp):
        if isinstance(node.op, ast.Pow):
            return self.power(node)
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.error(f"operator {type(node.op).__name__} not allowed", node,
                             expected="+ - * / // % **")
        left, right = self.visit(node.left), self.visit(node.right)
        if right == 0 and isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):
            raise self.error("division by zero", node.right)
        return op(left, right)

    def power(self, node: ast.BinOp):
        base = self.visit(node.left)
        exp_node = node.right
        negative = isinstance(exp_node, ast.UnaryOp) and isinstance(exp_node.op, ast.USub)
        literal = exp_node.operand if negative else exp_node
        if isinstance(literal, ast.Constant) and isinstance(literal.value, (int, float)) \
                and not isinstance(literal.value, bool):
            if abs(literal.value) > MAX_EXPONENT:
                raise self.error(f"exponent {literal.value} is over the limit of {MAX_EXPONENT}", exp_node)
            exponent = self.visit(literal)
            return base ** (-exponent if negative else exponent)
        exponent = self.visit(exp_node)
        if exponent.is_number:
            raise self.error("an exponent must be a plain number or a name", exp_node)
        return base ** exponent

    def visit_UnaryOp(self, node: ast.UnaryOp):
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.Not):
            return sympy.Not(operand)
        raise self.error("operator ~ not allowed", node)

    def visit_BoolOp(self, node: ast.BoolOp):
        values = [self.visit(v) for v in node.values]
        return sympy.And(*values) if isinstance(node.op, ast.And) else sympy.Or(*values)

    def visit_Compare(self, node: ast.Compare):
        terms = [self.visit(node.left)] + [self.visit(c) for c in node.comparators]
        parts = [_COMPARE[type(op)](a, b) for op, a, b in zip(node.ops, terms, terms[1:])]
        return parts[0] if len(parts) == 1 else sympy.And(*parts)

    def visit_Tuple(self, node: ast.Tuple):
        raise self.error("a tuple is allowed only as a Piecewise((value, condition), ...) branch", node)

    def visit_Call(self, node: ast.Call):
        known = [*FUNCTIONS, *self.functions]
        if not isinstance(node.func, ast.Name) or node.func.id not in known:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            close = difflib.get_close_matches(name, known, n=1)
            raise self.error(f"call to '{name}' not allowed", node.func,
                             expected=", ".join(known),
                             hint=f"did you mean '{close[0]}'?" if close else None)
        if node.keywords:
            raise self.error("keyword arguments not allowed", node.keywords[0].value)
        name, args = node.func.id, node.args
        if name in self.functions:
            return self.expand(name, node)
        if name == "Piecewise":
            return self.piecewise(node)
        values = [self.visit(a) for a in args]
        arity = {"floor": (1, 1), "ceiling": (1, 1), "log": (1, 2), "Mod": (2, 2), "where": (3, 3),
                 "Max": (2, 32), "Min": (2, 32)}[name]
        if not arity[0] <= len(values) <= arity[1]:
            want = str(arity[0]) if arity[0] == arity[1] else f"{arity[0]} to {arity[1]}"
            raise self.error(f"{name} takes {want} arguments, got {len(values)}", node)
        if name == "where":
            cond, yes, no = values
            if _is_condition(yes) and _is_condition(no):
                return sympy.ITE(cond, yes, no)   # a choice between conditions is itself a condition
            return sympy.Piecewise((yes, cond), (no, True))
        return getattr(sympy, name)(*values)

    def expand(self, name: str, node: ast.Call):
        """A declared function's body over the call's arguments."""
        fn = self.functions[name]
        if name in self.calling:
            raise self.error(f"function '{name}' calls itself: {' -> '.join(self.calling + (name,))}", node.func)
        if len(node.args) != len(fn.params):
            raise self.error(f"{name} takes {len(fn.params)} arguments ({', '.join(fn.params)}), got {len(node.args)}",
                             node)
        values = [self.visit(a) for a in node.args]
        return _Translator(fn.text, {**self.names, **dict(zip(fn.params, values))}, fn.where, fn.offset,
                           self.functions, self.calling + (name,)).parse()

    def piecewise(self, node: ast.Call):
        branches = []
        for arg in node.args:
            if not isinstance(arg, ast.Tuple) or len(arg.elts) != 2:
                raise self.error("each Piecewise branch is (value, condition)", arg)
            branches.append((self.visit(arg.elts[0]), self.visit(arg.elts[1])))
        if not branches or branches[-1][1] is not sympy.true:
            raise self.error("Piecewise needs a last branch (value, True)", node,
                             hint="without it some inputs would have no value")
        return sympy.Piecewise(*branches)


def _is_condition(x) -> bool:
    from sympy.logic.boolalg import BooleanAtom, BooleanFunction

    return isinstance(x, (sympy.core.relational.Relational, BooleanFunction, BooleanAtom))


def parse(text: str, names: Mapping[str, sympy.Basic], where: Location | None = None,
          offset: int = 0, functions: Mapping[str, Function] = {}) -> sympy.Basic:
    """Translate expression text into a sympy expression over the given names, expanding calls of `functions`.

    `where` locates the text in its file; `offset` is how many characters (quotes)
    precede it on that line. Raises ExpressionError pointing at the offending column.
    """
    return _Translator(text, names, where, offset, functions).parse()

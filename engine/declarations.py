"""Formula files -> a FormulaGraph (the cold build): declarations checked, expressions parsed
safely and unit-checked, cycles refused, each expression compiled to its sympy-free Code.

This is the only place formulas meet sympy; graph.py caches what it returns.
"""
from __future__ import annotations

import keyword
import re

import sympy

from . import compiled, expressions, unitcheck, units, yamlsafe
from .errors import EngineError, ErrorList, Location, SchemaError, shorten
from .graph import (DEFAULT_TOLERANCE, Check, FormulaFile, FormulaGraph, Formula, Input, Requirement, Variant,
                    check_cycles)
from .yamlsafe import YDict, YList

SCHEMA_VERSION = 1
FILE_KEYS = {"schema", "title", "doc", "sources", "inputs", "functions", "formulas", "checks"}
FUNCTION_KEYS = {"doc", "params", "expr", "sources"}
INPUT_KEYS = {"unit", "doc", "from", "integer", "min", "max", "symbol", "default", "sources", "fixed_point"}
FIXED_POINT_KEYS = ("of", "below", "when")
FORMULA_KEYS = {"doc", "expr", "unit", "sources", "requires", "variants", "symbol"}
REQUIRES_KEYS = {"when", "message"}
MESSAGE_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")   # {name} in a requires message
VARIANT_KEYS = {"expr", "doc", "sources"}
CHECK_KEYS = {"name", "given", "expect", "variant", "tolerance", "source"}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED = set(expressions.FUNCTIONS) | {"True", "False"} | set(keyword.kwlist)


def build(paths) -> FormulaGraph:
    """Load, check and compile formula files; all problems are reported together."""
    errors = ErrorList()
    docs = []
    for path in paths:
        try:
            docs.append(yamlsafe.load(path))
        except EngineError as exc:
            errors.add(exc)
    decls = _Declarations(errors)
    for doc in docs:
        decls.read_file(doc)
    graph = decls.build()
    if not errors.errors:
        check_cycles(graph, errors)
    if not errors.errors:
        check_fixed_points(graph, errors)
    errors.raise_if_any()
    return graph


def _symbol(name: str, decl) -> sympy.Symbol:
    assumptions = {"real": True}
    if decl is not None:
        if decl.integer:
            assumptions["integer"] = True
        if decl.min is not None and decl.min > 0:
            assumptions["positive"] = True
        elif decl.min is not None and decl.min >= 0:
            assumptions["nonnegative"] = True
    return sympy.Symbol(name, **assumptions)


class _Declarations:
    """First pass: names and units; second pass: expressions against the full name table."""

    def __init__(self, errors: ErrorList):
        self.errors = errors
        self.files: list[FormulaFile] = []
        self.inputs: dict[str, Input] = {}
        self.formula_nodes: dict[str, tuple[YDict, str]] = {}
        self.declared_at: dict[str, Location] = {}
        self.check_nodes: list[tuple[FormulaFile, YList]] = []
        self.function_nodes: dict[str, YDict] = {}
        self.functions: dict[str, expressions.Function] = {}

    def fail(self, exc: EngineError):
        self.errors.add(exc)

    # pass 1 -----------------------------------------------------------------------
    def read_file(self, doc):
        path = doc.source.path if isinstance(doc, (YDict, YList)) else "<unknown>"
        if not isinstance(doc, YDict):
            self.fail(SchemaError("a formula file must be a mapping with schema:, title:, inputs:, formulas:",
                                  Location(path)))
            return
        _known_keys(doc, FILE_KEYS, "formula file", self.fail)
        if doc.get("schema") != SCHEMA_VERSION:
            self.fail(SchemaError(f"schema must be {SCHEMA_VERSION}", doc.where("schema"),
                                  found=repr(doc.get("schema")), hint=f"add 'schema: {SCHEMA_VERSION}' at the top"))
        title = doc.get("title")
        if not isinstance(title, str) or not title:
            self.fail(SchemaError("missing title", doc.where("title"), hint="add a one-line 'title:'"))
        ff = FormulaFile(path, title or "", list(doc.get("sources") or []), [], [], [])
        self.files.append(ff)
        for key, into in (("inputs", ff.inputs), ("functions", []), ("formulas", ff.formulas)):
            block = doc.get(key)
            if block is None:
                continue
            if not isinstance(block, YDict):
                self.fail(SchemaError(f"{key}: must be a mapping of names", doc.where(key)))
                continue
            for name, node in block.items():
                if self.declare(name, block, key):
                    into.append(name)
                    if key == "inputs":
                        self.read_input(name, node, block)
                    elif key == "functions":
                        self.function_nodes[name] = node
                    else:
                        self.formula_nodes[name] = (node, path)
        if doc.get("checks") is not None:
            if isinstance(doc["checks"], YList):
                self.check_nodes.append((ff, doc["checks"]))
            else:
                self.fail(SchemaError("checks: must be a list of worked examples", doc.where("checks")))

    def declare(self, name, block: YDict, key: str) -> bool:
        where = block.where(name, of_key=True)
        where = Location(where.path, where.line, where.col, where.source_line)
        if not isinstance(name, str) or not NAME_RE.match(name) or name in RESERVED:
            self.fail(SchemaError(f"invalid name '{name}'", where, width=len(str(name)),
                                  expected="snake_case starting with a letter, not a function or keyword name"))
            return False
        if name in self.declared_at:
            first = self.declared_at[name]
            self.fail(SchemaError(f"'{name}' is declared twice", where, width=len(name),
                                  hint=f"names are global across formula files; first declared at {first}"))
            return False
        self.declared_at[name] = where
        return True

    def read_input(self, name, node, block):
        where = block.where(name)
        if not isinstance(node, YDict):
            self.fail(SchemaError(f"input '{name}' must be a mapping such as "
                                  "{unit: byte, doc: ..., from: model.x}", where))
            return
        _known_keys(node, INPUT_KEYS, f"input '{name}'", self.fail)
        unit_text = self.required_text(node, "unit", f"inputs.{name}")
        doc = self.required_text(node, "doc", f"inputs.{name}")
        try:
            unit = units.parse_unit(unit_text, node.where("unit")) if unit_text is not None else None
        except EngineError as exc:
            self.fail(exc)
            unit = None
        bounds = {}
        for key in ("min", "max"):
            v = node.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                self.fail(SchemaError(f"inputs.{name}.{key} must be a number", node.where(key), found=repr(v)))
                v = None
            bounds[key] = v
        integer = node.get("integer", False)
        if not isinstance(integer, bool):
            self.fail(SchemaError(f"inputs.{name}.integer must be true or false", node.where("integer"),
                                  found=repr(integer)))
            integer = False
        src = node.get("from")
        if src is not None and (not isinstance(src, str) or not re.match(r"^[a-z_]+(\.[A-Za-z0-9_]+)+$", src)):
            self.fail(SchemaError(f"inputs.{name}.from must be a dotted path", node.where("from"), found=repr(src),
                                  expected="model.num_hidden_layers, gpu.memory_total_runtime, scenario.block_size, ..."))
            src = None
        if unit is not None and doc is not None:
            self.inputs[name] = Input(name, str(unit_text), doc, block.where(name, of_key=True), src,
                                      integer, bounds["min"], bounds["max"], node.get("symbol"),
                                      node.get("default"), list(node.get("sources") or []),
                                      self.read_fixed_point(name, node), unit=unit)

    def read_fixed_point(self, name, node) -> dict | None:
        spec = node.get("fixed_point")
        if spec is None:
            return None
        if not isinstance(spec, dict) or set(spec) != set(FIXED_POINT_KEYS) \
                or not all(isinstance(spec[k], str) for k in FIXED_POINT_KEYS):
            self.fail(SchemaError(f"inputs.{name}.fixed_point must name three formulas or inputs", node.where("fixed_point"),
                                  found=repr(spec), expected="{of: FORMULA, below: FORMULA, when: NAME}",
                                  hint="`of` is the formula that must equal the input, `below` an upper bound that "
                                       "does not use it, `when` the name whose positive values ask for the solve"))
            return None
        return {k: spec[k] for k in FIXED_POINT_KEYS}

    def required_text(self, node: YDict, key: str, what: str):
        value = node.get(key)
        if value is None:
            self.fail(SchemaError(f"{what} is missing '{key}'", node.where(), hint=f"add '{key}:'"))
            return None
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            self.fail(SchemaError(f"{what}.{key} must be text", node.where(key), found=repr(value)))
            return None
        return str(value)

    def read_function(self, name, node) -> expressions.Function | None:
        """functions.NAME: {doc, params: [a, b], expr}: parameters are fresh names, never declared ones, so a
        body reads plainly."""
        what = f"functions.{name}"
        if not isinstance(node, YDict):
            self.fail(SchemaError(f"function '{name}' must be a mapping with doc:, params:, expr:", self.declared_at[name]))
            return None
        _known_keys(node, FUNCTION_KEYS, f"function '{name}'", self.fail)
        doc, text = self.required_text(node, "doc", what), self.required_text(node, "expr", what)
        params = node.get("params")
        if not isinstance(params, list) or not params or len(set(map(str, params))) != len(params) or not all(
                isinstance(p, str) and NAME_RE.match(p) and p not in RESERVED and p not in self.declared_at
                for p in params):
            self.fail(SchemaError(f"{what}.params must list distinct new names", node.where("params"),
                                  found=shorten(repr(params)), hint="snake_case names that no input, formula or "
                                                                    "function already uses"))
            return None
        if doc is None or text is None:
            return None
        where, offset = node.expr_location("expr")
        return expressions.Function(tuple(params), text, where, offset)

    def check_function(self, name):
        """The body alone, its parameters as plain symbols: unknown names, syntax and self-calls now; units
        where it is called."""
        fn = self.functions[name]
        try:
            expressions.parse(f"{name}({', '.join(fn.params)})", {**self.symbols, **{p: sympy.Symbol(p) for p in fn.params}},
                              None, 0, self.functions)
        except EngineError as exc:
            self.fail(exc)

    # pass 2 -----------------------------------------------------------------------
    def build(self) -> FormulaGraph:
        formulas = {}
        for name, (node, path) in self.formula_nodes.items():
            f = self.read_formula(name, node, path)
            if f is not None:
                formulas[name] = f
        graph = FormulaGraph(self.files, self.inputs, formulas)
        if self.errors.errors:
            return graph
        decls = {**self.inputs, **formulas}
        self.symbols = {n: _symbol(n, self.inputs.get(n)) for n in decls}
        self.symbol_units = {self.symbols[n]: d.unit for n, d in decls.items()}
        self.latex_names = {self.symbols[n]: d.symbol for n, d in decls.items()}
        for name, node in self.function_nodes.items():
            fn = self.read_function(name, node)
            if fn is not None:
                self.functions[name] = fn
        for name in self.functions:
            self.check_function(name)
        for f in formulas.values():
            self.compile_formula(graph, f)
        for ff, checks in self.check_nodes:
            ff.checks.extend(self.read_checks(graph, checks))
        return graph

    def read_formula(self, name, node, path):
        if not isinstance(node, YDict):
            self.fail(SchemaError(f"formula '{name}' must be a mapping with doc:, expr:, unit:",
                                  self.declared_at[name]))
            return None
        _known_keys(node, FORMULA_KEYS, f"formula '{name}'", self.fail)
        texts = [self.required_text(node, k, f"formulas.{name}") for k in ("doc", "expr", "unit")]
        if None in texts:
            return None
        doc, text, unit_text = texts
        try:
            unit = units.parse_unit(unit_text, node.where("unit"))
        except EngineError as exc:
            self.fail(exc)
            return None
        return Formula(name, text, unit_text, doc, self.declared_at[name], path,
                       sources=list(node.get("sources") or []), symbol=node.get("symbol"), unit=unit)

    def compile(self, expr) -> compiled.Code:
        return compiled.from_sympy(expr, self.latex_names)

    def parse(self, graph, node: YDict, key, text):
        where, offset = node.expr_location(key)
        return expressions.parse(text, self.symbols, where, offset, self.functions), where

    def compile_formula(self, graph: FormulaGraph, f: Formula):
        node, _ = self.formula_nodes[f.name]
        what = f"formulas.{f.name}"
        try:
            expr, where = self.parse(graph, node, "expr", f.text)
            f.expr = unitcheck.check(expr, self.symbol_units, f.unit, where, f"{what}.expr")
            f.deps = tuple(sorted(s.name for s in f.expr.free_symbols))
            f.code = self.compile(f.expr)
        except EngineError as exc:
            self.fail(exc)
        self.read_requires(graph, f, node)
        self.read_variants(graph, f, node)

    def read_requires(self, graph, f: Formula, node: YDict):
        reqs = node.get("requires")
        if reqs is None:
            return
        if not isinstance(reqs, YList):
            self.fail(SchemaError(f"formulas.{f.name}.requires must be a list of conditions", node.where("requires")))
            return
        for i, item in enumerate(reqs):
            text, message, where = item, None, reqs.where(i)
            if isinstance(item, YDict):     # {when: CONDITION, message: what the user is told}
                _known_keys(item, REQUIRES_KEYS, f"formulas.{f.name}.requires", self.fail)
                text, message, where = item.get("when"), item.get("message"), item.where("when")
            if not isinstance(text, str) or not isinstance(message, (str, type(None))):
                self.fail(SchemaError("a condition must be text, or {when: CONDITION, message: TEXT}", where,
                                      found=shorten(repr(item))))
                continue
            try:
                expr = expressions.parse(text, self.symbols, where, 0, self.functions)
                expr = unitcheck.check_condition(expr, self.symbol_units, where, f"formulas.{f.name}.requires")
                if expr in (sympy.true, sympy.false) or not isinstance(expr, sympy.Basic):
                    raise SchemaError("condition is constant", where, found=str(expr))
                names = tuple(sorted(s.name for s in expr.free_symbols))
                unknown = sorted(set(MESSAGE_FIELD.findall(message or "")) - set(names) - {"model"})
                if unknown:
                    raise SchemaError(f"the message names {', '.join(unknown)}, which its condition does not use",
                                      item.where("message"), hint=f"use {{model}} or names of the condition: "
                                                                  f"{', '.join(names)}")
                f.requires.append(Requirement(text, compiled.from_sympy(expr), where, names, message))
            except EngineError as exc:
                self.fail(exc)

    def read_variants(self, graph, f: Formula, node: YDict):
        variants = node.get("variants")
        if variants is None:
            return
        if not isinstance(variants, YDict):
            self.fail(SchemaError(f"formulas.{f.name}.variants must map variant names to expressions",
                                  node.where("variants")))
            return
        for vname, vnode in variants.items():
            what = f"formulas.{f.name}.variants.{vname}"
            if not isinstance(vname, str) or not NAME_RE.match(vname):
                self.fail(SchemaError(f"invalid variant name '{vname}'", variants.where(vname, of_key=True)))
                continue
            if isinstance(vnode, str):
                text, doc, sources, holder, key = vnode, "", [], variants, vname
            elif isinstance(vnode, YDict):
                _known_keys(vnode, VARIANT_KEYS, what, self.fail)
                text = self.required_text(vnode, "expr", what)
                doc, sources, holder, key = str(vnode.get("doc", "")), list(vnode.get("sources") or []), vnode, "expr"
                if text is None:
                    continue
            else:
                self.fail(SchemaError(f"{what} must be an expression or {{expr:, doc:, sources:}}",
                                      variants.where(vname)))
                continue
            try:
                expr, where = self.parse(graph, holder, key, text)
                expr = unitcheck.check(expr, self.symbol_units, f.unit, where, what)
                deps = tuple(sorted(s.name for s in expr.free_symbols))
                f.variants[vname] = Variant(vname, text, self.compile(expr), doc, sources, where, deps)
            except EngineError as exc:
                self.fail(exc)

    def read_checks(self, graph: FormulaGraph, checks: YList) -> list[Check]:
        out = []
        for i, node in enumerate(checks):
            if not isinstance(node, YDict):
                self.fail(SchemaError("each check is a mapping with name:, given:, expect:", checks.where(i)))
                continue
            _known_keys(node, CHECK_KEYS, "check", self.fail)
            name = node.get("name") or f"check #{i + 1}"
            ok = True
            for key, allowed in (("given", {**graph.inputs, **graph.formulas}), ("expect", graph.formulas)):
                block = node.get(key)
                if not isinstance(block, YDict) or not block:
                    self.fail(SchemaError(f"check '{name}' needs a non-empty {key}: mapping", node.where(key)))
                    ok = False
                    continue
                for n in block:
                    if n not in allowed:
                        self.fail(_unknown(n, allowed, block.where(n, of_key=True),
                                           f"check '{name}' {key}: names " +
                                           ("an input or formula" if key == "given" else "a formula")))
                        ok = False
            variant = node.get("variant")
            if variant is not None and variant not in graph.variant_names:
                self.fail(_unknown(variant, graph.variant_names, node.where("variant"), "unknown variant"))
                ok = False
            tol = node.get("tolerance", DEFAULT_TOLERANCE)
            if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
                self.fail(SchemaError("tolerance must be a relative error between 0 and 1", node.where("tolerance"),
                                      found=repr(tol), expected="0.001 for 0.1 %"))
                ok = False
            if ok:
                where = {f"{key}.{n}": node[key].where(n) for key in ("given", "expect") for n in node[key]}
                out.append(Check(str(name), dict(node["given"]), dict(node["expect"]), variant, float(tol),
                                 node.where(), where))
        return out


def check_fixed_points(graph: FormulaGraph, errors: ErrorList):
    """A solved input names formulas that exist; `of` uses it, `below` and `when` must not (they bound the solve)."""
    for i in graph.inputs.values():
        if not i.fixed_point:
            continue
        fp, where = i.fixed_point, i.location
        for key, name in fp.items():
            if name not in graph.formulas and not (key == "when" and name in graph.inputs):
                errors.add(_unknown(name, list(graph.formulas), where, f"inputs.{i.name}.fixed_point.{key}"))
            elif (i.name in graph.inputs_for([name])) != (key == "of"):
                uses = "does not use" if key == "of" else "uses"
                errors.add(SchemaError(f"inputs.{i.name}.fixed_point.{key}: '{name}' {uses} {i.name}", where,
                                       hint="`of` must be computed from the solved input; `below` and `when` "
                                            "must not be, or the solve has no fixed bounds"))


def _unknown(name, allowed, where, what) -> SchemaError:
    import difflib

    close = difflib.get_close_matches(str(name), list(allowed), n=1)
    return SchemaError(f"{what}: unknown name '{name}'", where, width=len(str(name)),
                       hint=f"did you mean '{close[0]}'?" if close else None)


def _known_keys(node: YDict, allowed: set, what: str, fail) -> bool:
    ok = True
    for key in node:
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            fail(SchemaError(f"unknown field '{key}' in {what}", node.where(key, of_key=True), width=len(str(key)),
                             expected=", ".join(sorted(allowed)),
                             hint=f"did you mean '{close[0]}'?" if close else None))
            ok = False
    return ok



"""Imports flow one way: cli -> render/validation -> evaluate -> graph/catalog -> expressions/units."""
from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
LAYER = {"errors": 0, "paths": 0, "scenario_keys": 0, "output": 0, "yamlsafe": 1, "expressions": 2, "units": 2, "unitcheck": 2,
         "cache": 1, "printers": 3, "printers_excel": 3, "compiled": 3, "declarations": 4,
         "catalog": 4, "graph": 4, "scenario": 5, "evaluate": 5, "latency": 6, "accuracy": 6, "fitting": 7,
         "validation": 6, "writeup": 7, "profiles": 3, "render": 6, "sizing": 7, "solve": 8, "sweep": 8, "plan": 8,
         "compare": 8, "cli": 9}


def _layer(module: str) -> int:
    return LAYER[module.split(".")[0]]


def test_every_module_has_a_layer():
    modules = {p.relative_to(ENGINE).parts[0].removesuffix(".py") for p in ENGINE.glob("*.py")} - {"__init__"}
    assert modules <= set(LAYER), f"add a layer for {sorted(modules - set(LAYER))}"


def test_no_module_imports_upward():
    for path in ENGINE.rglob("*.py"):
        rel = path.relative_to(ENGINE).with_suffix("")
        if rel.name == "__init__" and len(rel.parts) == 1:
            continue
        own = rel.parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                target = (node.module or "").split(".")[0] or None
                names = [target] if target else [a.name for a in node.names]
                for name in names:
                    if name in LAYER and own in LAYER and name != own:
                        assert _layer(name) <= _layer(own), f"{rel} imports {name} (upward)"

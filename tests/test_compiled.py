"""The compiled graph: its trees evaluate as sympy's own NumPy printer does, it round-trips through
the cache unchanged, a damaged cache is rebuilt, and a warm start imports neither sympy nor pint."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from engine import cache, graph as graph_mod, paths

SCENARIOS = [
    {},
    {"model": "mistralai/Mixtral-8x7B-Instruct-v0.1", "tensor_parallel_size": 2, "kv_cache_dtype": "fp8"},
    {"model": "google/gemma-3-27b-it", "tensor_parallel_size": 4, "enforce_eager": True},
    {"model": "deepseek-ai/DeepSeek-V2-Lite", "max_model_len": 4096, "batch_size": 3},
    {"model": "openai/gpt-oss-20b", "gpu": "a100-80gb-sxm", "pipeline_parallel_size": 2},
]


@pytest.fixture(scope="module")
def cold():
    return graph_mod.load(paths.search_path("formulas"), use_cache=False)


@pytest.mark.parametrize("keys", SCENARIOS, ids=lambda k: k.get("model", "default"))
def test_trees_evaluate_as_lambdify(cold, catalog, keys):
    """Every formula's tree gives what sympy.lambdify gives for the same unit-checked expression."""
    import sympy

    from engine import evaluate as ev
    from engine import printers
    from engine import scenario as scn

    sc = scn.resolve(catalog, {k: scn.coerce(k, v) for k, v in keys.items()})
    values = dict(ev.evaluate(cold, scn.bindings(cold, catalog, sc), check_requires=False).values)
    for name in cold.order():
        expr = cold.formulas[name].expr
        args = sorted(s.name for s in expr.free_symbols)
        fn = sympy.lambdify([sympy.Symbol(a) for a in args], expr.subs(
            {s: sympy.Symbol(s.name) for s in expr.free_symbols}), modules="numpy", printer=printers.NumpyPrinter)
        with np.errstate(divide="ignore", invalid="ignore"):
            want = fn(*[values[a] for a in args])
        np.testing.assert_allclose(values[name], want, rtol=1e-12, err_msg=name)


def test_cache_round_trip_is_identical(cold):
    warm = graph_mod.FormulaGraph.from_json(json.loads(json.dumps(cold.to_json())))
    assert warm.to_json() == cold.to_json()
    assert warm.order() == cold.order()
    assert warm.formulas["kv_heads_per_gpu"].requires[0].code({"num_kv_heads": 8, "tp": 3}) == \
        cold.formulas["kv_heads_per_gpu"].requires[0].code({"num_kv_heads": 8, "tp": 3})


def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_SIZER_CACHE_DIR", str(tmp_path))
    first = graph_mod.load(paths.search_path("formulas"))
    [path] = tmp_path.glob("graph-*.json")
    for damage in ('{"files": [], "inputs": [], "formulas": [{"name": 1}]}', "not json {",
                   json.dumps({**first.to_json(), "formulas": [{"name": "x", "code": {"tree": ["exec", 1]}}]})):
        path.write_text(damage)
        again = graph_mod.load(paths.search_path("formulas"))
        assert list(again.formulas) == list(first.formulas)
        assert json.loads(path.read_text()) == first.to_json()      # rewritten whole


def test_formula_change_rebuilds(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_SIZER_CACHE_DIR", str(tmp_path / "cache"))
    mine = tmp_path / "f"
    mine.mkdir()
    (mine / "x.yaml").write_text("schema: 1\ntitle: t\nformulas:\n  doubled_tp:\n"
                                 "    {doc: d, expr: 2 * tp, unit: 1}\n")
    g = graph_mod.load([*paths.search_path("formulas"), mine])
    assert g.formulas["doubled_tp"].code({"tp": 3}) == 6
    (mine / "x.yaml").write_text("schema: 1\ntitle: t\nformulas:\n  doubled_tp:\n"
                                 "    {doc: d, expr: 3 * tp, unit: 1}\n")
    g = graph_mod.load([*paths.search_path("formulas"), mine])
    assert g.formulas["doubled_tp"].code({"tp": 3}) == 9
    assert len(list((tmp_path / "cache").glob("graph-*.json"))) == 2


def test_unwritable_cache_is_no_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("LLM_SIZER_CACHE_DIR", str(blocker / "sub"))   # a path under a file
    assert "kv_cache_tokens" in graph_mod.load(paths.search_path("formulas")).formulas
    assert cache.read("anything") is None


def test_warm_start_imports_neither_sympy_nor_pint(tmp_path):
    env = {**os.environ, "LLM_SIZER_CACHE_DIR": str(tmp_path)}
    code = ("import sys; from engine.cli import main\n"
            "try: main(['size', '--no-files'])\n"
            "except SystemExit: pass\n"
            "print(sorted(m for m in ('sympy', 'pint', 'openpyxl', 'jinja2', 'scipy') if m in sys.modules))")
    cold = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    warm = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "sympy" in cold.stdout.splitlines()[-1]
    assert warm.stdout.splitlines()[-1] == "[]"
    assert cold.stdout.splitlines()[:-1] == warm.stdout.splitlines()[:-1]    # the same sizing


def test_yaml_cache_keeps_values_and_positions(tmp_path, monkeypatch):
    from engine import yamlsafe

    monkeypatch.setenv("LLM_SIZER_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "c.yaml"
    f.write_text("a:\n  b: [1, 2.5, 'x']\n  c: {d: true}\nlist:\n  - e: 3\n")
    first = yamlsafe.load(f)
    [cached] = (tmp_path / "cache").glob("yaml-*.json")
    again = yamlsafe.load(f)                          # from the cache
    assert again == first
    for doc in (first, again):
        assert str(doc["a"].where("c", of_key=True)).endswith("c.yaml:3:3")
        assert doc["a"]["b"].where(2).col == 15 and doc["list"][0].where("e").line == 5
        assert doc["a"].where("c").source_line == "  c: {d: true}"
    cached.write_text('{"lines": [], "doc": {"d": [["a", {"l": 1}]]}}')   # damaged: parsed again
    assert yamlsafe.load(f) == first

"""Evaluation: scalars and NumPy sweeps agree, conditions are checked element-wise, derivations substitute."""
from __future__ import annotations

import numpy as np
import pytest

from engine import evaluate as ev
from engine import scenario as scn
from engine.errors import RequirementError


def bindings(graph, catalog, **keys):
    sc = scn.resolve(catalog, {k: scn.coerce(k, v) for k, v in keys.items()})
    return scn.bindings(graph, catalog, sc)


def test_sweep_equals_scalar_runs(graph, catalog):
    base = bindings(graph, catalog, model="meta-llama/Llama-3.1-70B-Instruct")
    tps = np.array([1, 2, 4, 8])
    lens = np.array([4096, 8192, 32768, 131072])
    sweep = ev.evaluate(graph, {**base, "tp": tps, "max_model_len": lens})
    for i, (tp, n) in enumerate(zip(tps, lens)):
        one = ev.evaluate(graph, {**base, "tp": int(tp), "max_model_len": int(n)})
        for name in ["weight_memory_per_gpu", "kv_cache_tokens", "max_concurrency", "memory_shortfall"]:
            assert float(sweep[name][i]) == pytest.approx(float(one[name]), rel=1e-12), name


def test_requires_names_offending_scenarios(graph, catalog):
    base = bindings(graph, catalog)
    with pytest.raises(RequirementError) as info:
        ev.evaluate(graph, {**base, "tp": np.array([1, 2, 3, 4, 6])})
    assert "num_attention_heads % tp == 0" in str(info.value)
    assert "tp=3 (scenario #2)" in info.value.found and "tp=6 (scenario #4)" in info.value.found


def test_input_bounds(graph, catalog):
    base = bindings(graph, catalog)
    with pytest.raises(RequirementError, match="--gpu-memory-utilization must be at most 1"):
        ev.evaluate(graph, {**base, "gpu_memory_utilization": 1.2})
    with pytest.raises(RequirementError, match="must be a whole number"):
        ev.evaluate(graph, {**base, "max_num_seqs": 2.5})


def test_derivation_substitutes_numbers(graph, catalog):
    result = ev.evaluate(graph, bindings(graph, catalog), ["kv_cache_bytes_per_token"])
    d = result.derivation("kv_cache_bytes_per_token")
    assert d.symbolic == "attention_layers_per_gpu*kv_cache_bytes_per_token_per_layer"
    assert d.substituted == "32*4,096"
    assert r"\mathrm{kv\_cache\_bytes\_per\_token\_per\_layer}" in d.latex
    assert float(d.value) == 131072


def test_every_worked_example_holds(graph):
    assert ev.run_checks(graph) == []
    assert sum(len(f.checks) for f in graph.files) >= 14


def test_unit_conversion_is_inserted():
    """A formula mixing GiB and bytes gets the factor 2^30 in its compiled expression."""
    import sympy

    from engine import unitcheck, units

    a, b = sympy.symbols("a b", positive=True)
    expr = unitcheck.check(a + b, {a: units.parse_unit("GiB"), b: units.parse_unit("byte")},
                       units.parse_unit("byte"), None, "f")
    assert expr == 1073741824 * a + b
